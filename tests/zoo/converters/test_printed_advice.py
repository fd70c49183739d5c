"""Every ``--model-args`` suggestion a converter prints is followed literally here, and the converted network's
logits are checked against a network whose non-local blocks run the *source framework's* formula.

Also: settings a checkpoint records (mmengine ``meta`` config text) decide the conversion and are reported,
and ``--source`` may be left out (the format is detected from the content).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import nlzoo
from nlzoo.cli import main
from nlzoo.zoo import convert_checkpoint
from nlzoo.zoo.converters import ConversionError

from .layouts import export, mmaction2_name, randomise, write_mmaction2, write_pyslowfast
from .test_framework_semantics import MMACTION2_STEM, mmcv_nonlocal3d

ADVICE = re.compile(r"([^:;]+?): --model-args '(\{.*?\}\})'")
Reference = Callable[[torch.Tensor, dict[str, torch.Tensor]], torch.Tensor]


def pyslowfast_nonlocal(x: torch.Tensor, w: dict[str, torch.Tensor], instantiation: str) -> torch.Tensor:
    """PySlowFast ``Nonlocal.forward`` written out (slowfast/models/nonlocal_helper.py, pool (1,2,2))."""
    inner = w["conv_theta.weight"].shape[0]
    theta = F.conv3d(x, w["conv_theta.weight"], w["conv_theta.bias"])
    pooled = F.max_pool3d(x, kernel_size=(1, 2, 2), stride=(1, 2, 2))
    phi = F.conv3d(pooled, w["conv_phi.weight"], w["conv_phi.bias"])
    g = F.conv3d(pooled, w["conv_g.weight"], w["conv_g.bias"])
    n, _, t, h, wd = theta.shape
    theta, phi, g = theta.reshape(n, inner, -1), phi.reshape(n, inner, -1), g.reshape(n, inner, -1)
    theta_phi = torch.einsum("nct,ncp->ntp", theta, phi)
    if instantiation == "softmax":
        theta_phi = (theta_phi * inner**-0.5).softmax(dim=2)
    else:
        theta_phi = theta_phi / theta_phi.shape[2]
    y = torch.einsum("ntg,ncg->nct", theta_phi, g).reshape(n, inner, t, h, wd)
    p = F.conv3d(y, w["conv_out.weight"], w["conv_out.bias"])
    p = F.batch_norm(p, w["norm.running_mean"], w["norm.running_var"], w["norm.weight"], w["norm.bias"], False, 0, 1e-5)
    return x + p


def _mmcv_weights(w: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    names = {"conv_theta": "theta.conv", "conv_phi": "phi.0.conv", "conv_g": "g.0.conv", "norm": "conv_out.bn"}
    out = {f"{names[k.split('.')[0]]}.{k.split('.', 1)[1]}": v for k, v in w.items() if k.split(".")[0] in names}
    out["conv_out.conv.weight"] = w["conv_out.weight"]
    return out


def _logits_with_reference_blocks(model: torch.nn.Module, x: torch.Tensor, reference: Reference) -> torch.Tensor:
    """The model's logits with every non-local block's output replaced by ``reference(input, block weights)``."""
    hooks = [
        block.register_forward_hook(
            lambda m, inputs, out: reference(inputs[0], {k: v for k, v in m.state_dict().items()})
        )
        for name, block in model.named_modules()
        if name.endswith("_nonlocal")
    ]
    try:
        return model(x)
    finally:
        for hook in hooks:
            hook.remove()


def _follow_every_suggestion(
    message: str, convert: Callable[[dict], Path], reference_for: Callable[[str], Reference], tmp_path: Path
) -> int:
    suggestions = ADVICE.findall(message)
    assert suggestions, message
    x = torch.randn(1, 3, 4, 32, 32)
    for setting, text in suggestions:
        model = nlzoo.load(convert(json.loads(text))).eval()  # the printed JSON, as the user would paste it
        with torch.no_grad():
            expected = _logits_with_reference_blocks(model, x, reference_for(setting.strip()))
            torch.testing.assert_close(model(x), expected, rtol=1e-4, atol=1e-5, msg=setting)
    return len(suggestions)


def test_pyslowfast_advice_reproduces_pyslowfast(tmp_path: Path) -> None:
    source = randomise(nlzoo.load("i3d_r18_nl", pretrained=False, num_classes=4))
    checkpoint = write_pyslowfast(source, tmp_path / "nocfg.pyth", cfg=None)  # only model_state: ambiguous
    with pytest.raises(ConversionError) as err:
        convert_checkpoint("pyslowfast", "i3d_r18_nl", checkpoint, tmp_path / "refused")
    counter = iter(range(100))

    def convert(args: dict) -> Path:
        return convert_checkpoint(None, "i3d_r18_nl", checkpoint, tmp_path / f"out{next(counter)}", **args)

    def reference_for(setting: str) -> Reference:
        instantiation = re.search(r"INSTANTIATION (\w+)", setting)[1]
        return lambda x, w: pyslowfast_nonlocal(x, w, instantiation)

    assert _follow_every_suggestion(str(err.value), convert, reference_for, tmp_path) == 2


def test_mmaction2_advice_reproduces_mmcv(tmp_path: Path) -> None:
    source = randomise(
        nlzoo.load(
            "i3d_r18_nl",
            pretrained=False,
            num_classes=4,
            **MMACTION2_STEM,
            nonlocal_args={"instantiation": "dot_product", "pool_embeddings": True},
        ),
        zero=("_nonlocal.conv_out.bias",),
    )
    checkpoint = write_mmaction2(source, tmp_path / "mm.pth")
    with pytest.raises(ConversionError) as err:
        convert_checkpoint("mmaction2", "i3d_r18_nl", checkpoint, tmp_path / "refused")
    counter = iter(range(100))

    def convert(args: dict) -> Path:
        return convert_checkpoint("mmaction2", "i3d_r18_nl", checkpoint, tmp_path / f"out{next(counter)}", **args)

    def reference_for(setting: str) -> Reference:
        mode = re.search(r"mode='(\w+)'", setting)[1]
        use_scale = "use_scale=False" not in setting
        return lambda x, w: mmcv_nonlocal3d(x, _mmcv_weights(w), mode, use_scale)

    assert _follow_every_suggestion(str(err.value), convert, reference_for, tmp_path) == 3
    with pytest.raises(ConversionError, match="does not say which.*use_scale=False.*use_scale=True") as narrower:
        convert_checkpoint(
            "mmaction2", "i3d_r18_nl", checkpoint, tmp_path / "x", nonlocal_args={"instantiation": "embedded_gaussian"}
        )
    assert "dot_product" not in str(narrower.value).split("say which")[-1]


META_CFG = """model = dict(
    backbone=dict(
        depth=50,
        non_local=((0, 0, 0), (0, 1, 0, 1), (0, 1, 0, 1, 0, 1), (0, 0, 0)),
        non_local_cfg=dict(
            mode='embedded_gaussian',
            norm_cfg=dict(requires_grad=True, type='BN3d'),
            sub_sample=True,
            use_scale=False),
        pretrained2d=True,
        pretrained='torchvision://resnet50',
        type='ResNet3d'),
    type='Recognizer3D')
"""


def test_mmengine_meta_decides_and_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = randomise(
        nlzoo.load(
            "i3d_r18_nl",
            pretrained=False,
            num_classes=4,
            **MMACTION2_STEM,
            nonlocal_args={"softmax_scale": 1.0, "pool_embeddings": True},
        ),
        zero=("_nonlocal.conv_out.bias",),
    )
    path = tmp_path / "meta.pth"
    torch.save(
        {"state_dict": export(source, mmaction2_name), "meta": {"cfg": META_CFG, "mmengine_version": "0.8"}}, path
    )
    assert main(["convert", "--model", "i3d_r18_nl", str(path), str(tmp_path / "out")]) == 0  # no --source
    printed = capsys.readouterr().out
    assert "detected mmaction2" in printed
    assert "decided by the file's meta.cfg non_local_cfg.mode = 'embedded_gaussian'" in printed
    assert "decided by the file's meta.cfg non_local_cfg.use_scale = False" in printed
    model = nlzoo.load(tmp_path / "out").eval()
    conversion = model.nlzoo_config.provenance["conversion"]
    assert conversion["detected"] is True and conversion["settings_from_file"]["meta.cfg depth"] == 50
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        expected = _logits_with_reference_blocks(
            model, x, lambda t, w: mmcv_nonlocal3d(t, _mmcv_weights(w), "embedded_gaussian", False)
        )
        torch.testing.assert_close(model(x), expected, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(model(x), source.eval()(x), rtol=1e-4, atol=1e-5)


def test_meta_text_is_never_executed(tmp_path: Path) -> None:
    from nlzoo.zoo.converters.mmaction2 import read_meta_config

    marker = tmp_path / "ran"
    text = f"import os\nos.system('touch {marker}')\nmodel = dict(backbone=dict(depth=__import__('os').getpid()))"
    assert read_meta_config({"meta": {"cfg": text}}) == {}
    assert not marker.exists()
    assert read_meta_config({"meta": {"cfg": "not python ((("}}) == {}

"""PySlowFast ``.pyth`` checkpoints (facebookresearch/SlowFast, ``slowfast/utils/checkpoint.py``).

Container: ``torch.save({"epoch", "model_state", "optimizer_state", "cfg"})``; weights under
``model_state``, ``cfg`` the run's YAML config. Keys (``resnet_helper.py``, ``nonlocal_helper.py``):
``s1.pathway0_stem.{conv,bn}``, ``s{2..5}.pathway0_res{i}.branch2.{a,b,c}[_bn]``,
``s{k}.pathway0_res0.branch1[_bn]``, ``s{3,4}.pathway0_nonlocal{i}.{conv_theta,conv_phi,conv_g,conv_out,bn}``
(``bn`` was ``norm`` before release; both are read) and ``head.projection``.

PySlowFast's NL block pools the input of phi and g (``pool`` before the convs), like nlzoo's; its
"softmax" instantiation scales by ``dim_inner ** -0.5`` (nlzoo's embedded Gaussian default) and its
"dot_product" divides by the key count. The keys cannot tell the two apart, so the instantiation comes
from the file's ``cfg`` when present, else from the user or a registry tag.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from .base import BN_ENTRY, BRANCH_CONV, ConversionError, SourceFormat, stage_layer

_INSTANTIATIONS = {"softmax": "embedded_gaussian", "dot_product": "dot_product"}
_ARCHS = ("c2d", "i3d")  # the "_nopool" variants and slow/slowfast nets have no nlzoo counterpart


def nonlocal_settings_from_cfg(payload: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The NL instantiation recorded in a checkpoint's ``cfg`` (YAML text), checking its MODEL.ARCH; with the
    fields that decided it.

    Raises:
        ConversionError: the config names an architecture nlzoo's ResNet3d does not implement.
    """
    text = payload.get("cfg") if isinstance(payload, Mapping) else None
    if not isinstance(text, str):
        return {}, {}
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError:
        return {}, {}
    if not isinstance(cfg, Mapping):
        return {}, {}
    arch = (cfg.get("MODEL") or {}).get("ARCH")
    if arch is not None and arch not in _ARCHS:
        raise ConversionError(
            f"the checkpoint's cfg says MODEL.ARCH={arch!r}; nlzoo implements PySlowFast's {' and '.join(_ARCHS)} "
            "(with the (2,1,1) pool after res2), not this variant"
        )
    instantiation = (cfg.get("NONLOCAL") or {}).get("INSTANTIATION")
    evidence = {
        key: value for key, value in (("cfg MODEL.ARCH", arch), ("cfg NONLOCAL.INSTANTIATION", instantiation)) if value
    }
    if instantiation not in _INSTANTIATIONS:
        return {}, evidence
    return {"instantiation": _INSTANTIATIONS[instantiation]}, evidence


PYSLOWFAST = SourceFormat(
    name="pyslowfast",
    description="a PySlowFast .pyth (weights under 'model_state')",
    container="torch",
    weights_key="model_state",
    signature=r"s1\.pathway0_stem\.conv\.weight",
    rules=(
        (r"s1\.pathway0_stem\.conv\.weight", lambda m: "conv1.weight"),
        (rf"s1\.pathway0_stem\.bn\.{BN_ENTRY}", lambda m: f"bn1.{m[1]}"),
        (
            r"s([2-5])\.pathway0_res(\d+)\.branch2\.([abc])\.weight",
            lambda m: f"{stage_layer(m[1])}.{m[2]}.conv{BRANCH_CONV[m[3]]}.weight",
        ),
        (
            rf"s([2-5])\.pathway0_res(\d+)\.branch2\.([abc])_bn\.{BN_ENTRY}",
            lambda m: f"{stage_layer(m[1])}.{m[2]}.bn{BRANCH_CONV[m[3]]}.{m[4]}",
        ),
        (r"s([2-5])\.pathway0_res(\d+)\.branch1\.weight", lambda m: f"{stage_layer(m[1])}.{m[2]}.downsample.0.weight"),
        (
            rf"s([2-5])\.pathway0_res(\d+)\.branch1_bn\.{BN_ENTRY}",
            lambda m: f"{stage_layer(m[1])}.{m[2]}.downsample.1.{m[3]}",
        ),
        (
            r"s([2-5])\.pathway0_nonlocal(\d+)\.(conv_theta|conv_phi|conv_g|conv_out)\.(weight|bias)",
            lambda m: f"{stage_layer(m[1])}.{m[2]}_nonlocal.{m[3]}.{m[4]}",
        ),
        (
            rf"s([2-5])\.pathway0_nonlocal(\d+)\.(?:bn|norm)\.{BN_ENTRY}",
            lambda m: f"{stage_layer(m[1])}.{m[2]}_nonlocal.norm.{m[3]}",
        ),
        (r"head\.projection\.(weight|bias)", lambda m: f"fc.{m[1]}"),
    ),
    zero_fill=("*.num_batches_tracked",),
    default_instantiation=None,
    nonlocal_choices={
        # PySlowFast's "softmax" scales theta.phi by dim_inner ** -0.5: nlzoo's embedded Gaussian default.
        "NONLOCAL.INSTANTIATION softmax (its NLN configs)": {"instantiation": "embedded_gaussian"},
        "NONLOCAL.INSTANTIATION dot_product (its default)": {"instantiation": "dot_product"},
    },
    read_settings=nonlocal_settings_from_cfg,
)

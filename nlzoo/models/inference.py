"""A network made ready to predict, and run at the chosen precision: what every inference path shares.

:func:`prepare_for_inference` puts a model in eval mode on its device, in channels-last layout, with its
convolutions made faster at inference (:mod:`nlzoo.models.conv_backend`: small fp32 video layers on oneDNN,
weights kept in half precision under autocast) and every BatchNorm folded into its convolution
(:mod:`nlzoo.models.fuse`), optionally compiled. :func:`predict_batches` runs it under
``torch.inference_mode`` and the precision :mod:`nlzoo.precision` resolves (``auto``: bf16 autocast where it
is faster), giving float32 outputs.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from ..precision import inference_precision
from .conv_backend import use_inference_convolutions
from .fuse import fold_batchnorm
from .memory_format import to_channels_last


def example_input(model: nn.Module) -> torch.Tensor | None:
    """A zero input of the shape the model's data config describes: (1, C, T, H, W) or (1, C, H, W).

    ``None`` for models without an ``nlzoo_config`` naming a crop size.
    """
    config = getattr(getattr(model, "nlzoo_config", None), "data_config", None)
    if config is None or not config.crop_size:
        return None
    time = (config.num_frames,) if config.num_frames else ()
    return torch.zeros(1, len(config.mean), *time, *config.crop_size)


def prepare_for_inference(
    model: nn.Module,
    *,
    device: str | torch.device = "cpu",
    example: torch.Tensor | None = None,
    fold_bn: bool = True,
    compile: bool = False,
) -> nn.Module:
    """``model`` in eval mode on ``device``, channels-last and BatchNorm-folded, in place.

    Channels-last pays for image networks too: on an AMD EPYC Zen 5 at batch 1, resnet50_nl 1.04x (fp32) and
    1.22x (bf16), resnet18_nl_l2l3 1.20x / 1.44x, simplebaseline_r50_nl 1.07x / 1.41x; inputs need no
    conversion (a convolution with channels-last weights answers in channels-last).

    Args:
        model: a network; it is changed in place (fold only a copy you will not train or save).
        device: where it runs.
        example: one input for the folding trace (values do not matter); default: zeros of the data
            config's shape (:func:`example_input`). Without either, nothing is folded.
        fold_bn: fold BatchNorm into the preceding convolutions.
        compile: wrap the model in ``torch.compile`` with inductor's freezing (weights become constants,
            pre-cast and pre-packed). It costs a compilation of tens of seconds on CPU per input shape and
            precision, and on every CPU measured so far the compiled model was slower than the prepared eager
            one, which reorders its weights and fuses ReLU and residual sums itself (i3d_r50_nl in bf16: 135 vs
            120 ms on an AMD EPYC Zen 5, 276 vs 72 ms on an Intel Xeon with AMX); it is there for devices where
            inductor's kernels may win (not measured on a GPU yet). Attributes such as ``nlzoo_config`` stay
            reachable through the wrapper.

    Returns:
        The prepared model (the ``torch.compile`` wrapper when ``compile``).
    """
    model = model.to(device).eval()
    to_channels_last(model)
    use_inference_convolutions(model)  # oneDNN for small fp32 video layers, weights kept in half precision
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    example = example if example is not None else example_input(model)
    if fold_bn and has_bn and example is not None:
        fold_batchnorm(model, example[:1].to(device))
    if compile:
        return torch.compile(model, options={"freezing": True})  # type: ignore[return-value]
    return model


def predict_batches(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    batch_size: int,
    precision: str = "auto",
    device: str | torch.device | None = None,
) -> Iterator[torch.Tensor]:
    """The float32 outputs of ``model`` on ``inputs`` split into batches, one batch at a time.

    Each batch runs under ``torch.inference_mode`` and ``precision`` (``auto``, ``fp32``, ``bf16`` or
    ``fp16``, see :mod:`nlzoo.precision`); the autocast region ends before the batch is yielded, so the
    caller's own computations run in full precision.

    Args:
        model: a prepared model (:func:`prepare_for_inference`).
        inputs: (N, ...) inputs, on any device.
        batch_size: inputs per forward pass.
        precision: the inference precision.
        device: where the model runs (default: its parameters' device).

    Raises:
        ValueError: ``batch_size`` < 1.
        ConfigError: an unknown precision.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    if device is None:
        device = next(model.parameters()).device
    for batch in inputs.split(batch_size):
        with torch.inference_mode(), inference_precision(precision, device):
            out = model(batch.to(device))
        yield out.float()

"""Optimisers and per-step learning-rate schedules as in the authors' recipes.

PySlowFast / video-nonlocal-net: SGD with momentum 0.9, weight decay 1e-4 but none on BN parameters
(``WEIGHT_DECAY_BN 0``), a linear warm-up, then cosine (8x8 Kinetics recipe) or step decay (the paper's
Caffe2 runs). Schedules are evaluated every optimiser step, so warm-up is smooth even over few epochs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import torch
from torch import nn

from ..errors import ConfigError, TrainingDivergedError

OptimizerName = Literal["sgd", "adamw"]
ScheduleName = Literal["cosine", "step", "constant"]

NORM_LAYERS: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.LocalResponseNorm,
)


def param_groups(model: nn.Module, *, weight_decay: float, decay_norm_and_bias: bool = False) -> list[dict[str, Any]]:
    """Trainable parameters split into a decayed group and a group without decay (norm layers and biases).

    Args:
        model: the network; frozen parameters (``requires_grad=False``) are left out.
        weight_decay: decay of the first group.
        decay_norm_and_bias: decay everything alike instead.

    Returns:
        ``[{"params": [...], "weight_decay": wd}, {"params": [...], "weight_decay": 0.0}]`` (empty groups dropped).
    """
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    seen: set[int] = set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            exempt = isinstance(module, NORM_LAYERS) or name == "bias"
            (no_decay if exempt and not decay_norm_and_bias else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def build_optimizer(
    groups: Iterable[dict[str, Any]],
    *,
    name: OptimizerName,
    lr: float,
    momentum: float = 0.9,
    nesterov: bool = False,
) -> torch.optim.Optimizer:
    """SGD (``momentum``, ``nesterov``) or AdamW over parameter groups that carry their own weight decay."""
    groups = list(groups)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    raise ConfigError(f"unknown optimizer {name!r}; use 'sgd' or 'adamw'")


def lr_factor(
    step: int,
    *,
    total_steps: int,
    schedule: ScheduleName,
    warmup_steps: int = 0,
    warmup_start_factor: float = 0.1,
    milestones: Sequence[int] = (),
    gamma: float = 0.1,
    min_factor: float = 0.0,
) -> float:
    """The learning-rate multiplier at optimiser ``step``.

    ``cosine``: ``min + (1 - min) * (1 + cos(pi * step / total)) / 2`` over the whole run (PySlowFast);
    ``step``: ``gamma ** (milestones passed)``; ``constant``: 1. During the first ``warmup_steps`` the factor
    rises linearly from ``warmup_start_factor`` to the schedule's value at the end of the warm-up.
    """

    def scheduled(s: int) -> float:
        if schedule == "cosine":
            progress = min(s / max(total_steps, 1), 1.0)
            return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))
        if schedule == "step":
            return gamma ** sum(s >= m for m in milestones)
        if schedule == "constant":
            return 1.0
        raise ConfigError(f"unknown schedule {schedule!r}; use 'cosine', 'step' or 'constant'")

    if step < warmup_steps:
        end = scheduled(warmup_steps)
        return warmup_start_factor + (end - warmup_start_factor) * step / warmup_steps
    return scheduled(step)


def build_scheduler(optimizer: torch.optim.Optimizer, **schedule: Any) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step LambdaLR applying :func:`lr_factor` (keyword arguments as there)."""
    lr_factor(0, **schedule)  # validates the names before training starts
    factor: Callable[[int], float] = lambda step: lr_factor(step, **schedule)  # noqa: E731
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def ensure_finite_loss(loss: torch.Tensor, task: Any) -> torch.Tensor:
    """``loss`` unchanged, or :class:`TrainingDivergedError` if it is NaN or infinite.

    Training on would only spread NaNs through the weights and end, exit code 0, with a model that predicts
    nothing (torchvision's detection reference stops likewise). ``task`` is the LightningModule: its step and
    current learning rate go into the message. Costs one device sync per step.
    """
    if bool(torch.isfinite(loss.detach()).all()):
        return loss
    trainer = task.trainer
    lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else float("nan")
    raise TrainingDivergedError(
        f"training diverged: the loss is {loss.detach().float().sum().item()} at step {task.global_step} "
        f"(learning rate {lr:.3g}); lower the learning rate (model.lr) or clip gradients "
        f"(trainer.gradient_clip_val, e.g. 10) and train again"
    )

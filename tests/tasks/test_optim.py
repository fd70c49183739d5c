from __future__ import annotations

import math

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from nlzoo.errors import TrainingDivergedError
from nlzoo.tasks import ImageClassifier
from nlzoo.tasks.optim import build_optimizer, build_scheduler, lr_factor, param_groups
from nlzoo.zoo import load

from .tiny import trainer_args as trainer_args_for_tests


def test_no_decay_on_norm_layers_and_biases() -> None:
    model = load("c2d_r18_nl", pretrained=False, num_classes=3)
    model.conv1.weight.requires_grad_(False)
    decay, no_decay = param_groups(model, weight_decay=1e-4)
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    exempt = {names[id(p)] for p in no_decay["params"]}
    assert (decay["weight_decay"], no_decay["weight_decay"]) == (1e-4, 0.0)
    assert "conv1.weight" not in decayed | exempt  # frozen parameters are left out
    assert {"layer1.0.conv1.weight", "fc.weight", "layer2.1_nonlocal.conv_theta.weight"} <= decayed
    assert {"bn1.weight", "bn1.bias", "fc.bias", "layer2.1_nonlocal.norm.weight"} <= exempt
    norm_params = {
        f"{m}.{p}"
        for m, mod in model.named_modules()
        if isinstance(mod, torch.nn.BatchNorm3d)
        for p in ("weight", "bias")
    }
    assert exempt == norm_params | {n for n in decayed | exempt if n.endswith(".bias")}
    assert len(decayed) + len(exempt) == sum(1 for p in model.parameters() if p.requires_grad)
    assert len(param_groups(model, weight_decay=1e-4, decay_norm_and_bias=True)) == 1


def test_lr_factor_warmup_cosine_and_step() -> None:
    cosine = {"total_steps": 100, "schedule": "cosine", "warmup_steps": 10, "warmup_start_factor": 0.1}
    end_of_warmup = 0.5 * (1 + math.cos(math.pi * 0.1))
    assert lr_factor(0, **cosine) == pytest.approx(0.1)
    assert lr_factor(5, **cosine) == pytest.approx(0.1 + (end_of_warmup - 0.1) / 2)
    assert lr_factor(10, **cosine) == pytest.approx(end_of_warmup)
    assert lr_factor(50, **cosine) == pytest.approx(0.5)
    assert lr_factor(100, **cosine, min_factor=0.01) == pytest.approx(0.01)
    step = {"total_steps": 100, "schedule": "step", "milestones": [30, 60], "gamma": 0.1}
    assert [lr_factor(s, **step) for s in (0, 29, 30, 59, 60, 99)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    assert lr_factor(7, total_steps=10, schedule="constant") == 1.0


def test_scheduler_steps_the_optimizer() -> None:
    weight = torch.nn.Parameter(torch.zeros(2))
    optimizer = build_optimizer([{"params": [weight], "weight_decay": 0.0}], name="sgd", lr=0.2)
    assert optimizer.param_groups[0]["momentum"] == 0.9
    scheduler = build_scheduler(optimizer, total_steps=20, schedule="cosine", warmup_steps=4)
    for step in range(20):
        assert optimizer.param_groups[0]["lr"] == pytest.approx(
            0.2 * lr_factor(step, total_steps=20, schedule="cosine", warmup_steps=4)
        )
        optimizer.step()
        scheduler.step()
    assert isinstance(build_optimizer([{"params": [weight]}], name="adamw", lr=1e-3), torch.optim.AdamW)


def test_unknown_names_are_errors() -> None:
    weight = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match="unknown optimizer 'adam'"):
        build_optimizer([{"params": [weight]}], name="adam", lr=0.1)  # type: ignore[arg-type]
    optimizer = build_optimizer([{"params": [weight]}], name="sgd", lr=0.1)
    with pytest.raises(ValueError, match="unknown schedule 'poly'"):
        build_scheduler(optimizer, total_steps=10, schedule="poly")


class _TinyNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.num_classes = 3
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).mean((2, 3)))


def _fit(lr: float, **trainer_args: object) -> ImageClassifier:
    """Train a tiny classifier 6 steps on inputs of magnitude 1e18, which make plain SGD at lr 1 overflow."""
    torch.manual_seed(0)
    images = torch.randn(12, 3, 8, 8) * 1e18
    batches = [{"image": images[i : i + 2], "label": torch.arange(i, i + 2) % 3} for i in range(0, 12, 2)]
    task = ImageClassifier(_TinyNet(), num_classes=3, lr=lr, weight_decay=0.0)
    pl.Trainer(**trainer_args_for_tests(max_steps=6, **trainer_args)).fit(
        task, train_dataloaders=DataLoader(batches, batch_size=None)
    )
    return task


def test_a_diverging_loss_stops_training_with_advice_that_works() -> None:
    with pytest.raises(
        TrainingDivergedError, match=r"loss is nan at step \d+ \(learning rate [\d.]+\); lower the learning rate"
    ):
        _fit(lr=1.0)
    for task in (_fit(lr=1e-30), _fit(lr=1.0, gradient_clip_val=10.0)):  # the two remedies the message names
        assert task.global_step == 6
        assert all(torch.isfinite(p).all() for p in task.parameters())

"""ImageClassifier: the shared task on images, with mixup/cutmix giving soft targets."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nlzoo.tasks import ImageClassifier


class TinyNet(nn.Module):
    def __init__(self, num_classes: int = 4) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.conv = nn.Conv2d(3, 8, 3)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).mean((2, 3)))


def smoothed(y: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    off = smoothing / num_classes
    return F.one_hot(y, num_classes).float() * (1 - smoothing) + off


def test_mixup_mixes_inputs_and_targets_alike_and_smooths_once() -> None:
    task = ImageClassifier(TinyNet(), num_classes=4, mixup_alpha=0.4, label_smoothing=0.1)
    x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
    mixed, target = task.mix_batch(x.clone(), y)
    lam = float(target[0, 0] - 0.1 / 4) / 0.9  # row 0 is lam * smooth(0) + (1 - lam) * smooth(3)
    torch.testing.assert_close(mixed, lam * x + (1 - lam) * x.flip(0))
    expected = lam * smoothed(y, 4, 0.1) + (1 - lam) * smoothed(y.flip(0), 4, 0.1)
    torch.testing.assert_close(target, expected)
    logits = torch.randn(4, 4)
    soft_ce = -(target * logits.log_softmax(-1)).sum(-1).mean()
    torch.testing.assert_close(task.loss(logits, target), soft_ce)  # no second smoothing


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
def test_training_step_with_mixup_logs_no_accuracy() -> None:
    task = ImageClassifier(TinyNet(), num_classes=4, cutmix_alpha=1.0)
    batch = {"image": torch.randn(4, 3, 8, 8), "label": torch.tensor([0, 1, 2, 3]), "skipped": torch.tensor(0)}
    loss = task.training_step(batch, 0)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert task.train_top1.update_count == 0  # a mixed batch has no hard labels to score
    plain = ImageClassifier(TinyNet(), num_classes=4, label_smoothing=0.1)
    logits = plain(batch["image"])
    torch.testing.assert_close(
        plain.loss(logits, batch["label"]), F.cross_entropy(logits, batch["label"], label_smoothing=0.1)
    )
    plain.training_step(batch, 0)
    assert plain.train_top1.update_count == 1


def test_arguments_are_checked_and_saved() -> None:
    task = ImageClassifier("resnet18_nl", pretrained=False, num_classes=3, mixup_alpha=0.2, cutmix_alpha=1.0, lr=0.01)
    assert task.model.num_classes == 3 and task.data_config.crop_size == (224, 224)
    assert task.hparams.mixup_alpha == 0.2 and task.hparams.cutmix_alpha == 1.0 and task.hparams.model == "resnet18_nl"
    with pytest.raises(ValueError, match="even batch size; got 3"):
        task.mix_batch(torch.randn(3, 3, 8, 8), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="mixup/cutmix need single-label data"):
        ImageClassifier(TinyNet(), num_classes=4, mixup_alpha=0.2, multi_label=True)
    with pytest.raises(ValueError, match="cutmix_alpha must be >= 0"):
        ImageClassifier(TinyNet(), num_classes=4, cutmix_alpha=-1.0)
    with pytest.raises(ValueError, match=r"mixup_prob must be in \[0, 1\]"):
        ImageClassifier(TinyNet(), num_classes=4, mixup_alpha=0.2, mixup_prob=2.0)

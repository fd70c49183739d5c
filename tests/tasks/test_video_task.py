from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from nlzoo.data import SkippedVideoWarning, VideoDataModule
from nlzoo.models import ResNet3d
from nlzoo.tasks import ImageClassifier, VideoClassifier

from .tiny import TINY_DATA_CONFIG, tiny_data, trainer_args


def _weights(task: VideoClassifier) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in task.model.state_dict().items()}


def test_fit_then_multi_view_test_matches_a_manual_evaluation(synthetic_root: str) -> None:
    data = tiny_data(synthetic_root)
    task = VideoClassifier(
        "c2d_r18", pretrained=False, num_classes=data.num_classes, label_names=data.label_names, lr=0.05
    )
    before = _weights(task)
    trainer = pl.Trainer(max_epochs=1, **trainer_args())
    trainer.fit(task, data)
    assert not torch.equal(before["fc.weight"], task.model.fc.weight)
    metrics = trainer.callback_metrics
    assert {"train/loss", "train/top1_epoch", "val/top1", "val/loss", "train/skipped"} <= set(metrics)
    assert metrics["val/videos"].item() == 4 and metrics["train/skipped"].item() == 0

    (result,) = trainer.test(task, data, verbose=False)
    assert result["test/videos"] == 5
    # The paper's protocol by hand: softmax of every view, averaged per video, argmax vs the label.
    task.eval()
    dataset = data.datasets["test"]
    correct = 0
    with torch.no_grad():
        for i in range(len(dataset)):
            sample = dataset[i]
            assert sample["video"].shape[0] == 6  # 2 clips x 3 crops
            probs = task.model(sample["video"]).softmax(-1).mean(0)
            correct += int(probs.argmax().item() == sample["label"][0].item())
    assert result["test/top1"] == pytest.approx(correct / len(dataset))
    assert task.model.nlzoo_config.label_names == ["different_colour", "same_colour"]


def test_unreadable_videos_are_skipped_and_counted_per_epoch(synthetic_root: str, tmp_path: Path, caplog) -> None:
    root = Path(synthetic_root)
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    for split in ("train", "val"):
        lines = [f"{root / line}" for line in (root / f"{split}.txt").read_text().splitlines()]
        lines.append(f"{tmp_path / 'broken.mp4'} 1")
        (tmp_path / f"{split}.txt").write_text("\n".join(lines) + "\n")
    data = VideoDataModule(
        str(tmp_path / "train.txt"),
        val=str(tmp_path / "val.txt"),
        label_names=["different_colour", "same_colour"],
        data_config=TINY_DATA_CONFIG,
        batch_size=3,
        num_workers=0,
    )
    task = VideoClassifier("c2d_r18", pretrained=False, num_classes=2)
    trainer = pl.Trainer(max_epochs=1, **trainer_args())
    with pytest.warns(SkippedVideoWarning, match="broken.mp4"):
        trainer.fit(task, data)
    assert trainer.callback_metrics["train/skipped"].item() >= 1  # 9 items, batches of 3: each visited once
    assert trainer.callback_metrics["val/skipped"].item() == 1
    assert trainer.callback_metrics["val/videos"].item() == 4  # the broken one is not scored
    # The end-of-epoch report names each skipped file and why.
    report = [r.getMessage() for r in caplog.records if "unreadable inputs" in r.getMessage()]
    assert any(m.startswith("val epoch 0: skipped 1 unreadable inputs") for m in report)
    assert all("broken.mp4: not a video FFmpeg can open" in m for m in report)


@pytest.mark.filterwarnings("ignore:Found .* module\\(s\\) in eval mode:UserWarning")
def test_frozen_bn_keeps_statistics_and_affine_parameters(synthetic_root: str) -> None:
    task = VideoClassifier("c2d_r18", pretrained=False, num_classes=2, freeze_bn=True, lr=0.1)
    before = _weights(task)
    trainer = pl.Trainer(max_steps=2, limit_val_batches=0, **trainer_args())
    trainer.fit(task, tiny_data(synthetic_root))
    after = task.model.state_dict()
    for name in ("bn1.running_mean", "bn1.weight", "layer1.0.bn2.bias", "layer3.0.downsample.1.running_var"):
        assert torch.equal(before[name], after[name]), name
    assert not torch.equal(before["layer1.0.conv1.weight"], after["layer1.0.conv1.weight"])
    optimised = {id(p) for g in trainer.optimizers[0].param_groups for p in g["params"]}
    assert id(task.model.bn1.weight) not in optimised
    task.train()
    assert not task.model.bn1.training and task.model.layer1[0].conv1.training


def test_injected_module_gets_a_new_head_and_stays_out_of_hparams() -> None:
    network = ResNet3d(18, temporal="c2d", num_classes=7)
    task = VideoClassifier(network, num_classes=3)
    assert task.model is network and network.fc.out_features == 3
    assert "model" not in task.hparams and task.data_config is None
    with pytest.raises(ValueError, match="registry names"):
        VideoClassifier(ResNet3d(18, temporal="c2d", num_classes=3), pretrained="kinetics400")


def test_multi_label_training_and_map(synthetic_root: str, tmp_path: Path) -> None:
    root = Path(synthetic_root)
    for split in ("train", "val"):
        videos = [line.split()[0] for line in (root / f"{split}.txt").read_text().splitlines()]
        labels = ["0", "1,2", "0,2", "2"]
        (tmp_path / f"{split}.txt").write_text("".join(f"{v} {labels[i % 4]}\n" for i, v in enumerate(videos)))
    data = VideoDataModule(
        str(tmp_path / "train.txt"),
        val=str(tmp_path / "val.txt"),
        root=synthetic_root,
        num_classes=3,
        multi_label=True,
        data_config=TINY_DATA_CONFIG,
        batch_size=4,
        num_workers=0,
    )
    task = VideoClassifier("c2d_r18", pretrained=False, num_classes=3, multi_label=True, view_reduction="max")
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=2, **trainer_args())
    trainer.fit(task, data)
    assert 0.0 <= trainer.callback_metrics["val/mAP"].item() <= 1.0
    assert torch.isfinite(trainer.callback_metrics["train/loss"])


def test_bf16_mixed_precision_step(synthetic_root: str) -> None:
    task = VideoClassifier(
        "c2d_r18_nl", pretrained=False, num_classes=2, optimizer="adamw", lr=1e-3, schedule="constant"
    )
    trainer = pl.Trainer(max_steps=1, limit_val_batches=1, precision="bf16-mixed", **trainer_args())
    trainer.fit(task, tiny_data(synthetic_root))
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
    assert task.model.fc.weight.dtype == torch.float32


def test_argument_errors() -> None:
    with pytest.raises(ValueError, match="label_smoothing applies to single-label"):
        VideoClassifier("c2d_r18", pretrained=False, num_classes=2, multi_label=True, label_smoothing=0.1)
    with pytest.raises(ValueError, match="3 label names for num_classes=2"):
        VideoClassifier("c2d_r18", pretrained=False, num_classes=2, label_names=["a", "b", "c"])
    with pytest.raises(KeyError, match="unknown model 'c2d_r19'"):
        VideoClassifier("c2d_r19", pretrained=False, num_classes=2)


def test_data_module_takes_the_data_config_from_the_task(synthetic_root: str) -> None:
    data = tiny_data(synthetic_root, data_config={"crop_size": [32, 32], "train_scale": [32, 36], "test_scale": 32})
    task = VideoClassifier("i3d_r18", pretrained=False, num_classes=2)
    trainer = pl.Trainer(max_steps=1, limit_val_batches=1, **trainer_args())
    trainer.fit(task, data)  # 8 frames every 8th come from i3d_r18's config, sizes from the overrides
    assert data.datasets["train"].config.num_frames == 8 and data.datasets["train"].config.sampling_rate == 8


def test_networks_train_channels_last_unless_asked_not_to() -> None:
    conv = VideoClassifier("c2d_r18", pretrained=False, num_classes=3).model.conv1.weight
    assert conv.is_contiguous(memory_format=torch.channels_last_3d) and not conv.is_contiguous()
    assert VideoClassifier(
        "c2d_r18", pretrained=False, num_classes=3, channels_last=False
    ).model.conv1.weight.is_contiguous()
    image = ImageClassifier("resnet18_nl_l2l3", pretrained=False, num_classes=3).model.conv1.weight
    assert image.is_contiguous(memory_format=torch.channels_last) and not image.is_contiguous()

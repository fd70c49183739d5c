from __future__ import annotations

import pytest
import torch

import nlzoo
from nlzoo.tasks import PoseEstimator
from nlzoo.tasks.pose import joints_mse_loss


def test_the_loss_is_simplebaselines_weighted_mse() -> None:
    pred, target = torch.rand(2, 3, 4, 5), torch.rand(2, 3, 4, 5)
    weight = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    w = weight[..., None, None]
    mse = torch.nn.functional.mse_loss
    expected = sum(0.5 * mse(pred[:, k] * w[:, k], target[:, k] * w[:, k]) for k in range(3)) / 3
    torch.testing.assert_close(joints_mse_loss(pred, target, weight), expected)
    changed = pred.clone()
    changed[0, 1] += 5  # an unlabelled joint does not count
    torch.testing.assert_close(joints_mse_loss(changed, target, weight), expected)


def test_a_model_can_be_named_or_injected() -> None:
    named = PoseEstimator("simplebaseline_r18", pretrained=False, model_args={"head_nonlocal_after": [0]})
    assert named.hparams.model == "simplebaseline_r18" and named.model.nlzoo_config.num_classes == 17
    injected = PoseEstimator(
        nlzoo.load("simplebaseline_r18", pretrained=False, num_classes=5), num_joints=5, flip_test=False
    )
    assert "model" not in injected.hparams
    with pytest.raises(ValueError, match="predicts 17 joints but num_joints=5"):
        PoseEstimator(nlzoo.load("simplebaseline_r18", pretrained=False), num_joints=5)


def test_flip_test_needs_a_known_skeleton() -> None:
    task = PoseEstimator("simplebaseline_r18", pretrained=False, num_joints=5)
    batch = {"image": torch.randn(1, 3, 64, 64), "crop_to_image": torch.eye(2, 3)[None]}
    with pytest.raises(ValueError, match="flip-test needs the left/right joint pairs"):
        task.predict_keypoints(batch)
    task.hparams.flip_test = False
    assert task.eval().predict_keypoints(batch).shape == (1, 5, 3)


def test_the_schedule_is_adam_with_step_decay() -> None:
    task = PoseEstimator("simplebaseline_r18", pretrained=False, lr=1e-3, lr_steps=[2, 4], lr_factor=0.1)
    config = task.configure_optimizers()
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    assert isinstance(optimizer, torch.optim.Adam) and config["lr_scheduler"]["interval"] == "epoch"
    seen = []
    for _ in range(5):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen == pytest.approx([1e-3, 1e-3, 1e-4, 1e-4, 1e-5])


def test_pose_networks_train_channels_last_unless_asked_not_to() -> None:
    weight = PoseEstimator("simplebaseline_r18", pretrained=False).model.backbone.conv1.weight
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    plain = PoseEstimator("simplebaseline_r18", pretrained=False, channels_last=False)
    assert plain.model.backbone.conv1.weight.is_contiguous()

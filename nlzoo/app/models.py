"""The served models: each loaded once at start-up, kept in memory and shared by every request."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from ..errors import ConfigError
from ..zoo.config import ModelConfig

# Task -> the page's tab for it.
TAB_OF_TASK = {"video-classification": "video", "image-classification": "image", "pose-estimation": "image"}


@dataclass(frozen=True)
class ServedModel:
    """A model ready for requests, with what the page shows about it.

    Attributes:
        name: what the user passed to ``--model`` (shown in the picker).
        model: the network in eval mode, on its device.
        config: its :class:`~nlzoo.zoo.ModelConfig` (task, data config, labels, provenance).
        blocks: names of its non-local blocks, in order (the block picker's choices).
    """

    name: str
    model: nn.Module
    config: ModelConfig
    blocks: tuple[str, ...]

    @property
    def tab(self) -> str:
        return TAB_OF_TASK[self.config.task]

    def card_facts(self) -> str:
        """Markdown: architecture, task, weights (dataset, reported accuracy, license) and test views."""
        cfg, prov = self.config, self.config.provenance
        metrics = prov.get("metrics") or {}
        accuracy = ", ".join(f"{k} {v}" for k, v in metrics.items()) or "none reported"
        data = cfg.data_config
        lines = [
            f"**{self.name}**: `{cfg.architecture}`, {cfg.task}, {cfg.num_classes} classes, "
            f"{len(self.blocks)} non-local block(s)",
            f"- weights: {prov.get('tag') or cfg.pretrained_tag or 'a local model'}; "
            f"dataset: {prov.get('dataset', 'not recorded')}; reported accuracy: {accuracy}; "
            f"license: {prov.get('license', 'not recorded')}",
        ]
        if data.num_frames:
            lines.append(
                f"- input: clips of {data.num_frames} frames every {data.sampling_rate}, "
                f"{data.crop_size[0]}x{data.crop_size[1]} crops; the model's own test views: "
                f"{data.test_clips or 1}x{data.test_crops or 1}"
            )
        else:
            lines.append(f"- input: {data.crop_size[0]}x{data.crop_size[1]} centre crop")
        if "classifier" in prov:
            lines.append(f"- classifier: {prov['classifier']}")
        return "\n".join(lines)


def load_served(names: Sequence[str], *, device: str) -> dict[str, ServedModel]:
    """Load every model once, in order (the first is each tab's default).

    Raises:
        ConfigError: no names, a name given twice, or a task the page cannot show.
    """
    from ..inference.inputs import load_for_inference
    from ..layers import nonlocal_blocks

    if not names:
        raise ConfigError("serve needs at least one model: --model NAME_OR_DIR (repeat for several)")
    if len(set(names)) != len(names):
        raise ConfigError(f"a model is named twice in {list(names)}; give each once")
    served = {}
    for name in names:
        model = load_for_inference(name, device=device)
        config: ModelConfig = model.nlzoo_config
        if config.task not in TAB_OF_TASK:
            raise ConfigError(
                f"{name} is a {config.task} model; the page shows {', '.join(sorted(TAB_OF_TASK))} models"
            )
        blocks = tuple(block_name for block_name, _ in nonlocal_blocks(model))
        served[name] = ServedModel(name, model, config, blocks)
    return served

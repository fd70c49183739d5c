"""Model cards (the ``README.md`` of a model folder / Hub repo), generated from a model's config."""

from __future__ import annotations

from .config import ModelConfig

CITATION = """@inproceedings{wang2018nonlocal,
  title     = {Non-local Neural Networks},
  author    = {Wang, Xiaolong and Girshick, Ross and Gupta, Abhinav and He, Kaiming},
  booktitle = {Proceedings of the IEEE Conference on Computer Vision and Pattern Recognition (CVPR)},
  year      = {2018}
}"""


def render_model_card(cfg: ModelConfig) -> str:
    """A Hub model card: YAML front matter (library, tags, license, datasets) and a short body."""
    prov = cfg.provenance
    front = ["---", "library_name: nlzoo", "tags:", f"- {cfg.task}", "- non-local", "- nlzoo"]
    if prov.get("license"):
        front.append(f"license: {prov['license']}")
    if prov.get("dataset"):
        front += ["datasets:", f"- {prov['dataset']}"]
    front.append("---")
    body = [
        f"# {cfg.architecture}" + (f".{cfg.pretrained_tag}" if cfg.pretrained_tag else ""),
        "",
        f"A {cfg.task} model from nlzoo: `{cfg.architecture}` with {cfg.num_classes} classes.",
        "",
        "## How to load",
        "",
        "```python",
        "import nlzoo",
        'model = nlzoo.load("hf-hub:<this repo>")',
        "```",
        "",
        "## Citation",
        "",
        "```bibtex",
        CITATION,
        "```",
        "",
    ]
    return "\n".join([*front, "", *body])

"""Loading a cached model: ``nlzoo.load`` of a local folder and of ``hf-hub:`` from a warm cache, vs torch.load.

Measured in one run, median of ``--repeats`` after one warm-up (the files stay in the OS page cache):

* ``torch.load``: ``torch.load(weights_only=True)`` of the same state dict saved as a ``.pt`` file; the
  reference: reading the tensors, with no model at all;
* ``folder``: ``nlzoo.load("<folder>")``: config.json, model.safetensors, the model built on the meta
  device adopting the tensors;
* ``hf-hub``: ``nlzoo.load("hf-hub:org/name@<commit>")`` from a warm huggingface_hub cache, including the
  sha256 check of the weights against config.json. The cache is laid out here the way huggingface_hub
  writes it (``models--org--name/{blobs,refs,snapshots}``) and read with ``HF_HUB_OFFLINE=1``, so no
  network is involved (a pinned commit never makes a request on a cache hit anyway);
* ``build+copy``: what loading did before the meta-device path: build with random init, then copy the
  weights in with the strict loader (for the ratio it saves).

    python benchmarks/load.py [--model i3d_r50_nl] [--repeats 7] [--quick]

``--quick`` uses i3d_r18_nl and 3 repeats (a smoke test). Target: a cached R50 loads in < 1 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from timing import median_seconds

REPO = "nlzoo-bench/model"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def warm_hub_cache(folder: Path, hf_home: Path) -> None:
    """Put ``folder`` into the cache as huggingface_hub stores a download of ``REPO`` at ``COMMIT``."""
    from nlzoo.zoo.folder import file_sha256

    repo = hf_home / "hub" / f"models--{REPO.replace('/', '--')}"
    snapshot = repo / "snapshots" / COMMIT
    for path in (repo / "blobs", repo / "refs", snapshot):
        path.mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    for name in ("config.json", "model.safetensors"):
        blob = repo / "blobs" / file_sha256(folder / name)  # the etag: an LFS file's sha256
        shutil.copyfile(folder / name, blob)
        (snapshot / name).symlink_to(os.path.relpath(blob, snapshot))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="i3d_r50_nl")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="i3d_r18_nl, 3 repeats: a smoke test")
    args = parser.parse_args()
    name, repeats = ("i3d_r18_nl", 3) if args.quick else (args.model, args.repeats)
    with tempfile.TemporaryDirectory(prefix="nlzoo-bench-") as tmp:
        # huggingface_hub reads these when first imported (nlzoo imports it through timm), so set them first.
        hf_home = Path(tmp) / "hf_home"
        os.environ.update(HF_HOME=str(hf_home), HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1")
        import safetensors.torch
        import torch

        import nlzoo
        from nlzoo.zoo import get_entry, load_weights

        folder = nlzoo.save_pretrained(nlzoo.load(name, pretrained=False), Path(tmp) / "folder")
        state_dict = safetensors.torch.load_file(folder / "model.safetensors")
        torch.save(state_dict, Path(tmp) / "weights.pt")
        warm_hub_cache(folder, hf_home)
        entry, cfg = get_entry(name), nlzoo.load(folder).nlzoo_config

        def build_and_copy() -> None:
            model = entry.builder(**cfg.model_args, num_classes=cfg.num_classes)
            load_weights(model, safetensors.torch.load_file(folder / "model.safetensors"), classifier="fc")

        hub_model = nlzoo.load(f"hf-hub:{REPO}@{COMMIT}")
        torch.testing.assert_close(hub_model.state_dict(), state_dict, rtol=0, atol=0)
        cases = {
            "torch.load": lambda: torch.load(Path(tmp) / "weights.pt", weights_only=True),
            "folder": lambda: nlzoo.load(folder),
            "hf-hub": lambda: nlzoo.load(f"hf-hub:{REPO}@{COMMIT}"),
            "build+copy": build_and_copy,
        }
        times = {label: median_seconds(fn, repeats=repeats) for label, fn in cases.items()}
    size_mb = sum(t.numel() * t.element_size() for t in state_dict.values()) / 1e6
    print(f"{name}: {size_mb:.0f} MB of weights, median of {repeats}, {torch.get_num_threads()} threads")
    print(f"{'case':<12}{'seconds':>10}{'x torch.load':>14}")
    for label, seconds in times.items():
        print(f"{label:<12}{seconds:>10.3f}{seconds / times['torch.load']:>14.2f}")
    print(f"build+copy / folder: {times['build+copy'] / times['folder']:.1f}x (what the meta-device path saves)")
    print(f"target < 1 s for a cached model: folder {times['folder']:.3f} s, hf-hub {times['hf-hub']:.3f} s")


if __name__ == "__main__":
    main()

"""pytorchvideo hub ``.pyth`` checkpoints (``pytorchvideo/models/hub/resnet.py``: ``c2d_r50``, ``i3d_r50``).

Container: ``{"model_state": state_dict}`` (the hub loader reads ``checkpoint["model_state"]``). The net is
``Net(blocks=[stem, res2, MaxPool3d((2,1,1)), res3, res4, res5, head])`` built by ``create_resnet``:
``blocks.0.{conv,norm}``, ``blocks.{1,3,4,5}.res_blocks.{i}.branch2.{conv,norm}_{a,b,c}``,
``branch1_{conv,norm}`` and ``blocks.6.proj``. Its stem, pools, kernels and head are those of nlzoo's
C2D/I3D (stem max-pool (1,3,3)/(1,2,2) padded (0,1,1); the head's fixed (4,7,7) average pool equals the
global pool at 8x224x224), so no architecture setting changes; no hub model has non-local blocks.
"""

from __future__ import annotations

from .base import BN_ENTRY, BRANCH_CONV, SourceFormat

_STAGE = {"1": "layer1", "3": "layer2", "4": "layer3", "5": "layer4"}  # blocks.2 is the parameter-free pool

PYTORCHVIDEO = SourceFormat(
    name="pytorchvideo",
    description="a pytorchvideo hub .pyth (weights under 'model_state', keys 'blocks.N...')",
    container="torch",
    weights_key="model_state",
    signature=r"blocks\.0\.conv\.weight",
    rules=(
        (r"blocks\.0\.conv\.weight", lambda m: "conv1.weight"),
        (rf"blocks\.0\.norm\.{BN_ENTRY}", lambda m: f"bn1.{m[1]}"),
        (
            r"blocks\.([1345])\.res_blocks\.(\d+)\.branch2\.conv_([abc])\.weight",
            lambda m: f"{_STAGE[m[1]]}.{m[2]}.conv{BRANCH_CONV[m[3]]}.weight",
        ),
        (
            rf"blocks\.([1345])\.res_blocks\.(\d+)\.branch2\.norm_([abc])\.{BN_ENTRY}",
            lambda m: f"{_STAGE[m[1]]}.{m[2]}.bn{BRANCH_CONV[m[3]]}.{m[4]}",
        ),
        (
            r"blocks\.([1345])\.res_blocks\.(\d+)\.branch1_conv\.weight",
            lambda m: f"{_STAGE[m[1]]}.{m[2]}.downsample.0.weight",
        ),
        (
            rf"blocks\.([1345])\.res_blocks\.(\d+)\.branch1_norm\.{BN_ENTRY}",
            lambda m: f"{_STAGE[m[1]]}.{m[2]}.downsample.1.{m[3]}",
        ),
        (r"blocks\.6\.proj\.(weight|bias)", lambda m: f"fc.{m[1]}"),
    ),
    zero_fill=("*.num_batches_tracked",),
)

"""``nlzoo export-onnx``: a zoo network as an ONNX file (or a torch.export program), checked against PyTorch."""

from __future__ import annotations

import argparse

HELP = "export a model to ONNX (dynamo exporter, opset 18) or torch.export (.pt2), checked in onnxruntime"

EPILOG = """examples:
  nlzoo export-onnx i3d_r50_nl.kinetics400 i3d.onnx --dynamic-batch
  nlzoo export-onnx ./my_model model.onnx --frames 16 --size 160 160
  nlzoo export-onnx r3d_18_nl.kinetics400 r3d.pt2          (a .pt2 name saves a torch.export program)
The clip / image size is fixed in the file (default: the model's data config); --dynamic-batch makes the
batch symbolic. The file is checked with onnx.checker and run in onnxruntime on a random input; the export
fails if the largest difference from PyTorch exceeds 1e-4 of the output's scale."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .argtypes import positive_int

    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("model", metavar="NAME_OR_DIR", help="model folder, hf-hub:org/repo, arch.tag or arch")
    parser.add_argument("out", metavar="OUT", help="the .onnx file to write (.pt2: a torch.export program)")
    parser.add_argument("--frames", type=int, help="clip length T (video models; default the data config's)")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="input size (default the crop size)")
    parser.add_argument("--dynamic-batch", action="store_true", help="a symbolic batch dimension")
    parser.add_argument("--opset", type=positive_int, default=None, help="ONNX opset (default 18)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..export import OPSET, export_input_shape, export_onnx, export_program
    from ..files import check_out_file
    from ..inference.inputs import load_for_inference
    from ..limits import check_limit

    check_out_file(args.out, flag="OUT")  # before the model loads and the export runs
    if args.size:
        check_limit("image_pixels", args.size[0] * args.size[1], what=f"--size {args.size[0]} {args.size[1]}")
    model = load_for_inference(args.model)
    shape = export_input_shape(model, frames=args.frames, size=args.size)
    if Path(args.out).suffix == ".pt2":
        _, report = export_program(model, args.out, input_shape=shape, dynamic_batch=args.dynamic_batch)
        kind = "torch.export program"
    else:
        report = export_onnx(
            model, args.out, input_shape=shape, dynamic_batch=args.dynamic_batch, opset=args.opset or OPSET
        )
        kind = f"ONNX opset {report.opset}, checked in onnxruntime"
    batch = "batch" if report.dynamic_batch else "1"
    print(
        f"wrote {report.path}: {kind}, input ({batch}, {', '.join(map(str, report.input_shape[1:]))}), "
        f"max relative difference from PyTorch {report.max_rel_diff:.1e}"
    )
    return 0

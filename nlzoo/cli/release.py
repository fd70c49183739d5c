"""``nlzoo release ORG``: convert every published checkpoint the zoo knows, verify it and publish it on the Hub."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "download, convert, verify and push the zoo's convertible tags to ORG/arch.tag on the Hugging Face Hub"

EPILOG = """examples:
  nlzoo release my-org --dry-run                  every convertible tag: download, convert, verify, write folders
  nlzoo release my-org --tags "i3d_r50*.kinetics400" "c2d_r50.*"
Each pushed tag is recorded (commit + model.safetensors sha256) in nlzoo/zoo/published.json and checkpoints.md
is regenerated: `nlzoo.load("arch.tag")` then loads nlzoo's Hub copy, pinned and checksummed. Commit both
files. One line per tag; exit code 2 if any tag failed (the others still run)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("org", metavar="ORG", help="Hub user or organisation; tag arch.tag goes to ORG/arch.tag")
    parser.add_argument(
        "--tags", nargs="+", default=[], metavar="PATTERN", help="fnmatch patterns on arch.tag (default: all)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="download, convert, verify and write the folders; push nothing"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("nlzoo-release"), metavar="DIR", help="where the Hub folders are written"
    )
    parser.add_argument("--token", help="Hub token (default: HF_TOKEN or the token saved by `hf auth login`)")
    parser.add_argument("--private", action="store_true", help="create new repos as private")
    parser.add_argument("--record", type=Path, metavar="PATH", help="published.json to update (default: the package's)")
    parser.add_argument(
        "--checkpoints-md", type=Path, metavar="PATH", help="checkpoints.md to regenerate (default: the checkout's)"
    )


def run(args: argparse.Namespace) -> int:
    from ..zoo import release as releasing

    def report(outcome: releasing.Outcome) -> None:
        print(outcome.line, flush=True)

    paths = {"record_path": args.record, "checkpoints_path": args.checkpoints_md}
    outcomes = releasing.release(
        args.org,
        patterns=args.tags,
        out_dir=args.out,
        dry_run=args.dry_run,
        token=args.token,
        private=args.private,
        report=report,
        raise_unexpected=args.traceback,
        **{key: value for key, value in paths.items() if value is not None},
    )
    counts = {status: sum(o.status == status for o in outcomes) for status in ("published", "unchanged", "dry-run")}
    failed = sum(o.status == "failed" for o in outcomes)
    done = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    print(f"{len(outcomes)} tags: {done or 'none done'}" + (f", {failed} failed" if failed else ""))
    if counts["published"]:
        print("commit nlzoo/zoo/published.json and checkpoints.md to make the releases the tags' sources")
    return 2 if failed else 0

"""``nlzoo push DIR REPO_ID``: publish a model folder on the Hugging Face Hub."""

from __future__ import annotations

import argparse

HELP = "upload a model folder (config.json, model.safetensors, README.md) to a Hugging Face Hub repo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "folder", metavar="DIR", help="model folder written by nlzoo.save_pretrained or `nlzoo convert`"
    )
    parser.add_argument("repo_id", metavar="REPO_ID", help="Hub repo 'org/name' (created if it does not exist)")
    parser.add_argument("--revision", help="branch to commit to (default: the repo's default branch)")
    parser.add_argument("--private", action="store_true", help="create the repo as private")
    parser.add_argument("--token", help="Hub token (default: HF_TOKEN or the token saved by `hf auth login`)")
    parser.add_argument("--message", default="Upload nlzoo model", help="commit message")
    parser.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing")


def run(args: argparse.Namespace) -> int:
    from ..zoo import push_to_hub

    info = push_to_hub(
        args.folder,
        args.repo_id,
        revision=args.revision,
        private=args.private,
        token=args.token,
        commit_message=args.message,
        create_pr=args.create_pr,
    )
    print(getattr(info, "pr_url", None) or getattr(info, "commit_url", info))
    print(f'load it with: nlzoo.load("hf-hub:{args.repo_id}@{getattr(info, "oid", "<commit>")}")')
    return 0

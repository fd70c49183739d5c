"""Start olah 0.5.4 (the local Hub-compatible server of the Hub tests) with two of its defects corrected.

Runs under olah's own interpreter (its venv, not nlzoo's), with olah-cli's arguments:
``python olah_launcher.py -c CONFIG --log-path DIR``. See ../shared/anchors/olah-notes.md.

1. A missing file or revision of a local mirror answers HTTP 401 "RepoNotFound", so huggingface_hub raises
   RepositoryNotFoundError. Here the HEAD probe (huggingface_hub always sends it before a GET) answers 404
   EntryNotFound / RevisionNotFound for a local mirror, as the real Hub does.
2. olah decodes every file of 121-149 bytes as UTF-8 to see whether it is a git-lfs pointer, so such a binary
   file crashes the request (HTTP 500). Here that probe decodes with errors="replace": a pointer is ASCII,
   so pointers are still recognised, and binary files are served as they are.
"""

from __future__ import annotations

import inspect
import sys
import textwrap

import gitdb
from olah import errors, server
from olah import server_file_routes as routes
from olah.mirror import repos
from olah.server_access import build_repo_ref
from olah.server_mirror import load_local_mirror_payload


def tolerate_binary_files_in_lfs_probe() -> None:
    for name in ("_get_path_info", "get_file_head", "get_file"):
        source = textwrap.dedent(inspect.getsource(getattr(repos.LocalMirrorRepo, name)))
        patched = source.replace('.decode("utf-8")', '.decode("utf-8", errors="replace")')
        if patched == source:
            raise RuntimeError(f"olah changed: LocalMirrorRepo.{name} has no LFS probe to patch")
        namespace: dict = {}
        exec(patched, vars(repos), namespace)  # the same function, compiled in olah's module namespace
        setattr(repos.LocalMirrorRepo, name, namespace[name])


def answer_404_for_missing_local_entries() -> None:
    original = routes.file_head_common

    async def file_head_common(app, repo_type, org, repo, commit, file_path, request):
        response = await original(app, repo_type, org, repo, commit, file_path, request)
        if response.status_code != 401:
            return response

        def not_found(local: repos.LocalMirrorRepo):
            try:
                local._git_repo.commit(commit)
            except (gitdb.exc.BadName, ValueError):
                return errors.error_revision_not_found(commit)
            return errors.error_entry_not_found()  # the commit exists, so the file is what is missing

        local = load_local_mirror_payload(app, build_repo_ref(repo_type, org, repo), not_found, app.state.logger)
        return local or response  # not a local mirror: keep olah's answer

    routes.file_head_common = file_head_common


if __name__ == "__main__":
    tolerate_binary_files_in_lfs_probe()
    answer_404_for_missing_local_entries()
    sys.argv[0] = "olah-cli"
    server.cli()

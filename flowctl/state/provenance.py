"""Run provenance: the pipeline file's hash, the git commit and whether the tree was dirty.

Asks the ``git`` executable (two short subprocesses) rather than importing gitpython, to keep
the run path's start-up lean. Outside a repository, or without git, the git fields are None.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping


def _git(folder: str, *args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "-C", folder, *args], capture_output=True, text=True, timeout=10,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def provenance(pipeline_path: str, file_sha256: str) -> Mapping[str, object]:
    """``pipeline_sha256``, ``git_commit`` (None outside git) and ``git_dirty`` (tracked changes)."""
    folder = os.path.dirname(os.path.abspath(pipeline_path))
    commit = _git(folder, "rev-parse", "--verify", "-q", "HEAD")
    dirty = None
    if commit is not None:
        status = _git(folder, "status", "--porcelain", "--untracked-files=no")
        dirty = bool(status.strip()) if status is not None else None
    return {"pipeline_sha256": file_sha256, "git_commit": commit.strip() if commit else None, "git_dirty": dirty}


__all__ = ["provenance"]

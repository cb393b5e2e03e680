"""Run provenance: the pipeline file's hash, the git commit and whether the tree was dirty.

The git part is ``flowctl.repo.status`` (one short ``git status``, no gitpython, to keep the
run path's start-up lean). Outside a repository, or without git, the git fields are None.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from flowctl.repo.status import work_tree_status


def provenance(pipeline_path: str, file_sha256: str) -> Mapping[str, object]:
    """``pipeline_sha256``, ``git_commit`` (None outside git) and ``git_dirty`` (tracked changes)."""
    status = work_tree_status(os.path.dirname(os.path.abspath(pipeline_path)))
    commit = status.commit if status is not None else None
    dirty = status.dirty if status is not None and commit is not None else None
    return {"pipeline_sha256": file_sha256, "git_commit": commit, "git_dirty": dirty}


__all__ = ["provenance"]

"""Pipelines as they were at a git revision.

``load_at`` reads a pipeline file at a commit (through ``flowctl.repo``'s ``Repository``, never
touching the work tree) and builds it with ``spec.load_pipeline``, errors naming ``REF:path``;
``pipeline_files`` lists the pipeline files a revision holds, as ``discover_pipelines`` finds
them in the work tree. Git access and release tags are ``flowctl.repo``'s; comparing is
``compare.py``'s.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from flowctl.errors import PipelineError
from flowctl.spec import PIPELINE_DIR, is_pipeline_file

if TYPE_CHECKING:
    from flowctl.repo.repository import Repository
    from flowctl.spec.model import Pipeline


def pipeline_files(repo: Repository, commit: str) -> tuple[str, ...]:
    """Pipeline files under ``pipelines/`` at ``commit``, relative to the root, sorted."""
    return tuple(p for p in repo.files_under(commit, PIPELINE_DIR) if is_pipeline_file(p.split("/")[1:]))


def load_at(repo: Repository, commit: str, path: str, label: str) -> Pipeline | None:
    """The pipeline at ``path`` as of ``commit`` (None if absent); PipelineError names ``label:path``."""
    text = repo.read(commit, path)
    if text is None:
        return None
    return load_text(os.path.join(repo.root, path), text, f"{label}:{path}")


def load_text(path: str, text: bytes, display_path: str) -> Pipeline:
    """Load pipeline ``text``; errors carry ``display_path`` and the text (for source lines)."""
    from flowctl.spec import load_pipeline

    try:
        return load_pipeline(path, text=text, display_path=display_path)
    except PipelineError as exc:
        raise exc.with_source(display_path, text.decode("utf-8", errors="replace")) from exc


__all__ = ["load_at", "load_text", "pipeline_files"]

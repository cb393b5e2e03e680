"""Semantic diff of pipelines, releases and runs at a git ref.

``changes`` (the records) ← ``compare`` (two ``Pipeline`` models) + ``impact``; ``gitsource``
loads pipelines at revisions (git itself and release tags are ``flowctl.repo``'s); ``project``
picks both sides of every pipeline;
``release`` tags versions and lists them; ``worktree`` checks a ref out for ``run --ref``;
``render`` turns a report into text, markdown, JSON or a changelog (the only module that formats).
"""

from __future__ import annotations

from flowctl.diff.changes import ChangeKind, DiffReport, PipelineDiff
from flowctl.diff.compare import diff_pipelines

__all__ = ["ChangeKind", "DiffReport", "PipelineDiff", "diff_pipelines"]

"""``flowctl diff`` for a project: pick the two sides of every pipeline and compare them.

The new side is the work tree (files on disk) or ``--to REF``; the old side is ``--against REF``
or, per pipeline, its latest release reachable from the new side (``<name>/vX.Y.Z``, else
repo-wide ``vX.Y.Z``, or ``--tag-pattern``). Pipelines are matched by path, then by name (a
moved file); files only on one side are whole-pipeline additions or removals. Raises
``GitError`` (no repo, unknown ref, no release tags) and ``PipelineError`` (either side invalid,
named ``REF:path``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from flowctl.diff.changes import DiffReport, PipelineDiff, Side
from flowctl.diff.compare import diff_pipelines
from flowctl.diff.gitsource import load_at, load_text, pipeline_files
from flowctl.errors import GitError, UsageError
from flowctl.repo.releases import TagFormat, has_release_tags, latest_release, release_history, released_names
from flowctl.repo.repository import Repository
from flowctl.spec.model import Pipeline

WORK_TREE = "work tree"


@dataclass(frozen=True, slots=True)
class _Loaded:
    path: str  # relative to the repository root
    pipeline: Pipeline


def discover(root: str) -> list[str]:
    """Pipeline files of the work tree (the discovery ``validate`` and ``schedule`` use)."""
    from flowctl.spec import discover_pipelines

    return [str(p) for p in discover_pipelines(root)]


def _load_new(repo: Repository, paths: Sequence[str], to: str | None) -> tuple[list[_Loaded], str, str | None]:
    """The new side: (pipelines, label, commit)."""
    if to is None:
        rels = [repo.relpath(p) for p in paths] if paths else [repo.relpath(p) for p in discover(repo.root)]
        loaded = []
        for rel in rels:
            full = os.path.join(repo.root, rel)
            try:
                with open(full, "rb") as fh:
                    text = fh.read()
            except FileNotFoundError:
                raise UsageError(f"{rel}: no such pipeline file in the work tree") from None
            loaded.append(_Loaded(rel, load_text(full, text, rel)))
        return loaded, WORK_TREE, None
    rev = repo.resolve(to)
    rels = [repo.relpath(p) for p in paths] if paths else list(pipeline_files(repo, rev.commit))
    loaded = []
    for rel in rels:
        pipeline = load_at(repo, rev.commit, rel, to)
        if pipeline is None:
            raise UsageError(f"{rel} does not exist at {to}")
        loaded.append(_Loaded(rel, pipeline))
    return loaded, to, rev.commit


def _load_all(repo: Repository, commit: str, label: str, cache: dict[tuple[str, str], Pipeline | None], rel: str) -> Pipeline | None:
    key = (commit, rel)
    if key not in cache:
        cache[key] = load_at(repo, commit, rel, label)
    return cache[key]


def _find_old(
    repo: Repository, commit: str, label: str, rel: str, name: str, cache: dict[tuple[str, str], Pipeline | None]
) -> tuple[str | None, Pipeline | None]:
    """The pipeline at ``commit`` for new-side file ``rel``: same path, else same name."""
    pipeline = _load_all(repo, commit, label, cache, rel)
    if pipeline is not None:
        return rel, pipeline
    for other in pipeline_files(repo, commit):
        candidate = _load_all(repo, commit, label, cache, other)
        if candidate is not None and candidate.name == name:
            return other, candidate
    return None, None


def diff_project(
    cwd: str | os.PathLike[str],
    paths: Sequence[str] = (),
    *,
    against: str | None = None,
    to: str | None = None,
    tag_format: str | None = None,
) -> DiffReport:
    """Compare every pipeline (or ``paths``) between its base and the work tree / ``to``."""
    with Repository(cwd) as repo:
        return _diff_project(repo, paths, against=against, to=to, tag_format=tag_format)


def _diff_project(
    repo: Repository, paths: Sequence[str], *, against: str | None, to: str | None, tag_format: str | None
) -> DiffReport:
    fmt = TagFormat(tag_format) if tag_format else None
    reach = to or "HEAD"
    repo.resolve(reach)
    base_rev = repo.resolve(against) if against is not None else None
    if base_rev is None and not has_release_tags(repo, fmt, reachable_from=reach):
        wanted = f"tags like {fmt.template!r}" if fmt else "release tags (<name>/vX.Y.Z or vX.Y.Z)"
        raise GitError(
            f"no {wanted} reachable from {reach}",
            hint="compare with --against REF (a branch or commit), or make a first release with flowctl release",
        )
    new_side, new_label, new_commit = _load_new(repo, paths, to)
    cache: dict[tuple[str, str], Pipeline | None] = {}
    diffs: list[PipelineDiff] = []
    matched_old: set[tuple[str, str]] = set()
    for item in new_side:
        if base_rev is not None:
            old_label, old_commit = against or "", base_rev.commit
        else:
            release = latest_release(repo, item.pipeline.name, fmt, reachable_from=reach)
            if release is None:
                diffs.append(
                    diff_pipelines(
                        None,
                        item.pipeline,
                        old_side=Side("(no release)", None),
                        new_side=Side(new_label, item.path, new_commit),
                    )
                )
                continue
            old_label, old_commit = release.tag, release.commit
        old_path, old = _find_old(repo, old_commit, old_label, item.path, item.pipeline.name, cache)
        if old_path is not None:
            matched_old.add((old_commit, old_path))
        diffs.append(
            diff_pipelines(
                old,
                item.pipeline,
                old_side=Side(old_label, old_path, old_commit),
                new_side=Side(new_label, item.path, new_commit),
            )
        )
    if not paths:
        diffs.extend(_removed(repo, base_rev.commit if base_rev else None, against, fmt, reach, new_side, new_label, matched_old, cache))
    return DiffReport(tuple(diffs))


def _removed(
    repo: Repository,
    base_commit: str | None,
    against: str | None,
    fmt: TagFormat | None,
    reach: str,
    new_side: list[_Loaded],
    new_label: str,
    matched: set[tuple[str, str]],
    cache: dict[tuple[str, str], Pipeline | None],
) -> list[PipelineDiff]:
    """Pipelines present at the base but gone from the new side."""
    names = {item.pipeline.name for item in new_side}
    bases: list[tuple[str, str]] = []  # (label, commit)
    if base_commit is not None:
        bases.append((against or "", base_commit))
    else:
        for name in sorted(released_names(repo, fmt, reachable_from=reach) - names):
            release = latest_release(repo, name, fmt, reachable_from=reach)
            if release is not None:
                bases.append((release.tag, release.commit))
        if fmt is None or not fmt.per_pipeline:
            history = release_history(repo, "", fmt if fmt else TagFormat("v{version}"), reachable_from=reach)
            if history:
                bases.append((history[-1].tag, history[-1].commit))
    out: list[PipelineDiff] = []
    seen: set[str] = set()
    for label, commit in bases:
        for rel in pipeline_files(repo, commit):
            if (commit, rel) in matched:
                continue
            old = _load_all(repo, commit, label, cache, rel)
            if old is None or old.name in names or old.name in seen:
                continue
            seen.add(old.name)
            out.append(diff_pipelines(old, None, old_side=Side(label, rel, commit), new_side=Side(new_label, None)))
    return out


__all__ = ["WORK_TREE", "diff_project", "discover"]

"""Releases: tag a pipeline's next version, and list the releases at which it exists.

``make_release`` checks the work tree is clean and the pipeline valid (as committed at HEAD),
finds the last release in the tag scheme the repository uses (``flowctl.repo.releases``), bumps its
version, diffs the two and creates the annotated tag whose message is the changelog-style
summary (``summarize`` renders it: the core does not format text). No file is written.
``release_history`` is ``flowctl versions``: every release, under either scheme, at which the
pipeline exists, with its diff against the release before.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable
from dataclasses import dataclass

from flowctl.diff.changes import PipelineDiff, Side
from flowctl.diff.compare import diff_pipelines
from flowctl.diff.gitsource import load_at, load_text, pipeline_files
from flowctl.errors import GitError, PipelineError, UsageError
from flowctl.repo import releases
from flowctl.repo.releases import ZERO, Release, TagFormat, Version, tag_scheme
from flowctl.repo.repository import Repository
from flowctl.spec.model import Pipeline

BUMPS = ("major", "minor", "patch")


@dataclass(frozen=True, slots=True)
class ReleaseResult:
    tag: str
    version: Version
    previous: Release | None
    commit: str
    diff: PipelineDiff
    message: str
    created: bool  # False with dry_run


def make_release(
    cwd: str | os.PathLike[str],
    path: str,
    bump: str,
    *,
    summarize: Callable[[PipelineDiff, str], str],
    tag_format: str | None = None,
    dry_run: bool = False,
) -> ReleaseResult:
    """Tag HEAD as the next version of the pipeline in ``path``.

    The tag follows ``tag_format`` when given, else the scheme the repository's tags already
    use (``releases.tag_scheme``). Raises GitError (not a repo, dirty tree, pipeline not
    committed, nothing changed, tag exists), PipelineError (invalid pipeline) or UsageError (bad
    --bump or --tag-pattern, or release tags in both schemes and no --tag-pattern).
    """
    if bump not in BUMPS:
        raise UsageError(f"--bump {bump!r} is not one of: {', '.join(BUMPS)}")
    with Repository(cwd) as repo:
        rel = repo.relpath(path)
        head = repo.resolve("HEAD")
        if repo.is_dirty():
            raise GitError(
                "the work tree has uncommitted changes",
                hint="commit or stash them first: a release tags what is committed",
            )
        pipeline = load_at(repo, head.commit, rel, "HEAD")
        if pipeline is None:
            raise GitError(f"{rel} is not committed at HEAD", hint=f"git add {rel} && git commit")
        fmt = tag_scheme(repo, TagFormat(tag_format) if tag_format else None)
        previous = releases.latest_release(repo, pipeline.name, fmt)
        old: Pipeline | None = None
        old_path: str | None = None
        if previous is not None:
            if previous.commit == head.commit:
                raise GitError(f"HEAD is already released as {previous.tag}", hint="commit a change first")
            old_path, old = _at_release(repo, previous, rel, pipeline.name)
        diff = diff_pipelines(
            old,
            pipeline,
            old_side=Side(previous.tag if previous else "(no release)", old_path, previous.commit if previous else None),
            new_side=Side("HEAD", rel, head.commit),
        )
        if previous is not None and not diff.changed:
            raise GitError(
                f"{pipeline.name} has not changed since {previous.tag}",
                hint="there is nothing to release; `flowctl diff` shows what changed",
            )
        version = (previous.version if previous else ZERO).bump(bump)
        tag = fmt.tag(pipeline.name, version)
        since = f" (since {previous.tag})" if previous else " (first release)"
        message = summarize(diff, f"{pipeline.name} {version}{since}")
        if not dry_run:
            repo.create_tag(tag, head.commit, message)
        return ReleaseResult(tag, version, previous, head.commit, diff, message, created=not dry_run)


def _at_release(repo: Repository, release: Release, rel: str, name: str) -> tuple[str | None, Pipeline | None]:
    """The pipeline as released: the same path, else the file with the same name."""
    pipeline = load_at(repo, release.commit, rel, release.tag)
    if pipeline is not None:
        return rel, pipeline
    for other in pipeline_files(repo, release.commit):
        try:
            candidate = load_at(repo, release.commit, other, release.tag)
        except PipelineError:
            continue
        if candidate is not None and candidate.name == name:
            return other, candidate
    return None, None


@dataclass(frozen=True, slots=True)
class VersionEntry:
    """One release at which the pipeline exists, compared with the release before it."""

    release: Release
    date: str  # ISO date of the tagged commit
    diff: PipelineDiff | None  # None: the pipeline was invalid at this release
    error: str | None = None

    @property
    def changed(self) -> bool:
        """The pipeline differs from the release before (or is new, or could not be read)."""
        return self.diff is None or self.diff.changed


def release_history(cwd: str | os.PathLike[str], path: str, *, tag_format: str | None = None) -> list[VersionEntry]:
    """Every release (oldest first) at which the pipeline in ``path`` exists, each compared
    with the release before it: under either tag scheme unless ``tag_format`` names one.

    A release where it is absent is left out, and makes the next one "new". The pipeline's name
    comes from the work tree file (PipelineError if it is invalid). Raises GitError outside a
    repository.
    """
    with Repository(cwd) as repo:
        rel = repo.relpath(path)
        try:
            with open(os.path.join(repo.root, rel), "rb") as fh:
                current = load_text(os.path.join(repo.root, rel), fh.read(), rel)
        except FileNotFoundError:
            raise UsageError(f"{path}: no such pipeline file") from None
        fmt = TagFormat(tag_format) if tag_format else None
        entries: list[VersionEntry] = []
        before: tuple[Side, Pipeline | None] = (Side("(none)", None), None)
        for release in releases.release_history(repo, current.name, fmt, reachable_from=None):
            date = _dt.datetime.fromtimestamp(repo.commit_time(release.commit), _dt.UTC)
            try:
                found_path, pipeline = _at_release(repo, release, rel, current.name)
            except PipelineError as exc:
                entries.append(VersionEntry(release, date.date().isoformat(), None, exc.message))
                continue  # the next release is compared with the last one that could be read
            side = Side(release.tag, found_path, release.commit)
            if pipeline is None:  # absent here: the next release where it exists is "new"
                before = (side, None)
                continue
            diff = diff_pipelines(before[1], pipeline, old_side=before[0], new_side=side)
            before = (side, pipeline)
            entries.append(VersionEntry(release, date.date().isoformat(), diff))
        return entries


__all__ = ["BUMPS", "ReleaseResult", "VersionEntry", "make_release", "release_history"]

"""Release tags: the two naming schemes, and a pipeline's releases in the order history made them.

A release is a tag ``<name>/vX.Y.Z`` (per pipeline) or ``vX.Y.Z`` (repo-wide), read together,
or a ``TagFormat`` given with ``--tag-pattern``. Here because ``diff``/``release``/``versions``
and ``run --ref latest-release`` (with ``schedule install --ref latest-release``, which checks
the same lookup) all need it and may not import each other. Tags themselves are read through
``Repository``; what changed between releases is ``diff``'s.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from flowctl.errors import GitError, UsageError
from flowctl.repo.repository import Repository

#: ``--ref latest-release``: the newest release tag of the pipeline, looked up at each run.
LATEST_RELEASE = "latest-release"


@dataclass(frozen=True, slots=True, order=True)
class Version:
    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    def bump(self, part: str) -> Version:
        """The next version: ``part`` is major, minor or patch (UsageError otherwise)."""
        if part == "major":
            return Version(self.major + 1, 0, 0)
        if part == "minor":
            return Version(self.major, self.minor + 1, 0)
        if part == "patch":
            return Version(self.major, self.minor, self.patch + 1)
        raise UsageError(f"unknown version part {part!r}", hint="use --bump major, minor or patch")


ZERO = Version(0, 0, 0)


@dataclass(frozen=True, slots=True)
class TagFormat:
    """A tag name template with ``{name}`` (the pipeline name) and ``{version}`` (X.Y.Z)."""

    template: str

    def __post_init__(self) -> None:
        if self.template.count("{version}") != 1:
            raise UsageError(
                f"tag format {self.template!r} must contain {{version}} exactly once",
                hint="e.g. --tag-pattern '{name}/v{version}' or 'release-{version}'",
            )
        try:
            self.template.format(name="x", version="1.0.0")
        except (KeyError, IndexError, ValueError) as exc:
            raise UsageError(
                f"tag format {self.template!r} may use only {{name}} and {{version}}: {exc}"
            ) from None

    def tag(self, name: str, version: Version) -> str:
        return self.template.format(name=name, version=version)

    def match(self, name: str, tag: str) -> Version | None:
        """The version in ``tag`` when it follows this format for pipeline ``name``."""
        pattern = re.escape(self.template).replace(r"\{name\}", re.escape(name))
        pattern = pattern.replace(r"\{version\}", r"(\d+)\.(\d+)\.(\d+)")
        m = re.fullmatch(pattern, tag)
        return Version(int(m[1]), int(m[2]), int(m[3])) if m else None

    @property
    def per_pipeline(self) -> bool:
        return "{name}" in self.template


PER_PIPELINE = TagFormat("{name}/v{version}")
REPO_WIDE = TagFormat("v{version}")


@dataclass(frozen=True, slots=True)
class Release:
    tag: str
    version: Version
    commit: str


def releases(repo: Repository, name: str, fmt: TagFormat, *, reachable_from: str | None = "HEAD") -> list[Release]:
    """Releases of ``name`` in ``fmt``, oldest first (see ``_history_order``)."""
    found = []
    for tag in repo.tags(merged=reachable_from):
        version = fmt.match(name, tag.name)
        if version is not None:
            found.append(Release(tag.name, version, tag.commit))
    return _history_order(repo, found)


def release_history(
    repo: Repository, name: str, fmt: TagFormat | None, *, reachable_from: str | None = "HEAD"
) -> list[Release]:
    """Releases in ``fmt``; without one, under either scheme (``<name>/vX.Y.Z`` and repo-wide
    ``vX.Y.Z`` tags together), oldest first."""
    if fmt is not None:
        return releases(repo, name, fmt, reachable_from=reachable_from)
    both = releases(repo, name, PER_PIPELINE, reachable_from=reachable_from)
    both += releases(repo, name, REPO_WIDE, reachable_from=reachable_from)
    return _history_order(repo, both)


def latest_release(
    repo: Repository, name: str, fmt: TagFormat | None = None, *, reachable_from: str = "HEAD"
) -> Release | None:
    history = release_history(repo, name, fmt, reachable_from=reachable_from)
    return history[-1] if history else None


def latest_release_tag(repo: Repository, name: str, pipeline: str | os.PathLike[str]) -> str:
    """The newest release tag of pipeline ``name`` reachable from HEAD (what ``--ref
    latest-release`` runs). Raises GitError when there is none."""
    release = latest_release(repo, name)
    if release is None:
        raise GitError(
            f"--ref {LATEST_RELEASE}: no release tags for {name} ({name}/vX.Y.Z or vX.Y.Z) reachable from HEAD",
            hint=f"create one with `flowctl release {os.fspath(pipeline)} --bump patch`",
        )
    return release.tag


def tag_scheme(repo: Repository, fmt: TagFormat | None) -> TagFormat:
    """The format a new release tag takes: ``fmt`` when given, else the scheme the repository's
    tags already use (per-pipeline when it has none). UsageError when it uses both, naming the
    option that picks one (issue 13)."""
    if fmt is not None:
        return fmt
    per_pipeline = sorted(released_names(repo, None, reachable_from=None))
    repo_wide = [t.name for t in repo.tags() if REPO_WIDE.match("", t.name)]
    if per_pipeline and repo_wide:
        example = next(t.name for t in repo.tags() if PER_PIPELINE.match(per_pipeline[0], t.name))
        raise UsageError(
            f"this repository has release tags in both schemes: per pipeline (e.g. {example}) "
            f"and repo-wide (e.g. {repo_wide[0]}), so the next tag's name is ambiguous",
            hint="pick one with --tag-pattern '{name}/v{version}' or --tag-pattern 'v{version}'",
        )
    return REPO_WIDE if repo_wide else PER_PIPELINE


def has_release_tags(repo: Repository, fmt: TagFormat | None, *, reachable_from: str = "HEAD") -> bool:
    """Whether any reachable tag is a release (of any pipeline) in ``fmt`` or the defaults."""
    formats = [fmt] if fmt is not None else [PER_PIPELINE, REPO_WIDE]
    if any(f.per_pipeline for f in formats) and released_names(repo, fmt, reachable_from=reachable_from):
        return True
    repo_wide = [f for f in formats if not f.per_pipeline]
    return any(f.match("", t.name) for t in repo.tags(merged=reachable_from) for f in repo_wide)


def released_names(repo: Repository, fmt: TagFormat | None, *, reachable_from: str | None = "HEAD") -> set[str]:
    """Pipeline names that have per-pipeline release tags."""
    f = fmt or PER_PIPELINE
    if not f.per_pipeline:
        return set()
    pattern = re.escape(f.template).replace(r"\{name\}", r"(?P<name>[a-z0-9][a-z0-9_-]*)")
    pattern = pattern.replace(r"\{version\}", r"\d+\.\d+\.\d+")
    return {m["name"] for t in repo.tags(merged=reachable_from) if (m := re.fullmatch(pattern, t.name))}


def _history_order(repo: Repository, found: list[Release]) -> list[Release]:
    """``found`` in the order history made them: a release comes after the releases of its
    ancestors (``git rev-list --date-order``), so two schemes interleave correctly; tags of one
    commit by version, a per-pipeline tag after a repo-wide one."""
    position = repo.history_positions(frozenset(r.commit for r in found))
    return sorted(found, key=lambda r: (position.get(r.commit, -1), r.version, "/" in r.tag, r.tag))


__all__ = [
    "LATEST_RELEASE",
    "PER_PIPELINE",
    "REPO_WIDE",
    "ZERO",
    "Release",
    "TagFormat",
    "Version",
    "has_release_tags",
    "latest_release",
    "latest_release_tag",
    "release_history",
    "released_names",
    "releases",
    "tag_scheme",
]

"""Pipelines as they were at a git revision, and release tags (through gitpython).

Owns: opening the repository (``GitError`` outside one), resolving refs to commits, release tags
(two schemes, ``<name>/vX.Y.Z`` per pipeline and repo-wide ``vX.Y.Z``, read together in history
order, or a ``TagFormat`` given with ``--tag-pattern``), which scheme a new tag continues,
reading a file at a revision without touching the work tree, listing the pipeline files of a
revision, creating annotated tags, and the linked worktrees of ``run --ref``. Loading the text
into a ``Pipeline`` is ``spec.load_pipeline``'s job; comparing is ``compare.py``'s.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flowctl.errors import GitError, PipelineError, UsageError
from flowctl.spec import PIPELINE_DIR, is_pipeline_file

if TYPE_CHECKING:
    from flowctl.spec.model import Pipeline


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


@dataclass(frozen=True, slots=True)
class Revision:
    label: str  # as the user named it (tag, branch, sha) or "HEAD"
    commit: str  # full hex sha


class GitSource:
    """One repository: refs, tags and files at revisions. Raises ``GitError``."""

    def __init__(self, path: str | os.PathLike[str] = ".") -> None:
        import git

        try:
            self.repo = git.Repo(path, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise GitError(
                f"{os.path.abspath(path)} is not inside a git repository",
                hint="run flowctl diff/release/versions in a git checkout (git init; git commit)",
            ) from None
        if self.repo.bare or self.repo.working_tree_dir is None:
            raise GitError(f"{self.repo.git_dir} is a bare repository", hint="use a checkout with a work tree")
        self.root = os.path.realpath(self.repo.working_tree_dir)
        self.cwd = os.path.abspath(path)  # relative paths given by the user start here
        self._tags: dict[str | None, list[tuple[str, str]]] = {}  # per reachability point
        self._order: dict[frozenset[str], dict[str, int]] = {}  # commit → position in history

    # -- refs ------------------------------------------------------------------------------

    def resolve(self, ref: str) -> Revision:
        """The commit ``ref`` (tag, branch, sha, ``HEAD~2``) names; GitError if unknown."""
        import git

        try:
            commit = self.repo.commit(ref)
        except (git.BadName, git.BadObject, ValueError, git.GitCommandError):
            if ref == "HEAD":
                raise GitError("the repository has no commits yet", hint="commit the pipeline first") from None
            raise GitError(
                f"unknown git ref {ref!r}",
                hint="name a tag, branch or commit (git tag --list; git branch --all)",
            ) from None
        return Revision(ref, commit.hexsha)

    def head_label(self) -> str:
        if self.repo.head.is_detached:
            return f"HEAD (detached at {self.repo.head.commit.hexsha[:7]})"
        return self.repo.active_branch.name

    def is_dirty(self) -> bool:
        return self.repo.is_dirty(untracked_files=False)

    def relpath(self, path: str | os.PathLike[str]) -> str:
        """``path`` (relative to ``cwd``) as a POSIX path relative to the repository root."""
        full = os.path.realpath(os.path.join(self.cwd, path))
        rel = os.path.relpath(full, self.root)
        if rel.startswith(os.pardir):
            raise UsageError(f"{path} is outside the git repository at {self.root}")
        return rel.replace(os.sep, "/")

    # -- tags ------------------------------------------------------------------------------

    def _all_tags(self, merged: str | None) -> list[tuple[str, str]]:
        """(tag name, commit sha) of every tag, or of those reachable from ``merged``."""
        if merged in self._tags:
            return self._tags[merged]
        args = ["--format=%(refname:short) %(objectname) %(*objectname)"]
        if merged is not None:
            args.append(f"--merged={merged}")
        out = self.repo.git.for_each_ref(*args, "refs/tags")
        tags = []
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 2:
                tags.append((parts[0], parts[-1]))  # the peeled commit of an annotated tag
        self._tags[merged] = tags
        return tags

    def releases(self, name: str, fmt: TagFormat, *, reachable_from: str | None = "HEAD") -> list[Release]:
        """Releases of ``name`` in ``fmt``, oldest first (see ``_history_order``)."""
        found = []
        for tag, sha in self._all_tags(reachable_from):
            version = fmt.match(name, tag)
            if version is not None:
                found.append(Release(tag, version, sha))
        return self._history_order(found)

    def release_history(
        self, name: str, fmt: TagFormat | None, *, reachable_from: str | None = "HEAD"
    ) -> list[Release]:
        """Releases in ``fmt``; without one, under either scheme (``<name>/vX.Y.Z`` and
        repo-wide ``vX.Y.Z`` tags together), oldest first."""
        if fmt is not None:
            return self.releases(name, fmt, reachable_from=reachable_from)
        both = self.releases(name, PER_PIPELINE, reachable_from=reachable_from)
        both += self.releases(name, REPO_WIDE, reachable_from=reachable_from)
        return self._history_order(both)

    def latest_release(self, name: str, fmt: TagFormat | None = None, *, reachable_from: str = "HEAD") -> Release | None:
        history = self.release_history(name, fmt, reachable_from=reachable_from)
        return history[-1] if history else None

    def tag_scheme(self, fmt: TagFormat | None) -> TagFormat:
        """The format a new release tag takes: ``fmt`` when given, else the scheme the
        repository's tags already use (per-pipeline when it has none). UsageError when it uses
        both, naming the option that picks one (issue 13)."""
        if fmt is not None:
            return fmt
        per_pipeline = sorted(self.released_names(None, reachable_from=None))
        repo_wide = [tag for tag, _ in self._all_tags(None) if REPO_WIDE.match("", tag)]
        if per_pipeline and repo_wide:
            example = next(t for t, _ in self._all_tags(None) if PER_PIPELINE.match(per_pipeline[0], t))
            raise UsageError(
                f"this repository has release tags in both schemes: per pipeline (e.g. {example}) "
                f"and repo-wide (e.g. {repo_wide[0]}), so the next tag's name is ambiguous",
                hint="pick one with --tag-pattern '{name}/v{version}' or --tag-pattern 'v{version}'",
            )
        return REPO_WIDE if repo_wide else PER_PIPELINE

    def has_release_tags(self, fmt: TagFormat | None, *, reachable_from: str = "HEAD") -> bool:
        """Whether any reachable tag is a release (of any pipeline) in ``fmt`` or the defaults."""
        formats = [fmt] if fmt is not None else [PER_PIPELINE, REPO_WIDE]
        if any(f.per_pipeline for f in formats) and self.released_names(fmt, reachable_from=reachable_from):
            return True
        repo_wide = [f for f in formats if not f.per_pipeline]
        return any(f.match("", tag) for tag, _ in self._all_tags(reachable_from) for f in repo_wide)

    def released_names(self, fmt: TagFormat | None, *, reachable_from: str | None = "HEAD") -> set[str]:
        """Pipeline names that have per-pipeline release tags."""
        f = fmt or PER_PIPELINE
        if not f.per_pipeline:
            return set()
        pattern = re.escape(f.template).replace(r"\{name\}", r"(?P<name>[a-z0-9][a-z0-9_-]*)")
        pattern = pattern.replace(r"\{version\}", r"\d+\.\d+\.\d+")
        return {m["name"] for tag, _ in self._all_tags(reachable_from) if (m := re.fullmatch(pattern, tag))}

    def _history_order(self, releases: list[Release]) -> list[Release]:
        """``releases`` in the order history made them: a release comes after the releases of
        its ancestors (``git rev-list --date-order``), so two schemes interleave correctly;
        tags of one commit by version, a per-pipeline tag after a repo-wide one."""
        position = self._positions(frozenset(r.commit for r in releases))
        return sorted(releases, key=lambda r: (position.get(r.commit, -1), r.version, "/" in r.tag, r.tag))

    def _positions(self, commits: frozenset[str]) -> dict[str, int]:
        if len(commits) < 2:
            return {}
        if commits not in self._order:
            listed = self.repo.git.rev_list("--date-order", "--reverse", *sorted(commits)).split()
            self._order[commits] = {sha: i for i, sha in enumerate(listed) if sha in commits}
        return self._order[commits]

    def create_tag(self, tag: str, commit: str, message: str) -> None:
        import git

        if tag in {t.name for t in self.repo.tags}:
            raise GitError(f"tag {tag!r} already exists", hint="pick another --bump or delete the tag")
        self._tags.clear()
        self._order.clear()
        try:
            self.repo.create_tag(tag, ref=commit, message=message)
        except git.GitCommandError as exc:
            raise GitError(f"could not create tag {tag!r}: {exc.stderr.strip() or exc}") from None

    def tag_message(self, tag: str) -> str:
        ref = self.repo.tags[tag]
        return ref.tag.message if ref.tag is not None else ""

    # -- worktrees (run --ref) -------------------------------------------------------------

    def add_worktree(self, path: str, commit: str, label: str) -> None:
        """A detached worktree of ``commit`` at ``path`` (absent or an empty folder)."""
        import git

        try:
            self.repo.git.worktree("add", "--detach", "--quiet", path, commit)
        except git.GitCommandError as exc:
            raise GitError(f"could not check out {label} into {path}: {exc.stderr.strip() or exc}") from None

    def remove_worktree(self, path: str) -> None:
        """Remove the worktree at ``path`` with everything in it, and git's record of it."""
        import shutil

        import git

        with contextlib.suppress(git.GitCommandError):  # a step deleted it, or git refuses: rmtree
            self.repo.git.worktree("remove", "--force", "--force", path)
        shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(git.GitCommandError):
            self.repo.git.worktree("prune")

    def worktree_heads(self) -> dict[str, str]:
        """Each worktree of the repository (real path) → the commit it has checked out."""
        heads: dict[str, str] = {}
        path = ""
        for line in self.repo.git.worktree("list", "--porcelain").splitlines():
            if line.startswith("worktree "):
                path = os.path.realpath(line.removeprefix("worktree "))
            elif line.startswith("HEAD ") and path:
                heads[path] = line.removeprefix("HEAD ")
        return heads

    def changes_in(self, worktree: str) -> tuple[str, ...]:
        """Files created, changed or deleted in ``worktree`` since its checkout, ignored ones
        included (a step's ``warehouse.db`` is often in .gitignore). GitError when git cannot
        tell (then nothing there may be assumed disposable)."""
        import git

        try:
            out = self.repo.git.execute(
                ["git", "-C", worktree, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--ignored=matching"]
            )
        except git.GitCommandError as exc:
            raise GitError(f"could not read what changed in {worktree}: {exc.stderr.strip() or exc}") from None
        return tuple(entry[3:] for entry in str(out).split("\0") if len(entry) > 3)

    # -- files -----------------------------------------------------------------------------

    def read(self, commit: str, path: str) -> bytes | None:
        """The bytes of ``path`` (relative to the root) at ``commit``; None if absent there."""
        tree = self.repo.commit(commit).tree
        try:
            blob = tree / path
        except KeyError:
            return None
        if blob.type != "blob":
            return None
        return bytes(blob.data_stream.read())

    def pipeline_files(self, commit: str) -> tuple[str, ...]:
        """Pipeline files under ``pipelines/`` at ``commit`` (as ``discover_pipelines`` finds them
        in the work tree), relative to the root, sorted."""
        from git import Blob

        tree = self.repo.commit(commit).tree
        try:
            folder = tree / PIPELINE_DIR
        except KeyError:
            return ()
        if folder.type != "tree":
            return ()
        return tuple(
            sorted(
                str(item.path)
                for item in folder.traverse()
                if isinstance(item, Blob) and is_pipeline_file(str(item.path).split("/")[1:])
            )
        )

    def load(self, commit: str, path: str, label: str) -> Pipeline | None:
        """The pipeline at ``path`` as of ``commit`` (None if absent); PipelineError names ``label:path``."""
        text = self.read(commit, path)
        if text is None:
            return None
        return load_text(os.path.join(self.root, path), text, f"{label}:{path}")


def load_text(path: str, text: bytes, display_path: str) -> Pipeline:
    """Load pipeline ``text``; errors carry ``display_path`` and the text (for source lines)."""
    from flowctl.spec import load_pipeline

    try:
        return load_pipeline(path, text=text, display_path=display_path)
    except PipelineError as exc:
        sources = dict(exc.sources)
        sources.setdefault(display_path, text.decode("utf-8", errors="replace"))
        exc.sources = sources
        raise


__all__ = [
    "PER_PIPELINE",
    "REPO_WIDE",
    "ZERO",
    "GitSource",
    "Release",
    "Revision",
    "TagFormat",
    "Version",
    "load_text",
]

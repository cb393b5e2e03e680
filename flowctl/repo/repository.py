"""One git repository opened through gitpython: refs, tags, files at revisions, worktrees.

For the commands that read history (``diff``, ``release``, ``versions``, ``run --ref``, ``gc``
of kept worktrees, ``schedule install --ref``). gitpython reads objects through one long-lived
``git cat-file --batch`` per repository, so many files at many revisions cost one process, not
one each; its import (about 90 ms) is paid inside ``Repository()``, never at module import, so
``--help`` and a plain ``flowctl run`` do not load it. ``close()`` (or leaving the ``with``)
ends those helper processes. What tags mean (release schemes) is ``releases.py``'s; the status
of a work tree is ``status.py``'s. Every failure is a ``GitError`` with a hint.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

from flowctl.errors import GitError, UsageError
from flowctl.repo.status import work_tree_status

if TYPE_CHECKING:
    import git


@dataclass(frozen=True, slots=True)
class Revision:
    label: str  # as the user named it (tag, branch, sha) or "HEAD"
    commit: str  # full hex sha


@dataclass(frozen=True, slots=True)
class Tag:
    name: str
    commit: str  # the commit it points to (an annotated tag peeled)


class Repository:
    """The repository containing ``path``, with a work tree. Raises ``GitError``."""

    def __init__(self, path: str | os.PathLike[str] = ".") -> None:
        import git

        try:
            self._repo = git.Repo(path, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise GitError(
                f"{os.path.abspath(path)} is not inside a git repository",
                hint="run flowctl diff/release/versions in a git checkout (git init; git commit)",
            ) from None
        if self._repo.bare or self._repo.working_tree_dir is None:
            raise GitError(f"{self._repo.git_dir} is a bare repository", hint="use a checkout with a work tree")
        self.root = os.path.realpath(self._repo.working_tree_dir)
        self.cwd = os.path.abspath(path)  # relative paths given by the user start here
        self._tags: dict[str | None, tuple[Tag, ...]] = {}  # per reachability point
        self._order: dict[frozenset[str], dict[str, int]] = {}  # commits → their place in history

    def close(self) -> None:
        """End gitpython's helper processes (``git cat-file``)."""
        self._repo.close()

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- refs and the work tree ------------------------------------------------------------

    def resolve(self, ref: str) -> Revision:
        """The commit ``ref`` (tag, branch, sha, ``HEAD~2``) names; GitError if unknown."""
        import git

        try:
            commit = self._repo.commit(ref)
        except (git.BadName, git.BadObject, ValueError, git.GitCommandError):
            if ref == "HEAD":
                raise GitError("the repository has no commits yet", hint="commit the pipeline first") from None
            raise GitError(
                f"unknown git ref {ref!r}",
                hint="name a tag, branch or commit (git tag --list; git branch --all)",
            ) from None
        return Revision(ref, commit.hexsha)

    def is_dirty(self) -> bool:
        """Whether tracked files differ from HEAD (``status.work_tree_status``: the same answer
        a run records as ``git_dirty``). GitError when git cannot tell."""
        status = work_tree_status(self.root)
        if status is None:
            raise GitError(f"could not read the status of {self.root}", hint="run `git status` there to see why")
        return status.dirty

    def relpath(self, path: str | os.PathLike[str]) -> str:
        """``path`` (relative to ``cwd``) as a POSIX path relative to the repository root.
        UsageError when it is outside the repository."""
        full = os.path.realpath(os.path.join(self.cwd, path))
        rel = os.path.relpath(full, self.root)
        if rel.startswith(os.pardir):
            raise UsageError(f"{path} is outside the git repository at {self.root}")
        return rel.replace(os.sep, "/")

    def commit_time(self, commit: str) -> float:
        """When ``commit`` was committed (seconds since the epoch): a release's date."""
        return float(self._repo.commit(commit).committed_date)

    # -- tags ------------------------------------------------------------------------------

    def tags(self, *, merged: str | None = None) -> tuple[Tag, ...]:
        """Every tag, or those reachable from ``merged``, in git's order (by name)."""
        if merged in self._tags:
            return self._tags[merged]
        args = ["--format=%(refname:short) %(objectname) %(*objectname)"]
        if merged is not None:
            args.append(f"--merged={merged}")
        found = []
        for line in self._git("for-each-ref", *args, "refs/tags", doing="list the tags").splitlines():
            parts = line.split()
            if len(parts) >= 2:
                found.append(Tag(parts[0], parts[-1]))  # the peeled commit of an annotated tag
        self._tags[merged] = tuple(found)
        return self._tags[merged]

    def history_positions(self, commits: frozenset[str]) -> Mapping[str, int]:
        """Each of ``commits`` → its place in history (``git rev-list --date-order``, oldest
        first: a commit comes after its ancestors). Empty for fewer than two commits."""
        if len(commits) < 2:
            return {}
        if commits not in self._order:
            listed = self._git("rev-list", "--date-order", "--reverse", *sorted(commits), doing="order the tags").split()
            self._order[commits] = {sha: i for i, sha in enumerate(listed) if sha in commits}
        return self._order[commits]

    def create_tag(self, tag: str, commit: str, message: str) -> None:
        """An annotated tag ``tag`` on ``commit``; GitError when it exists or git refuses."""
        import git

        if tag in {t.name for t in self._repo.tags}:
            raise GitError(f"tag {tag!r} already exists", hint="pick another --bump or delete the tag")
        self._tags.clear()
        self._order.clear()
        try:
            self._repo.create_tag(tag, ref=commit, message=message)
        except git.GitCommandError as exc:
            raise GitError(f"could not create tag {tag!r}: {_stderr(exc)}") from None

    # -- files at a revision ---------------------------------------------------------------

    def read(self, commit: str, path: str) -> bytes | None:
        """The bytes of ``path`` (relative to the root) at ``commit``; None if absent there."""
        tree = self._repo.commit(commit).tree
        try:
            blob = tree / path
        except KeyError:
            return None
        if blob.type != "blob":
            return None
        return bytes(blob.data_stream.read())

    def visible_files(self) -> tuple[str, ...]:
        """The work tree's files that git sees: tracked, plus untracked ones not ignored (paths
        relative to the root, sorted). What a copy of the project needs (``flowctl bench``)."""
        out = self._git("ls-files", "-z", "--cached", "--others", "--exclude-standard", doing="list the work tree's files")
        return tuple(sorted({n for n in out.split("\0") if n}))

    def files_under(self, commit: str, folder: str) -> tuple[str, ...]:
        """Every file below ``folder`` at ``commit`` (paths relative to the root), sorted."""
        from git import Blob

        tree = self._repo.commit(commit).tree
        try:
            below = tree / folder
        except KeyError:
            return ()
        if below.type != "tree":
            return ()
        return tuple(sorted(str(item.path) for item in below.traverse() if isinstance(item, Blob)))

    # -- linked worktrees (run --ref) ------------------------------------------------------

    def add_worktree(self, path: str, commit: str, label: str) -> None:
        """A detached worktree of ``commit`` at ``path`` (absent or an empty folder)."""
        self._git("worktree", "add", "--detach", "--quiet", path, commit, doing=f"check out {label} into {path}")

    def remove_worktree(self, path: str) -> None:
        """Remove the worktree at ``path`` with everything in it, and git's record of it."""
        with contextlib.suppress(GitError):  # a step deleted it, or git refuses: rmtree
            self._git("worktree", "remove", "--force", "--force", path, doing=f"remove {path}")
        shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(GitError):
            self._git("worktree", "prune", doing="prune worktrees")

    def worktree_heads(self) -> dict[str, str]:
        """Each worktree of the repository (real path) → the commit it has checked out."""
        heads: dict[str, str] = {}
        path = ""
        for line in self._git("worktree", "list", "--porcelain", doing="list worktrees").splitlines():
            if line.startswith("worktree "):
                path = os.path.realpath(line.removeprefix("worktree "))
            elif line.startswith("HEAD ") and path:
                heads[path] = line.removeprefix("HEAD ")
        return heads

    def changes_in(self, worktree: str) -> tuple[str, ...]:
        """Files created, changed or deleted in ``worktree`` since its checkout, ignored ones
        included (a step's ``warehouse.db`` is often in .gitignore). GitError when git cannot
        tell (then nothing there may be assumed disposable)."""
        out = self._git("-C", worktree, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--ignored=matching",
                        doing=f"read what changed in {worktree}")
        return tuple(entry[3:] for entry in out.split("\0") if len(entry) > 3)

    def _git(self, *args: str, doing: str) -> str:
        """``git ARGS`` in the repository's work tree; GitError "could not DOING: <git's words>"."""
        import git

        try:
            return str(self._repo.git.execute(["git", *args]))
        except git.GitCommandError as exc:
            raise GitError(f"could not {doing}: {_stderr(exc)}") from None


def _stderr(exc: git.GitCommandError) -> str:
    return str(exc.stderr).strip() or str(exc)


__all__ = ["Repository", "Revision", "Tag"]

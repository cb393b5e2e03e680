"""Each benchmark execution's own working copy of the project, so relative outputs never collide.

What is copied (decided once per benchmark, by ``plan_workspace``):

- the pipeline file inside a git work tree: the files git sees there, i.e. tracked files plus
  untracked files that are not ignored (``git ls-files --cached --others --exclude-standard``),
  from the top of the work tree. Steps that reach ``../scripts`` or ``../schemas`` from the
  pipeline's folder find them in the copy, and ignored build outputs, virtualenvs and data
  caches are left behind;
- otherwise: the pipeline file's folder, recursively.

State folders (``.flowctl/``) and ``.git`` are never copied; the pipeline file always is (even
when git ignores it), and every step's working folder inside the copied tree is created (git keeps
no empty folders). Symbolic links are copied as links. A step whose working folder lies outside
the copied tree runs in the real folder, shared by every execution: ``plan_workspace`` says so.
Git is asked through ``diff.gitsource`` (the one module that talks to repositories).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from flowctl.errors import GitError
from flowctl.state.location import STATE_DIR_NAME

_NEVER = frozenset({STATE_DIR_NAME, ".git"})


@dataclass(frozen=True, slots=True)
class Workspace:
    """What each execution gets a copy of."""

    root: str  # the absolute folder copied
    kind: str  # "git" (the files git sees in the work tree) or "folder"
    files: tuple[str, ...]  # relative to root: files and symbolic links
    folders: tuple[str, ...]  # relative to root: steps' working folders to create
    size: int  # bytes copied per execution
    pipeline: str  # the pipeline file, relative to root
    git_commit: str | None = None
    git_dirty: bool | None = None
    outside: tuple[str, ...] = ()  # steps' working folders outside root (shared)

    def to_dict(self) -> dict[str, object]:
        return {
            "root": self.root, "kind": self.kind, "files": len(self.files), "bytes": self.size,
            "shared_folders": list(self.outside),
        }


def plan_workspace(pipeline_path: str, step_folders: Iterable[str] = ()) -> Workspace:
    """Decide what to copy for the pipeline at ``pipeline_path`` whose steps run in
    ``step_folders`` (absolute). Raises nothing for a folder outside git (it copies the folder)."""
    pipeline = os.path.realpath(pipeline_path)
    listed = _git_files(os.path.dirname(pipeline))
    if listed is not None:
        root, names, commit, dirty = listed
        kind = "git"
    else:
        root, names, commit, dirty = os.path.dirname(pipeline), _walk(os.path.dirname(pipeline)), None, None
        kind = "folder"
    files = {n for n in names if not _excluded(n) and os.path.lexists(os.path.join(root, n))}
    files.add(os.path.relpath(pipeline, root))
    folders: set[str] = set()
    outside: set[str] = set()
    for folder in step_folders:
        rel = os.path.relpath(os.path.realpath(folder), root)
        if rel == os.pardir or rel.startswith(os.pardir + os.sep):
            outside.add(os.path.realpath(folder))
        elif rel != os.curdir:
            folders.add(rel)
    ordered = tuple(sorted(files))
    size = sum(os.lstat(os.path.join(root, n)).st_size for n in ordered)
    return Workspace(
        root=root, kind=kind, files=ordered, folders=tuple(sorted(folders)), size=size,
        pipeline=os.path.relpath(pipeline, root), git_commit=commit, git_dirty=dirty,
        outside=tuple(sorted(outside)),
    )


def copy_workspace(workspace: Workspace, dest: str) -> str:
    """Copy the workspace's files into ``dest`` (made; must not exist yet) and return the path
    of the pipeline file inside it. Raises OSError when copying fails."""
    os.makedirs(dest)
    made: set[str] = set()
    for rel in workspace.files:
        source = os.path.join(workspace.root, rel)
        target = os.path.join(dest, rel)
        parent = os.path.dirname(target)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        if os.path.islink(source):
            os.symlink(os.readlink(source), target)
        elif os.path.isdir(source):  # a submodule: git lists its folder
            shutil.copytree(source, target, symlinks=True, ignore=shutil.ignore_patterns(*_NEVER))
        else:
            shutil.copy2(source, target)
    for rel in workspace.folders:
        os.makedirs(os.path.join(dest, rel), exist_ok=True)
    return os.path.join(dest, workspace.pipeline)


def _excluded(rel: str) -> bool:
    return any(part in _NEVER for part in rel.split(os.sep))


def _git_files(folder: str) -> tuple[str, Sequence[str], str | None, bool | None] | None:
    """(work tree top, the files git sees, HEAD's commit, dirty) or None outside a work tree."""
    from flowctl.repo.repository import Repository

    try:
        repo = Repository(folder)
    except GitError:
        return None
    with repo:
        names = sorted({n.replace("/", os.sep) for n in repo.visible_files()})
        try:
            commit: str | None = repo.resolve("HEAD").commit
            dirty: bool | None = repo.is_dirty()
        except GitError:  # a repository without commits yet
            commit, dirty = None, None
        return repo.root, names, commit, dirty


def _walk(folder: str) -> list[str]:
    found: list[str] = []
    for here, dirs, names in os.walk(folder):
        links = [d for d in dirs if os.path.islink(os.path.join(here, d))]  # copied as links
        dirs[:] = sorted(d for d in dirs if d not in _NEVER and d not in links)
        for name in [*names, *links]:
            found.append(os.path.relpath(os.path.join(here, name), folder))
    return found


__all__ = ["Workspace", "copy_workspace", "plan_workspace"]

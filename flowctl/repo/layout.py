"""Where a git work tree is, read from git's own files: no subprocess, no gitpython.

These run at the start of every command (the state folder's location, pipeline discovery), so
they read ``.git`` and ``commondir`` as git does rather than asking ``git rev-parse``: a few
``stat``/``read`` calls instead of a process (the answers match ``git rev-parse
--show-toplevel`` and ``--git-common-dir``; tests/repo/test_layout.py compares them).

* ``is_work_tree_top``: a folder holding ``.git`` (a folder, or the file of a linked worktree
  or a submodule).
* ``work_tree_top``: the nearest such folder at or above a start.
* ``common_dir``: the repository's shared git folder (``<main>/.git`` for every linked worktree).
* ``main_work_tree``: the work tree that folder belongs to (a linked worktree, such as the
  temporary one of ``run --ref``, leads to it; a submodule is its own).
"""

from __future__ import annotations

import os
from pathlib import Path

_DOT_GIT = ".git"
_GITFILE_PREFIX = "gitdir:"


def is_work_tree_top(folder: Path) -> bool:
    """Whether ``folder`` is the top of a git work tree (holds a ``.git`` entry)."""
    return os.path.lexists(folder / _DOT_GIT)


def work_tree_top(start: Path) -> Path | None:
    """The top of the git work tree containing the absolute folder ``start``, None outside one."""
    folder = start
    while True:
        if is_work_tree_top(folder):
            return folder
        if folder.parent == folder:
            return None
        folder = folder.parent


def common_dir(top: Path) -> Path | None:
    """The repository's common git folder for the work tree whose top is ``top`` (as ``git
    rev-parse --git-common-dir``), None when ``top`` holds no readable ``.git``."""
    dot_git = top / _DOT_GIT
    if dot_git.is_dir():
        return _commondir(dot_git) or dot_git
    try:
        gitdir = _gitfile(dot_git)
    except OSError:
        return None
    if gitdir is None:
        return None
    return _commondir(gitdir) or gitdir


def main_work_tree(top: Path) -> Path | None:
    """The main work tree of the git work tree whose top is ``top`` (``top`` itself unless it is
    a linked worktree), None when ``top`` holds no ``.git``.

    A linked worktree's ``.git`` is a file ``gitdir: <main>/.git/worktrees/NAME`` whose folder
    holds ``commondir`` (the path of ``<main>/.git``). A submodule's ``.git`` file has no
    ``commondir``: the submodule is its own tree. A bare repository's worktrees have no main
    work tree: each is its own.
    """
    dot_git = top / _DOT_GIT
    if dot_git.is_dir():
        return top
    try:
        gitdir = _gitfile(dot_git)
    except OSError:
        return None
    common = _commondir(gitdir) if gitdir is not None else None
    if common is not None and common.name == _DOT_GIT and common.is_dir():
        return common.parent
    return top


def _gitfile(dot_git: Path) -> Path | None:
    """The folder a ``.git`` file points to (None when it is no ``gitdir:`` file). OSError when
    it cannot be read."""
    text = dot_git.read_text(encoding="utf-8", errors="replace").strip()
    if not text.startswith(_GITFILE_PREFIX):
        return None
    return (dot_git.parent / text[len(_GITFILE_PREFIX):].strip()).resolve()


def _commondir(gitdir: Path) -> Path | None:
    """Where ``gitdir/commondir`` points (a linked worktree's), None without one."""
    try:
        return (gitdir / (gitdir / "commondir").read_text(encoding="utf-8").strip()).resolve()
    except OSError:
        return None


__all__ = ["common_dir", "is_work_tree_top", "main_work_tree", "work_tree_top"]

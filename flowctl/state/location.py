"""Where a project keeps its state folder, and where else under the project runs are recorded.

One rule (issue 13, "the state folder belongs to the project"), decided by ``state_dir_for``:

1. ``--state-dir``, else ``$FLOWCTL_STATE_DIR``;
2. else walk up from the starting folder (the pipeline file's folder for a command given one,
   the working folder otherwise) to the nearest folder holding a ``.flowctl/`` folder;
3. else ``.flowctl/`` at the top of the *main* git work tree (a linked worktree, such as the
   temporary one of ``run --ref``, never holds the state: its ``.git`` file leads to the main one);
4. else ``.flowctl/`` in the starting folder.

The walk stops at the top of the git work tree it starts in, and never looks at the home folder,
the temporary folder or the filesystem root from below (a stray ``~/.flowctl`` must not capture
every project under the home folder). Where the main work tree is comes from
``flowctl.repo.layout``, which reads git's files rather than running ``git``: this runs at the
start of every command.

``state_dirs_below`` is the bounded search behind "no runs here, but there are some there".
Opening what it finds is ``views.py``'s job. Raises ``UsageError`` when the folder named or
found is a file.
"""

from __future__ import annotations

import os
import tempfile
from collections import deque
from pathlib import Path

from flowctl.errors import UsageError
from flowctl.repo.layout import is_work_tree_top, main_work_tree, work_tree_top

STATE_DIR_ENV = "FLOWCTL_STATE_DIR"
STATE_DIR_NAME = ".flowctl"

#: The search below a project root looks this many folders deep and at most at this many folders.
SEARCH_DEPTH = 4
SEARCH_FOLDERS = 2000
_SKIP = frozenset({"node_modules", "__pycache__", "site-packages", "venv", "env"})


def state_dir_for(explicit: str | os.PathLike[str] | None = None, pipeline_path: str | None = None) -> Path:
    """The state folder of a command (see the module docstring for the rule).

    ``pipeline_path``: the pipeline file the command was given (a name, or a path that is no
    file, counts as none). Raises UsageError when the folder is a file.
    """
    if explicit:
        return _folder(Path(explicit), "--state-dir")
    if os.environ.get(STATE_DIR_ENV):
        return _folder(Path(os.environ[STATE_DIR_ENV]), f"${STATE_DIR_ENV}")
    if pipeline_path and os.path.isfile(pipeline_path):
        start = Path(os.path.dirname(os.path.abspath(pipeline_path)))
    else:
        start = Path(os.getcwd())
    return _folder(discover(start), "the state folder")


def discover(start: Path) -> Path:
    """Rules 2 to 4 from ``start`` (an absolute folder)."""
    ceilings = _ceilings()
    folder = start
    while True:
        candidate = folder / STATE_DIR_NAME
        if candidate.is_dir():
            return candidate
        if is_work_tree_top(folder):
            return (main_work_tree(folder) or folder) / STATE_DIR_NAME
        parent = folder.parent
        if parent == folder or parent.parent == parent or parent in ceilings:
            return start / STATE_DIR_NAME
        folder = parent


def doctor_command(state_dir: str | os.PathLike[str], *options: str) -> str:
    """``flowctl doctor OPTIONS``, with ``--state-dir`` when ``doctor`` run here would not find
    ``state_dir`` by itself (it was given with --state-dir, or found from a pipeline's folder)."""
    import shlex

    words = ["flowctl", "doctor", *options]
    try:
        found = os.path.realpath(state_dir_for()) == os.path.realpath(state_dir)
    except (OSError, UsageError):
        found = False
    if not found:
        words += ["--state-dir", shown_path(state_dir)]
    return shlex.join(words)


def project_root(state_dir: Path) -> Path | None:
    """Where to look for other state folders: the top of the main git work tree holding the
    ``.flowctl`` state folder (so runs above a subfolder's own, perhaps accidental, ``.flowctl``
    are found too), else the folder holding it. None for a folder named otherwise (the user
    chose it on purpose) and for one in the home folder, the temporary folder or ``/``, which
    hold many projects rather than being one."""
    if state_dir.name != STATE_DIR_NAME:
        return None
    root = Path(os.path.abspath(state_dir)).parent
    if root.parent == root or root in _ceilings():
        return None
    top = work_tree_top(root)
    if top is not None and top.parent != top and top not in _ceilings():
        return main_work_tree(top) or top
    return root


def state_dirs_below(root: Path, *, exclude: Path | None = None) -> tuple[Path, ...]:
    """Every ``.flowctl/`` holding a ``state.db`` below ``root`` (``root``'s own included), at most
    ``SEARCH_DEPTH`` folders deep, looking at no more than ``SEARCH_FOLDERS`` folders; hidden
    folders, virtualenvs and ``node_modules`` are skipped. Breadth first, so nearer ones come first."""
    found: list[Path] = []
    skip = os.path.realpath(exclude) if exclude is not None else None
    queue: deque[tuple[str, int]] = deque([(os.fspath(root), 0)])
    seen = 0
    while queue and seen < SEARCH_FOLDERS:  # strings, not Paths: this may look at 2000 folders
        folder, depth = queue.popleft()
        seen += 1
        candidate = os.path.join(folder, STATE_DIR_NAME)
        if os.path.isfile(os.path.join(candidate, "state.db")) and os.path.realpath(candidate) != skip:
            found.append(Path(candidate))
        if depth >= SEARCH_DEPTH or os.path.exists(os.path.join(folder, "pyvenv.cfg")):
            continue
        try:
            with os.scandir(folder) as entries:
                children = sorted(
                    e.path for e in entries
                    if not e.name.startswith(".") and e.name not in _SKIP and e.is_dir(follow_symlinks=False)
                )
        except OSError:
            continue
        queue.extend((child, depth + 1) for child in children)
    return tuple(found)


def shown_path(path: str | os.PathLike[str]) -> str:
    """``path`` relative to the working folder when it is inside it, else absolute."""
    absolute = Path(os.path.abspath(path))
    try:
        return str(absolute.relative_to(os.getcwd()))
    except ValueError:
        return str(absolute)


def _ceilings() -> frozenset[Path]:
    places = {Path(tempfile.gettempdir()), Path(os.path.expanduser("~"))}
    return frozenset(p for p in (*places, *(q.resolve() for q in places)) if p != Path("."))


def _folder(path: Path, what: str) -> Path:
    if path.exists() and not path.is_dir():
        hint = "pass the folder that holds state.db, not a file in it" if path.name == "state.db" else (
            "point it at a folder (it is made on the first run), or move the file away"
        )
        raise UsageError(f"{what} {path} is a file, not a folder", hint=hint)
    return path


__all__ = [
    "STATE_DIR_ENV",
    "STATE_DIR_NAME",
    "discover",
    "main_work_tree",
    "project_root",
    "shown_path",
    "state_dir_for",
    "state_dirs_below",
]

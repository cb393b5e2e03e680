"""Starting a local attempt's process in its own folder, while the runner never moves.

Python 3.11's ``posix_spawn`` has no chdir action, ``fork`` of the runner's heap is slow and
``subprocess.Popen(cwd=...)`` costs about 0.1–0.2 ms more of the runner's CPU per attempt than
``posix_spawn`` (measured: docs/run-overhead.md). So the folder change happens in the child,
in the shell that starts it anyway:

* a shell step (``/bin/sh -c SCRIPT``, what ``run: "..."`` resolves to) runs
  ``cd -- 'FOLDER' || exit; SCRIPT``: the ``cd`` is on the script's first line, so the line
  numbers the shell reports stay the user's; it costs the child a builtin, the runner a
  string concatenation;
* a step given as a list (``run: [prog, arg]``) starts through a one-line shim,
  ``/bin/sh -c 'cd -- "$1" || exit; shift; exec "$@"' flowctl-cd FOLDER prog arg``: one more
  ``exec`` in the child (about 0.3 ms of its time), the same pid, the same ``argv[0]``.

Before either, the runner checks what would otherwise fail inside the child and come back as an
exit code: the folder exists, the program is found on the step's ``PATH`` and is executable.
Those raise ``OSError`` here, which the executor reports as outcome ERROR ("could not start"),
as before. Each attempt's environment is the executor's base (a snapshot taken once) plus the
attempt's additions. Everything cached (programs found, ``cd`` prefixes) belongs to the
``Launcher``, i.e. to one executor: nothing process-wide.
"""

from __future__ import annotations

import errno
import os
import shlex
from collections.abc import Mapping, Sequence

from flowctl.run import procs
from flowctl.spec.chaos import ENV_VAR as CHAOS_ENV

SHELL = "/bin/sh"
#: Shells whose ``-c SCRIPT`` may be prefixed with ``cd -- DIR || exit;`` (POSIX syntax).
_POSIX_SHELLS = frozenset({"sh", "bash", "dash", "ksh", "zsh", "mksh", "ash", "busybox"})
_SHIM = 'cd -- "$1" || exit; shift; exec "$@"'
_SHIM_NAME = "flowctl-cd"  # the shim's $0: what `ps` shows for the instant it runs


class Launcher:
    """Start processes for one executor (see the module docstring)."""

    __slots__ = ("_base", "_found", "_prefixes")

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._base = dict(environ)  # the snapshot every attempt's environment starts from
        self._base.pop(CHAOS_ENV, None)  # chaos is the runner's business, never a step's (issue 17)
        self._found: dict[tuple[str, str], str | None] = {}  # (program, PATH) -> path found
        self._prefixes: dict[str, str] = {}  # folder -> "cd -- 'folder' || exit; "

    @property
    def base(self) -> Mapping[str, str]:
        return self._base

    def environment(self, additions: Mapping[str, str]) -> dict[str, str]:
        """The base environment with ``additions`` over it."""
        env = self._base.copy()
        env.update(additions)
        return env

    def spawn(self, argv: Sequence[str], env: Mapping[str, str], cwd: str, *, stdin_fd: int, out_fd: int,
              stdout_fd: int | None = None) -> int:
        """Start ``argv`` in folder ``cwd`` in its own process group; return its pid. Output goes
        to ``out_fd`` (stdout to ``stdout_fd`` when given).

        Raises FileNotFoundError (no such folder, program not found), PermissionError (not
        executable), or another OSError from ``posix_spawn``.
        """
        if not os.path.isdir(cwd):
            raise FileNotFoundError(errno.ENOENT, "working directory does not exist", cwd)
        program = argv[0]
        if len(argv) == 3 and argv[1] == "-c" and os.path.basename(program) in _POSIX_SHELLS:
            path = program if os.path.isabs(program) else self._program(program, env, cwd)
            prefix = self._prefixes.get(cwd)
            if prefix is None:
                prefix = self._prefixes[cwd] = f"cd -- {shlex.quote(cwd)} || exit; "
            return procs.spawn(path, (program, "-c", prefix + argv[2]), env, stdin_fd=stdin_fd, out_fd=out_fd,
                               stdout_fd=stdout_fd)
        self._program(program, env, cwd)  # the shim's exec would only say "not found" with exit 127
        shim = (SHELL, "-c", _SHIM, _SHIM_NAME, cwd, *argv)
        return procs.spawn(SHELL, shim, env, stdin_fd=stdin_fd, out_fd=out_fd, stdout_fd=stdout_fd)

    def _program(self, name: str, env: Mapping[str, str], cwd: str) -> str:
        """Where ``name`` is, as the child would find it from ``cwd`` on its ``PATH``."""
        if "/" in name:
            path = procs.find_program(name, "", cwd) or name
            if not os.path.isfile(path):
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
            if not os.access(path, os.X_OK):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
            return path
        key = (name, env.get("PATH", os.defpath))
        found = self._found.get(key, "")
        if found == "":
            found = self._found[key] = procs.find_program(name, key[1], cwd)
        if found is None:
            raise FileNotFoundError(f"command not found: {name}")
        return found


__all__ = ["SHELL", "Launcher"]

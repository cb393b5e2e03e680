"""The local executor starts each attempt in its step's folder while the runner never moves
(``run/executors/launch.py``), and the run path keeps no process-wide state."""

from __future__ import annotations

import ast
import os
import sys
import time
from pathlib import Path

import pytest

from flowctl.run.events import AttemptOutcome, RunId, RunStatus
from flowctl.run.executors.launch import Launcher
from flowctl.run.executors.local import LocalExecutor
from flowctl.run.ports import AttemptKey, AttemptResult, AttemptSpec

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
RUN_PACKAGE = Path(__file__).resolve().parents[2] / "flowctl" / "run"


def run_one(tmp_path: Path, argv: tuple[str, ...], cwd: Path, env: dict[str, str] | None = None) -> tuple[AttemptResult, str]:
    log = tmp_path / "logs" / f"{time.monotonic_ns()}.log"
    with LocalExecutor(grace=0.5) as ex:
        ex.submit(AttemptSpec(AttemptKey(RunId("r"), "s", 1), argv, env or {}, str(cwd), str(log)))
        results: list[AttemptResult] = []
        deadline = time.monotonic() + 60
        while not results:
            assert time.monotonic() < deadline
            results = list(ex.wait(1.0))
    return results[0], log.read_text() if log.exists() else ""


def test_the_runners_folder_never_changes_during_a_run(run_pipeline, tmp_path) -> None:
    """Each step reads the folder its parent, the runner, is in while the step runs."""
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
    steps = "\n".join(
        f"  {sid}: {{run: 'readlink /proc/$PPID/cwd >> {tmp_path}/seen; pwd >> {tmp_path}/where', cwd: {folder}}}"
        for sid, folder in (("a", "one"), ("b", "two"), ("c", "one"))
    )
    here = os.getcwd()
    ran = run_pipeline(f"version: 1\nname: cwd\nsteps:\n{steps}\n", concurrency=2)
    assert ran.result.status is RunStatus.SUCCEEDED
    assert (tmp_path / "seen").read_text().split() == [here] * 3
    assert sorted((tmp_path / "where").read_text().split()) == sorted(str(tmp_path / f) for f in ("one", "one", "two"))
    assert os.getcwd() == here


def test_the_shell_reports_the_users_line_numbers(tmp_path) -> None:
    result, log = run_one(tmp_path, ("/bin/sh", "-c", "true\nno-such-command-here"), tmp_path)
    assert result.outcome is AttemptOutcome.FAILED and result.exit_code == 127
    assert ": 2: no-such-command-here: not found" in log, log


def test_a_list_command_runs_in_its_folder_with_its_own_argv0(tmp_path) -> None:
    """Not a shell: it goes through the ``cd`` shim, which ``exec``s it (same pid, same argv)."""
    code = "import os, sys; print(os.getcwd()); print(sys.orig_argv[0]); print(os.getppid() == int(sys.argv[1]))"
    result, log = run_one(tmp_path, (sys.executable, "-c", code, str(os.getpid())), tmp_path / "..")
    assert result.outcome is AttemptOutcome.OK, log
    assert log.split("\n")[:3] == [str(tmp_path.parent), sys.executable, "True"]


def test_a_relative_program_is_found_from_the_steps_folder(tmp_path) -> None:
    tool = tmp_path / "bin" / "tool.sh"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\necho \"tool in $(pwd) as $0\"\n")
    tool.chmod(0o755)
    result, log = run_one(tmp_path, ("./bin/tool.sh",), tmp_path)
    assert result.outcome is AttemptOutcome.OK
    assert log == f"tool in {tmp_path} as ./bin/tool.sh\n"


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (("no-such-program-anywhere", "x"), "command not found: no-such-program-anywhere"),
        (("./missing.sh",), "No such file or directory"),
        (("./plain.txt",), "Permission denied"),
    ],
)
def test_what_cannot_start_is_an_error_not_an_exit_code(tmp_path, argv, error) -> None:
    (tmp_path / "plain.txt").write_text("not a program\n")
    result, _ = run_one(tmp_path, argv, tmp_path)
    assert result.outcome is AttemptOutcome.ERROR and result.exit_code is None
    assert error in (result.error or ""), result.error


def test_a_missing_folder_is_named(tmp_path) -> None:
    result, _ = run_one(tmp_path, ("/bin/sh", "-c", "true"), tmp_path / "gone")
    assert result.outcome is AttemptOutcome.ERROR
    assert result.error == f"working directory does not exist: {tmp_path / 'gone'}"


def test_each_attempt_sees_the_base_environment_plus_its_additions(tmp_path) -> None:
    launcher = Launcher({"PATH": "/usr/bin:/bin", "KEEP": "base", "OVER": "base"})
    env = launcher.environment({"OVER": "step", "NEW": "step"})
    assert env == {"PATH": "/usr/bin:/bin", "KEEP": "base", "OVER": "step", "NEW": "step"}
    assert launcher.base == {"PATH": "/usr/bin:/bin", "KEEP": "base", "OVER": "base"}  # untouched
    _result, log = run_one(tmp_path, ("/bin/sh", "-c", 'echo "$KEEP $OVER $NEW"'), tmp_path, env)
    assert log == "base step step\n"


def test_the_run_package_keeps_no_process_wide_state() -> None:
    """No ``global`` statement and no module-level container that is not a CONSTANT (by name)
    anywhere in ``flowctl/run``: caches, pollers and folders belong to an object."""
    offenders = []
    for path in sorted(RUN_PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        offenders += [f"{path.name}:{n.lineno} global" for n in ast.walk(tree) if isinstance(n, ast.Global)]
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
            value = getattr(node, "value", None)
            mutable = isinstance(value, (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp)) or (
                isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
                and value.func.id in {"dict", "list", "set", "defaultdict", "count", "deque"}
            )
            for target in targets:
                name = target.id if isinstance(target, ast.Name) else "?"
                if mutable and name != "__all__" and name.lstrip("_") != name.lstrip("_").upper():
                    offenders.append(f"{path.name}:{node.lineno} {name}")
    assert offenders == []

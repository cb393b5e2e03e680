"""Every number given on the command line has a bound, and a number past it is a usage error
(exit 2) naming the option (issue 13: ``runs -n 99999999999999999999`` blamed the state database
and suggested ``doctor --repair``, ``run -j`` of it crashed with exit 70, ``schedule next --count``
of it never ended)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer._click import core as click_core  # typer vendors click: its types, not click's
from typer._click import types as click_types

from flowctl.cli.app import app, register
from flowctl.limits import MAX_CONCURRENCY
from tests.conftest import REPO, run_flowctl

HUGE = "99999999999999999999"
PIPELINE = 'version: 1\nname: p\nschedule: "0 3 * * *"\nsteps:\n  a: {run: "echo a"}\n'


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bounds")
    (root / ".flowctl").mkdir()
    (root / "p.yaml").write_text(PIPELINE, encoding="utf-8")
    assert run_flowctl("run", "p.yaml", cwd=root).returncode == 0
    return root


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["runs", "-n", HUGE], "'--limit'"),
        (["run", "p.yaml", "-j", HUGE], "'--concurrency'"),
        (["run", "p.yaml", "-j", str(MAX_CONCURRENCY + 1)], "1<=x<=1024"),  # as `concurrency:` in the file
        (["run", "p.yaml", "--executor", "dask", "--dask-threads", HUGE], "'--dask-threads'"),
        (["run", "p.yaml", "--executor", "dask", "--dask-workers", HUGE], "--dask-workers"),
        (["run", "p.yaml", "--executor", "dask", "--dask-workers", f"1:{HUGE}"], "--dask-workers"),
        (["run", "p.yaml", "--executor", "dask", "--dask-lease", HUGE + "s"], "--dask-lease"),
        (["run", "p.yaml", "--wait", HUGE + "h"], "--wait"),
        (["run", "p.yaml", "--orphans", f"wait={HUGE}"], "--orphans"),
        (["gc", "--keep", HUGE, "--dry-run"], "'--keep'"),
        (["gc", "--older-than", HUGE + "d", "--dry-run"], "--older-than"),
        (["stats", "p.yaml", "--last", HUGE], "'--last'"),
        (["stats", "p.yaml", "--since", HUGE + "d"], "--since"),
        (["report", "--history", "p", "--last", HUGE], "'--last'"),
        (["report", "latest", "--baseline", f"median:{HUGE}"], "--baseline"),
        (["logs", "latest", "a", "--attempt", HUGE], "'--attempt'"),
        (["bench", "p.yaml", "--runs", HUGE], "'--runs'"),
        (["bench", "p.yaml", "--warmup", HUGE], "'--warmup'"),
        (["bench", "p.yaml", "--parallel", HUGE], "'--parallel'"),
        (["bench", "p.yaml", "-j", HUGE], "'--concurrency'"),
        (["schedule", "next", "p.yaml", "--count", HUGE], "'--count'"),
        (["schedule", "next", "p.yaml", "--count", "1001"], "'--count'"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_a_number_past_its_bound_is_a_usage_error(project: Path, args: list[str], named: str) -> None:
    result = run_flowctl(*args, cwd=project, timeout=60)
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert named in result.stderr
    assert "internal error" not in result.stderr and "doctor" not in result.stderr
    assert result.stdout == ""  # nothing ran, nothing was written


def test_every_integer_option_of_every_command_has_both_bounds() -> None:
    """The audit, kept: a new ``int`` option without ``min=`` and ``max=`` fails here."""
    register([])  # every command
    numbers, unbounded = [], []

    def walk(command: click_core.Command, path: str) -> None:
        for param in command.params:
            kind = param.type
            if isinstance(kind, (click_types.IntParamType, click_types.FloatParamType)):
                numbers.append(f"{path} {param.opts[0]}")
                if not isinstance(kind, click_types._NumberRangeBase) or kind.min is None or kind.max is None:
                    unbounded.append(f"{path} {param.opts[0]}")
        if isinstance(command, typer.core.TyperGroup):
            for name, sub in command.commands.items():
                walk(sub, f"{path} {name}")

    walk(typer.main.get_command(app), "flowctl")
    assert "flowctl runs --limit" in numbers and "flowctl schedule next --count" in numbers  # the walk sees them
    assert unbounded == []


def test_the_concurrency_bound_is_the_pipeline_files() -> None:
    schema = json.loads((REPO / "schemas" / "pipeline.schema.json").read_text(encoding="utf-8"))
    assert schema["properties"]["concurrency"]["maximum"] == MAX_CONCURRENCY

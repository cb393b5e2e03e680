"""``flowctl --help`` stays light: it must not import the heavy libraries the commands use.

A correctness property rather than a timing (the timing is ``bench/validate_bench.py``): the
modules loaded are read from ``python -X importtime``, so a stray top-level import of networkx,
gitpython, jsonschema or rich's live display in any command module fails here.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import flowctl_env

#: Top-level packages (or dotted modules) that only the commands that need them may import.
HEAVY = ("networkx", "git", "jsonschema", "jsonschema_rs", "rich.progress", "rich.live", "dask", "distributed", "jinja2")


def imported_modules(*args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``python -X importtime -m flowctl ARGS``; return the process and the modules it imported."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "flowctl", *args],
        env=flowctl_env(),
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )
    modules = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "package":  # the header line
                modules.add(name)
    return proc, modules


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules for h in HEAVY if m == h or m.startswith(h + "."))


@pytest.mark.parametrize("args", [("--help",), ("--version",), ("bench", "--help")], ids=["help", "version", "bench-help"])
def test_help_does_not_import_heavy_modules(args: tuple[str, ...]) -> None:
    proc, modules = imported_modules(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "flowctl" in modules, "importtime output was not parsed: the check would pass vacuously"
    assert "typer" in modules
    assert heavy_in(modules) == [], f"`flowctl {' '.join(args)}` imported {heavy_in(modules)}"


def test_the_check_sees_heavy_imports() -> None:
    """The parser above must notice a heavy import when there is one (guards the guard)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import networkx, git"],
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    names = {
        line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")
    }
    assert {"networkx", "git"} <= set(heavy_in(names))

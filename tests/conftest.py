"""Shared test fixtures: run flowctl as a real process, write pipeline files."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NoReturn

import pytest

REPO = Path(__file__).resolve().parent.parent


def in_ci() -> bool:
    """True under CI (``CI=true``, as GitHub Actions and ``.ci/run`` set it)."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def tool_missing(message: str) -> NoReturn:
    """A test's outside tool is missing: skip on a developer's machine, fail under ``CI=true``
    (``.ci/run`` installs every tool, so there a skip would check nothing)."""
    if in_ci():
        pytest.fail(f"{message}; CI=true, so this test fails instead of skipping", pytrace=False)
    pytest.skip(message)


def flowctl_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a flowctl subprocess: this checkout first on PYTHONPATH, no colour."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("FLOWCTL_STATE_DIR", None)
    env.pop("FLOWCTL_LOG_FORMAT", None)
    env["NO_COLOR"] = "1"
    env["FLOWCTL_CRASH_DIR"] = env.get("FLOWCTL_CRASH_DIR", "/tmp")
    if extra:
        env.update(extra)
    return env


def run_flowctl(
    *args: str,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m flowctl ARGS`` as a real process and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "flowctl", *args],
        cwd=cwd,
        env=flowctl_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )


@pytest.fixture
def flowctl() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_flowctl


@pytest.fixture
def write_pipeline(tmp_path: Path) -> Callable[..., Path]:
    """Write a (dedented) pipeline file under ``tmp_path`` and return its path."""

    def write(text: str, name: str = "pipeline.yaml", folder: Path | None = None) -> Path:
        path = (folder or tmp_path) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="Rewrite tests/golden/ files from the output.")


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))

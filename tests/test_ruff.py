"""The code stays ``ruff check`` clean (rules and exceptions in pyproject.toml), as it stays
``mypy --strict`` clean (tests/test_typing.py)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_ruff_check_is_clean() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "flowctl", "tests", "bench"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr

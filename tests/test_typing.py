"""The package stays ``mypy --strict`` clean (configured in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_mypy_strict_is_clean() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_missing_first_party_module_is_an_error(tmp_path) -> None:
    """Only the listed untyped third-party modules may be imported without types: a first-party
    import that resolves to nothing fails (a global ignore_missing_imports once hid one)."""
    probe = tmp_path / "probe.py"
    probe.write_text("import flowctl.no_such_module\nimport yaml\nimport networkx\nimport jsonschema\nimport croniter\n")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", "--config-file", str(REPO / "pyproject.toml"), str(probe)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1 and 'module named "flowctl.no_such_module"' in errors[0], done.stdout

"""``.ci/run`` runs exactly the test command the README gives, and fails on "no tests ran"."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CI = REPO / ".ci" / "run"


def readme_test_command() -> str:
    """The README's set-up command that installs the test extras and runs the suite."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"```sh\n(.+?)\n```", text)
    [command] = [c for c in commands if "[test]" in c and "pytest" in c]
    return command


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    command = readme_test_command()
    lines = [line.strip() for line in CI.read_text(encoding="utf-8").splitlines()]
    assert command in lines, f"{command!r} is not a line of .ci/run"


def test_ci_script_is_strict_bash_and_treats_no_tests_as_failure() -> None:
    text = CI.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert re.search(r"status == 5", text), "pytest's exit 5 (no tests collected) must fail CI"
    proc = subprocess.run(["bash", "-n", str(CI)], capture_output=True, text=True, check=False, timeout=30)
    assert proc.returncode == 0, proc.stderr


def test_ci_installs_every_node_client_from_the_lock_file() -> None:
    """`npm ci` installs exactly the lock file: every client the harnesses import is pinned there."""
    node = REPO / "tests" / "conformance" / "node"
    manifest = json.loads((node / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((node / "package-lock.json").read_text(encoding="utf-8"))
    for package in ("yaml-language-server", "mermaid", "jsdom"):
        assert package in manifest["dependencies"], package
        assert f"node_modules/{package}" in lock["packages"], package
    assert "(cd tests/conformance/node && npm ci" in CI.read_text(encoding="utf-8")

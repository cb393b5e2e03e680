"""``flowctl run`` without ``--ref`` never imports gitpython (issue 14): its git needs (where the
project is, the commit and dirty flag it records) are answered by ``flowctl.repo.layout`` and
``flowctl.repo.status`` without it. Read from ``python -X importtime``, as test_help_imports does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import flowctl_env, run_flowctl
from tests.diff import gitrepo
from tests.diff.gitrepo import CHECKS, GitRepo

git_repo = gitrepo.git_repo


def imports_of(cwd: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "flowctl", *args],
        cwd=cwd, env=flowctl_env(), capture_output=True, text=True, timeout=60, check=False,
    )
    names = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "flowctl" in names, "importtime output was not parsed: the check would pass vacuously"
    return proc, names


def gitpython_in(names: set[str]) -> list[str]:
    return sorted(n for n in names if n == "git" or n.startswith("git."))


def test_run_records_the_commit_without_importing_gitpython(git_repo: GitRepo) -> None:
    git_repo.write("pipelines/checks.yaml", CHECKS)
    head = git_repo.commit("checks")
    git_repo.tag("checks/v1.0.0", "first")
    proc, names = imports_of(git_repo.path, "run", "pipelines/checks.yaml", "--no-progress")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert gitpython_in(names) == []
    (recorded,) = json.loads(run_flowctl("runs", "--json", cwd=git_repo.path).stdout)
    assert recorded["provenance"]["git_commit"] == head  # the git part did run
    assert recorded["provenance"]["git_dirty"] is False
    # The control: the same run at a ref does need gitpython (a worktree, the file at the ref).
    proc, names = imports_of(git_repo.path, "run", "pipelines/checks.yaml", "--ref", "checks/v1.0.0", "--no-progress")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "git" in gitpython_in(names)


def test_validate_finds_the_project_without_gitpython(git_repo: GitRepo) -> None:
    git_repo.write("pipelines/checks.yaml", CHECKS)
    (git_repo.path / "deep" / "er").mkdir(parents=True)
    proc, names = imports_of(git_repo.path / "deep" / "er", "validate")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "checks.yaml" in proc.stdout
    assert gitpython_in(names) == []

"""Fixtures for the schedule tests: a project with scheduled pipelines, a fake ``crontab``."""

from __future__ import annotations

import os
import stat
import textwrap
from pathlib import Path

import pytest

ETL = """
version: 1
name: etl
schedule: "30 2 * * *"
timezone: America/New_York
steps:
  extract:
    run: echo extract
"""

HOURLY = """
version: 1
name: hourly
schedule: "@hourly"
steps:
  ping:
    run: echo ping
"""

UNSCHEDULED = """
version: 1
name: adhoc
steps:
  once:
    run: echo once
"""

# A real program standing in for cron's crontab(1): it keeps the installed crontab in a file.
FAKE_CRONTAB = """#!/bin/sh
store="${FAKE_CRONTAB_STORE:?}"
echo "$*" >> "$store.calls"
case "$1" in
  -l) if [ -f "$store" ]; then cat "$store"; else echo "no crontab for $(id -un)" >&2; exit 1; fi ;;
  -) cat > "$store.tmp" && mv "$store.tmp" "$store" ;;
  *) echo "fake crontab: unsupported arguments: $*" >&2; exit 2 ;;
esac
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder with pipelines/etl.yaml, pipelines/hourly.yaml and pipelines/adhoc.yaml."""
    folder = tmp_path / "project"
    (folder / "pipelines").mkdir(parents=True)
    for name, text in (("etl", ETL), ("hourly", HOURLY), ("adhoc", UNSCHEDULED)):
        (folder / "pipelines" / f"{name}.yaml").write_text(textwrap.dedent(text).lstrip())
    return folder


@pytest.fixture
def fake_crontab(tmp_path: Path) -> dict[str, str]:
    """Env for a flowctl subprocess whose PATH starts with the fake ``crontab``."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    program = bin_dir / "crontab"
    program.write_text(FAKE_CRONTAB)
    program.chmod(program.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    store = tmp_path / "crontab.store"
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "FAKE_CRONTAB_STORE": str(store),
    }


def _git(folder: Path, *args: str) -> None:
    import subprocess

    subprocess.run(
        ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        check=True, capture_output=True,
    )


@pytest.fixture
def git_project(project: Path) -> Path:
    """``project`` as a git repository with one commit tagged ``etl/v1.2.0``."""
    _git(project, "init", "-q", "-b", "main")
    _git(project, "add", ".")
    _git(project, "commit", "-q", "-m", "pipelines")
    _git(project, "tag", "-a", "etl/v1.2.0", "-m", "etl 1.2.0")
    return project

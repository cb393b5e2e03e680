"""What ``schedule install`` writes passes Debian cron's own parser.

``crontab -n FILE`` (Debian cron 3.0pl1-128 and later) parses a user crontab exactly as
``crontab FILE`` would, then stops without installing it. An /etc/cron.d file differs only by
the user column, so it is checked by taking that column out (and checking the user exists), with
the file name rule cron.d applies. As root, the file is also installed for user ``nobody``
(``crontab -u nobody FILE``) and listed back. Without cron these tests skip locally, but never on CI
(``CI=true``): there ``.ci/run`` installs it (``apt-get install -y cron``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

import pytest

from flowctl.schedule.crontab import CRON_D_NAME
from tests.conftest import run_flowctl, tool_missing

FOREIGN = "MAILTO=ops@example.com\n0 1 * * * /usr/bin/backup --all\n"


def _crontab_n() -> str:
    program = shutil.which("crontab")
    usable = False
    if program is not None:
        helptext = subprocess.run([program, "-h"], capture_output=True, text=True, check=False)
        usable = "-n" in helptext.stdout + helptext.stderr
    if not usable:
        tool_missing("Debian's cron with `crontab -n` is not installed (apt-get install -y cron)")
    assert program is not None
    return program


def _check(program: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([program, "-n", str(path)], capture_output=True, text=True, check=False)


def test_crontab_n_rejects_garbage(tmp_path: Path) -> None:
    # The checker itself must be able to fail, or the tests below prove nothing.
    program = _crontab_n()
    bad = tmp_path / "bad"
    bad.write_text("61 * * * * /bin/true\n")
    assert _check(program, bad).returncode != 0


def test_installed_user_crontab_passes_crontab_n(project: Path, tmp_path: Path) -> None:
    program = _crontab_n()
    crontab = tmp_path / "crontab"
    crontab.write_text(FOREIGN)
    # A path with a space and a percent sign: cron turns a bare % into a newline.
    odd = project / "pipelines" / "odd 100% name"
    odd.mkdir()
    (odd / "p.yaml").write_text("version: 1\nname: odd\nschedule: '*/5 9-17 * * mon-fri'\nsteps:\n  a:\n    run: 'true'\n")
    done = run_flowctl(
        "schedule", "install", "--file", str(crontab),
        "--metrics-file", str(tmp_path / "{name}.prom"), str(project / "pipelines"),
    )
    assert done.returncode == 0, done.stderr
    assert "\\%" in crontab.read_text()
    checked = _check(program, crontab)
    assert checked.returncode == 0, checked.stderr + checked.stdout


def test_installed_cron_d_file_passes_crons_parser(project: Path, tmp_path: Path) -> None:
    program = _crontab_n()
    target = tmp_path / "flowctl-jobs"
    done = run_flowctl("schedule", "install", "--cron-d", str(target), str(project / "pipelines"))
    assert done.returncode == 0, done.stderr
    assert CRON_D_NAME.match(target.name)
    assert oct(target.stat().st_mode & 0o022) == "0o0"  # cron.d refuses group/other-writable files
    without_user = []
    for line in target.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            without_user.append(line)
            continue
        fields = line.split(" ")
        at = 1 if fields[0].startswith("@") else 5
        pwd.getpwnam(fields[at])  # the user column names a real user
        without_user.append(" ".join(fields[:at] + fields[at + 1 :]))
    stripped = tmp_path / "stripped"
    stripped.write_text("\n".join(without_user) + "\n")
    checked = _check(program, stripped)
    assert checked.returncode == 0, checked.stderr + checked.stdout


def test_installed_user_crontab_round_trips_through_debian_crontab(project: Path, tmp_path: Path) -> None:
    """Installed for a real user (``crontab -u nobody FILE``) and listed back byte for byte:
    Debian keeps its "DO NOT EDIT" header out of ``crontab -l``, so the block is found again."""
    program = _crontab_n()
    if os.geteuid() != 0:
        pytest.skip("installing a crontab for another user needs root")
    had = subprocess.run([program, "-u", "nobody", "-l"], capture_output=True, text=True, check=False)
    if had.returncode == 0:
        pytest.skip("user nobody already has a crontab; not touching it")
    crontab = tmp_path / "crontab"
    crontab.write_text(FOREIGN)
    assert run_flowctl("schedule", "install", "--file", str(crontab), cwd=project).returncode == 0
    try:
        put = subprocess.run([program, "-u", "nobody", str(crontab)], capture_output=True, text=True, check=False)
        assert put.returncode == 0, put.stderr
        listed = subprocess.run([program, "-u", "nobody", "-l"], capture_output=True, text=True, check=False)
        assert listed.stdout == crontab.read_text()
    finally:
        subprocess.run([program, "-u", "nobody", "-r"], capture_output=True, check=False)

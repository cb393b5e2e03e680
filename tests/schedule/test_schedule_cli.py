"""``flowctl schedule install/uninstall/list/next`` end to end, as real processes."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

from tests.conftest import run_flowctl

FOREIGN = "# my own jobs\nMAILTO=ops@example.com\n0 1 * * * /usr/bin/backup --all\n"


def block_lines(text: str) -> list[str]:
    """The cron lines (not comments) inside the flowctl block."""
    inside = text.split("# BEGIN flowctl schedule", 1)[1].split("# END flowctl schedule", 1)[0]
    return [line for line in inside.splitlines()[1:] if line and not line.startswith("#")]


def test_install_into_a_file_keeps_foreign_lines_and_writes_absolute_lines(project: Path) -> None:
    crontab = project / "crontab"
    crontab.write_text(FOREIGN)
    done = run_flowctl("schedule", "install", "--file", str(crontab), cwd=project)
    assert done.returncode == 0, done.stderr
    assert "installed: 2 pipeline(s)" in done.stdout
    text = crontab.read_text()
    assert text.startswith(FOREIGN)
    lines = block_lines(text)
    assert len(lines) == 2  # adhoc has no schedule
    etl = next(line for line in lines if "etl.yaml" in line)
    hourly = next(line for line in lines if "hourly.yaml" in line)
    assert hourly.startswith("@hourly cd ")
    pipelines = project.resolve() / "pipelines"
    words = shlex.split(etl.split(" cd ", 1)[1].replace("\\%", "%"))
    assert words[0] == str(pipelines)  # cd into the pipeline's folder
    assert any(w.startswith("PATH=/") for w in words)
    assert words[words.index("run") + 1] == str(pipelines / "etl.yaml")
    assert words[words.index("--state-dir") + 1] == str(pipelines / ".flowctl")
    assert "--no-progress" in words and "--scheduled" in words
    assert words[-3:] == [">>", str(pipelines / ".flowctl" / "cron" / "etl.log"), "2>&1"]
    assert (pipelines / ".flowctl" / "cron").is_dir()  # the log's folder exists for cron's shell
    # New York time on a machine whose cron is not in New York: the wider, guarded line.
    meta = json.loads(text.split("# flowctl-entry: ")[1].splitlines()[0])
    assert meta["timezone"] == "America/New_York"


def test_the_flowctl_executable_is_absolute(project: Path) -> None:
    crontab = project / "crontab"
    run_flowctl("schedule", "install", "--file", str(crontab), str(project / "pipelines/hourly.yaml"))
    (line,) = block_lines(crontab.read_text())
    words = shlex.split(line.split(" && ", 1)[1])
    start = next(i for i, w in enumerate(words) if "=" not in w)
    assert words[start : start + 3] == [os.path.abspath(sys.executable), "-m", "flowctl"]
    assert any(w.startswith("PYTHONPATH=/") for w in words[:start])  # a checkout, not installed


def test_reinstall_is_idempotent(project: Path) -> None:
    crontab = project / "crontab"
    crontab.write_text(FOREIGN)
    assert run_flowctl("schedule", "install", "--file", str(crontab), cwd=project).returncode == 0
    first = crontab.read_bytes()
    again = run_flowctl("schedule", "install", "--file", str(crontab), cwd=project)
    assert again.returncode == 0
    assert "unchanged" in again.stdout
    assert crontab.read_bytes() == first


def test_reinstall_replaces_the_block_and_only_the_block(project: Path) -> None:
    crontab = project / "crontab"
    crontab.write_text(FOREIGN)
    run_flowctl("schedule", "install", "--file", str(crontab), cwd=project)
    with crontab.open("a") as fh:
        fh.write("15 4 * * * /usr/bin/added-later\n")
    etl = project / "pipelines" / "etl.yaml"
    etl.write_text(etl.read_text().replace('"30 2 * * *"', '"45 3 * * 1-5"'))
    done = run_flowctl("schedule", "install", "--file", str(crontab), str(etl), cwd=project)
    assert done.returncode == 0, done.stderr
    text = crontab.read_text()
    assert text.startswith(FOREIGN)
    assert text.endswith("# END flowctl schedule\n15 4 * * * /usr/bin/added-later\n")
    assert text.count("# BEGIN flowctl schedule") == 1
    (line,) = block_lines(text)
    assert "etl.yaml" in line and '"45 3 * * 1-5"' in text


def test_list_flags_a_line_installed_for_another_schedule(project: Path) -> None:
    crontab = project / "crontab"
    run_flowctl("schedule", "install", "--file", str(crontab), cwd=project)
    etl = project / "pipelines" / "etl.yaml"
    etl.write_text(etl.read_text().replace('"30 2 * * *"', '"0 4 * * *"'))
    listed = json.loads(run_flowctl("schedule", "list", "--file", str(crontab), "--json", cwd=project).stdout)
    stale = {s["name"]: s["installed"]["stale"] for s in listed["schedules"]}
    assert stale == {"etl": True, "hourly": False}
    text = run_flowctl("schedule", "list", "--file", str(crontab), str(etl)).stdout
    assert "STALE: installed for '30 2 * * *' (America/New_York)" in text


def test_uninstall_removes_the_block_and_nothing_else(project: Path) -> None:
    crontab = project / "crontab"
    crontab.write_text(FOREIGN)
    run_flowctl("schedule", "install", "--file", str(crontab), cwd=project)
    done = run_flowctl("schedule", "uninstall", "--file", str(crontab))
    assert done.returncode == 0
    assert "removed the flowctl block (2 pipeline(s))" in done.stdout
    assert crontab.read_text() == FOREIGN
    again = run_flowctl("schedule", "uninstall", "--file", str(crontab))
    assert again.returncode == 0 and "no flowctl block" in again.stdout
    assert crontab.read_text() == FOREIGN


def test_ref_pins_the_line_to_a_release(git_project: Path) -> None:
    project = git_project
    crontab = project / "crontab"
    etl = str(project / "pipelines" / "etl.yaml")
    done = run_flowctl("schedule", "install", "--file", str(crontab), "--ref", "latest-release", etl)
    assert done.returncode == 0, done.stderr
    (line,) = block_lines(crontab.read_text())
    assert " --ref latest-release " in line  # resolved by each run, not now
    run_flowctl("schedule", "install", "--file", str(crontab), "--ref", "etl/v1.2.0", cwd=project)
    text = crontab.read_text()
    for line in block_lines(text):
        assert " --ref etl/v1.2.0 " in line
    assert '"ref": "etl/v1.2.0"' in text
    listed = json.loads(run_flowctl("schedule", "list", "--file", str(crontab), "--json", cwd=project).stdout)
    assert {s["installed"]["ref"] for s in listed["schedules"]} == {"etl/v1.2.0"}


def test_a_ref_that_does_not_resolve_is_refused(git_project: Path) -> None:
    crontab = git_project / "crontab"
    typo = run_flowctl("schedule", "install", "--file", str(crontab), "--ref", "etl/v9.9.9", cwd=git_project)
    assert typo.returncode == 2
    assert "no such tag, branch or commit" in typo.stderr
    hourly = str(git_project / "pipelines" / "hourly.yaml")  # no hourly/v* or v* tag
    none = run_flowctl("schedule", "install", "--file", str(crontab), "--ref", "latest-release", hourly)
    assert none.returncode == 2
    assert "no release tags for hourly" in none.stderr
    assert not crontab.exists()


def test_ref_outside_a_git_repository_is_refused(project: Path) -> None:
    done = run_flowctl("schedule", "install", "--file", str(project / "c"), "--ref", "v1.0.0", cwd=project)
    assert done.returncode == 2
    assert "not in a git repository" in done.stderr


def test_metrics_file_per_pipeline(project: Path) -> None:
    crontab = project / "crontab"
    shared = run_flowctl("schedule", "install", "--file", str(crontab), "--metrics-file", "/tmp/x.prom", cwd=project)
    assert shared.returncode == 2
    assert "{name}" in shared.stderr
    done = run_flowctl(
        "schedule", "install", "--file", str(crontab), "--metrics-file", str(project / "m" / "{name}.prom"), cwd=project
    )
    assert done.returncode == 0, done.stderr
    lines = block_lines(crontab.read_text())
    assert any(f"--metrics-file {project / 'm' / 'etl.prom'}" in line for line in lines)
    assert any(f"--metrics-file {project / 'm' / 'hourly.prom'}" in line for line in lines)


def test_dry_run_prints_the_block_and_changes_nothing(project: Path) -> None:
    crontab = project / "crontab"
    crontab.write_text(FOREIGN)
    done = run_flowctl("schedule", "install", "--file", str(crontab), "--dry-run", cwd=project)
    assert done.returncode == 0
    assert done.stdout.startswith("# BEGIN flowctl schedule")
    assert done.stdout.rstrip().endswith("# END flowctl schedule")
    assert crontab.read_text() == FOREIGN


def test_cron_d_file_has_the_user_column(project: Path) -> None:
    import pwd

    target = project / "flowctl-jobs"
    done = run_flowctl("schedule", "install", "--cron-d", str(target), cwd=project)
    assert done.returncode == 0, done.stderr
    me = pwd.getpwuid(os.geteuid()).pw_name
    for line in block_lines(target.read_text()):
        fields = line.split()
        user_at = 1 if fields[0].startswith("@") else 5
        assert fields[user_at] == me
        assert fields[user_at + 1] == "cd"
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    other = run_flowctl("schedule", "install", "--cron-d", str(target), "--user", "nobody", cwd=project)
    assert other.returncode == 0
    assert all(" nobody cd " in line for line in block_lines(target.read_text()))
    removed = run_flowctl("schedule", "uninstall", "--cron-d", str(target))
    assert removed.returncode == 0
    assert not target.exists()  # nothing but the block was in it


def test_cron_d_name_with_a_dot_is_refused(project: Path) -> None:
    done = run_flowctl("schedule", "install", "--cron-d", str(project / "flowctl.cron"), cwd=project)
    assert done.returncode == 2
    assert "no dots" in done.stderr and "flowctl-cron" in done.stderr
    assert not (project / "flowctl.cron").exists()


def test_fake_crontab_program_receives_the_block(project: Path, fake_crontab: dict[str, str]) -> None:
    store = Path(fake_crontab["FAKE_CRONTAB_STORE"])
    store.write_text(FOREIGN)
    done = run_flowctl("schedule", "install", env=fake_crontab, cwd=project)
    assert done.returncode == 0, done.stderr
    assert "in your crontab" in done.stdout
    text = store.read_text()
    assert text.startswith(FOREIGN)
    assert len(block_lines(text)) == 2
    calls = Path(str(store) + ".calls").read_text().splitlines()
    assert calls == ["-l", "-"]
    again = run_flowctl("schedule", "install", env=fake_crontab, cwd=project)
    assert "unchanged" in again.stdout
    assert Path(str(store) + ".calls").read_text().splitlines() == ["-l", "-", "-l"]  # nothing to write
    listed = json.loads(run_flowctl("schedule", "list", "--json", env=fake_crontab, cwd=project).stdout)
    assert listed["crontab"] == "your crontab"
    assert all(s["installed"] is not None for s in listed["schedules"])
    removed = run_flowctl("schedule", "uninstall", env=fake_crontab)
    assert removed.returncode == 0
    assert store.read_text() == FOREIGN


def test_fake_crontab_with_no_crontab_yet(project: Path, fake_crontab: dict[str, str]) -> None:
    done = run_flowctl("schedule", "install", str(project / "pipelines/hourly.yaml"), env=fake_crontab)
    assert done.returncode == 0, done.stderr
    text = Path(fake_crontab["FAKE_CRONTAB_STORE"]).read_text()
    assert text.startswith("# BEGIN flowctl schedule") and len(block_lines(text)) == 1


def test_missing_crontab_program_is_a_clear_usage_error(project: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    for args in (("install",), ("uninstall",)):
        done = run_flowctl("schedule", *args, env={"PATH": str(empty)}, cwd=project)
        assert done.returncode == 2
        assert "'crontab' program is not installed" in done.stderr
        assert "--file" in done.stderr
        assert "Traceback" not in done.stderr
    listed = run_flowctl("schedule", "list", env={"PATH": str(empty)}, cwd=project)
    assert listed.returncode == 0  # list still works, without install times
    assert "install times unknown" in listed.stderr


def test_nothing_scheduled_is_a_usage_error(project: Path) -> None:
    done = run_flowctl("schedule", "install", "--file", str(project / "c"), str(project / "pipelines/adhoc.yaml"))
    assert done.returncode == 2
    assert "has a schedule" in done.stderr


def test_invalid_pipeline_is_reported_with_its_line(project: Path) -> None:
    bad = project / "pipelines" / "bad.yaml"
    bad.write_text("version: 1\nname: bad\nschedule: \"0 0 L * *\"\nsteps:\n  a:\n    run: 'true'\n")
    done = run_flowctl("schedule", "install", "--file", str(project / "c"), str(bad))
    assert done.returncode == 2
    assert "bad.yaml:3:11" in done.stderr  # validation shares the cron parser: L is not cron
    assert "day of month field 'l'" in done.stderr
    assert run_flowctl("validate", str(bad)).returncode == 1


def test_next_prints_fire_times_across_dst(project: Path) -> None:
    done = run_flowctl(
        "schedule", "next", str(project / "pipelines/etl.yaml"), "--count", "3", "--after", "2026-03-07T12:00Z"
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "30 2 * * *: at 02:30 every day (America/New_York)"
    assert [line.split()[0] for line in lines[1:]] == [
        "2026-03-08T03:00:00-04:00",
        "2026-03-09T02:30:00-04:00",
        "2026-03-10T02:30:00-04:00",
    ]
    as_json = json.loads(
        run_flowctl("schedule", "next", str(project / "pipelines/etl.yaml"), "-n", "2", "--json",
                    "--after", "2026-11-01T00:00Z").stdout
    )
    assert as_json["next"] == ["2026-11-01T02:30:00-05:00", "2026-11-02T02:30:00-05:00"]
    assert as_json["description"] == "at 02:30 every day"


def test_next_usage_errors(project: Path) -> None:
    adhoc = run_flowctl("schedule", "next", str(project / "pipelines/adhoc.yaml"))
    assert adhoc.returncode == 2 and "has no schedule" in adhoc.stderr
    count = run_flowctl("schedule", "next", str(project / "pipelines/etl.yaml"), "--count", "0")
    assert count.returncode == 2
    after = run_flowctl("schedule", "next", str(project / "pipelines/etl.yaml"), "--after", "tomorrow")
    assert after.returncode == 2 and "ISO 8601" in after.stderr


def test_list_text_without_a_tty(project: Path) -> None:
    crontab = project / "crontab"
    run_flowctl("schedule", "install", "--file", str(crontab), cwd=project)
    done = run_flowctl("schedule", "list", "--file", str(crontab), cwd=project)
    assert done.returncode == 0, done.stderr
    assert "schedule   30 2 * * *: at 02:30 every day (America/New_York)" in done.stdout
    assert "schedule   @hourly: every hour" in done.stdout
    assert "last run   never" in done.stdout
    assert "missed     none" in done.stdout
    assert "adhoc.yaml: no schedule" in done.stdout
    assert "\x1b[" not in done.stdout

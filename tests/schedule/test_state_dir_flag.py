"""``schedule list`` flags an installed line whose state folder (where its overlap lock lives) is
not the one a manual ``flowctl run`` would use; lines keep pointing at the folder their runs use."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from tests.conftest import run_flowctl
from tests.schedule.test_schedule_cli import block_lines


def listed(project: Path, env: dict[str, str]) -> dict[str, dict[str, object]]:
    got = run_flowctl("schedule", "list", "--json", env=env, cwd=project)
    assert got.returncode == 0, got.stderr
    return {s["name"]: s for s in json.loads(got.stdout)["schedules"]}


def line_state_dir(store: Path, name: str) -> str:
    line = next(line for line in block_lines(store.read_text()) if f"{name}.yaml" in line)
    words = shlex.split(line.split(" && ", 1)[1].replace("\\%", "%"))
    return words[words.index("--state-dir") + 1]


def test_a_line_installed_beside_the_pipeline_keeps_its_folder_and_is_flagged_once_they_part(
    git_project: Path, fake_crontab: dict[str, str]
) -> None:
    store = Path(fake_crontab["FAKE_CRONTAB_STORE"])
    project = git_project.resolve()
    beside = project / "pipelines" / ".flowctl"
    # A line as flowctl wrote it when state sat beside the pipeline file (install makes the
    # folder of its log, so the folder exists from then on).
    done = run_flowctl("schedule", "install", "--state-dir", str(beside), env=fake_crontab, cwd=project)
    assert done.returncode == 0, done.stderr
    assert line_state_dir(store, "etl") == str(beside) and (beside / "cron").is_dir()
    # A manual run finds that folder by the walk up: one folder, one lock, one history.
    cron_like = run_flowctl("run", str(project / "pipelines/etl.yaml"), "--state-dir", str(beside), "--no-progress")
    manual = run_flowctl("run", "pipelines/etl.yaml", cwd=project)
    assert cron_like.returncode == manual.returncode == 0, manual.stderr
    assert not (project / ".flowctl").exists()
    assert len(json.loads(run_flowctl("runs", "--json", cwd=project / "pipelines").stdout)) == 2
    etl = listed(project, fake_crontab)["etl"]
    assert etl["manual_state_dir"] == str(beside)
    assert etl["installed"]["state_dir_differs"] is False  # type: ignore[index]
    reinstalled = run_flowctl("schedule", "install", env=fake_crontab, cwd=project)
    assert "unchanged" in reinstalled.stdout and line_state_dir(store, "etl") == str(beside)

    # The user moves the state to the project root (docs/finding-runs.md): the line still
    # points at the old folder, where its lock would be, so list says so.
    beside.rename(project / ".flowctl")
    etl = listed(project, fake_crontab)["etl"]
    assert etl["manual_state_dir"] == str(project / ".flowctl")
    assert etl["installed"]["state_dir"] == str(beside)  # type: ignore[index]
    assert etl["installed"]["state_dir_differs"] is True  # type: ignore[index]
    text = run_flowctl("schedule", "list", env=fake_crontab, cwd=project).stdout
    assert (
        f"STATE FOLDER DIFFERS: its runs keep state and the overlap lock in {beside}, a manual "
        f"`flowctl run` would use {project / '.flowctl'}; run `flowctl schedule install` again"
    ) in text
    # Installing again moves the line to where manual runs are.
    moved = run_flowctl("schedule", "install", env=fake_crontab, cwd=project)
    assert moved.returncode == 0 and line_state_dir(store, "etl") == str(project / ".flowctl")
    assert listed(project, fake_crontab)["etl"]["installed"]["state_dir_differs"] is False  # type: ignore[index]
    assert "STATE FOLDER DIFFERS" not in run_flowctl("schedule", "list", env=fake_crontab, cwd=project).stdout


def test_a_line_with_its_own_state_dir_is_flagged(git_project: Path, fake_crontab: dict[str, str], tmp_path: Path) -> None:
    chosen = tmp_path / "cron-state"
    done = run_flowctl("schedule", "install", "--state-dir", str(chosen), env=fake_crontab, cwd=git_project)
    assert done.returncode == 0, done.stderr
    flags = {name: s["installed"]["state_dir_differs"] for name, s in listed(git_project, fake_crontab).items()}  # type: ignore[index]
    assert flags == {"etl": True, "hourly": True}
    # With the same folder for manual runs (the variable), they agree again.
    same = listed(git_project, {**fake_crontab, "FLOWCTL_STATE_DIR": str(chosen)})
    assert [s["installed"]["state_dir_differs"] for s in same.values()] == [False, False]  # type: ignore[index]


def test_a_fresh_install_in_a_git_project_uses_the_project_folder(
    git_project: Path, fake_crontab: dict[str, str]
) -> None:
    store = Path(fake_crontab["FAKE_CRONTAB_STORE"])
    project = git_project.resolve()
    assert run_flowctl("schedule", "install", env=fake_crontab, cwd=project / "pipelines").returncode == 0
    assert line_state_dir(store, "etl") == line_state_dir(store, "hourly") == str(project / ".flowctl")
    assert (project / ".flowctl" / "cron").is_dir()
    flags = {name: s["installed"]["state_dir_differs"] for name, s in listed(project, fake_crontab).items()}  # type: ignore[index]
    assert flags == {"etl": False, "hourly": False}

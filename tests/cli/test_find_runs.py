"""Finding your runs (issue 13): one state folder per project, wherever commands are typed from;
``latest`` wherever a run id goes; "no runs here" always says where they are instead."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from tests.conftest import run_flowctl
from tests.diff import gitrepo
from tests.diff.gitrepo import GitRepo

git_repo = gitrepo.git_repo

OK = """
version: 1
name: ok
steps:
  a: {run: echo a-out}
  b: {run: echo b-out, needs: [a]}
"""

BAD = """
version: 1
name: bad
steps:
  first: {run: echo first-out}
  boom: {run: "echo boom-out; exit 3", needs: [first]}
"""


@pytest.fixture
def project(git_repo: GitRepo) -> GitRepo:
    git_repo.write("pipelines/ok.yaml", OK)
    git_repo.write("pipelines/bad.yaml", BAD)
    git_repo.write("scripts/tool.sh", "true\n")
    git_repo.commit("pipelines")
    return git_repo


def run_id_of(result) -> str:  # type: ignore[no-untyped-def]
    match = re.search(r"^Run (\S+)$", result.stdout, re.M)
    assert match, result.stdout + result.stderr
    return match.group(1)


def ids(cwd: Path, *args: str) -> list[str]:
    got = run_flowctl("runs", "--json", *args, cwd=cwd)
    assert got.returncode == 0, got.stderr
    return [r["run_id"] for r in json.loads(got.stdout)]


def test_runs_started_anywhere_land_in_the_project_and_are_found_from_anywhere_in_it(
    project: GitRepo, tmp_path: Path
) -> None:
    root = project.path
    started = [
        run_flowctl("run", "pipelines/ok.yaml", cwd=root),
        run_flowctl("run", "ok.yaml", cwd=root / "pipelines"),
        run_flowctl("run", str(root / "pipelines" / "ok.yaml"), cwd=tmp_path),
    ]
    assert [r.returncode for r in started] == [0, 0, 0], [r.stderr for r in started]
    assert (root / ".flowctl" / "state.db").is_file()
    assert not (root / "pipelines" / ".flowctl").exists() and not (tmp_path / ".flowctl").exists()
    newest_first = [run_id_of(r) for r in reversed(started)]
    for cwd in (root, root / "pipelines", root / "scripts"):
        assert ids(cwd) == newest_first
        shown = run_flowctl("show", "latest", cwd=cwd)
        assert shown.returncode == 0 and shown.stdout.startswith(f"Run {newest_first[0]} of ok"), shown.stderr
    assert ids(tmp_path, str(root / "pipelines" / "ok.yaml")) == newest_first  # from the file's folder
    gc = run_flowctl("gc", "--keep", "1", "--dry-run", cwd=root / "scripts")
    assert gc.returncode == 0 and "would prune 2 run(s)" in gc.stdout, gc.stderr
    doctor = run_flowctl("doctor", cwd=root / "pipelines")
    assert doctor.stdout.startswith(f"state folder {root / '.flowctl'}\n"), doctor.stdout + doctor.stderr

    # Outside the project: nothing here, and it says where the runs are and what to type.
    outside = run_flowctl("runs", cwd=tmp_path)
    assert outside.returncode == 0
    lines = outside.stdout.splitlines()
    assert lines[0] == "no runs recorded in .flowctl"
    assert f"  project/.flowctl: 3 run(s), newest {newest_first[0]} (ok, succeeded)" in lines
    assert lines[-1] == "read them with: flowctl runs --state-dir project/.flowctl"
    followed = run_flowctl(*shlex.split(lines[-1].split(": ", 1)[1])[1:], cwd=tmp_path)
    assert followed.returncode == 0 and newest_first[0] in followed.stdout
    show = run_flowctl("show", newest_first[1], cwd=tmp_path)
    assert show.returncode == 2 and "Traceback" not in show.stderr
    assert f"flowctl show {newest_first[1]} --state-dir project/.flowctl" in show.stderr


def test_state_beside_a_pipeline_keeps_working_and_is_pointed_to_from_the_root(project: GitRepo) -> None:
    root = project.path
    legacy = root / "pipelines" / ".flowctl"
    # As flowctl kept it before: beside the pipeline file.
    old = run_flowctl("run", "pipelines/ok.yaml", "--state-dir", str(legacy), cwd=root)
    new = run_flowctl("run", "pipelines/ok.yaml", cwd=root)  # the walk up finds it
    assert old.returncode == new.returncode == 0, new.stderr
    assert not (root / ".flowctl").exists()
    assert ids(root / "pipelines") == [run_id_of(new), run_id_of(old)]
    here = run_flowctl("runs", cwd=root)
    assert "no runs recorded in .flowctl" in here.stdout
    assert "  pipelines/.flowctl: 2 run(s)" in here.stdout
    # A project folder made later does not hide them: an id recorded there is pointed to.
    (root / ".flowctl").mkdir()
    assert run_flowctl("run", "pipelines/bad.yaml", "--state-dir", str(root / ".flowctl"), cwd=root).returncode == 1
    missing = run_flowctl("show", run_id_of(old), cwd=root)
    assert missing.returncode == 2
    assert f"run {run_id_of(old)} is recorded in pipelines/.flowctl" in missing.stderr
    assert f"flowctl show {run_id_of(old)} --state-dir pipelines/.flowctl" in missing.stderr
    logs = run_flowctl("logs", run_id_of(old), "a", cwd=root)
    assert f"flowctl logs {run_id_of(old)} a --state-dir pipelines/.flowctl" in logs.stderr


def test_latest_works_wherever_a_run_id_does(project: GitRepo) -> None:
    root = project.path
    first_ok = run_id_of(run_flowctl("run", "pipelines/ok.yaml", cwd=root))
    failed = run_flowctl("run", "pipelines/bad.yaml", cwd=root)
    bad = run_id_of(failed)
    last_ok = run_id_of(run_flowctl("run", "pipelines/ok.yaml", cwd=root))

    def shown(*args: str) -> str:
        got = run_flowctl("show", *args, "--json", cwd=root / "scripts")
        assert got.returncode == 0, got.stderr
        return str(json.loads(got.stdout)["run"]["run_id"])

    assert shown("latest") == shown("latest~0") == last_ok
    assert shown("latest~1") == bad and shown("latest~2") == first_ok
    assert shown("latest", "--pipeline", str(root / "pipelines" / "bad.yaml")) == bad
    assert shown("latest~1", "--pipeline", "ok") == first_ok  # a pipeline name works too
    beyond = run_flowctl("show", "latest~3", cwd=root)
    assert beyond.returncode == 2 and "there is no latest~3: 3 runs recorded, the oldest is latest~2" in beyond.stderr
    typo = run_flowctl("show", "latest~one", cwd=root)
    assert typo.returncode == 2 and "'latest~one' is not a run id" in typo.stderr and "Traceback" not in typo.stderr

    # logs: no step -> the root failure's log, or for a run that succeeded, its steps' log commands
    failure = run_flowctl("logs", "latest~1", cwd=root)
    assert failure.returncode == 0 and failure.stdout == "boom-out\n"
    assert f"run {bad} failed at step boom" in failure.stderr
    data = json.loads(run_flowctl("logs", "latest", "--pipeline", "pipelines/bad.yaml", "--json", cwd=root).stdout)
    assert (data["run_id"], data["step"], data["text"]) == (bad, "boom", "boom-out\n")
    listing = run_flowctl("logs", "latest", cwd=root)
    assert listing.returncode == 0
    assert f"flowctl logs {last_ok} a" in listing.stdout and f"flowctl logs {last_ok} b" in listing.stdout
    for line in listing.stdout.splitlines()[2:]:  # every command listed prints that step's log
        command = shlex.split(line[line.index("flowctl logs"):])
        printed = run_flowctl(*command[1:], cwd=root)
        assert printed.stdout == f"{command[-1]}-out\n"
    assert run_flowctl("logs", "latest~2", "b", cwd=root).stdout == "b-out\n"
    no_step = run_flowctl("logs", "latest", "--attempt", "2", cwd=root)
    assert no_step.returncode == 2 and "--attempt needs a STEP" in no_step.stderr

    # resume --run-id latest: the newest run of the pipeline being run, not of the project
    resumed = run_flowctl("run", "pipelines/bad.yaml", "--run-id", "latest", cwd=root)
    assert resumed.returncode == 1 and f"resuming run {bad}: reusing 1 step(s), running 1" in resumed.stdout
    explained = run_flowctl("plan", "pipelines/ok.yaml", "--explain", "--resume", "--run-id", "latest~1", "--json", cwd=root)
    assert explained.returncode == 0 and json.loads(explained.stdout)["resumes"] == first_ok


def test_the_run_summary_prints_commands_that_work_where_they_are_typed(project: GitRepo, tmp_path: Path) -> None:
    for cwd, pipeline in ((project.path, "pipelines/bad.yaml"), (tmp_path, str(project.path / "pipelines/bad.yaml"))):
        result = run_flowctl("run", pipeline, cwd=cwd)
        assert result.returncode == 1
        run_id = run_id_of(result)
        details = next(line for line in result.stdout.splitlines() if line.startswith("Details: "))
        failure = next(line for line in result.stdout.splitlines() if line.startswith("Failure log: "))
        words = shlex.split(failure.split(": ", 1)[1])
        assert words[:4] == ["flowctl", "logs", run_id, "boom"]
        assert ("--state-dir" in words) == (cwd == tmp_path)  # only where the working folder would miss it
        shown = run_flowctl(*shlex.split(details.split(": ", 1)[1])[1:], cwd=cwd)
        assert shown.returncode == 0 and shown.stdout.startswith(f"Run {run_id} of bad"), shown.stderr
        assert run_flowctl(*words[1:], cwd=cwd).stdout == "boom-out\n"
    ok = run_flowctl("run", "pipelines/ok.yaml", cwd=project.path)
    assert f"Step logs: flowctl logs {run_id_of(ok)}\n" in ok.stdout


def test_a_state_dir_that_is_a_file_is_a_usage_error(project: GitRepo) -> None:
    notes = project.write("notes.txt", "mine\n")
    for args in (("run", "pipelines/ok.yaml"), ("runs",), ("show", "latest"), ("stats", "pipelines/ok.yaml")):
        got = run_flowctl(*args, "--state-dir", str(notes), cwd=project.path)
        assert got.returncode == 2, (args, got.stdout, got.stderr)
        assert f"--state-dir {notes} is a file, not a folder" in got.stderr and "Traceback" not in got.stderr
    via_env = run_flowctl("runs", cwd=project.path, env={"FLOWCTL_STATE_DIR": str(notes)})
    assert via_env.returncode == 2 and "$FLOWCTL_STATE_DIR" in via_env.stderr
    assert notes.read_text() == "mine\n"


def test_flowctl_state_dir_still_overrides_the_project_folder(project: GitRepo, tmp_path: Path) -> None:
    chosen = tmp_path / "chosen"
    env = {"FLOWCTL_STATE_DIR": str(chosen)}
    assert run_flowctl("run", "pipelines/ok.yaml", cwd=project.path, env=env).returncode == 0
    assert (chosen / "state.db").is_file() and not (project.path / ".flowctl").exists()
    assert len(ids(project.path / "scripts", "--state-dir", str(chosen))) == 1


def test_init_makes_the_project_state_folder_so_runs_are_found_from_its_root_outside_git(tmp_path: Path) -> None:
    made = run_flowctl("init", "nightly", cwd=tmp_path)
    assert made.returncode == 0 and "created .flowctl/" in made.stdout, made.stderr
    assert (tmp_path / ".flowctl" / ".gitignore").read_text().splitlines()[-1] == "*"
    result = run_flowctl("run", "nightly.yaml", cwd=tmp_path / "pipelines")
    assert result.returncode == 0, result.stderr
    assert ids(tmp_path) == [run_id_of(result)]
    assert not (tmp_path / "pipelines" / ".flowctl").exists()
    again = run_flowctl("init", "second", cwd=tmp_path)
    assert again.returncode == 0 and ".flowctl" not in again.stdout  # made once, then left alone
    assert ids(tmp_path) == [run_id_of(result)]


def test_resume_and_alerts_say_where_the_runs_are(project: GitRepo) -> None:
    root = project.path
    other = root / "ops" / ".flowctl"  # runs recorded with an explicit --state-dir
    assert run_flowctl("run", "pipelines/bad.yaml", "--state-dir", str(other), cwd=root).returncode == 1
    resume = run_flowctl("run", "pipelines/bad.yaml", "--resume", cwd=root)
    assert resume.returncode == 2 and "nothing to resume" in resume.stderr
    assert "ops/.flowctl: 1 run(s)" in resume.stderr
    assert "flowctl run pipelines/bad.yaml --resume --state-dir ops/.flowctl" in resume.stderr
    alerts = run_flowctl("alerts", "check", "pipelines/bad.yaml", cwd=root)
    assert alerts.returncode == 2 and "no recorded run of bad" in alerts.stderr
    assert "flowctl alerts check pipelines/bad.yaml --state-dir ops/.flowctl" in alerts.stderr
    followed = run_flowctl("run", "pipelines/bad.yaml", "--resume", "--state-dir", "ops/.flowctl", cwd=root)
    assert followed.returncode == 1 and "resuming run" in followed.stdout


def test_an_empty_state_folder_in_a_subfolder_points_up_at_the_projects_runs(project: GitRepo) -> None:
    """An accidental ``flowctl init`` in a subfolder leaves an empty ``.flowctl`` there: the
    commands typed there find it first, and then say where the project's runs are (above it)
    with the command to type (trial of main: "no runs recorded", nothing else)."""
    root = project.path
    assert run_flowctl("run", "pipelines/ok.yaml", cwd=root).returncode == 0
    sub = root / "scripts"
    (sub / ".flowctl").mkdir()
    listed = run_flowctl("runs", cwd=sub)
    assert listed.returncode == 0, listed.stderr
    assert "runs are recorded elsewhere under the project" in listed.stdout, listed.stdout
    assert f"flowctl runs --state-dir {root / '.flowctl'}" in listed.stdout, listed.stdout
    shown = run_flowctl("show", "latest", cwd=sub)
    assert shown.returncode == 2 and f"flowctl show latest --state-dir {root / '.flowctl'}" in shown.stderr


def test_a_misspelt_pipeline_name_gets_a_did_you_mean_from_the_names_with_runs(project: GitRepo) -> None:
    root = project.path
    assert run_flowctl("run", "pipelines/ok.yaml", cwd=root).returncode == 0
    assert run_flowctl("run", "pipelines/bad.yaml", cwd=root).returncode == 1
    shown = run_flowctl("show", "latest", "--pipeline", "bda", cwd=root)
    assert shown.returncode == 2 and "did you mean 'bad'?" in shown.stderr, shown.stderr
    listed = run_flowctl("runs", "bda", cwd=root)
    assert "did you mean 'bad'?" in listed.stdout, listed.stdout

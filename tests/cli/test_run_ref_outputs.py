"""`run --ref`: nothing a step writes in REF's worktree vanishes without the user being told
(issue 13). Real git repositories, real `flowctl run` processes, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flowctl.diff.worktree import kept_worktrees
from flowctl.spec import discover_pipelines
from flowctl.state.lock import held
from tests.conftest import flowctl_env, run_flowctl
from tests.diff import gitrepo
from tests.diff.gitrepo import GitRepo

git_repo = gitrepo.git_repo

WAREHOUSE = """
version: 1
name: warehouse
steps:
  load:
    run: echo rows > ../warehouse.db && mkdir -p ../data && echo a,b > ../data/out.csv
    outputs: [../warehouse.db]
  report:
    needs: [load]
    run: cat ../warehouse.db
"""


@pytest.fixture
def project(git_repo: GitRepo) -> GitRepo:
    git_repo.write("pipelines/warehouse.yaml", WAREHOUSE)
    git_repo.write(".gitignore", "warehouse.db\n")  # as such files usually are: git status must still see it
    git_repo.commit("one")
    git_repo.tag("warehouse/v1.0.0", "first")
    git_repo.write("pipelines/warehouse.yaml", WAREHOUSE.replace("echo rows", "echo more rows"))
    git_repo.commit("two")
    return git_repo


def _state(repo: GitRepo) -> Path:
    """The state folder `run` chose: the project's (top level), or beside the pipeline file as
    flowctl did before the state folder became the project's."""
    top = repo.path / ".flowctl"
    return top if top.is_dir() else repo.path / "pipelines" / ".flowctl"


def _worktrees(repo: GitRepo) -> list[str]:
    return [line.split()[1] for line in repo.repo.git.worktree("list", "--porcelain").splitlines()
            if line.startswith("worktree ")]


def test_written_files_keep_the_worktree_and_the_run_says_where_then_gc_removes_it(project: GitRepo) -> None:
    result = run_flowctl("run", "pipelines/warehouse.yaml", "--ref", "warehouse/v1.0.0", "--no-progress",
                         cwd=project.path)
    assert result.returncode == 0, result.stdout + result.stderr
    (kept,) = kept_worktrees(_state(project) / "worktrees")
    assert (Path(kept.path) / "warehouse.db").read_text() == "rows\n"  # the release's command, kept
    assert (kept.pipeline, kept.ref) == ("warehouse", "warehouse/v1.0.0")
    tail = result.stdout.rstrip().splitlines()[-2:]
    assert tail[0] == (
        f"Outputs: the steps wrote 2 files in the worktree of warehouse/v1.0.0, kept at {kept.path}: "
        "data/out.csv, warehouse.db"
    )
    assert "flowctl gc" in tail[1] and "--worktree DIR" in tail[1]
    assert os.path.realpath(kept.path) in [os.path.realpath(p) for p in _worktrees(project)]
    # The run records where it ran; the project's own git status does not see the worktree.
    runs = json.loads(run_flowctl("runs", "--json", cwd=project.path / "pipelines").stdout)
    run_id = (runs["runs"] if isinstance(runs, dict) else runs)[0]["run_id"]
    detail = json.loads(run_flowctl("show", run_id, "--json", cwd=project.path / "pipelines").stdout)
    provenance = detail["provenance"] if "provenance" in detail else detail["run"]["provenance"]
    assert provenance["git_worktree"] == kept.path
    project.repo.git.add("--all")  # what a user's `git add -A` would pick up
    staged = project.repo.git.diff("--cached", "--name-only").splitlines()
    assert staged and not [p for p in staged if "/worktrees/" in p], staged
    project.repo.git.reset()
    # Discovery never mistakes the worktree's pipeline files for the project's.
    assert discover_pipelines(project.path) == [project.path / "pipelines" / "warehouse.yaml"]

    dry = run_flowctl("gc", "--keep", "0", "--dry-run", cwd=project.path / "pipelines")
    assert dry.returncode == 0, dry.stderr
    assert f"would prune worktree {kept.path} (warehouse at warehouse/v1.0.0" in dry.stdout
    assert Path(kept.path, "warehouse.db").exists()
    gone = run_flowctl("gc", "--keep", "0", cwd=project.path / "pipelines")
    assert gone.returncode == 0, gone.stderr
    assert f"pruned worktree {kept.path}" in gone.stdout and "pruned 1 worktree(s) of `run --ref`" in gone.stdout
    assert not os.path.exists(kept.path)
    assert kept_worktrees(_state(project) / "worktrees") == []
    assert len(_worktrees(project)) == 1


def test_a_failed_run_keeps_what_it_wrote(project: GitRepo) -> None:
    project.write("pipelines/warehouse.yaml", WAREHOUSE.replace("run: cat ../warehouse.db", "run: exit 3"))
    project.commit("broken report")
    project.tag("warehouse/v1.1.0", "broken")
    result = run_flowctl("run", "pipelines/warehouse.yaml", "--ref", "warehouse/v1.1.0", "--no-progress",
                         cwd=project.path)
    assert result.returncode == 1
    (kept,) = kept_worktrees(_state(project) / "worktrees")
    assert "Outputs: the steps wrote 2 files" in result.stdout and kept.path in result.stdout


def _ref_with_a_hanging_step(project: GitRepo, tmp_path: Path) -> Path:
    """A release whose step writes warehouse.db, says it is up (its pid) and hangs."""
    up = tmp_path / "up"
    project.write("pipelines/hang.yaml", f"""
        version: 1
        name: hang
        steps:
          load:
            run: echo rows > ../warehouse.db && echo $$ > {up} && exec sleep 60
        """)
    project.commit("hang")
    project.tag("hang/v1.0.0", "hang")
    return up


def _start(project: GitRepo, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "flowctl", "run", *args], cwd=project.path, env=flowctl_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text().strip()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.02)
    return int(path.read_text())


def test_ctrl_c_keeps_what_the_steps_wrote_and_says_where(project: GitRepo, tmp_path: Path) -> None:
    up = _ref_with_a_hanging_step(project, tmp_path)
    proc = _start(project, "pipelines/hang.yaml", "--ref", "hang/v1.0.0", "--no-progress")
    _wait_for(up, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    (kept,) = kept_worktrees(_state(project) / "worktrees")
    assert (Path(kept.path) / "warehouse.db").read_text() == "rows\n"
    assert f"kept at {kept.path}: warehouse.db" in out


def test_a_killed_run_leaves_its_worktree_for_gc_to_find(project: GitRepo, tmp_path: Path) -> None:
    up = _ref_with_a_hanging_step(project, tmp_path)
    proc = _start(project, "pipelines/hang.yaml", "--ref", "hang/v1.0.0", "--no-progress")
    step = _wait_for(up, proc)
    proc.kill()
    proc.communicate(timeout=30)
    os.killpg(step, signal.SIGKILL)  # the step's group outlived its runner
    (kept,) = kept_worktrees(_state(project) / "worktrees")
    assert (Path(kept.path) / "warehouse.db").exists()
    # While the pipeline runs (its lock is held), gc leaves its worktrees alone.
    with held(_state(project), "hang"):
        busy = run_flowctl("gc", "--keep", "0", cwd=project.path / "pipelines")
    assert busy.returncode == 0 and f"kept worktree {kept.path}: hang is running" in busy.stdout
    assert os.path.exists(kept.path)
    assert run_flowctl("gc", "--older-than", "1h", cwd=project.path / "pipelines").returncode == 0
    assert os.path.exists(kept.path)  # younger than an hour
    done = json.loads(run_flowctl("gc", "--keep", "0", "--json", cwd=project.path / "pipelines").stdout)
    assert done["worktrees"] == [kept.path] and not os.path.exists(kept.path)


def test_worktree_dir_is_made_kept_and_reused(project: GitRepo, tmp_path: Path) -> None:
    mine = tmp_path / "release-one"
    first = run_flowctl("run", "pipelines/warehouse.yaml", "--ref", "warehouse/v1.0.0", "--worktree", str(mine),
                        "--no-progress", cwd=project.path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert (mine / "warehouse.db").read_text() == "rows\n"
    assert f"Outputs: in {mine} (your --worktree; it stays): the steps wrote 2 files there" in first.stdout
    assert kept_worktrees(_state(project) / "worktrees") == []  # nothing of flowctl's own
    # Again into the same folder: reused, so the step with outputs is up to date.
    again = run_flowctl("run", "pipelines/warehouse.yaml", "--ref", "warehouse/v1.0.0", "--worktree", str(mine),
                        "--no-progress", cwd=project.path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1 step(s) up to date" in again.stdout
    # gc never touches it.
    assert run_flowctl("gc", "--keep", "0", cwd=project.path / "pipelines").returncode == 0
    assert (mine / "warehouse.db").exists()


def test_worktree_dir_refuses_what_it_must_not_touch(project: GitRepo, tmp_path: Path) -> None:
    mine = tmp_path / "release-one"
    assert run_flowctl("run", "pipelines/warehouse.yaml", "--ref", "warehouse/v1.0.0", "--worktree", str(mine),
                       cwd=project.path).returncode == 0
    other = run_flowctl("run", "pipelines/warehouse.yaml", "--ref", "HEAD", "--worktree", str(mine), cwd=project.path)
    assert other.returncode == 2 and "holds commit" in other.stderr and "git worktree remove" in other.stderr
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine\n")
    taken = run_flowctl("run", "pipelines/warehouse.yaml", "--ref", "HEAD", "--worktree", str(busy), cwd=project.path)
    assert taken.returncode == 2 and "is not a worktree of this repository" in taken.stderr
    assert (busy / "notes.txt").read_text() == "mine\n"
    own = run_flowctl("run", "pipelines/warehouse.yaml", "--ref", "HEAD", "--worktree", ".", cwd=project.path)
    assert own.returncode == 2 and "own work tree" in own.stderr
    alone = run_flowctl("run", "pipelines/warehouse.yaml", "--worktree", str(tmp_path / "x"), cwd=project.path)
    assert alone.returncode == 2 and "--worktree needs --ref" in alone.stderr
    for r in (other, taken, own, alone):
        assert "Traceback" not in r.stderr

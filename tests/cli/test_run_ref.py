"""flowctl run PIPELINE --ref REF: the released version runs from a temporary worktree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flowctl.diff.worktree import checkout_at, kept_worktrees
from flowctl.errors import GitError, UsageError
from tests.conftest import run_flowctl
from tests.diff import gitrepo
from tests.diff.gitrepo import GitRepo

git_repo = gitrepo.git_repo

PIPELINE = """
version: 1
name: hello
steps:
  greet:
    run: sh ../scripts/greet.sh
  echo-script:
    needs: [greet]
    run: cat ../scripts/greet.sh
"""


@pytest.fixture
def project(git_repo: GitRepo) -> GitRepo:
    git_repo.write("pipelines/hello.yaml", PIPELINE)
    git_repo.write("scripts/greet.sh", 'echo "greeting from release one"\n')
    git_repo.commit("one")
    git_repo.tag("hello/v1.0.0", "first")
    git_repo.write("scripts/greet.sh", 'echo "greeting from release two"\n')
    git_repo.commit("two")
    return git_repo


def test_run_an_older_release_while_the_work_tree_has_uncommitted_edits(project: GitRepo) -> None:
    project.write("scripts/greet.sh", 'echo "uncommitted greeting"\n')
    project.write("pipelines/hello.yaml", PIPELINE.replace("cat ", "head -1 "))
    project.write("notes.txt", "untracked\n")
    before = {p: (project.path / p).read_bytes() for p in ("scripts/greet.sh", "pipelines/hello.yaml", "notes.txt")}
    status_before = project.repo.git.status("--porcelain")
    head_before = project.repo.head.commit.hexsha

    result = run_flowctl("run", "pipelines/hello.yaml", "--ref", "hello/v1.0.0", "--stream", cwd=project.path)
    assert result.returncode == 0, result.stdout + result.stderr
    commit = project.repo.commit("hello/v1.0.0").hexsha
    assert f"as of hello/v1.0.0 (commit {commit[:12]}) in worktree " in result.stdout
    # The steps wrote nothing there: the worktree is gone, and the run says so after its summary.
    assert result.stdout.rstrip().endswith(
        "Outputs: none in the worktree of hello/v1.0.0: the steps wrote nothing there, so it was removed"
    )
    assert "greeting from release one" in result.stdout
    assert "release two" not in result.stdout and "uncommitted greeting" not in result.stdout
    # The work tree, index and HEAD are exactly as they were; the temporary worktree is gone.
    assert {p: (project.path / p).read_bytes() for p in before} == before
    assert project.repo.head.commit.hexsha == head_before
    status_after = set(project.repo.git.status("--porcelain").splitlines()) - {"?? .flowctl/"}
    assert status_after == set(status_before.splitlines())
    assert len(project.repo.git.worktree("list").splitlines()) == 1
    # State stays in the project's folder at the top of the main work tree, never in the
    # temporary worktree (gone by now) nor beside the pipeline file.
    assert (project.path / ".flowctl" / "runs").is_dir()
    assert not (project.path / "pipelines" / ".flowctl").exists()
    shown = run_flowctl("show", "latest", "--json", cwd=project.path / "scripts")
    assert shown.returncode == 0, shown.stderr
    assert '"git_ref": "hello/v1.0.0"' in shown.stdout


def test_unknown_ref_and_missing_pipeline_are_exit_2(project: GitRepo) -> None:
    unknown = run_flowctl("run", "pipelines/hello.yaml", "--ref", "v9.9.9", cwd=project.path)
    assert unknown.returncode == 2 and "unknown git ref 'v9.9.9'" in unknown.stderr
    project.write("pipelines/new.yaml", PIPELINE.replace("name: hello", "name: new"))
    missing = run_flowctl("run", "pipelines/new.yaml", "--ref", "hello/v1.0.0", cwd=project.path)
    assert missing.returncode == 2 and "does not exist at hello/v1.0.0" in missing.stderr
    assert "Traceback" not in unknown.stderr + missing.stderr


def test_checkout_at_records_ref_and_commit_and_cleans_up(project: GitRepo, tmp_path: Path) -> None:
    with checkout_at("pipelines/hello.yaml", "hello/v1.0.0", worktrees=tmp_path / "wt", cwd=project.path) as at:
        assert at.provenance == {
            "git_ref": "hello/v1.0.0",
            "git_commit": project.repo.commit("hello/v1.0.0").hexsha,
            "git_dirty": False,
            "git_worktree": at.root,
        }
        assert os.path.dirname(at.root) == str(tmp_path / "wt")
        with open(os.path.join(at.root, "scripts", "greet.sh"), encoding="utf-8") as fh:
            assert "release one" in fh.read()
        assert os.path.isfile(at.pipeline_path)
        root = at.root
    assert not os.path.exists(root)
    assert len(project.repo.git.worktree("list").splitlines()) == 1


def test_checkout_at_cleans_up_after_an_error(project: GitRepo, tmp_path: Path) -> None:
    wt = tmp_path / "wt"
    with pytest.raises(RuntimeError), checkout_at("pipelines/hello.yaml", "HEAD~1", worktrees=wt, cwd=project.path) as at:
        root = at.root
        raise RuntimeError("a step blew up")
    assert not os.path.exists(root)
    assert kept_worktrees(wt) == []
    with pytest.raises(UsageError), checkout_at("pipelines/absent.yaml", "HEAD", worktrees=wt, cwd=project.path):
        pass
    with pytest.raises(GitError), checkout_at("pipelines/hello.yaml", "nope", worktrees=wt, cwd=project.path):
        pass


def test_the_run_records_ref_and_commit(project: GitRepo) -> None:
    """The run's provenance in the real state store names the ref and its commit."""
    import json

    result = run_flowctl("run", "pipelines/hello.yaml", "--ref", "hello/v1.0.0", "--no-progress", cwd=project.path)
    assert result.returncode == 0, result.stdout + result.stderr
    shown = run_flowctl("runs", "--json", cwd=project.path / "pipelines")
    runs = json.loads(shown.stdout)
    run_id = (runs["runs"] if isinstance(runs, dict) else runs)[0]["run_id"]
    detail = json.loads(run_flowctl("show", run_id, "--json", cwd=project.path / "pipelines").stdout)
    provenance = detail["provenance"] if "provenance" in detail else detail["run"]["provenance"]
    assert provenance["git_ref"] == "hello/v1.0.0"
    assert provenance["git_commit"] == project.repo.commit("hello/v1.0.0").hexsha
    assert provenance["git_dirty"] is False


def test_ref_latest_release_runs_the_newest_release(project: GitRepo) -> None:
    """What a schedule pinned with --ref latest-release runs: the newest release at each run."""
    first = run_flowctl("run", "pipelines/hello.yaml", "--ref", "latest-release", "--stream", "--no-progress",
                        cwd=project.path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "greeting from release one" in first.stdout  # the release, not HEAD's newer commit
    assert "as of hello/v1.0.0" in first.stdout
    project.tag("hello/v1.1.0", "second")
    second = run_flowctl("run", "pipelines/hello.yaml", "--ref", "latest-release", "--stream", "--no-progress",
                         cwd=project.path)
    assert second.returncode == 0 and "greeting from release two" in second.stdout


def test_ref_latest_release_without_releases_is_a_clear_error(git_repo: GitRepo) -> None:
    git_repo.write("pipelines/hello.yaml", PIPELINE)
    git_repo.write("scripts/greet.sh", 'echo "hi"\n')
    git_repo.commit("one")
    out = run_flowctl("run", "pipelines/hello.yaml", "--ref", "latest-release", cwd=git_repo.path)
    assert out.returncode == 2
    assert "no release tags for hello" in out.stderr and "Traceback" not in out.stderr

"""A ``run --ref`` (in a temporary worktree) never decides what is up to date in the work tree:
up-to-date decisions compare with the last success that ran in the same folder, and
``plan --explain`` says so (trial of main)."""

from __future__ import annotations

from tests.conftest import run_flowctl
from tests.diff import gitrepo
from tests.diff.gitrepo import GitRepo

git_repo = gitrepo.git_repo

PIPELINE = """\
version: 1
name: build
steps:
  make:
    run: echo built > out.txt
    outputs: [out.txt]
  pack:
    needs: [make]
    run: cat out.txt > pack.txt
    inputs: [out.txt]
    outputs: [pack.txt]
"""


def test_a_ref_run_does_not_make_the_work_tree_run_again(git_repo: GitRepo) -> None:
    git_repo.write("pipelines/build.yaml", PIPELINE)
    git_repo.write(".gitignore", "*.txt\n.flowctl/\n")
    git_repo.commit("one")
    git_repo.tag("v1.1.0", "release")
    done = run_flowctl("run", "pipelines/build.yaml", cwd=git_repo.path)
    assert done.returncode == 0, done.stdout + done.stderr
    ref = run_flowctl("run", "pipelines/build.yaml", "--ref", "v1.1.0", cwd=git_repo.path)
    assert ref.returncode == 0, ref.stdout + ref.stderr
    explained = run_flowctl("plan", "pipelines/build.yaml", "--explain", cwd=git_repo.path)
    assert explained.returncode == 0, explained.stderr
    assert "working directory changed" not in explained.stdout, explained.stdout
    assert "0 of 2 steps would run" in explained.stdout, explained.stdout
    again = run_flowctl("run", "pipelines/build.yaml", cwd=git_repo.path)
    assert again.returncode == 0 and "2 up to date" in again.stdout, again.stdout


def test_explain_says_a_success_in_another_worktree_does_not_count(git_repo: GitRepo) -> None:
    git_repo.write("pipelines/build.yaml", PIPELINE)
    git_repo.write(".gitignore", "*.txt\n.flowctl/\n")
    git_repo.commit("one")
    git_repo.tag("v1.1.0", "release")
    ref = run_flowctl("run", "pipelines/build.yaml", "--ref", "v1.1.0", cwd=git_repo.path)
    assert ref.returncode == 0, ref.stdout + ref.stderr
    explained = run_flowctl("plan", "pipelines/build.yaml", "--explain", cwd=git_repo.path)
    assert "working directory changed" not in explained.stdout, explained.stdout
    assert "never succeeded in this folder" in explained.stdout, explained.stdout
    assert "ran in another folder" in explained.stdout, explained.stdout

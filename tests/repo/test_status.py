"""``flowctl.repo.status``: HEAD's commit and the dirty flag, as git reports them, and what a
run records from them as provenance."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flowctl.repo.status import WorkTreeStatus, work_tree_status
from flowctl.state.provenance import provenance
from tests.diff.gitrepo import GitRepo


def test_outside_a_repository_there_is_no_status(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    assert work_tree_status(folder) is None
    assert provenance(str(folder / "p.yaml"), "abc") == {"pipeline_sha256": "abc", "git_commit": None, "git_dirty": None}


def test_without_a_git_executable_there_is_no_status(git_repo: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    git_repo.write("a.txt", "a\n")
    git_repo.commit()
    monkeypatch.setenv("PATH", str(git_repo.path / "no-such-bin"))
    assert work_tree_status(git_repo.path) is None


def test_a_repository_without_commits_has_no_commit(git_repo: GitRepo) -> None:
    git_repo.write("a.txt", "a\n")
    git_repo.repo.git.add("a.txt")
    status = work_tree_status(git_repo.path)
    assert status is not None and status.commit is None
    assert provenance(str(git_repo.path / "a.txt"), "x")["git_dirty"] is None  # as before: unknown, not clean


@pytest.mark.parametrize(
    ("change", "dirty"),
    [
        ("nothing", False),
        ("untracked file", False),  # untracked files never make a tree dirty (provenance, release)
        ("ignored file", False),
        ("modified", True),
        ("staged", True),
        ("deleted", True),
        ("touched, same content", False),
    ],
)
def test_dirty_means_a_tracked_file_differs_from_head(git_repo: GitRepo, change: str, dirty: bool) -> None:
    git_repo.write(".gitignore", "*.log\n")
    tracked = git_repo.write("pipelines/a.yaml", "a: 1\n")
    head = git_repo.commit()
    if change == "untracked file":
        git_repo.write("new.txt", "new\n")
    elif change == "ignored file":
        git_repo.write("run.log", "x\n")
    elif change == "modified":
        tracked.write_text("a: 2\n")
    elif change == "staged":
        tracked.write_text("a: 3\n")
        git_repo.repo.git.add(str(tracked))
    elif change == "deleted":
        tracked.unlink()
    elif change == "touched, same content":
        os.utime(tracked, (1, 1))
    sub = git_repo.path / "pipelines"
    assert work_tree_status(sub) == WorkTreeStatus(head, dirty)
    assert provenance(str(tracked), "sha") == {"pipeline_sha256": "sha", "git_commit": head, "git_dirty": dirty}


def test_a_detached_head_reports_its_commit(git_repo: GitRepo) -> None:
    first = git_repo.commit("one")
    git_repo.commit("two")
    git_repo.checkout(first)
    assert work_tree_status(git_repo.path) == WorkTreeStatus(first, False)


def test_asking_never_writes_the_index(git_repo: GitRepo) -> None:
    """A run asks while the user may be committing: the status must not refresh and rewrite
    ``.git/index`` (``GIT_OPTIONAL_LOCKS=0``), which a plain ``git status`` does here."""
    tracked = git_repo.write("a.txt", "a\n")
    head = git_repo.commit()
    os.utime(tracked, (1, 1))  # stat data differs from the index: a refresh would rewrite it
    index = git_repo.path / ".git" / "index"
    before = index.read_bytes()
    assert work_tree_status(git_repo.path) == WorkTreeStatus(head, False)
    assert index.read_bytes() == before
    git_repo.repo.git.status()  # the control: without the variable, git does rewrite it
    assert index.read_bytes() != before

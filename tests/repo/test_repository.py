"""``flowctl.repo.repository.Repository`` against a real repository: opening, refs, tags,
files at a revision, linked worktrees, and the helper processes it ends when closed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from flowctl.errors import GitError, UsageError
from flowctl.repo.repository import Repository, Revision, Tag
from flowctl.run import procs
from tests.diff.gitrepo import GitRepo


def git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True, text=True).stdout.strip()


def test_outside_a_repository_is_a_git_error_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(GitError) as caught:
        Repository(tmp_path)
    assert "is not inside a git repository" in caught.value.message
    assert caught.value.hint and "git init" in caught.value.hint


def test_a_bare_repository_is_refused(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "b.git")], check=True)
    with pytest.raises(GitError, match="bare repository"):
        Repository(tmp_path / "b.git")


def test_opened_from_a_subfolder_the_root_is_the_top_and_paths_are_relative_to_it(git_repo: GitRepo) -> None:
    git_repo.write("pipelines/etl.yaml", "x: 1\n")
    git_repo.commit()
    with Repository(git_repo.path / "pipelines") as repo:
        assert repo.root == os.path.realpath(git_repo.path)
        assert repo.relpath("etl.yaml") == "pipelines/etl.yaml"
        assert repo.relpath("../README.md") == "README.md"
        with pytest.raises(UsageError, match="outside the git repository"):
            repo.relpath("../../elsewhere.yaml")


def test_refs_resolve_to_the_commits_git_names(git_repo: GitRepo) -> None:
    first = git_repo.commit("one")
    git_repo.tag("v1.0.0", "annotated")
    git_repo.tag("light")
    second = git_repo.commit("two")
    with Repository(git_repo.path) as repo:
        assert repo.resolve("HEAD") == Revision("HEAD", second)
        assert repo.resolve("HEAD~1").commit == first
        assert repo.resolve("v1.0.0").commit == first  # an annotated tag, peeled
        assert repo.resolve("light").commit == first
        assert repo.resolve("main").commit == second
        assert repo.resolve(first[:10]).commit == first
        with pytest.raises(GitError) as caught:
            repo.resolve("no-such-ref")
        assert "unknown git ref 'no-such-ref'" in caught.value.message and caught.value.hint


def test_a_repository_without_commits_says_so(git_repo: GitRepo) -> None:
    with Repository(git_repo.path) as repo, pytest.raises(GitError, match="no commits yet"):
        repo.resolve("HEAD")


def test_files_are_read_at_a_revision_without_touching_the_work_tree(git_repo: GitRepo) -> None:
    git_repo.write("pipelines/etl.yaml", "old\n")
    git_repo.write("pipelines/nested/b.yml", "b\n")
    old = git_repo.commit("one")
    git_repo.write("pipelines/etl.yaml", "new\n")
    git_repo.commit("two")
    git_repo.write("pipelines/etl.yaml", "edited, uncommitted\n")
    with Repository(git_repo.path) as repo:
        assert repo.read(old, "pipelines/etl.yaml") == b"old\n"
        assert repo.read("HEAD", "pipelines/etl.yaml") == b"new\n"
        assert repo.read(old, "pipelines/absent.yaml") is None
        assert repo.read(old, "pipelines") is None  # a folder is no file
        assert repo.files_under(old, "pipelines") == ("pipelines/etl.yaml", "pipelines/nested/b.yml")
        assert repo.files_under(old, "absent") == ()
        assert repo.files_under(old, "pipelines/etl.yaml") == ()
    assert (git_repo.path / "pipelines/etl.yaml").read_text() == "edited, uncommitted\n"


def test_tags_are_peeled_and_filtered_by_reachability(git_repo: GitRepo) -> None:
    first = git_repo.commit("one")
    git_repo.tag("etl/v1.0.0", "annotated")
    git_repo.repo.git.checkout("-q", "-b", "side")
    side = git_repo.commit("side")
    git_repo.tag("v9.9.9")
    git_repo.checkout("main")
    with Repository(git_repo.path) as repo:
        assert repo.tags() == (Tag("etl/v1.0.0", first), Tag("v9.9.9", side))
        assert repo.tags(merged="HEAD") == (Tag("etl/v1.0.0", first),)
        assert repo.tags(merged="side") == (Tag("etl/v1.0.0", first), Tag("v9.9.9", side))


def test_history_positions_put_ancestors_first(git_repo: GitRepo) -> None:
    commits = [git_repo.commit(f"c{i}") for i in range(4)]
    with Repository(git_repo.path) as repo:
        chosen = frozenset({commits[3], commits[0], commits[2]})
        positions = repo.history_positions(chosen)
        assert sorted(chosen, key=positions.__getitem__) == [commits[0], commits[2], commits[3]]
        assert repo.history_positions(frozenset({commits[1]})) == {}


def test_commit_time_is_the_committer_date(git_repo: GitRepo) -> None:
    sha = git_repo.commit()
    with Repository(git_repo.path) as repo:
        assert repo.commit_time(sha) == float(git(git_repo.path, "log", "-1", "--format=%ct", sha))


def test_create_tag_makes_an_annotated_tag_once(git_repo: GitRepo) -> None:
    sha = git_repo.commit()
    with Repository(git_repo.path) as repo:
        assert repo.tags() == ()
        repo.create_tag("etl/v1.0.0", sha, "etl 1.0.0\n\n- first")
        assert repo.tags() == (Tag("etl/v1.0.0", sha),)  # what was read before is forgotten
        with pytest.raises(GitError, match="already exists"):
            repo.create_tag("etl/v1.0.0", sha, "again")
        with pytest.raises(GitError, match=r"could not create tag 'bad\.\.name'"):
            repo.create_tag("bad..name", sha, "x")
    assert git(git_repo.path, "cat-file", "-t", "etl/v1.0.0") == "tag"
    assert git(git_repo.path, "tag", "-l", "--format=%(contents)", "etl/v1.0.0") == "etl 1.0.0\n\n- first"


def test_is_dirty_counts_tracked_changes_only(git_repo: GitRepo) -> None:
    tracked = git_repo.write("a.txt", "a\n")
    git_repo.commit()
    with Repository(git_repo.path) as repo:
        git_repo.write("untracked.txt", "u\n")
        assert not repo.is_dirty()
        tracked.write_text("b\n")
        assert repo.is_dirty()


def test_a_worktree_is_added_listed_read_and_removed(git_repo: GitRepo, tmp_path: Path) -> None:
    git_repo.write(".gitignore", "*.db\n")
    git_repo.write("a.txt", "a\n")
    sha = git_repo.commit()
    tree = str(tmp_path / "wt")
    with Repository(git_repo.path) as repo:
        repo.add_worktree(tree, sha, "v1")
        assert repo.worktree_heads()[os.path.realpath(tree)] == sha
        assert repo.changes_in(tree) == ()
        Path(tree, "a.txt").write_text("changed\n")
        Path(tree, "out.db").write_text("ignored, still written\n")
        Path(tree, "new", "f.txt").parent.mkdir()
        Path(tree, "new", "f.txt").write_text("n\n")
        assert sorted(repo.changes_in(tree)) == ["a.txt", "new/f.txt", "out.db"]
        repo.remove_worktree(tree)
        assert not os.path.exists(tree)
        assert os.path.realpath(tree) not in repo.worktree_heads()
    assert (git_repo.path / "a.txt").read_text() == "a\n"  # the user's work tree is untouched


def test_worktree_failures_are_git_errors_naming_what_was_tried(git_repo: GitRepo, tmp_path: Path) -> None:
    sha = git_repo.commit()
    busy = tmp_path / "busy"
    (busy / "file").parent.mkdir()
    (busy / "file").write_text("mine\n")
    with Repository(git_repo.path) as repo:
        with pytest.raises(GitError, match=f"could not check out v1 into {busy}"):
            repo.add_worktree(str(busy), sha, "v1")
        with pytest.raises(GitError, match="could not read what changed in"):
            repo.changes_in(str(tmp_path / "gone"))
        repo.remove_worktree(str(tmp_path / "never-made"))  # nothing there: nothing to do
    assert (busy / "file").read_text() == "mine\n"


def _cat_file_children() -> list[int]:
    """Our child processes running ``git cat-file`` (gitpython's object readers); a reaped or
    zombie process has no command line."""
    found = []
    for pid in procs.child_pids():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if b"cat-file" in fh.read().split(b"\0"):
                    found.append(pid)
        except OSError:
            continue
    return found


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")
def test_closing_ends_the_object_reader_processes(git_repo: GitRepo) -> None:
    git_repo.write("a.txt", "a\n")
    sha = git_repo.commit()
    before = set(_cat_file_children())
    with Repository(git_repo.path) as repo:
        assert repo.read(sha, "a.txt") == b"a\n"
        started = set(_cat_file_children()) - before
        assert started, "reading a file started no git cat-file: the check would pass vacuously"
    assert not (set(_cat_file_children()) & started)

"""``flowctl.repo.layout`` reads git's files and must answer as ``git rev-parse`` does, for a
main work tree, linked worktrees (inside and outside it, nested folders), a submodule and the
worktree of a bare repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowctl.repo.layout import common_dir, is_work_tree_top, main_work_tree, work_tree_top
from tests.diff.gitrepo import GitRepo


def git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True, text=True).stdout.strip()


def git_top(folder: Path) -> Path | None:
    """What ``git rev-parse --show-toplevel`` says in ``folder`` (None outside a work tree)."""
    done = subprocess.run(["git", "-C", str(folder), "rev-parse", "--show-toplevel"], capture_output=True, text=True)
    return Path(done.stdout.strip()) if done.returncode == 0 else None


def git_common(folder: Path) -> Path:
    return Path(git(folder, "rev-parse", "--path-format=absolute", "--git-common-dir")).resolve()


def make_repo(path: Path) -> GitRepo:
    repo = GitRepo(path)
    repo.write("README", "x\n")
    repo.commit("one")
    return repo


def agree_with_git(folder: Path, main: Path) -> None:
    """Every layout answer for ``folder`` (inside a work tree of the repository at ``main``)."""
    top = work_tree_top(folder.resolve())
    assert top == git_top(folder)
    assert top is not None and is_work_tree_top(top)
    assert common_dir(top) == git_common(folder)
    assert main_work_tree(top) == main.resolve()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    depth=st.integers(0, 3),
    linked=st.lists(st.tuples(st.booleans(), st.integers(0, 2)), min_size=1, max_size=3),
)
def test_the_top_the_common_dir_and_the_main_work_tree_are_what_git_says(
    tmp_path_factory: pytest.TempPathFactory, depth: int, linked: list[tuple[bool, int]]
) -> None:
    """A main work tree with linked worktrees inside it (as ``run --ref`` makes them under
    ``.flowctl/worktrees``) or beside it, each looked at from folders at several depths."""
    base = tmp_path_factory.mktemp("layout")
    main = make_repo(base / "main")
    trees = [main.path]
    for i, (inside, nest) in enumerate(linked):
        parent = (main.path / ".flowctl" / "worktrees") if inside else (base / "elsewhere")
        path = parent.joinpath(*[f"n{k}" for k in range(nest)], f"wt{i}")
        path.parent.mkdir(parents=True, exist_ok=True)
        git(main.path, "worktree", "add", "--detach", "-q", str(path))
        trees.append(path)
    for tree in trees:
        folder = tree.joinpath(*[f"d{k}" for k in range(depth)])
        folder.mkdir(parents=True, exist_ok=True)
        agree_with_git(folder, main.path)


def test_a_submodule_is_its_own_work_tree_and_shares_no_common_dir(tmp_path: Path) -> None:
    sub = make_repo(tmp_path / "outer").add_submodule(make_repo(tmp_path / "inner").path, "sub")
    assert (sub / ".git").is_file()
    (sub / "deep").mkdir()
    assert work_tree_top(sub / "deep") == git_top(sub / "deep") == sub.resolve()
    assert common_dir(sub) == git_common(sub)  # outer/.git/modules/sub
    assert main_work_tree(sub) == sub


def test_a_bare_repositorys_worktree_is_its_own_main_work_tree(tmp_path: Path) -> None:
    source = make_repo(tmp_path / "source").path
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(source), str(bare)], check=True)
    tree = tmp_path / "tree"
    git(bare, "worktree", "add", "-q", str(tree))
    assert work_tree_top(tree) == git_top(tree) == tree.resolve()
    assert common_dir(tree) == git_common(tree) == bare.resolve()
    assert main_work_tree(tree) == tree


def test_outside_any_work_tree_there_is_no_top(tmp_path: Path) -> None:
    folder = tmp_path / "plain" / "folder"
    folder.mkdir(parents=True)
    if git_top(folder) is not None:
        pytest.skip("the temporary folder is inside a git work tree on this machine")
    assert work_tree_top(folder) is None
    assert not is_work_tree_top(folder)
    assert common_dir(folder) is None
    assert main_work_tree(folder) is None


def test_a_gitfile_that_points_nowhere_readable_is_a_tree_of_its_own(tmp_path: Path) -> None:
    """A ``--separate-git-dir`` checkout: the ``.git`` file leads to a git folder without
    ``commondir``, so the work tree is the main one and the git folder is the common one."""
    tree = tmp_path / "tree"
    store = tmp_path / "store.git"
    subprocess.run(["git", "init", "-q", "--separate-git-dir", str(store), str(tree)], check=True)
    assert (tree / ".git").is_file()
    assert work_tree_top(tree) == git_top(tree) == tree.resolve()
    assert common_dir(tree) == git_common(tree) == store.resolve()
    assert main_work_tree(tree) == tree

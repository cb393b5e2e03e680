"""Where the state folder is: the walk up, the main git work tree, the ceilings, the bounded search."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowctl.errors import UsageError
from flowctl.state import location
from flowctl.state.location import discover, main_work_tree, state_dir_for, state_dirs_below
from tests.diff.gitrepo import GitRepo


def make_repo(path: Path) -> GitRepo:
    repo = GitRepo(path)
    repo.write("README", "x\n")
    repo.commit("one")
    return repo


def rev_parse(folder: Path, *args: str) -> str:
    """What git itself says, run in ``folder``."""
    return subprocess.run(["git", "-C", str(folder), "rev-parse", *args], check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(location.STATE_DIR_ENV, raising=False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(depth=st.integers(1, 6), marked=st.sets(st.integers(0, 6)), git_at=st.none() | st.integers(0, 6))
def test_the_walk_takes_the_nearest_state_folder_below_the_git_top(
    tmp_path_factory: pytest.TempPathFactory, depth: int, marked: set[int], git_at: int | None
) -> None:
    """Folders 0 (the outermost) .. depth; some hold .flowctl/, one may hold .git. From the
    innermost: the nearest marked folder not above the git top, else the git top, else the start."""
    base = tmp_path_factory.mktemp("walk")
    chain = [base / "p"]
    for level in range(1, depth + 1):
        chain.append(chain[-1] / f"d{level}")
    chain[-1].mkdir(parents=True)
    for level in marked:
        if level <= depth:
            (chain[level] / ".flowctl").mkdir()
    top = git_at if git_at is not None and git_at <= depth else None
    if top is not None:
        (chain[top] / ".git").mkdir()
    lowest = top if top is not None else 0
    nearest = max((m for m in marked if lowest <= m <= depth), default=None)
    if nearest is not None:
        expected = chain[nearest] / ".flowctl"
    elif top is not None:
        expected = chain[top] / ".flowctl"
    else:
        expected = chain[-1] / ".flowctl"
    assert discover(chain[-1]) == expected


def test_a_linked_worktree_leads_to_the_main_work_tree_as_git_says(tmp_path: Path) -> None:
    main = make_repo(tmp_path / "main").path
    (main / "pipelines").mkdir()
    linked = tmp_path / "elsewhere" / "tree"
    GitRepo(main).repo.git.worktree("add", "--detach", "-q", str(linked))
    (linked / "pipelines").mkdir()
    for folder in (main, main / "pipelines", linked, linked / "pipelines"):
        common = Path(rev_parse(folder, "--path-format=absolute", "--git-common-dir"))
        assert discover(folder) == common.parent / ".flowctl"
    assert main_work_tree(linked) == main.resolve()
    assert main_work_tree(main) == main


def test_a_submodule_is_its_own_work_tree(tmp_path: Path) -> None:
    inner = make_repo(tmp_path / "inner").path
    outer = make_repo(tmp_path / "outer")
    outer.repo.git.execute(["git", "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(inner), "sub"])
    sub = outer.path / "sub"
    assert (sub / ".git").is_file()
    assert discover(sub) == sub / ".flowctl"
    assert rev_parse(sub, "--show-toplevel") == str(sub.resolve())


def test_the_home_and_temporary_folders_are_never_taken_from_below(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    (home / ".flowctl").mkdir(parents=True)
    (home / ".git").mkdir()  # a dotfiles repository in the home folder
    monkeypatch.setenv("HOME", str(home))
    project = home / "code" / "etl" / "pipelines"
    project.mkdir(parents=True)
    assert discover(project) == project / ".flowctl"
    assert discover(home) == home / ".flowctl"  # started there: it is the project
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp" / ".flowctl").mkdir(parents=True)
    (tmp_path / "tmp" / "job").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    assert discover(tmp_path / "tmp" / "job") == tmp_path / "tmp" / "job" / ".flowctl"
    assert location.project_root(tmp_path / "tmp" / ".flowctl") is None
    assert location.project_root(home / ".flowctl") is None


def test_state_dir_for_starts_from_the_pipeline_file_or_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(tmp_path / "repo").path
    (repo / "pipelines").mkdir()
    pipeline = repo / "pipelines" / "etl.yaml"
    pipeline.write_text("version: 1\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    monkeypatch.chdir(outside)
    assert state_dir_for(None, str(pipeline)) == repo / ".flowctl"
    assert state_dir_for(None, "etl") == outside / ".flowctl"  # a name: from the working folder
    assert state_dir_for(None, None) == outside / ".flowctl"
    monkeypatch.chdir(repo / "pipelines")
    assert state_dir_for(None, None) == repo / ".flowctl"
    assert state_dir_for("mine", str(pipeline)) == Path("mine")
    monkeypatch.setenv(location.STATE_DIR_ENV, str(tmp_path / "env"))
    assert state_dir_for(None, str(pipeline)) == tmp_path / "env"
    assert state_dir_for("mine", None) == Path("mine")  # the option wins over the variable


def test_a_file_where_the_state_folder_should_be_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(UsageError, match=r"--state-dir .*notes\.txt is a file, not a folder"):
        state_dir_for(str(tmp_path / "notes.txt"))
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "state.db").write_text("")
    with pytest.raises(UsageError) as caught:
        state_dir_for(str(tmp_path / "s" / "state.db"))
    assert caught.value.hint is not None and "not a file in it" in caught.value.hint
    monkeypatch.setenv(location.STATE_DIR_ENV, str(tmp_path / "notes.txt"))
    with pytest.raises(UsageError, match=r"\$FLOWCTL_STATE_DIR .* is a file"):
        state_dir_for(None)
    monkeypatch.delenv(location.STATE_DIR_ENV)
    make_repo(tmp_path / "r")
    (tmp_path / "r" / ".flowctl").write_text("not a folder")
    monkeypatch.chdir(tmp_path / "r")
    with pytest.raises(UsageError, match=r"the state folder .* is a file"):
        state_dir_for(None, None)


def test_the_search_below_a_project_is_bounded_and_skips_hidden_and_virtualenv_folders(tmp_path: Path) -> None:
    def state(*parts: str) -> Path:
        folder = tmp_path.joinpath(*parts, ".flowctl")
        folder.mkdir(parents=True)
        (folder / "state.db").write_bytes(b"")
        return folder

    here = state()
    near = state("pipelines")
    deep = state("a", "b", "c", "d")
    state("a", "b", "c", "d", "e")  # five folders down: beyond SEARCH_DEPTH
    state(".hidden")
    state("node_modules", "x")
    (tmp_path / "venv2").mkdir()
    (tmp_path / "venv2" / "pyvenv.cfg").write_text("home = /usr\n")
    state("venv2", "lib")
    (tmp_path / "empty" / ".flowctl").mkdir(parents=True)  # no state.db: nothing recorded there
    assert state_dirs_below(tmp_path) == (here, near, deep)
    assert state_dirs_below(tmp_path, exclude=here) == (near, deep)


def test_the_search_looks_at_a_bounded_number_of_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(30):
        (tmp_path / f"f{i:02d}").mkdir()
    late = tmp_path / "f29" / ".flowctl"
    late.mkdir()
    (late / "state.db").write_bytes(b"")
    assert state_dirs_below(tmp_path) == (late,)
    monkeypatch.setattr(location, "SEARCH_FOLDERS", 10)
    assert state_dirs_below(tmp_path) == ()

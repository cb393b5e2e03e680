"""What each benchmark execution gets a copy of: the files git sees, else the pipeline's folder."""

from __future__ import annotations

import os
from pathlib import Path

from flowctl.benchmark.workspace import copy_workspace, plan_workspace
from tests.diff.gitrepo import GitRepo


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def test_in_git_the_files_git_sees_from_the_top(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "project")
    repo.write(".gitignore", "build/\n*.log\n")
    repo.write("pipelines/etl.yaml", "version: 1\nname: etl\nsteps:\n  a: {run: ../scripts/a.sh}\n")
    repo.write("scripts/a.sh", "echo a\n")
    repo.write("data/orders.csv", "id\n1\n")
    repo.commit("first")
    repo.write("notes.md", "untracked, not ignored\n")
    repo.write("build/out.bin", "ignored\n")
    repo.write("run.log", "ignored\n")
    repo.write(".flowctl/state.db", "never copied\n")  # not ignored here, still never copied
    os.symlink("scripts/a.sh", repo.path / "a-link")
    (repo.path / "data" / "orders.csv").write_text("id\n1\n2\n")  # an uncommitted edit is copied as is
    ws = plan_workspace(str(repo.path / "pipelines" / "etl.yaml"), [str(repo.path / "pipelines"), str(repo.path / "work" / "tmp")])
    assert ws.kind == "git" and ws.root == os.path.realpath(repo.path)
    assert set(ws.files) == {".gitignore", "pipelines/etl.yaml", "scripts/a.sh", "data/orders.csv", "notes.md", "a-link"}
    assert ws.folders == ("pipelines", "work/tmp") and ws.outside == ()
    assert ws.git_commit == repo.repo.head.commit.hexsha and ws.git_dirty is True
    dest = tmp_path / "copy"
    pipeline = copy_workspace(ws, str(dest))
    assert pipeline == str(dest / "pipelines" / "etl.yaml")
    assert _tree(dest) == set(ws.files)
    assert (dest / "data" / "orders.csv").read_text() == "id\n1\n2\n"
    assert os.readlink(dest / "a-link") == "scripts/a.sh"
    assert (dest / "work" / "tmp").is_dir()  # a step's folder git does not keep
    assert ws.size == sum(os.lstat(repo.path / f).st_size for f in ws.files)


def test_outside_git_the_pipeline_folder(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "sub").mkdir(parents=True)
    (project / "p.yaml").write_text("version: 1\nname: p\nsteps:\n  a: {run: 'true'}\n")
    (project / "sub" / "input.txt").write_text("x")
    (project / ".flowctl").mkdir()
    (project / ".flowctl" / "state.db").write_text("state")
    (tmp_path / "elsewhere").mkdir()
    ws = plan_workspace(str(project / "p.yaml"), [str(project), str(tmp_path / "elsewhere")])
    assert ws.kind == "folder" and ws.git_commit is None
    assert set(ws.files) == {"p.yaml", "sub/input.txt"}
    assert ws.outside == (str(tmp_path / "elsewhere"),)  # shared by every execution: said in a warning
    dest = tmp_path / "copy"
    copy_workspace(ws, str(dest))
    assert _tree(dest) == {"p.yaml", "sub/input.txt"}

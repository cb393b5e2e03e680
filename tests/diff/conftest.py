"""A real git repository in tmp_path: write files, commit, tag, check out."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest


class GitRepo:
    """A throwaway repository driven through gitpython, as a user's project would be."""

    def __init__(self, path: Path) -> None:
        import git

        self.path = path
        self.repo = git.Repo.init(path, initial_branch="main")
        with self.repo.config_writer() as cfg:
            cfg.set_value("user", "name", "Test")
            cfg.set_value("user", "email", "test@example.com")
            cfg.set_value("commit", "gpgsign", "false")
            cfg.set_value("tag", "gpgsign", "false")

    def write(self, rel: str, text: str) -> Path:
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return target

    def remove(self, rel: str) -> None:
        self.repo.index.remove([rel], working_tree=True)

    def commit(self, message: str = "change") -> str:
        self.repo.git.add("--all")
        self.repo.git.commit("-m", message, "--allow-empty")
        return self.repo.head.commit.hexsha

    def tag(self, name: str, message: str | None = None) -> None:
        if message is None:
            self.repo.create_tag(name)
        else:
            self.repo.create_tag(name, message=message)

    def checkout(self, ref: str) -> None:
        self.repo.git.checkout(ref)


@pytest.fixture
def git_repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "project")

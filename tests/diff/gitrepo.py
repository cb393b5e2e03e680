"""A real git repository in tmp_path (write, commit, tag, check out) and pipelines to put in it."""

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

    def add_submodule(self, source: Path, rel: str) -> Path:
        """Add the repository at ``source`` as a submodule at ``rel``; returns its folder."""
        self.repo.git.execute(["git", "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(source), rel])
        return self.path / rel


@pytest.fixture
def git_repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "project")


ETL_V1 = """
# yaml-language-server: $schema=../schemas/pipeline.schema.json
version: 1
name: etl
schedule: "0 2 * * *"
env: {LOG_LEVEL: info, API_TOKEN: "${{ env.API_TOKEN }}"}
secret_env: [API_TOKEN]
defaults:
  retries: 2
  timeout: 10m
steps:
  extract:
    run: python scripts/extract.py
    outputs: [data/raw.json]
  transform:
    needs: [extract]
    run: python scripts/transform.py
    retries: 3
  load:
    needs: [transform]
    run: python scripts/load.py
    timeout: 5m
    env: {TARGET: warehouse}
  report:
    needs: [load]
    run: python scripts/report.py
"""

CHECKS = """
version: 1
name: checks
steps:
  lint:
    run: echo lint
  test:
    run: echo test
"""


@pytest.fixture
def released(git_repo: GitRepo) -> GitRepo:
    """etl and checks committed and released (etl/v1.0.0, repo-wide v1.0.0), then one more commit."""
    git_repo.write("pipelines/etl.yaml", ETL_V1)
    git_repo.write("pipelines/checks.yaml", CHECKS)
    git_repo.write("scripts/extract.py", "print('extract')\n")
    git_repo.commit("first pipelines")
    git_repo.tag("etl/v1.0.0", "etl 1.0.0")
    git_repo.tag("v1.0.0")
    git_repo.write("README.md", "docs only\n")
    git_repo.commit("docs")
    return git_repo

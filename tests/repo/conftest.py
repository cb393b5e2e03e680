"""Fixtures of tests/repo: real git repositories in tmp_path (see tests/diff/gitrepo.py)."""

from tests.diff.gitrepo import git_repo, released  # noqa: F401

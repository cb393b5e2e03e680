"""Fixtures of tests/diff: real git repositories (see gitrepo.py)."""

from tests.diff.gitrepo import git_repo, released  # noqa: F401

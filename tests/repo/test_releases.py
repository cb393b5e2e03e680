"""``flowctl.repo.releases``: tag names in and out of a format, and a pipeline's releases under
both schemes in the order history made them (read from a real repository)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowctl.errors import GitError, UsageError
from flowctl.repo.releases import (
    PER_PIPELINE,
    REPO_WIDE,
    Release,
    TagFormat,
    Version,
    has_release_tags,
    latest_release,
    latest_release_tag,
    release_history,
    released_names,
    tag_scheme,
)
from flowctl.repo.repository import Repository
from tests.diff.gitrepo import GitRepo

names = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,12}", fullmatch=True)
versions = st.builds(Version, st.integers(0, 999), st.integers(0, 999), st.integers(0, 999))
templates = st.sampled_from(["{name}/v{version}", "v{version}", "release-{version}", "{name}@{version}", "r{version}-{name}"])


@given(template=templates, name=names, version=versions)
def test_a_tag_made_by_a_format_reads_back_as_its_version(template: str, name: str, version: Version) -> None:
    fmt = TagFormat(template)
    assert fmt.match(name, fmt.tag(name, version)) == version
    assert fmt.per_pipeline == ("{name}" in template)


@given(name=names, other=names, version=versions)
def test_a_per_pipeline_tag_belongs_to_its_pipeline_only(name: str, other: str, version: Version) -> None:
    tag = PER_PIPELINE.tag(name, version)
    assert (PER_PIPELINE.match(other, tag) is not None) == (other == name)
    assert REPO_WIDE.match(name, tag) is None


@pytest.mark.parametrize("template", ["no-version", "{version}-{version}", "{name}/{other}/{version}", "{version"])
def test_a_bad_format_is_a_usage_error(template: str) -> None:
    with pytest.raises(UsageError):
        TagFormat(template)


def test_both_schemes_interleave_in_history_order(git_repo: GitRepo) -> None:
    """A repo-wide v2.0.0 made after etl/v1.5.0 is newer, though 1.5.0 < 2.0.0 only by chance:
    order is history's, not the version numbers'."""
    c1 = git_repo.commit("one")
    git_repo.tag("etl/v1.5.0", "etl")
    c2 = git_repo.commit("two")
    git_repo.tag("v1.0.0")
    c3 = git_repo.commit("three")
    git_repo.tag("etl/v1.6.0", "etl")
    git_repo.tag("checks/v9.0.0", "checks")
    with Repository(git_repo.path) as repo:
        history = release_history(repo, "etl", None)
        assert history == [
            Release("etl/v1.5.0", Version(1, 5, 0), c1),
            Release("v1.0.0", Version(1, 0, 0), c2),
            Release("etl/v1.6.0", Version(1, 6, 0), c3),
        ]
        assert latest_release(repo, "etl") == history[-1]
        assert latest_release(repo, "etl", REPO_WIDE) == history[1]
        assert released_names(repo, None) == {"etl", "checks"}
        assert has_release_tags(repo, TagFormat("release-{version}")) is False
        assert has_release_tags(repo, REPO_WIDE) is True
        with pytest.raises(UsageError, match="both schemes"):
            tag_scheme(repo, None)
        assert tag_scheme(repo, REPO_WIDE) == REPO_WIDE


def test_only_releases_reachable_from_head_are_latest(git_repo: GitRepo) -> None:
    git_repo.commit("one")
    git_repo.tag("etl/v1.0.0", "etl")
    git_repo.repo.git.checkout("-q", "-b", "side")
    git_repo.commit("side")
    git_repo.tag("etl/v2.0.0", "etl")
    git_repo.checkout("main")
    with Repository(git_repo.path) as repo:
        assert latest_release_tag(repo, "etl", "pipelines/etl.yaml") == "etl/v1.0.0"
        assert [r.tag for r in release_history(repo, "etl", None, reachable_from=None)] == ["etl/v1.0.0", "etl/v2.0.0"]


def test_no_release_for_latest_release_is_a_git_error_saying_how_to_make_one(git_repo: GitRepo) -> None:
    git_repo.commit("one")
    with Repository(git_repo.path) as repo, pytest.raises(GitError) as caught:
        latest_release_tag(repo, "etl", "pipelines/etl.yaml")
    assert "no release tags for etl" in caught.value.message
    assert caught.value.hint == "create one with `flowctl release pipelines/etl.yaml --bump patch`"
    with Repository(git_repo.path) as repo:
        assert tag_scheme(repo, None) == PER_PIPELINE  # no tags yet: per pipeline

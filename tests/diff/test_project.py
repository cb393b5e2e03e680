"""diff_project against real git repositories: release tags, refs, added/removed files, errors."""

from __future__ import annotations

import pytest

from flowctl.diff.changes import ChangeKind
from flowctl.diff.project import diff_project
from flowctl.errors import GitError, PipelineError, UsageError
from tests.diff.gitrepo import CHECKS, ETL_V1, GitRepo


def _by_name(report):
    return {d.name: d for d in report.pipelines}


def test_clean_work_tree_has_no_changes_against_the_latest_release(released: GitRepo) -> None:
    report = diff_project(released.path)
    assert not report.changed
    etl = _by_name(report)["etl"]
    assert (etl.old.label, etl.new.label) == ("etl/v1.0.0", "work tree")
    # checks has no release of its own: it falls back to the repo-wide v1.0.0 tag.
    assert _by_name(report)["checks"].old.label == "v1.0.0"


def test_work_tree_edits_against_the_highest_reachable_release(released: GitRepo) -> None:
    released.write("pipelines/etl.yaml", ETL_V1.replace("timeout: 5m", "timeout: 7m"))
    released.commit("slower load")
    released.tag("etl/v1.1.0")
    released.tag("etl/v1.10.0-not-a-release")
    released.write("pipelines/etl.yaml", ETL_V1.replace("timeout: 5m", "timeout: 9m"))
    etl = _by_name(diff_project(released.path))["etl"]
    assert etl.old.label == "etl/v1.1.0"  # highest version, not the last tag created
    (change,) = etl.steps
    assert [(f.field, f.old, f.new) for f in change.fields] == [("timeout", 420.0, 540.0)]
    assert etl.impact.policy_only == ("load",) and etl.impact.rerun == ()  # a timeout: no re-run
    older = _by_name(diff_project(released.path, against="etl/v1.0.0"))["etl"]
    assert [(f.old, f.new) for f in older.steps[0].fields] == [(300.0, 540.0)]


def test_releases_not_reachable_from_head_are_ignored(released: GitRepo) -> None:
    released.repo.git.checkout("-b", "feature")
    released.write("pipelines/etl.yaml", ETL_V1.replace("retries: 3", "retries: 4"))
    released.commit("feature")
    released.tag("etl/v9.0.0")
    released.checkout("main")
    released.write("pipelines/etl.yaml", ETL_V1.replace("retries: 3", "retries: 5"))
    etl = _by_name(diff_project(released.path))["etl"]
    assert etl.old.label == "etl/v1.0.0"
    assert [(f.old, f.new) for f in etl.steps[0].fields] == [(3, 5)]


def test_renamed_step_and_changed_default_end_to_end(released: GitRepo) -> None:
    text = ETL_V1.replace("extract", "fetch_raw").replace("scripts/fetch_raw.py", "scripts/extract.py")
    text = text.replace("retries: 2", "retries: 4")
    released.write("pipelines/etl.yaml", text)
    etl = _by_name(diff_project(released.path, ["pipelines/etl.yaml"]))["etl"]
    renamed = etl.steps_of(ChangeKind.RENAMED)
    assert [(c.old_id, c.step) for c in renamed] == [("extract", "fetch_raw")]
    (setting,) = etl.settings
    assert (setting.field, setting.old, setting.new) == ("defaults.retries", 2, 4)
    assert setting.affects == ("fetch_raw", "load", "report")  # transform sets its own retries
    assert etl.edges == ()


def test_pipeline_file_added_and_deleted(released: GitRepo) -> None:
    released.remove("pipelines/checks.yaml")
    released.write("pipelines/nightly.yaml", CHECKS.replace("name: checks", "name: nightly"))
    report = diff_project(released.path, against="v1.0.0")
    kinds = {d.name: d.kind for d in report.pipelines}
    assert kinds == {"etl": ChangeKind.UNCHANGED, "nightly": ChangeKind.ADDED, "checks": ChangeKind.REMOVED}
    removed = _by_name(report)["checks"]
    assert (removed.old.path, removed.new.path) == ("pipelines/checks.yaml", None)


def test_deleted_pipeline_is_found_without_against(released: GitRepo) -> None:
    released.remove("pipelines/checks.yaml")
    report = diff_project(released.path)
    assert _by_name(report)["checks"].kind is ChangeKind.REMOVED


def test_moved_file_is_matched_by_pipeline_name(released: GitRepo) -> None:
    released.repo.git.mv("pipelines/etl.yaml", "pipelines/etl-main.yaml")
    report = diff_project(released.path)
    etl = _by_name(report)["etl"]
    assert etl.kind is ChangeKind.UNCHANGED
    assert (etl.old.path, etl.new.path) == ("pipelines/etl.yaml", "pipelines/etl-main.yaml")


def test_to_compares_two_refs_without_the_work_tree(released: GitRepo) -> None:
    released.write("pipelines/etl.yaml", ETL_V1.replace('"0 2 * * *"', '"@hourly"'))
    released.commit("hourly")
    released.write("pipelines/etl.yaml", "this is not even yaml: [")
    etl = _by_name(diff_project(released.path, against="etl/v1.0.0", to="main"))["etl"]
    assert [(s.field, s.old, s.new) for s in etl.settings] == [("schedule", "0 2 * * *", "@hourly")]
    assert etl.new.commit == released.repo.head.commit.hexsha


def test_invalid_pipeline_at_a_tag_names_the_ref_and_line(git_repo: GitRepo) -> None:
    git_repo.write("pipelines/etl.yaml", ETL_V1.replace("retries: 3", "retries: -1"))
    git_repo.commit("broken")
    git_repo.tag("etl/v0.9.0")
    git_repo.write("pipelines/etl.yaml", ETL_V1)
    git_repo.commit("fixed")
    with pytest.raises(PipelineError) as info:
        diff_project(git_repo.path)
    diag = info.value.diagnostics[0]
    assert diag.span is not None and diag.span.file == "etl/v0.9.0:pipelines/etl.yaml"
    assert diag.span.line == ETL_V1.lstrip("\n").splitlines().index("    retries: 3") + 1


def test_repo_without_tags(git_repo: GitRepo) -> None:
    git_repo.write("pipelines/etl.yaml", ETL_V1)
    git_repo.commit()
    with pytest.raises(GitError, match="no release tags"):
        diff_project(git_repo.path)
    # An explicit base still works.
    assert not diff_project(git_repo.path, against="HEAD").changed


def test_unknown_ref_and_outside_a_repo(released: GitRepo, tmp_path) -> None:
    with pytest.raises(GitError, match="unknown git ref 'v7'"):
        diff_project(released.path, against="v7")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    with pytest.raises(GitError, match="not inside a git repository"):
        diff_project(outside)


def test_detached_head_uses_releases_reachable_from_it(released: GitRepo) -> None:
    released.write("pipelines/etl.yaml", ETL_V1.replace("timeout: 5m", "timeout: 7m"))
    released.commit("v2")
    released.tag("etl/v2.0.0")
    released.checkout("etl/v1.0.0")
    assert released.repo.head.is_detached
    report = diff_project(released.path)
    assert _by_name(report)["etl"].old.label == "etl/v1.0.0"
    assert not report.changed


def test_tag_pattern_overrides_the_default(released: GitRepo) -> None:
    released.write("pipelines/etl.yaml", ETL_V1.replace("timeout: 5m", "timeout: 7m"))
    released.commit("custom")
    released.tag("release-etl-2.0.0")
    report = diff_project(released.path, ["pipelines/etl.yaml"], tag_format="release-{name}-{version}")
    etl = _by_name(report)["etl"]
    assert etl.old.label == "release-etl-2.0.0" and not etl.changed
    with pytest.raises(UsageError, match="version"):
        diff_project(released.path, tag_format="release-{name}")


def test_a_pipeline_never_released_shows_as_added(git_repo: GitRepo) -> None:
    git_repo.write("pipelines/etl.yaml", ETL_V1)
    git_repo.commit()
    git_repo.tag("etl/v1.0.0")
    git_repo.write("pipelines/checks.yaml", CHECKS)
    report = diff_project(git_repo.path)
    checks = _by_name(report)["checks"]
    assert checks.kind is ChangeKind.ADDED and checks.old.label == "(no release)"
    assert _by_name(report)["etl"].kind is ChangeKind.UNCHANGED

"""Release tag schemes (issue 13): `release` continues the scheme the repository uses, `versions`
lists every release under either scheme, and one option name (`--tag-pattern`) picks a pattern."""

from __future__ import annotations

import json

from tests.conftest import run_flowctl
from tests.diff import gitrepo
from tests.diff.gitrepo import CHECKS, ETL_V1, GitRepo

git_repo = gitrepo.git_repo

CSV_ETL = ETL_V1.replace("name: etl", "name: csv-etl")


def _tags(repo: GitRepo) -> list[str]:
    return sorted(t.name for t in repo.repo.tags)


def test_release_continues_the_repo_wide_scheme_and_versions_sees_both(git_repo: GitRepo) -> None:
    """The reported case: with v1.0.0 tagged, the next release is v1.1.0, not csv-etl/v1.1.0."""
    git_repo.write("pipelines/csv-etl.yaml", CSV_ETL)
    git_repo.commit("first")
    git_repo.tag("v1.0.0")
    git_repo.write("pipelines/csv-etl.yaml", CSV_ETL.replace("timeout: 5m", "timeout: 8m"))
    git_repo.commit("slower load")
    made = run_flowctl("release", "pipelines/csv-etl.yaml", "--bump", "minor", cwd=git_repo.path)
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("created tag v1.1.0 at ")
    assert "csv-etl 1.1.0 (since v1.0.0)" in made.stdout
    assert _tags(git_repo) == ["v1.0.0", "v1.1.0"]
    versions = run_flowctl("versions", "pipelines/csv-etl.yaml", cwd=git_repo.path)
    assert versions.returncode == 0, versions.stderr
    lines = versions.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["v1.1.0", "v1.0.0"]
    assert lines[0].endswith("* changed load")
    assert lines[1].endswith("* new pipeline (4 steps)")


def test_release_continues_the_per_pipeline_scheme_of_other_pipelines(git_repo: GitRepo) -> None:
    git_repo.write("pipelines/checks.yaml", CHECKS)
    git_repo.write("pipelines/etl.yaml", ETL_V1)
    git_repo.commit("first")
    git_repo.tag("checks/v2.0.0")
    made = run_flowctl("release", "pipelines/etl.yaml", "--bump", "minor", "--json", cwd=git_repo.path)
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["tag"] == "etl/v0.1.0"


def test_both_schemes_make_release_exit_2_naming_the_option(git_repo: GitRepo) -> None:
    git_repo.write("pipelines/etl.yaml", ETL_V1)
    git_repo.commit("first")
    git_repo.tag("v1.0.0")
    git_repo.tag("etl/v1.0.0")
    git_repo.write("pipelines/etl.yaml", ETL_V1.replace("timeout: 5m", "timeout: 8m"))
    git_repo.commit("slower")
    refused = run_flowctl("release", "pipelines/etl.yaml", "--bump", "patch", cwd=git_repo.path)
    assert refused.returncode == 2
    assert "both schemes" in refused.stderr and "--tag-pattern" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert _tags(git_repo) == ["etl/v1.0.0", "v1.0.0"]
    chosen = run_flowctl("release", "pipelines/etl.yaml", "--bump", "patch", "--tag-pattern", "v{version}",
                         cwd=git_repo.path)
    assert chosen.returncode == 0, chosen.stderr
    assert _tags(git_repo) == ["etl/v1.0.0", "v1.0.0", "v1.0.1"]


def test_new_only_where_the_pipeline_was_absent_at_the_release_before(git_repo: GitRepo) -> None:
    git_repo.write("pipelines/checks.yaml", CHECKS)
    git_repo.commit("checks only")
    git_repo.tag("v1.0.0")  # etl does not exist yet: not listed for it
    git_repo.write("pipelines/etl.yaml", ETL_V1)
    git_repo.commit("etl")
    git_repo.tag("v1.1.0")
    git_repo.write("README.md", "docs\n")
    git_repo.commit("docs")
    git_repo.tag("v1.2.0")
    git_repo.remove("pipelines/etl.yaml")
    git_repo.commit("etl gone")
    git_repo.tag("v1.3.0")
    git_repo.write("pipelines/etl.yaml", ETL_V1)
    git_repo.commit("etl back")
    git_repo.tag("v1.4.0")
    doc = json.loads(run_flowctl("versions", "pipelines/etl.yaml", "--json", cwd=git_repo.path).stdout)
    assert [(v["tag"], v["changed"], v["summary"]) for v in doc] == [
        ("v1.1.0", True, "new pipeline (4 steps)"),
        ("v1.2.0", False, "no changes"),
        ("v1.4.0", True, "new pipeline (4 steps)"),  # absent at v1.3.0, the release before
    ]


def test_schemes_interleave_in_history_order_not_version_order(git_repo: GitRepo) -> None:
    """etl/v2.0.0 is older than v1.0.0: versions lists it first, diff takes v1.0.0 as the base."""
    git_repo.write("pipelines/etl.yaml", ETL_V1)
    git_repo.commit("first")
    git_repo.tag("etl/v2.0.0")
    git_repo.write("pipelines/etl.yaml", ETL_V1.replace("timeout: 5m", "timeout: 8m"))
    git_repo.commit("second")  # usually within the same second: the order must come from history
    git_repo.tag("v1.0.0")
    doc = json.loads(run_flowctl("versions", "pipelines/etl.yaml", "--json", cwd=git_repo.path).stdout)
    assert [(v["tag"], v["summary"]) for v in doc] == [("etl/v2.0.0", "new pipeline (4 steps)"), ("v1.0.0", "changed load")]
    diff = json.loads(run_flowctl("diff", "--json", cwd=git_repo.path).stdout)
    (etl,) = diff["pipelines"]
    assert etl["old"]["label"] == "v1.0.0" and etl["kind"] == "unchanged"


def test_tag_format_is_a_hidden_deprecated_alias_of_tag_pattern(git_repo: GitRepo) -> None:
    git_repo.write("pipelines/checks.yaml", CHECKS)
    git_repo.commit("first")
    git_repo.tag("rel-checks-1.0.0")
    for command in ("release", "versions", "diff"):
        shown = run_flowctl(command, "--help")
        assert "--tag-pattern" in shown.stdout and "--tag-format" not in shown.stdout, command
    versions = run_flowctl("versions", "pipelines/checks.yaml", "--json", "--tag-format", "rel-{name}-{version}",
                           cwd=git_repo.path)
    assert versions.returncode == 0, versions.stderr
    assert "--tag-format is deprecated; use --tag-pattern" in versions.stderr
    assert [v["tag"] for v in json.loads(versions.stdout)] == ["rel-checks-1.0.0"]
    diff = run_flowctl("diff", "--json", "--tag-format", "rel-{name}-{version}", cwd=git_repo.path)
    assert diff.returncode == 0 and "deprecated" in diff.stderr
    assert json.loads(diff.stdout)["pipelines"][0]["old"]["label"] == "rel-checks-1.0.0"
    git_repo.write("pipelines/checks.yaml", CHECKS + "  docs:\n    run: echo docs\n")
    git_repo.commit("docs step")
    made = run_flowctl("release", "pipelines/checks.yaml", "--bump", "minor", "--tag-format", "rel-{name}-{version}",
                       cwd=git_repo.path)
    assert made.returncode == 0 and "deprecated" in made.stderr
    assert "rel-checks-1.1.0" in _tags(git_repo)
    both = run_flowctl("versions", "pipelines/checks.yaml", "--tag-format", "a-{version}", "--tag-pattern", "b-{version}",
                       cwd=git_repo.path)
    assert both.returncode == 2 and "give --tag-pattern only" in both.stderr

"""flowctl diff / release / versions as real processes in real git repositories."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_flowctl
from tests.diff import gitrepo
from tests.diff.gitrepo import CHECKS, ETL_V1, GitRepo

# The real-repository fixtures of tests/diff, shared here.
git_repo = gitrepo.git_repo
released = gitrepo.released

GOLDEN = Path(__file__).resolve().parent.parent / "golden"


def _pr_changes(repo: GitRepo) -> None:
    """A pull request's worth of changes on top of the release."""
    text = ETL_V1.replace("  extract:", "  fetch:").replace("needs: [extract]", "needs: [fetch]")
    text = text.replace("retries: 2", "retries: 4").replace('"0 2 * * *"', '"30 1 * * *"')
    text = text.replace("run: python scripts/load.py", "run: python scripts/load.py --upsert")
    text = text.replace("  report:\n    needs: [load]\n    run: python scripts/report.py\n", "")
    text += "  notify:\n    needs: [load]\n    run: ./scripts/notify.sh\n    continue_on_error: true\n"
    text = text.replace('API_TOKEN: "${{ env.API_TOKEN }}"', 'API_TOKEN: "${{ env.NEW_TOKEN }}"')
    repo.write("pipelines/etl.yaml", text)
    repo.remove("pipelines/checks.yaml")
    repo.write("pipelines/nightly.yaml", CHECKS.replace("name: checks", "name: nightly"))


def test_markdown_matches_the_golden_file(released: GitRepo, update_golden: bool) -> None:
    _pr_changes(released)
    result = run_flowctl("diff", "--format", "markdown", cwd=released.path)
    assert result.returncode == 0, result.stderr
    golden = GOLDEN / "diff_pr_comment.md"
    if update_golden:
        golden.write_text(result.stdout, encoding="utf-8")
    assert result.stdout == golden.read_text(encoding="utf-8")
    assert "NEW_TOKEN" not in result.stdout  # a secret entry: changed, value not shown


def test_text_json_and_exit_code(released: GitRepo) -> None:
    same = run_flowctl("diff", "--exit-code", cwd=released.path)
    assert same.returncode == 0 and "No pipeline changes" in same.stdout
    _pr_changes(released)
    text = run_flowctl("diff", cwd=released.path)
    assert text.returncode == 0, text.stderr
    assert "> step fetch (renamed from extract)" in text.stdout
    assert "run: python scripts/load.py → python scripts/load.py --upsert" in text.stdout
    assert "\x1b[" not in text.stdout  # not a terminal: no colour codes
    changed = run_flowctl("diff", "--exit-code", "--json", cwd=released.path)
    assert changed.returncode == 1
    doc = json.loads(changed.stdout)
    assert doc["changed"] is True
    kinds = {p["name"]: p["kind"] for p in doc["pipelines"]}
    assert kinds == {"etl": "changed", "nightly": "added", "checks": "removed"}
    etl = next(p for p in doc["pipelines"] if p["name"] == "etl")
    assert etl["impact"] == {"rerun": ["fetch", "transform", "load"], "policy_only": [], "new": ["notify"]}
    fields = {(c["step"], f["field"]): f["change_class"] for c in etl["steps"] for f in c["fields"]}
    assert fields[("load", "run")] == "invalidating" and fields[("load", "retries")] == "policy"
    settings = {s["field"]: s["change_class"] for s in etl["settings"]}
    assert settings == {"schedule": "policy", "env.API_TOKEN": "invalidating", "defaults.retries": "policy"}


def test_invalid_pipeline_at_the_release_is_reported_with_ref_and_line(git_repo: GitRepo) -> None:
    git_repo.write("pipelines/etl.yaml", ETL_V1.replace("retries: 3", "retries: lots"))
    git_repo.commit("broken")
    git_repo.tag("etl/v0.9.0")
    git_repo.write("pipelines/etl.yaml", ETL_V1)
    result = run_flowctl("diff", cwd=git_repo.path)
    assert result.returncode == 2
    line = ETL_V1.lstrip("\n").splitlines().index("    retries: 3") + 1
    assert f"etl/v0.9.0:pipelines/etl.yaml:{line}:" in result.stderr
    assert "retries: lots" in result.stderr  # the source line is shown
    assert "Traceback" not in result.stderr


def test_invalid_work_tree_pipeline_is_exit_2(released: GitRepo) -> None:
    released.write("pipelines/etl.yaml", ETL_V1.replace("needs: [load]", "needs: [lod]"))
    result = run_flowctl("diff", cwd=released.path)
    assert result.returncode == 2
    assert "pipelines/etl.yaml:" in result.stderr and "Traceback" not in result.stderr


def test_git_problems_are_clear_messages(git_repo: GitRepo, tmp_path: Path) -> None:
    outside = tmp_path / "plain"
    outside.mkdir()
    result = run_flowctl("diff", cwd=outside)
    assert result.returncode == 2 and "not inside a git repository" in result.stderr
    git_repo.write("pipelines/etl.yaml", ETL_V1)
    git_repo.commit()
    no_tags = run_flowctl("diff", cwd=git_repo.path)
    assert no_tags.returncode == 2 and "no release tags" in no_tags.stderr and "--against" in no_tags.stderr
    unknown = run_flowctl("diff", "--against", "nope", cwd=git_repo.path)
    assert unknown.returncode == 2 and "unknown git ref 'nope'" in unknown.stderr
    for r in (result, no_tags, unknown):
        assert "Traceback" not in r.stderr


def test_release_creates_an_annotated_tag_with_the_summary(released: GitRepo) -> None:
    released.write("pipelines/etl.yaml", ETL_V1.replace("timeout: 5m", "timeout: 8m"))
    released.commit("slower load")
    # released has tags of both schemes (etl/v1.0.0 and v1.0.0): the pattern picks one.
    per_pipeline = ("--tag-pattern", "{name}/v{version}")
    result = run_flowctl("release", "pipelines/etl.yaml", "--bump", "minor", *per_pipeline, cwd=released.path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("created tag etl/v1.1.0 at ")
    tag = released.repo.tags["etl/v1.1.0"]
    assert tag.tag is not None  # annotated
    message = tag.tag.message
    assert message.startswith("etl 1.1.0 (since etl/v1.0.0)")
    assert "- step load: timeout: 5m → 8m" in message
    assert message.strip() in result.stdout
    assert released.repo.git.status("--porcelain") == ""  # no file written
    again = run_flowctl("release", "pipelines/etl.yaml", "--bump", "patch", *per_pipeline, cwd=released.path)
    assert again.returncode == 2 and "already released as etl/v1.1.0" in again.stderr


def test_release_refuses_a_dirty_tree_and_an_invalid_pipeline(released: GitRepo) -> None:
    released.write("pipelines/etl.yaml", ETL_V1.replace("timeout: 5m", "timeout: 8m"))
    dirty = run_flowctl("release", "pipelines/etl.yaml", "--bump", "patch", cwd=released.path)
    assert dirty.returncode == 2 and "uncommitted changes" in dirty.stderr
    released.write("pipelines/etl.yaml", ETL_V1.replace("timeout: 5m", "timeout: soon"))
    released.commit("broken")
    invalid = run_flowctl("release", "pipelines/etl.yaml", "--bump", "patch", "--tag-pattern", "v{version}",
                          cwd=released.path)
    assert invalid.returncode == 2 and "HEAD:pipelines/etl.yaml:" in invalid.stderr
    assert [t.name for t in released.repo.tags] == ["etl/v1.0.0", "v1.0.0"]
    bad_bump = run_flowctl("release", "pipelines/etl.yaml", "--bump", "huge", cwd=released.path)
    assert bad_bump.returncode == 2 and "--bump" in bad_bump.stderr


def test_first_release_with_a_custom_tag_pattern_and_dry_run(git_repo: GitRepo) -> None:
    git_repo.write("pipelines/checks.yaml", CHECKS)
    git_repo.commit()
    dry = run_flowctl("release", "pipelines/checks.yaml", "--bump", "major", "--tag-pattern", "{name}-{version}", "--dry-run", cwd=git_repo.path)
    assert dry.returncode == 0, dry.stderr
    assert "would create tag (dry run) checks-1.0.0" in dry.stdout and "first release" in dry.stdout
    assert list(git_repo.repo.tags) == []
    real = run_flowctl("release", "pipelines/checks.yaml", "--bump", "major", "--tag-pattern", "{name}-{version}", "--json", cwd=git_repo.path)
    assert json.loads(real.stdout)["tag"] == "checks-1.0.0"
    assert [t.name for t in git_repo.repo.tags] == ["checks-1.0.0"]


def test_versions_lists_every_release_of_both_schemes_marking_changes(released: GitRepo) -> None:
    released.write("pipelines/checks.yaml", CHECKS + "  docs:\n    run: echo docs\n")
    released.commit("checks only")
    released.tag("v1.1.0")  # a repo-wide release that did not touch etl
    released.write("pipelines/etl.yaml", ETL_V1.replace("timeout: 5m", "timeout: 8m"))
    released.commit()
    made = run_flowctl("release", "pipelines/etl.yaml", "--bump", "patch", "--tag-pattern", "{name}/v{version}",
                       cwd=released.path)
    assert made.returncode == 0, made.stderr
    result = run_flowctl("versions", "pipelines/etl.yaml", cwd=released.path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # Newest first; etl/v1.0.0 and v1.0.0 tag one commit (the repo-wide tag comes first there).
    assert [line.split()[0] for line in lines] == ["etl/v1.0.1", "v1.1.0", "etl/v1.0.0", "v1.0.0"]
    assert lines[0].endswith("* changed load")
    assert lines[1].endswith("  no changes") and lines[2].endswith("  no changes")
    assert lines[3].endswith("* new pipeline (4 steps)")
    checks = json.loads(run_flowctl("versions", "pipelines/checks.yaml", "--json", cwd=released.path).stdout)
    assert [(v["tag"], v["changed"], v["summary"]) for v in checks] == [
        ("v1.0.0", True, "new pipeline (2 steps)"),
        ("v1.1.0", True, "added docs"),
    ]
    only = json.loads(run_flowctl("versions", "pipelines/etl.yaml", "--json", "--tag-pattern", "v{version}",
                                  cwd=released.path).stdout)
    assert [(v["tag"], v["changed"]) for v in only] == [("v1.0.0", True), ("v1.1.0", False)]


def test_versions_survives_a_release_where_the_pipeline_was_invalid(git_repo: GitRepo) -> None:
    git_repo.write("pipelines/etl.yaml", ETL_V1.replace("timeout: 5m", "timeout: whenever"))
    git_repo.commit("broken")
    git_repo.tag("etl/v0.1.0")
    git_repo.write("pipelines/etl.yaml", ETL_V1)
    git_repo.commit("fixed")
    git_repo.tag("etl/v0.2.0")
    result = run_flowctl("versions", "pipelines/etl.yaml", cwd=git_repo.path)
    assert result.returncode == 0, result.stderr
    newest, oldest = result.stdout.splitlines()
    assert newest.startswith("etl/v0.2.0") and "new pipeline (4 steps)" in newest
    assert oldest.startswith("etl/v0.1.0") and "invalid pipeline at this release" in oldest


def test_versions_outside_a_repo_and_without_releases(git_repo: GitRepo, tmp_path: Path) -> None:
    (tmp_path / "alone.yaml").write_text(CHECKS)
    outside = run_flowctl("versions", "alone.yaml", cwd=tmp_path)
    assert outside.returncode == 2 and "not inside a git repository" in outside.stderr
    git_repo.write("pipelines/checks.yaml", CHECKS)
    git_repo.commit()
    none = run_flowctl("versions", "pipelines/checks.yaml", cwd=git_repo.path)
    assert none.returncode == 0 and "no releases of pipelines/checks.yaml yet" in none.stdout


def _chain(steps: int = 10) -> str:
    lines = ["version: 1", "name: chain", "steps:"]
    for i in range(steps):
        lines += [f"  s{i}:", f"    run: echo {i}"] + ([f"    needs: [s{i - 1}]"] if i else [])
    return "\n".join(lines) + "\n"


def test_policy_changes_rerun_nothing_and_say_so_in_every_format(git_repo: GitRepo, update_golden: bool) -> None:
    """The reported case: a `retries` change on the first of ten steps said "10 steps run
    differently". It is execution policy: nothing re-runs. A command change further down
    re-runs that step and what needs it."""
    git_repo.write("pipelines/chain.yaml", _chain())
    git_repo.commit("chain")
    git_repo.tag("v1.0.0")
    text = _chain().replace("    run: echo 0\n", "    run: echo 0\n    retries: 3\n", 1)
    git_repo.write("pipelines/chain.yaml", text)
    policy = json.loads(run_flowctl("diff", "--json", cwd=git_repo.path).stdout)
    (chain,) = policy["pipelines"]
    assert chain["impact"] == {"rerun": [], "policy_only": ["s0"], "new": []}
    assert "no step re-runs, 1 step changes execution policy only (no re-run)" in policy["summary"]
    git_repo.write("pipelines/chain.yaml", text.replace("run: echo 6", "run: echo six"))
    for fmt, name in (("text", "diff_policy_and_rerun.txt"), ("markdown", "diff_policy_and_rerun.md")):
        result = run_flowctl("diff", "--format", fmt, cwd=git_repo.path)
        assert result.returncode == 0, result.stderr
        golden = GOLDEN / name
        if update_golden:
            golden.write_text(result.stdout, encoding="utf-8")
        assert result.stdout == golden.read_text(encoding="utf-8")
    both = json.loads(run_flowctl("diff", "--json", cwd=git_repo.path).stdout)
    assert both["pipelines"][0]["impact"] == {"rerun": ["s6", "s7", "s8", "s9"], "policy_only": ["s0"], "new": []}

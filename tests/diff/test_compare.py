"""The diff core on models: renames, field changes, defaults, secrets, edges, impact."""

from __future__ import annotations

from pathlib import Path

from flowctl.diff.changes import ChangeClass, ChangeKind, FieldChange, Impact
from flowctl.diff.compare import diff_pipelines
from flowctl.spec import load_pipeline
from flowctl.spec.model import Defaults, Param, ParamType, Remediation
from tests.diff.models import NEW, OLD, pipeline, step


def _diff(old, new):
    return diff_pipelines(old, new, old_side=OLD, new_side=NEW)


def _fields(diff, sid):
    (change,) = [c for c in diff.steps if c.step == sid]
    return {f.field: f for f in change.fields}


def test_identical_pipelines_have_no_changes() -> None:
    p = pipeline(step("a"), step("b", needs=["a"]))
    diff = _diff(p, p)
    assert diff.kind is ChangeKind.UNCHANGED
    assert not diff.changed and diff.steps == () and diff.edges == () and diff.settings == ()
    assert diff.impact == Impact()


def test_field_changes_old_to_new_and_impact_downstream() -> None:
    old = pipeline(step("a", "make a"), step("b", "make b", needs=["a"]), step("c", "make c", needs=["b"]), step("d", "make d"))
    new = pipeline(
        step("a", "make a", timeout=60.0),
        step("b", "make b --fast", needs=["a"]),
        step("c", "make c", needs=["b"]),
        step("d", "make d"),
    )
    diff = _diff(old, new)
    assert _fields(diff, "a")["timeout"] == FieldChange("timeout", None, 60.0)
    assert _fields(diff, "b")["run"] == FieldChange("run", "make b", "make b --fast")
    # a's timeout is execution policy (no re-run); b's command invalidates b's result and c's.
    assert diff.impact.rerun == ("b", "c")
    assert diff.impact.policy_only == ("a",)
    assert _fields(diff, "a")["timeout"].change_class is ChangeClass.POLICY
    assert _fields(diff, "b")["run"].change_class is ChangeClass.INVALIDATING


def test_rename_is_detected_and_follows_renamed_needs() -> None:
    old = pipeline(step("extract", "x"), step("clean", "y", needs=["extract"]), step("load", "z", needs=["clean"]))
    new = pipeline(step("fetch", "x"), step("tidy", "y", needs=["fetch"]), step("load", "z", needs=["tidy"]))
    diff = _diff(old, new)
    renamed = {(c.old_id, c.step) for c in diff.steps_of(ChangeKind.RENAMED)}
    assert renamed == {("extract", "fetch"), ("clean", "tidy")}
    # load's needs point at the renamed step: no field change, no edge change. But results are
    # recorded per step id (and load's fingerprint takes its needs' ids): all three run again.
    assert [c.step for c in diff.steps if c.kind is ChangeKind.CHANGED] == []
    assert diff.edges == ()
    assert diff.impact.rerun == ("fetch", "tidy", "load")


def test_rename_with_a_changed_default_in_the_same_commit() -> None:
    old = pipeline(step("a", "x", Defaults(retries=1)), defaults=Defaults(retries=1))
    new = pipeline(step("b", "x", Defaults(retries=2)), defaults=Defaults(retries=2))
    diff = _diff(old, new)
    (change,) = diff.steps
    assert change.kind is ChangeKind.RENAMED and change.old_id == "a"
    assert change.fields == (FieldChange("retries", 1, 2, inherited=True),)


def test_added_removed_steps_and_edges() -> None:
    old = pipeline(step("a"), step("b", needs=["a"]), step("gone", "rm"))
    new = pipeline(step("a"), step("b", needs=["a"]), step("c", "new", needs=["b"]))
    diff = _diff(old, new)
    assert [(c.kind, c.step) for c in diff.steps] == [(ChangeKind.ADDED, "c"), (ChangeKind.REMOVED, "gone")]
    assert [(e.kind, e.need, e.step) for e in diff.edges] == [(ChangeKind.ADDED, "b", "c")]
    assert diff.impact.new == ("c",)
    assert diff.impact.rerun == ()  # a new step has no recorded result; b keeps its own


def test_changed_default_lists_the_steps_that_inherit_it() -> None:
    old_d, new_d = Defaults(timeout=60.0), Defaults(timeout=120.0)
    old = pipeline(step("a", defaults=old_d), step("b", defaults=old_d, timeout=5.0), defaults=old_d)
    new = pipeline(step("a", defaults=new_d), step("b", defaults=new_d, timeout=5.0), defaults=new_d)
    diff = _diff(old, new)
    (setting,) = diff.settings
    assert (setting.field, setting.old, setting.new, setting.affects) == ("defaults.timeout", 60.0, 120.0, ("a",))
    assert _fields(diff, "a")["timeout"].inherited
    assert [c.step for c in diff.steps] == ["a"]
    assert diff.impact.policy_only == ("a",) and diff.impact.rerun == ()


def test_secret_env_is_reported_changed_without_values() -> None:
    secrets = frozenset({"TOKEN"})
    old = pipeline(step("a", env={"TOKEN": "hunter2", "MODE": "x"}, secret_env=secrets))
    new = pipeline(step("a", env={"TOKEN": "s3cret!", "MODE": "y"}, secret_env=secrets))
    diff = _diff(old, new)
    fields = _fields(diff, "a")
    assert fields["env.TOKEN"] == FieldChange("env.TOKEN", None, None, secret=True)
    assert fields["env.MODE"] == FieldChange("env.MODE", "x", "y")
    assert "hunter2" not in repr(diff) and "s3cret!" not in repr(diff)
    assert diff.impact.rerun == ("a",)


def test_unchanged_secret_is_not_a_change() -> None:
    p = pipeline(step("a", env={"TOKEN": "same"}, secret_env=frozenset({"TOKEN"})))
    assert not _diff(p, p).changed


def test_pipeline_env_and_params_affect_the_steps_using_them() -> None:
    date = Param("date", ParamType.STRING, "yesterday")
    old = pipeline(step("a", "load --date ${{ params.date }}"), step("b", "other"), params={"date": date}, env={"LEVEL": "info"})
    new = pipeline(
        step("a", "load --date ${{ params.date }}"),
        step("b", "other", env={"LEVEL": "own"}),
        params={"date": Param("date", ParamType.STRING, "today")},
        env={"LEVEL": "debug"},
    )
    diff = _diff(old, new)
    by_field = {s.field: s for s in diff.settings}
    assert by_field["params.date.default"].affects == ("a",)
    assert (by_field["env.LEVEL"].old, by_field["env.LEVEL"].new, by_field["env.LEVEL"].affects) == ("info", "debug", ("a",))
    assert diff.impact.rerun == ("a", "b")


def test_schedule_concurrency_and_remediation() -> None:
    old = pipeline(step("a", remediate=Remediation("fix.sh")), schedule="0 2 * * *", concurrency=2)
    new = pipeline(step("a", remediate=Remediation("fix.sh --hard")), schedule="@daily", concurrency=4)
    diff = _diff(old, new)
    assert {(s.field, s.old, s.new) for s in diff.settings} == {("schedule", "0 2 * * *", "@daily"), ("concurrency", 2, 4)}
    assert _fields(diff, "a")["remediate.run"] == FieldChange("remediate.run", "fix.sh", "fix.sh --hard")


def test_whole_pipeline_added_and_removed() -> None:
    p = pipeline(step("a"), step("b", needs=["a"]))
    added = diff_pipelines(None, p, old_side=OLD, new_side=NEW)
    removed = diff_pipelines(p, None, old_side=OLD, new_side=NEW)
    assert added.kind is ChangeKind.ADDED and [c.kind for c in added.steps] == [ChangeKind.ADDED] * 2
    assert added.impact == Impact(new=("a", "b"))
    assert removed.kind is ChangeKind.REMOVED and removed.impact == Impact()


def test_reordered_keys_comments_and_whitespace_are_not_changes(tmp_path: Path) -> None:
    first = b"""version: 1
name: etl
defaults: {retries: 2, timeout: 10m}
steps:
  extract:
    run: python extract.py
    outputs: [raw.json]
  load:
    needs: [extract]
    run: python load.py
    env: {A: "1", B: "2"}
"""
    second = b"""# the same pipeline, written differently
name: etl      # name first
version: 1
steps:
  load:
    env:
      B: '2'
      A: '1'
    run: "python load.py"
    needs:
      - extract
  extract:
    outputs:
      - raw.json
    run: >-
      python extract.py

defaults:
  timeout: 600s
  retries: 2
"""
    path = tmp_path / "p.yaml"
    old = load_pipeline(path, text=first, display_path="v1:p.yaml")
    new = load_pipeline(path, text=second, display_path="p.yaml")
    diff = _diff(old, new)
    assert not diff.changed, diff


def test_alerts_and_notify_changes_hide_webhook_urls() -> None:
    from flowctl.spec.model import AlertSpec, NotifierSpec

    old = pipeline(step("a"), alerts=(AlertSpec("failed"),), notify=(NotifierSpec(webhook="https://hooks.example.com/T0/SECRET1"),))
    new = pipeline(step("a"), alerts=(AlertSpec("duration > 10m"),), notify=(NotifierSpec(webhook="https://hooks.example.com/T0/SECRET2"),))
    diff = _diff(old, new)
    by_field = {s.field: s for s in diff.settings}
    assert (by_field["alerts"].old, by_field["alerts"].new) == (["failed"], ["duration > 10m"])
    assert "SECRET" not in repr(diff)
    assert by_field["notify"].old != by_field["notify"].new  # a new token still shows as a change
    assert diff.impact == Impact()
    assert diff.impact.rerun == ()


def test_resources_and_executor_are_execution_policy_that_invalidates_nothing() -> None:
    from flowctl.spec.model import ExecutorSpec

    old = pipeline(step("a", "make a"), step("b", "make b", needs=["a"]))
    new = pipeline(
        step("a", "make a", resources={"gpu": 1.0, "memory": 4.0 * 2**30}),
        step("b", "make b", needs=["a"]),
        executor=ExecutorSpec("dask", "tcp://scheduler:8786"),
    )
    diff = _diff(old, new)
    assert _fields(diff, "a")["resources"] == FieldChange("resources", {}, {"gpu": 1.0, "memory": 4.0 * 2**30})
    assert [(s.field, s.old, s.new) for s in diff.settings] == [
        ("executor", None, {"type": "dask", "address": "tcp://scheduler:8786"})
    ]
    assert diff.impact.rerun == ()

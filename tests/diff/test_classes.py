"""Every schema key has one change class, the same in code and docs, and the classes tell the
truth about the fingerprint: what `diff` says re-runs is exactly what a run would not reuse.

The oracle is the run path itself: ``prepare_run`` + ``fingerprint_plan`` (what ``flowctl run``
fingerprints) on the old and the new pipeline, and the state rule that a result is reused only
under the same pipeline name, the same step id and the same fingerprint.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowctl.diff.changes import ChangeKind, PipelineDiff
from flowctl.diff.classes import KEY_CLASSES, ChangeClass, setting_key, step_key
from flowctl.diff.compare import diff_pipelines
from flowctl.fingerprint import FINGERPRINT_KEYS, FingerprintKey
from flowctl.run.prepare import prepare_run
from flowctl.spec import load_pipeline
from flowctl.state.assess import fingerprint_plan
from tests.diff.models import NEW, OLD

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "schemas" / "pipeline.schema.json"
DOC = REPO / "docs" / "change-classes.md"

#: The placeholder a map's entries get in a key path (a map whose values are objects).
PLACEHOLDERS = {"params": "<name>", "steps": "<id>"}

KEY = FingerprintKey(b"test classes key " * 2)  # a fixed key: both sides must use the same one


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def schema_keys(node: dict[str, Any], root: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """Every key path of the schema: properties, map entries (``steps.<id>``), list entries
    (``alerts[].when``); a map of plain values (``env``) is one key."""
    node = _resolve(node, root)
    for name, sub in node.get("properties", {}).items():
        key = f"{prefix}.{name}" if prefix else name
        yield key
        yield from schema_keys(sub, root, key)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and "properties" in _resolve(extra, root):
        entry = f"{prefix}.{PLACEHOLDERS.get(prefix.rsplit('.', 1)[-1], '<key>')}"
        yield entry
        yield from schema_keys(extra, root, entry)
    items = node.get("items")
    if isinstance(items, dict):
        yield from schema_keys(items, root, f"{prefix}[]")


def all_schema_keys() -> list[str]:
    root = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return list(dict.fromkeys(schema_keys(root, root)))


def doc_table() -> dict[str, str]:
    rows = re.findall(r"^\| `([^`]+)` \| (\w+) \|", DOC.read_text(encoding="utf-8"), re.MULTILINE)
    return dict(rows)


def test_every_schema_key_has_exactly_one_class_in_code_and_docs() -> None:
    keys = all_schema_keys()
    assert len(keys) > 40 and "steps.<id>.run" in keys and "notify[].webhook" in keys
    missing = [k for k in keys if k not in KEY_CLASSES]
    assert not missing, f"give these schema keys a class in flowctl/diff/classes.py: {missing}"
    stale = [k for k in KEY_CLASSES if k not in keys]
    assert not stale, f"flowctl/diff/classes.py names keys the schema does not have: {stale}"
    table = doc_table()
    assert list(table) == keys, "docs/change-classes.md: one row per schema key, in schema order"
    assert table == {k: KEY_CLASSES[k].value for k in keys}


def test_the_invalidating_class_is_the_fingerprint_list() -> None:
    invalidating = {k for k, c in KEY_CLASSES.items() if c is ChangeClass.INVALIDATING}
    assert invalidating == set(FINGERPRINT_KEYS)


def test_diff_field_names_map_to_schema_keys() -> None:
    assert step_key("env.TOKEN") == "steps.<id>.env"
    assert step_key("remediate.env.X") == "steps.<id>.remediate.env"
    assert step_key("remediate.timeout") == "steps.<id>.remediate.timeout"
    assert setting_key("params.day.default") == "params.<name>.default"
    assert setting_key("params.day") == "params.<name>"
    assert setting_key("env.LEVEL") == "env"
    assert setting_key("defaults.retries") == "defaults.retries"


# -- each key changed, against the real fingerprint ---------------------------------------------

BASE: dict[str, Any] = {
    "version": 1,
    "name": "p",
    "description": "a pipeline",
    "tags": ["t"],
    "schedule": "0 2 * * *",
    "timezone": "UTC",
    "chaos": "fail=0.1",
    "concurrency": 2,
    "params": {
        "day": {"type": "string", "default": "mon", "description": "the day", "choices": ["mon", "tue"]},
        "n": {"type": "integer", "default": 1},
    },
    "env": {"LEVEL": "info", "TOKEN": "s1"},
    "secret_env": ["TOKEN"],
    "defaults": {
        "retries": 1, "retry_delay": "1s", "retry_max_delay": "10s", "retry_on_exit_codes": [3],
        "timeout": "1m", "continue_on_error": False, "resources": {"memory": "1GiB"},
    },
    "steps": {
        "a": {
            "run": "echo ${{ params.day }} $FLOWCTL_PARAM_EXTRA", "description": "first", "tags": ["x"],
            "env": {"A": "1"}, "secret_env": [], "cwd": "sub", "inputs": ["in.txt"], "outputs": ["out.txt"],
            "retries": 2, "retry_delay": "2s", "retry_max_delay": "20s", "retry_on_exit_codes": [4],
            "timeout": "2m", "continue_on_error": False,
            "remediate": {"run": "echo fix", "timeout": "5s", "env": {"R": "1"}},
        },
        "b": {"run": "echo b ${{ params.n }}", "needs": ["a"]},
        "c": {"run": "echo c", "needs": ["b"]},
        "e": {"run": "echo e", "needs": ["a"], "foreach": {"items": ["x", "y"], "key": "${{ item }}"}},
    },
    "alerts": [{"when": "failed", "description": "tell someone"}],
    "notify": [{"run": "true", "timeout": "5s", "retries": 1}, {"webhook": "https://hooks.example.com/a"}],
    "executor": {"type": "local"},
}

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    def apply(d: dict[str, Any]) -> None:
        *head, last = path.split("/")
        target: Any = d
        for part in head:
            if part not in target and not part.isdigit():
                return  # another sample removed the container: nothing left to change
            target = target[int(part)] if part.isdigit() else target[part]
        if value is _DELETE:
            del target[last]
        else:
            target[int(last) if last.isdigit() else last] = value
    return apply


_DELETE = object()


def _rename_step(old: str, new: str) -> Mutation:
    def apply(d: dict[str, Any]) -> None:
        d["steps"] = {new if k == old else k: v for k, v in d["steps"].items()}
        for step in d["steps"].values():
            if "needs" in step:
                step["needs"] = [new if n == old else n for n in step["needs"]]
    return apply


#: One change per schema key (None: the key cannot change). Every schema key needs an entry.
SAMPLES: dict[str, Mutation | None] = {
    "version": None,  # const 1
    "name": _set("name", "q"),
    "description": _set("description", "other"),
    "tags": _set("tags", ["u"]),
    "schedule": _set("schedule", "0 3 * * *"),
    "timezone": _set("timezone", "Europe/Berlin"),
    "chaos": _set("chaos", "kill=0.2,seed=3"),
    "concurrency": _set("concurrency", 3),
    "params": _set("params/extra", {"default": "x"}),  # a uses it as $FLOWCTL_PARAM_EXTRA
    "params.<name>": _set("params/extra", {"type": "string", "default": "y"}),
    "params.<name>.type": _set("params/n/type", "string"),  # 1 becomes "1"
    "params.<name>.default": _set("params/day/default", "tue"),
    "params.<name>.description": _set("params/day/description", "which day"),
    "params.<name>.choices": _set("params/day/choices", ["mon", "tue", "wed"]),
    "env": _set("env/LEVEL", "debug"),
    "secret_env": _set("secret_env", []),
    "defaults": _set("defaults", _DELETE),
    "defaults.retries": _set("defaults/retries", 5),
    "defaults.retry_delay": _set("defaults/retry_delay", "3s"),
    "defaults.retry_max_delay": _set("defaults/retry_max_delay", "30s"),
    "defaults.retry_on_exit_codes": _set("defaults/retry_on_exit_codes", [3, 5]),
    "defaults.timeout": _set("defaults/timeout", "5m"),
    "defaults.continue_on_error": _set("defaults/continue_on_error", True),
    "defaults.resources": _set("defaults/resources", {"memory": "2GiB"}),
    "steps": _set("steps/d", {"run": "echo d"}),
    "steps.<id>": _rename_step("b", "b2"),
    "steps.<id>.run": _set("steps/a/run", "echo ${{ params.day }} $FLOWCTL_PARAM_EXTRA again"),
    "steps.<id>.needs": _set("steps/c/needs", ["a", "b"]),
    "steps.<id>.description": _set("steps/a/description", "the first"),
    "steps.<id>.tags": _set("steps/a/tags", ["y"]),
    "steps.<id>.env": _set("steps/a/env/A", "2"),
    "steps.<id>.secret_env": _set("steps/a/secret_env", ["A"]),
    "steps.<id>.cwd": _set("steps/a/cwd", "other"),
    "steps.<id>.inputs": _set("steps/a/inputs", ["in.txt", "more.txt"]),
    "steps.<id>.outputs": _set("steps/a/outputs", ["out.txt", "out2.txt"]),
    "steps.<id>.retries": _set("steps/a/retries", 4),
    "steps.<id>.retry_delay": _set("steps/a/retry_delay", "4s"),
    "steps.<id>.retry_max_delay": _set("steps/a/retry_max_delay", "40s"),
    "steps.<id>.retry_on_exit_codes": _set("steps/a/retry_on_exit_codes", [4, 6]),
    "steps.<id>.timeout": _set("steps/a/timeout", "3m"),
    "steps.<id>.continue_on_error": _set("steps/a/continue_on_error", True),
    "steps.<id>.resources": _set("steps/a/resources", {"gpu": 1}),
    "steps.<id>.foreach": _set("steps/e/foreach", {"items": ["x", "y", "z"]}),
    "steps.<id>.foreach.items": _set("steps/e/foreach/items", ["x"]),
    "steps.<id>.foreach.items_from": _set("steps/e/foreach", {"items_from": {"glob": "*.txt"}}),
    "steps.<id>.foreach.items_from.file": _set("steps/e/foreach", {"items_from": {"file": "in.txt"}}),
    "steps.<id>.foreach.items_from.format": _set("steps/e/foreach", {"items_from": {"file": "in.txt", "format": "lines"}}),
    "steps.<id>.foreach.items_from.glob": _set("steps/e/foreach", {"items_from": {"glob": "*.csv"}}),
    "steps.<id>.foreach.items_from.step": _set("steps/e/foreach", {"items_from": {"step": "a"}}),
    "steps.<id>.foreach.items_from.stream": _set("steps/e/foreach", {"items_from": {"step": "a", "stream": True}}),
    "steps.<id>.foreach.key": _set("steps/e/foreach/key", "k-${{ item }}"),
    "steps.<id>.foreach.batch": _set("steps/e/foreach/batch", {"size": 2}),
    "steps.<id>.foreach.batch.size": _set("steps/e/foreach/batch", {"size": 5}),
    "steps.<id>.foreach.batch.max_bytes": _set("steps/e/foreach/batch", {"size": 5, "max_bytes": "1KiB"}),
    "steps.<id>.foreach.batch.split_on_failure": _set("steps/e/foreach/batch", {"size": 5, "split_on_failure": True}),
    "steps.<id>.foreach.max_concurrent": _set("steps/e/foreach/max_concurrent", 2),
    "steps.<id>.foreach.max_items": _set("steps/e/foreach/max_items", 10),
    "steps.<id>.foreach.tolerated_failure": _set("steps/e/foreach/tolerated_failure", {"count": 1}),
    "steps.<id>.foreach.tolerated_failure.percent": _set("steps/e/foreach/tolerated_failure", {"percent": 5}),
    "steps.<id>.foreach.tolerated_failure.count": _set("steps/e/foreach/tolerated_failure", {"count": 3}),
    "steps.<id>.foreach.fail_fast": _set("steps/e/foreach/fail_fast", True),
    "steps.<id>.remediate": _set("steps/a/remediate", _DELETE),
    "steps.<id>.remediate.run": _set("steps/a/remediate/run", "echo fix harder"),
    "steps.<id>.remediate.timeout": _set("steps/a/remediate/timeout", "9s"),
    "steps.<id>.remediate.env": _set("steps/a/remediate/env/R", "2"),
    "alerts": _set("alerts", _DELETE),
    "alerts[].when": _set("alerts/0/when", "duration > 10m"),
    "alerts[].description": _set("alerts/0/description", "tell everyone"),
    "notify": _set("notify", _DELETE),
    "notify[].run": _set("notify/0/run", "false"),
    "notify[].webhook": _set("notify/1/webhook", "https://hooks.example.com/b"),
    "notify[].timeout": _set("notify/0/timeout", "9s"),
    "notify[].retries": _set("notify/0/retries", 2),
    "executor": _set("executor", _DELETE),
    "executor.type": _set("executor/type", "dask"),
    # an address needs `type: dask`: the sample sets both, so it combines with the others
    "executor.address": _set("executor", {"type": "dask", "address": "tcp://scheduler:8786"}),
}

#: Renames last, so the other mutations still find the steps they change.
ORDER = sorted(SAMPLES, key=lambda k: k == "steps.<id>")


def test_every_schema_key_has_a_sample_change() -> None:
    assert list(SAMPLES) == all_schema_keys()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("classes")
    for sub in ("sub", "other"):
        (root / sub).mkdir()
        (root / sub / "in.txt").write_text("data\n")
        (root / sub / "more.txt").write_text("more\n")
    return root


def _compare(folder: Path, keys: list[str]) -> tuple[PipelineDiff, set[str]]:
    """The diff of BASE → BASE with ``keys`` changed, and the steps a run would not reuse."""
    new_doc = copy.deepcopy(BASE)
    for key in ORDER:
        sample = SAMPLES[key]
        if key in keys and sample is not None:
            sample(new_doc)
    paths = []
    for name, doc in (("old.yaml", BASE), ("new.yaml", new_doc)):
        paths.append(folder / name)
        paths[-1].write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    runs = []
    for path in paths:
        prepared = prepare_run(path, environ={})
        fps = fingerprint_plan(prepared.plan, prepared.params, prepared.invocations, {}, KEY)
        runs.append((prepared.pipeline, {sid: fp.digest for sid, fp in fps.items()}))
    (old, old_fps), (new, new_fps) = runs
    not_reused = {
        sid for sid, digest in new_fps.items()
        if old.name != new.name or old_fps.get(sid) != digest
    }
    diff = diff_pipelines(load_pipeline(paths[0]), load_pipeline(paths[1]), old_side=OLD, new_side=NEW)
    return diff, not_reused


def _reported_classes(diff: PipelineDiff) -> set[ChangeClass]:
    found = {f.change_class for c in diff.steps for f in c.fields if not f.inherited}
    found |= {s.change_class for s in diff.settings}
    if diff.steps_of(ChangeKind.RENAMED) or diff.steps_of(ChangeKind.ADDED):
        found.add(ChangeClass.IDENTITY)
    return found


@pytest.mark.parametrize("key", [k for k, v in SAMPLES.items() if v is not None])
def test_each_key_changed_alone_is_reported_in_its_class_and_reruns_as_the_fingerprint_says(
    key: str, folder: Path
) -> None:
    diff, not_reused = _compare(folder, [key])
    cls = KEY_CLASSES[key]
    reported = _reported_classes(diff)
    assert reported <= {cls}, f"{key} ({cls.value}) was reported as {sorted(c.value for c in reported)}"
    impact = diff.impact
    assert set(impact.rerun) | set(impact.new) == not_reused
    assert not set(impact.policy_only) & not_reused
    if cls is ChangeClass.INVALIDATING:
        assert impact.rerun, f"{key} feeds the fingerprint, so the sample must re-run something"
    elif cls is ChangeClass.IDENTITY:
        assert impact.rerun or impact.new
    else:
        assert not not_reused, f"{key} is {cls.value}, yet the fingerprint moved for {sorted(not_reused)}"
    if cls is ChangeClass.POLICY and diff.steps:
        assert impact.policy_only


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from([k for k, v in SAMPLES.items() if v is not None]), unique=True, max_size=8))
def test_what_diff_says_reruns_is_what_a_run_would_not_reuse(folder: Path, keys: list[str]) -> None:
    diff, not_reused = _compare(folder, keys)
    assert set(diff.impact.rerun) | set(diff.impact.new) == not_reused
    assert not set(diff.impact.policy_only) & not_reused

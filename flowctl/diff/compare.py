"""Compare two ``Pipeline`` models into a ``PipelineDiff`` (the semantic diff's core).

Works on the typed models only, so key order, comments, quoting and whitespace can never show
up as changes. Finds steps added, removed and renamed (the same definition under a new id,
following renamed upstream steps in ``needs``), per-step field changes, dependency edges added
and removed, pipeline-level changes (schedule, params, concurrency, defaults, env, ...) with the
steps each affects, and the impact (``impact.py``). Secret env values are never copied out.
Reading files and git refs is ``gitsource.py``'s job; rendering is ``render.py``'s.
"""

from __future__ import annotations

import enum
import hashlib
import json
import posixpath
from collections.abc import Mapping
from typing import Any

from flowctl.diff.changes import (
    ChangeKind,
    EdgeChange,
    FieldChange,
    PipelineDiff,
    SettingChange,
    Side,
    StepChange,
    Value,
)
from flowctl.diff.impact import compute_impact
from flowctl.spec.model import DEFAULTABLE, Param, ParamValue, Pipeline, Step

#: Step fields compared as sets (their order means nothing).
_SET_FIELDS = frozenset({"needs", "tags", "secret_env"})


def diff_pipelines(old: Pipeline | None, new: Pipeline | None, *, old_side: Side, new_side: Side) -> PipelineDiff:
    """Everything that differs between ``old`` and ``new`` (``None``: the file is absent)."""
    if old is None and new is None:
        raise ValueError("diff_pipelines needs at least one pipeline")
    graphs = {"old_graph": _graph(old), "new_graph": _graph(new)}
    if old is None or new is None:
        present = new if new is not None else old
        assert present is not None
        kind = ChangeKind.ADDED if old is None else ChangeKind.REMOVED
        steps = tuple(StepChange(kind, sid) for sid in present.steps)
        edges = tuple(EdgeChange(kind, need, sid) for sid, s in present.steps.items() for need in s.needs)
        impact = compute_impact(old, new, steps, ())
        return PipelineDiff(present.name, kind, old_side, new_side, (), steps, edges, impact, **graphs)
    renames = _match_renames(old, new)
    steps = _step_changes(old, new, renames)
    edges = _edge_changes(old, new, renames)
    settings = _setting_changes(old, new)
    impact = compute_impact(old, new, steps, settings)
    kind = ChangeKind.CHANGED if steps or edges or settings else ChangeKind.UNCHANGED
    return PipelineDiff(new.name, kind, old_side, new_side, settings, steps, edges, impact, **graphs)


def _graph(p: Pipeline | None) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return () if p is None else tuple((sid, tuple(s.needs)) for sid, s in p.steps.items())


# -- values --------------------------------------------------------------------------------


def _command(run: str | tuple[str, ...]) -> Value:
    return run if isinstance(run, str) else list(run)


class _Secret:
    """Stands for a secret value: equal only to itself, so a changed secret needs a hash."""

    __slots__ = ()


_SECRET = _Secret()


def _step_values(p: Pipeline, s: Step, renames: Mapping[str, str]) -> dict[str, Value | _Secret]:
    """The comparable fields of a step; env is the declared env (pipeline merged with step)."""
    secrets = p.secrets_for(s)
    values: dict[str, Value | _Secret] = {
        "run": _command(s.run),
        "needs": sorted(renames.get(n, n) for n in s.needs),
        "description": s.description,
        "tags": sorted(s.tags),
        "cwd": s.cwd,
        "inputs": list(s.inputs),
        "outputs": list(s.outputs),
        "retries": s.retries,
        "retry_delay": s.retry_delay,
        "retry_max_delay": s.retry_max_delay,
        "retry_on_exit_codes": list(s.retry_on_exit_codes),
        "timeout": s.timeout,
        "continue_on_error": s.continue_on_error,
        "resources": dict(sorted(s.resources.items())),  # execution policy: never invalidates a result
        "foreach": _foreach(s),  # which items run: each item's result is found by its key (issue 15)
        "secret_env": sorted(s.secret_env),
    }
    env = {**p.env, **s.env}
    for key in sorted(env):
        values[f"env.{key}"] = _SECRET if key in secrets else env[key]
    if s.remediate is not None:
        r = s.remediate
        values["remediate.run"] = _command(r.run)
        values["remediate.timeout"] = r.timeout
        for key in sorted(r.env):
            values[f"remediate.env.{key}"] = _SECRET if key in secrets else r.env[key]
    return values


def _secret_token(p: Pipeline, s: Step, key: str) -> str:
    """A hash standing for a secret value, so two of them compare without leaving this module."""
    if key.startswith("remediate.env."):
        value = s.remediate.env.get(key.removeprefix("remediate.env."), "") if s.remediate else ""
    else:
        value = {**p.env, **s.env}.get(key.removeprefix("env."), "")
    return hashlib.sha256(value.encode()).hexdigest()


def _field_changes(
    old_p: Pipeline, old_s: Step, new_p: Pipeline, new_s: Step, renames: Mapping[str, str]
) -> tuple[FieldChange, ...]:
    a = _step_values(old_p, old_s, renames)
    b = _step_values(new_p, new_s, {})
    changes: list[FieldChange] = []
    for key in _ordered_keys(a, b):
        va, vb = a.get(key), b.get(key)
        secret = va is _SECRET or vb is _SECRET
        if secret:
            ta = _secret_token(old_p, old_s, key) if key in a else None
            tb = _secret_token(new_p, new_s, key) if key in b else None
            if ta != tb:  # only made secret or public: the ``secret_env`` change says so
                changes.append(FieldChange(key, None, None, secret=True, inherited=_inherited(key, old_s, new_s)))
            continue
        if key == "cwd" and _folder(va) == _folder(vb):
            continue  # "." and no cwd are the same folder, as the fingerprint sees it
        if va != vb and not isinstance(va, _Secret) and not isinstance(vb, _Secret):
            changes.append(FieldChange(key, va, vb, inherited=_inherited(key, old_s, new_s)))
    return tuple(changes)


def _folder(cwd: object) -> object:
    return posixpath.normpath(cwd) if isinstance(cwd, str) else "."


def _inherited(key: str, old_s: Step, new_s: Step) -> bool:
    """True when neither side of the step set the field itself (it comes from the pipeline)."""
    if key in DEFAULTABLE:
        return key not in old_s.explicit and key not in new_s.explicit
    if key.startswith("env."):
        name = key.removeprefix("env.")
        return name not in old_s.env and name not in new_s.env
    return False


def _ordered_keys(a: Mapping[str, object], b: Mapping[str, object]) -> list[str]:
    seen = dict.fromkeys(a)
    seen.update(dict.fromkeys(b))
    return list(seen)


# -- steps and renames ---------------------------------------------------------------------


def _signature(p: Pipeline, s: Step, renames: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The step as written in its file, minus its id: what a rename keeps unchanged.

    Values it inherits (defaults, pipeline env) are left out, so a rename is still found when a
    default changed in the same commit.
    """
    out = []
    for key, value in _step_values(p, s, renames).items():
        if key in DEFAULTABLE and key not in s.explicit:
            shown = "(inherited)"
        elif key.startswith("env.") and key.removeprefix("env.") not in s.env:
            continue
        elif value is _SECRET:
            shown = _secret_token(p, s, key)
        else:
            shown = repr(value)
        out.append((key, shown))
    return tuple(out)


def _match_renames(old: Pipeline, new: Pipeline) -> dict[str, str]:
    """old id → new id for steps whose definition is unchanged under a new id."""
    removed = [sid for sid in old.steps if sid not in new.steps]
    added = [sid for sid in new.steps if sid not in old.steps]
    renames: dict[str, str] = {}
    progress = True
    while progress:  # a renamed upstream changes its dependents' needs: follow until stable
        progress = False
        taken = set(renames.values())
        new_sigs = {sid: _signature(new, new.steps[sid], {}) for sid in added if sid not in taken}
        for sid in removed:
            if sid in renames:
                continue
            sig = _signature(old, old.steps[sid], renames)
            for candidate, candidate_sig in new_sigs.items():
                if candidate_sig == sig:
                    renames[sid] = candidate
                    del new_sigs[candidate]
                    progress = True
                    break
    return renames


def _step_changes(old: Pipeline, new: Pipeline, renames: Mapping[str, str]) -> tuple[StepChange, ...]:
    renamed_to = {v: k for k, v in renames.items()}
    changes: list[StepChange] = []
    for sid, step in new.steps.items():
        if sid in old.steps:
            fields = _field_changes(old, old.steps[sid], new, step, renames)
            if fields:
                changes.append(StepChange(ChangeKind.CHANGED, sid, fields=fields))
        elif sid in renamed_to:
            before = renamed_to[sid]
            fields = _field_changes(old, old.steps[before], new, step, renames)
            changes.append(StepChange(ChangeKind.RENAMED, sid, old_id=before, fields=fields))
        else:
            changes.append(StepChange(ChangeKind.ADDED, sid))
    for sid in old.steps:
        if sid not in new.steps and sid not in renames:
            changes.append(StepChange(ChangeKind.REMOVED, sid))
    return tuple(changes)


def _edge_changes(old: Pipeline, new: Pipeline, renames: Mapping[str, str]) -> tuple[EdgeChange, ...]:
    before = [(renames.get(n, n), renames.get(sid, sid)) for sid, s in old.steps.items() for n in s.needs]
    after = [(n, sid) for sid, s in new.steps.items() for n in s.needs]
    after_set, before_set = set(after), set(before)
    added = [EdgeChange(ChangeKind.ADDED, n, s) for n, s in after if (n, s) not in before_set]
    removed = [EdgeChange(ChangeKind.REMOVED, n, s) for n, s in before if (n, s) not in after_set]
    return tuple(added + removed)


# -- pipeline settings ---------------------------------------------------------------------

def _param_value(param: Param) -> dict[str, Value]:
    return {
        "type": param.type.value,
        "default": param.default,
        "description": param.description,
        "choices": list(param.choices),
    }


def _default_text(param: Param) -> str | None:
    from flowctl.spec.expr import value_text

    return None if param.default is None else value_text(param.default)


def params_used(p: Pipeline) -> dict[str, tuple[str, ...]]:
    """Step id → the parameters its fingerprint takes, as ``spec.resolve`` finds them (the
    command, env, cwd, inputs and outputs; ``FLOWCTL_PARAM_<NAME>`` mentions too)."""
    from flowctl.spec.resolve import Resolver

    values: dict[str, ParamValue] = {n: "" if q.default is None else q.default for n, q in p.params.items()}
    resolver = Resolver(p, values, {})
    return {sid: resolver.step(s).params_used for sid, s in p.steps.items()}


def _setting_changes(old: Pipeline, new: Pipeline) -> tuple[SettingChange, ...]:
    out: list[SettingChange] = []
    everyone = tuple(new.steps)
    used = params_used(new)
    for name in ("name", "version", "description", "schedule", "timezone", "concurrency"):
        a, b = getattr(old, name), getattr(new, name)
        if a != b:  # a new name finds none of the old one's recorded results
            out.append(SettingChange(name, a, b, affects=everyone if name == "name" else ()))
    if sorted(old.tags) != sorted(new.tags):
        out.append(SettingChange("tags", sorted(old.tags), sorted(new.tags)))
    a_exec, b_exec = _executor(old), _executor(new)
    if a_exec != b_exec:  # where steps run, not what they do: affects no result
        out.append(SettingChange("executor", a_exec, b_exec))
    for name in ("alerts", "notify"):
        a_list, b_list = _entries(old, name), _entries(new, name)
        if a_list != b_list:
            out.append(SettingChange(name, a_list, b_list))
    for pname in _ordered_keys(old.params, new.params):
        a_param, b_param = old.params.get(pname), new.params.get(pname)
        users = tuple(sid for sid, names in used.items() if pname in names)
        if a_param is None or b_param is None:
            out.append(
                SettingChange(
                    f"params.{pname}",
                    _param_value(a_param) if a_param else None,
                    _param_value(b_param) if b_param else None,
                    affects=users,
                )
            )
            continue
        va, vb = _param_value(a_param), _param_value(b_param)
        # A step sees (and its fingerprint hashes) the value's canonical text: a new type or
        # default that leaves that text as it was (integer 1 → string "1") re-runs nothing.
        text_moves = _default_text(a_param) != _default_text(b_param)
        for key in va:
            if key == "default" and not text_moves:
                continue  # the same value as the steps see it (the type change, if any, is shown)
            if json.dumps(va[key]) != json.dumps(vb[key]):  # 1, 1.0 and true are three values
                out.append(SettingChange(f"params.{pname}.{key}", va[key], vb[key], affects=users))
    secrets = old.secret_env | new.secret_env
    for key in _ordered_keys(old.env, new.env):
        a_env, b_env = old.env.get(key), new.env.get(key)
        if a_env != b_env:  # a value made secret (or public) is the ``secret_env`` change below
            affected = tuple(sid for sid, s in new.steps.items() if key not in s.env)
            if key in secrets:
                out.append(SettingChange(f"env.{key}", None, None, secret=True, affects=affected))
            else:
                out.append(SettingChange(f"env.{key}", a_env, b_env, affects=affected))
    if old.secret_env != new.secret_env:
        out.append(SettingChange("secret_env", sorted(old.secret_env), sorted(new.secret_env), affects=everyone))
    for fname in DEFAULTABLE:
        a_val, b_val = getattr(old.defaults, fname), getattr(new.defaults, fname)
        if a_val != b_val:
            affected = tuple(sid for sid, s in new.steps.items() if fname not in s.explicit)
            out.append(SettingChange(f"defaults.{fname}", _plain(a_val), _plain(b_val), affects=affected))
    return tuple(out)


def _entries(p: Pipeline, name: str) -> list[Any]:
    """``alerts``/``notify`` entries as plain values; a webhook shows only its host, since
    its URL often embeds a token (and a short hash, so a changed URL still shows)."""
    from urllib.parse import urlsplit

    out: list[Any] = []
    for entry in getattr(p, name, ()):
        if name == "alerts":
            out.append(entry.when)
            continue
        item: dict[str, Any] = {"run": _command(entry.run) if entry.run is not None else None}
        if entry.webhook:
            parts = urlsplit(entry.webhook)
            digest = hashlib.sha256(entry.webhook.encode()).hexdigest()[:8]
            item["webhook"] = f"{parts.scheme}://{parts.hostname or ''}/… (#{digest})"
        item.update(timeout=entry.timeout, retries=entry.retries)
        out.append(item)
    return out


def _foreach(s: Step) -> Value:
    import dataclasses

    def plain(value: object) -> Value:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name != "span"}
        if isinstance(value, enum.Enum):
            return value.value  # type: ignore[no-any-return]
        return _plain(value)

    return None if s.foreach is None else plain(s.foreach)


def _executor(p: Pipeline) -> Value:
    spec = p.executor
    return None if spec is None else {"type": spec.type, "address": spec.address}


def _plain(value: object) -> Value:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(sorted(value.items()))
    return value  # type: ignore[return-value]


__all__ = ["diff_pipelines", "params_used"]

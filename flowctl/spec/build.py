"""Checks beyond the schema, and building the typed ``Pipeline`` from a checked document.

The schema says what shape a pipeline has; this module checks what a schema cannot: ``needs``
naming a missing step (with the closest id), a step needing itself, cycles (with the cycle's
path), cron expressions and time zones, durations, parameter defaults against their types,
and ``${{ … }}`` expressions (defined parameters, never inside single quotes). Every check
collects diagnostics; nothing stops at the first. Checks are defensive about shapes, because
they also run on documents the schema rejected, so one pass reports everything.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from flowctl.errors import Diagnostic, Span
from flowctl.load.yamlsource import Document
from flowctl.spec import expr
from flowctl.spec.chaos import ChaosError, parse_chaos
from flowctl.spec.durations import parse_duration
from flowctl.spec.foreach import build_foreach, check_step
from flowctl.spec.model import (
    DEFAULTABLE,
    AlertSpec,
    Defaults,
    ExecutorSpec,
    NotifierSpec,
    Param,
    ParamType,
    Pipeline,
    Remediation,
    Step,
)
from flowctl.spec.paramvalues import coerce_param
from flowctl.spec.places import expression_places, needs_of, span_within
from flowctl.spec.schema import dotted, suggest
from flowctl.spec.sizes import SCHEMA_PATTERN, parse_size

_DURATIONS = ("retry_delay", "retry_max_delay", "timeout")
_MAX_DURATION = 30 * 86400.0


class _Checker:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.diags: list[Diagnostic] = []

    def error(self, path: list[Any], message: str, hint: str | None = None, *, key: bool = False,
              code: str = "semantic", span: Span | None = None) -> None:
        self.diags.append(Diagnostic(span or self.doc.span(path, key=key), message, hint=hint,
                                     code=code, path=dotted(path)))

    def _report(self, path: list[Any], message: str, hint: str | None, code: str, span: Span | None) -> None:
        self.error(path, message, hint, code=code, span=span)

    # -- the checks ------------------------------------------------------------------------

    def run(self, data: dict[str, Any]) -> None:
        raw_params, raw_steps = data.get("params"), data.get("steps")
        params: dict[str, Any] = raw_params if isinstance(raw_params, dict) else {}
        self.params(params)
        steps: dict[str, Any] = raw_steps if isinstance(raw_steps, dict) else {}
        # issue 15: item expressions outside a foreach step are errors too, so look whenever one may be there
        maybe_items = "${{" in self.doc.text and any(w in self.doc.text for w in ("item", "batch", "needs"))
        self.durations(data.get("defaults"), ["defaults"])
        self.resources(data.get("defaults"), ["defaults"])
        for sid, step in steps.items():
            if isinstance(step, dict):
                self.durations(step, ["steps", sid])
                self.resources(step, ["steps", sid])
                if isinstance(step.get("remediate"), dict):
                    self.durations(step["remediate"], ["steps", sid, "remediate"])
                if maybe_items or "foreach" in step:
                    check_step(self.doc, sid, step, steps, self._report)
        for i, notifier in enumerate(data.get("notify") or []):
            if isinstance(notifier, dict):
                self.durations(notifier, ["notify", i])
        self.needs(steps)
        self.executor(data.get("executor"))
        self.expressions(data, params)
        self.schedule(data)
        self.alerts(data, steps)

    def params(self, params: Mapping[str, Any]) -> None:
        upper: dict[str, str] = {}
        for name, spec in params.items():
            other = upper.setdefault(name.upper(), name)
            if other != name:
                self.error(["params", name], f"parameters {other!r} and {name!r} differ only in case",
                           "both would be passed as " + expr.param_var(name), key=True)
            if not isinstance(spec, dict):
                continue
            ptype = spec.get("type", "string")
            if ptype not in {t.value for t in ParamType}:
                continue
            if "default" in spec:
                ok, _ = coerce_param(ptype, spec["default"])
                if not ok:
                    self.error(["params", name, "default"],
                               f"the default of parameter {name!r} is not {_article(ptype)}: {spec['default']!r}",
                               f"change the default or the parameter's type ({ptype})", code="param-type")
            for i, choice in enumerate(spec.get("choices") or []):
                if not coerce_param(ptype, choice)[0]:
                    self.error(["params", name, "choices", i], f"choice {choice!r} of parameter {name!r} is not {_article(ptype)}",
                               code="param-type")
            if "default" in spec and isinstance(spec.get("choices"), list) and spec["default"] not in spec["choices"]:
                self.error(["params", name, "default"], f"the default {spec['default']!r} of parameter {name!r} is not one of its choices",
                           code="param-choice")

    def durations(self, obj: Any, path: list[Any]) -> None:
        if not isinstance(obj, dict):
            return
        for field in _DURATIONS:
            value = obj.get(field)
            if value is None or isinstance(value, bool) or not isinstance(value, (str, int, float)):
                continue
            try:
                seconds = parse_duration(value)
            except ValueError as exc:
                if not isinstance(value, str):  # a malformed string is the schema's to report
                    self.error([*path, field], str(exc), code="duration")
                continue
            if seconds > _MAX_DURATION:
                self.error([*path, field], f"{field} {value!r} is longer than 30 days", code="duration")
            elif field == "timeout" and seconds == 0:
                self.error([*path, field], "a timeout of 0 would stop every attempt at once",
                           "leave `timeout` out for no limit", code="duration")

    def resources(self, obj: Any, path: list[Any]) -> None:
        """Sizes the schema's pattern lets through but that are no whole number of bytes."""
        wanted = obj.get("resources") if isinstance(obj, dict) else None
        if not isinstance(wanted, dict):
            return
        for name, value in wanted.items():
            if isinstance(value, str) and re.match(SCHEMA_PATTERN, value):  # else the schema's to report
                try:
                    parse_size(value)
                except ValueError as exc:
                    self.error([*path, "resources", name], str(exc), code="size")

    def executor(self, spec: Any) -> None:
        if isinstance(spec, dict) and spec.get("type") == "local" and "address" in spec:
            self.error(["executor", "address"], "an `address` is a Dask scheduler's: it needs `type: dask`",
                       "set `type: dask`, or remove `address`", code="executor")

    def needs(self, steps: Mapping[str, Any]) -> None:
        ids = list(steps)
        index = {sid: i for i, sid in enumerate(ids)}
        graph: dict[str, list[str]] = {}
        backward = False  # does any step need one defined after it? Only then can there be a cycle
        for i, (sid, step) in enumerate(steps.items()):
            needs = needs_of(step)
            graph[sid] = needs
            if not needs:
                continue
            try:
                # C-level checks for the common case: every need names an earlier step.
                if max(map(index.__getitem__, needs)) < i:
                    continue
            except (KeyError, TypeError):
                pass
            good = [n for n in needs if isinstance(n, str) and n in index and n != sid]
            graph[sid] = good
            backward = backward or any(index[n] > i for n in good)
            if len(good) == len(needs):
                continue
            for j, need in enumerate(needs):
                if not isinstance(need, str) or (need in index and need != sid):
                    continue
                at = ["steps", sid, "needs"] + ([j] if isinstance(step.get("needs"), list) else [])
                if need == sid:
                    self.error(at, f"step {sid!r} needs itself", "remove it from its own `needs`", code="self-need")
                else:
                    guess = suggest(need, ids)
                    hint = f"did you mean {guess!r}?" if guess else f"steps are: {', '.join(ids[:10])}"
                    self.error(at, f"step {sid!r} needs {need!r}, which is not a step in this pipeline", hint,
                               code="missing-need")
        cycle = find_cycle(graph) if backward else None
        if cycle:
            first, second = cycle[0], cycle[1]
            step = steps[first]
            needs = needs_of(step)
            at = ["steps", first, "needs"]
            if isinstance(step.get("needs"), list) and second in needs:
                at.append(needs.index(second))
            self.error(at, "steps form a cycle: " + ", ".join(f"{a} needs {b}" for a, b in itertools.pairwise(cycle)),
                       "a step cannot (even indirectly) need itself: remove one of these needs", code="cycle")

    def expressions(self, data: dict[str, Any], params: Mapping[str, Any]) -> None:
        if "${{" not in self.doc.text:
            return  # nothing to check: the fast path for files without expressions
        for path, text, shell in expression_places(data):
            try:
                refs = expr.find_refs(text, shell=shell)
            except expr.ExprError as exc:
                self.error(path, str(exc), exc.hint, code="expression", span=span_within(self.doc, path, text, exc.offset, 3))
                continue
            for ref in refs:
                if ref.source == "params" and ref.name not in params:
                    guess = suggest(ref.name, list(params))
                    hint = f"did you mean params.{guess}?" if guess else (
                        "define it under `params:`" if not params else f"parameters are: {', '.join(params)}")
                    self.error(path, f"${{{{ params.{ref.name} }}}} names an undefined parameter", hint,
                               code="undefined-param", span=span_within(self.doc, path, text, ref.start, ref.end - ref.start))

    def schedule(self, data: dict[str, Any]) -> None:
        sched = data.get("schedule")
        if isinstance(sched, str) and sched.strip():
            message = cron_problem(sched)
            if message:
                self.error(["schedule"], message,
                           "use 5 fields (minute hour day-of-month month day-of-week), e.g. \"0 2 * * *\", or @daily",
                           code="cron")
        tz = data.get("timezone")
        if isinstance(tz, str) and tz.strip():
            message, guess = timezone_problem(tz)
            if message:
                self.error(["timezone"], message, f"did you mean {guess!r}?" if guess else "use an IANA name such as Europe/Berlin",
                           code="timezone")
        if isinstance(data.get("chaos"), str):  # issue 17: checked here, active only when asked for
            try:
                parse_chaos(data["chaos"])
            except ChaosError as exc:
                self.error(["chaos"], exc.message, exc.hint, code="chaos")

    def alerts(self, data: dict[str, Any], steps: Mapping[str, Any]) -> None:
        alerts = data.get("alerts")
        if not isinstance(alerts, list) or not alerts:
            return
        try:
            from flowctl.spec.alerts import parse_alert
        except ImportError:  # the alert grammar ships with the observability module
            return
        for i, alert in enumerate(alerts):
            if isinstance(alert, dict) and isinstance(alert.get("when"), str):
                try:
                    parse_alert(alert["when"], steps=tuple(steps))
                except ValueError as exc:
                    span = span_within(self.doc, ["alerts", i, "when"], alert["when"], getattr(exc, "column", 1) - 1,
                                   getattr(exc, "length", 0))
                    self.error(["alerts", i, "when"], str(exc), getattr(exc, "hint", None), code="alert", span=span)


def _article(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def find_cycle(graph: Mapping[str, list[str]]) -> list[str] | None:
    """A cycle in ``graph`` (step → the steps it needs) as [a, b, …, a], or None.

    networkx's depth-first search from the steps in file order (imported only here: a file
    where some step needs a later one, the only kind that can hold a cycle).
    """
    import networkx as nx

    dag = nx.DiGraph()
    dag.add_nodes_from(graph)
    dag.add_edges_from((step, need) for step, needs in graph.items() for need in needs)
    try:
        edges = nx.find_cycle(dag, source=list(graph))
    except nx.NetworkXNoCycle:
        return None
    return [a for a, _ in edges] + [edges[0][0]]


def cron_problem(expression: str) -> str | None:
    """Why ``expression`` is not a schedule Debian's cron accepts, or None.

    One parser serves validation and ``flowctl schedule`` (``spec/cron.py``, a leaf module):
    croniter alone would accept fields cron rejects (seconds, L, W, #).
    """
    from flowctl.spec.cron import CronSyntaxError, parse_cron

    try:
        parse_cron(expression)
    except CronSyntaxError as exc:
        return exc.message
    return None


def timezone_problem(name: str) -> tuple[str | None, str | None]:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
        return None, None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        guess = suggest(name, zoneinfo.available_timezones())
        return f"unknown time zone {name!r}", guess


# -- building the model ---------------------------------------------------------------------


def _seconds(value: Any) -> float | None:
    return None if value is None else parse_duration(value)


def _env(env: Any) -> Mapping[str, str]:
    if not env:
        return MappingProxyType({})
    return MappingProxyType({k: expr.value_text(v) for k, v in env.items()})


def _command(run: Any) -> str | tuple[str, ...]:
    return run if isinstance(run, str) else tuple(str(x) for x in run)


def _resources(raw: Any) -> Mapping[str, float]:
    """Amounts as numbers, sizes in bytes (checked before: every value parses)."""
    if not raw:
        return MappingProxyType({})
    return MappingProxyType(
        {name: float(parse_size(v)) if isinstance(v, str) else float(v) for name, v in raw.items()}
    )


def _defaults(raw: Mapping[str, Any]) -> Defaults:
    base = Defaults()
    return Defaults(
        retries=raw.get("retries", base.retries),
        retry_delay=_seconds(raw.get("retry_delay", base.retry_delay)) or 0.0,
        retry_max_delay=_seconds(raw.get("retry_max_delay", base.retry_max_delay)) or 0.0,
        retry_on_exit_codes=tuple(raw.get("retry_on_exit_codes", base.retry_on_exit_codes)),
        timeout=_seconds(raw.get("timeout")),
        continue_on_error=bool(raw.get("continue_on_error", base.continue_on_error)),
        resources=_resources(raw.get("resources")),
    )


def _step(doc: Document, sid: str, raw: Mapping[str, Any], defaults: Defaults) -> Step:
    explicit = frozenset(filter(raw.__contains__, DEFAULTABLE))

    def pick(field: str) -> Any:
        return raw[field] if field in raw else getattr(defaults, field)

    rem = raw.get("remediate")
    remediation = None
    if isinstance(rem, dict):
        remediation = Remediation(run=_command(rem["run"]), timeout=_seconds(rem.get("timeout")),
                                  env=_env(rem.get("env")), span=doc.span(["steps", sid, "remediate"], key=True))
    timeout = raw.get("timeout")
    return Step(
        id=sid,
        run=_command(raw["run"]),
        needs=tuple(needs_of(raw)),
        description=raw.get("description"),
        tags=tuple(raw.get("tags", ())),
        env=_env(raw.get("env")),
        secret_env=frozenset(raw.get("secret_env", ())),
        cwd=raw.get("cwd"),
        inputs=tuple(raw.get("inputs", ())),
        outputs=tuple(raw.get("outputs", ())),
        retries=pick("retries"),
        retry_delay=parse_duration(raw["retry_delay"]) if "retry_delay" in raw else defaults.retry_delay,
        retry_max_delay=parse_duration(raw["retry_max_delay"]) if "retry_max_delay" in raw else defaults.retry_max_delay,
        retry_on_exit_codes=tuple(pick("retry_on_exit_codes")),
        timeout=_seconds(timeout) if timeout is not None else defaults.timeout,
        continue_on_error=bool(pick("continue_on_error")),
        resources=MappingProxyType({**defaults.resources, **_resources(raw.get("resources"))}),
        remediate=remediation,
        foreach=build_foreach(doc, sid, raw["foreach"]) if "foreach" in raw else None,
        explicit=explicit,
        span=doc.span(["steps", sid], key=True),
    )


def _params(doc: Document, raw: Mapping[str, Any]) -> Mapping[str, Param]:
    out: dict[str, Param] = {}
    for name, spec in raw.items():
        ptype = spec.get("type", "string")
        default = spec.get("default")
        if default is not None:
            default = coerce_param(ptype, default)[1]
        out[name] = Param(name=name, type=ParamType(ptype), default=default, description=spec.get("description"),
                          choices=tuple(coerce_param(ptype, c)[1] for c in spec.get("choices", ())),
                          span=doc.span(["params", name], key=True))
    return MappingProxyType(out)


def _executor(doc: Document, raw: Any) -> ExecutorSpec | None:
    if not isinstance(raw, dict):
        return None
    return ExecutorSpec(type=raw["type"], address=raw.get("address"), span=doc.span(["executor"], key=True))


def build_pipeline(doc: Document, data: dict[str, Any], *, path: str, base_dir: str, sha256: str) -> Pipeline:
    """The typed pipeline of a document that passed every check."""
    defaults = _defaults(data.get("defaults") or {})
    steps = {sid: _step(doc, sid, raw, defaults) for sid, raw in data["steps"].items()}
    return Pipeline(
        path=path,
        name=data["name"],
        steps=MappingProxyType(steps),
        version=data["version"],
        description=data.get("description"),
        tags=tuple(data.get("tags", ())),
        schedule=data.get("schedule"),
        timezone=data.get("timezone"),
        chaos=data.get("chaos"),
        concurrency=data.get("concurrency"),
        params=_params(doc, data.get("params") or {}),
        env=_env(data.get("env")),
        secret_env=frozenset(data.get("secret_env", ())),
        defaults=defaults,
        alerts=tuple(AlertSpec(a["when"], a.get("description"), doc.span(["alerts", i])) for i, a in enumerate(data.get("alerts") or [])),
        notify=tuple(
            NotifierSpec(run=_command(n["run"]) if "run" in n else None, webhook=n.get("webhook"),
                         timeout=_seconds(n.get("timeout")), retries=n.get("retries", 0), span=doc.span(["notify", i]))
            for i, n in enumerate(data.get("notify") or [])
        ),
        executor=_executor(doc, data.get("executor")),
        base_dir=os.path.abspath(base_dir),
        source_sha256=sha256,
        span=doc.span([]),
    )


def semantic_check(doc: Document, data: dict[str, Any]) -> list[Diagnostic]:
    """Every problem the schema cannot see."""
    checker = _Checker(doc)
    checker.run(data)
    return checker.diags


__all__ = ["build_pipeline", "cron_problem", "find_cycle", "semantic_check", "timezone_problem"]

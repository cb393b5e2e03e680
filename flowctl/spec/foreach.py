"""``foreach:``: its checks, its model, and the pure rules items follow (issue 15).

What a ``foreach`` means is decided here once and shared by ``validate`` and ``run``: an item's
canonical form (its identity when no ``key`` is given, and part of its fingerprint), its key,
its text in ``FLOWCTL_ITEM``, the value of ``${{ item.FIELD }}``, and the faults an item can
have (no object where a field is used, a missing field, a duplicate key). ``validate`` applies
them to literal ``items:``; ``run/foreach.py`` to the items a file, glob or step yields, before
any item starts. Scheduling items is ``run/``'s; recording them is ``state/``'s.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from flowctl.errors import Span
from flowctl.load.yamlsource import Document
from flowctl.spec import expr
from flowctl.spec.model import Batch, Foreach, ItemsKind, ItemsSource
from flowctl.spec.places import expression_places, needs_of, span_within
from flowctl.spec.sizes import SCHEMA_PATTERN, parse_size

DEFAULT_MAX_ITEMS = 100_000
#: (path, message, hint, code, span): how the checks here report to ``spec.build``.
Report = Callable[[list[Any], str, "str | None", str, "Span | None"], None]


class ItemFault(ValueError):
    """An item that cannot run: ``index`` is its position in its source (0-based)."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


def canonical(value: object) -> str:
    """The canonical JSON of an item: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def item_text(value: object) -> str:
    """How an item reaches a command (``FLOWCTL_ITEM``, ``${{ item }}``): a string as is,
    anything else as compact JSON."""
    return value if isinstance(value, str) else canonical(value)


def field_of(value: object, path: Sequence[str]) -> object:
    """The field at ``path`` of ``value``. Raises LookupError saying what is missing."""
    here = value
    for i, name in enumerate(path):
        if not isinstance(here, dict):
            where = "the item" if i == 0 else "item." + ".".join(path[:i])
            raise LookupError(f"{where} is {_kind(here)}, not an object: it has no field {name!r}")
        if name not in here:
            raise LookupError(f"the item has no field {'.'.join(path[: i + 1])!r}")
        here = here[name]
    return here


def _kind(value: object) -> str:
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    return "null" if value is None else "an object"


def item_refs(texts: Iterable[str], *, shell: bool = False) -> list[expr.Ref]:
    """The ``item``/``batch`` expressions in ``texts`` (malformed ones are the checks' to report)."""
    refs: list[expr.Ref] = []
    for text in texts:
        try:
            refs += [r for r in expr.find_refs(text, shell=shell) if r.source in ("item", "batch")]
        except expr.ExprError:
            continue
    return refs


def key_of(foreach: Foreach, value: object) -> str:
    """An item's key: its ``key`` expression filled in, or its canonical JSON.

    Raises LookupError when the key names a field the item lacks.
    """
    if foreach.key is None:
        return canonical(value)
    refs = expr.find_refs(foreach.key)
    values = {("item", r.name): item_text(field_of(value, r.path)) for r in refs if r.source == "item"}
    return expr.fill_plain(foreach.key, refs, values)


def item_values(refs: Iterable[expr.Ref], value: object) -> dict[str, str]:
    """Variable → text for each ``item`` expression in ``refs``. Raises LookupError."""
    return {r.var: item_text(field_of(value, r.path)) for r in refs if r.source == "item"}


def checked_key(foreach: Foreach, value: object, refs: Sequence[expr.Ref]) -> str:
    """The key of ``value``, once every field the step uses (``refs``) is found in it. Raises
    LookupError saying what is missing."""
    for r in refs:
        if r.source == "item" and r.path:
            field_of(value, r.path)
    return key_of(foreach, value)


def check_items(foreach: Foreach, values: Sequence[object], refs: Sequence[expr.Ref]) -> list[str]:
    """The keys of ``values`` in order. Raises ItemFault for the first item that cannot run:
    a field used on a non-object or missing, a key given twice, more than ``max_items``."""
    if len(values) > foreach.max_items:
        raise ItemFault(f"{len(values)} items, more than max_items ({foreach.max_items})", foreach.max_items)
    seen: dict[str, int] = {}
    keys: list[str] = []
    for i, value in enumerate(values):
        try:
            key = checked_key(foreach, value, refs)
        except LookupError as exc:
            raise ItemFault(f"item {i + 1}: {exc.args[0]}", i) from None
        if key in seen:
            raise ItemFault(f"items {seen[key] + 1} and {i + 1} have the same key {key!r}", i)
        seen[key] = i
        keys.append(key)
    return keys


# -- checking and building from the document ---------------------------------------------------


def check_step(doc: Document, sid: str, step: Mapping[str, Any], steps: Mapping[str, Any], report: Report) -> None:
    """Every problem of one step's ``foreach`` (and of item expressions in a step without one)."""
    base: list[Any] = ["steps", sid]
    raw = step.get("foreach")
    texts = _texts(sid, step)
    needs = needs_of(step)
    _check_results(doc, texts, needs, steps, report)
    if raw is None:
        for path, text, shell in texts:
            for r in item_refs([text], shell=shell):
                report(path, f"{text[r.start:r.end]} is only defined in a step with `foreach:`",
                       "add `foreach:` to the step, or use ${{ params.NAME }}", "foreach-expression",
                       _span(doc, path, text, r))
        return
    if not isinstance(raw, dict):
        return  # the schema's to report
    here = [*base, "foreach"]
    has_items, source = "items" in raw, raw.get("items_from")
    if not has_items and source is None:
        report(here, "`foreach` has no items: give `items:` or `items_from:`",
               "e.g. items: [a, b], or items_from: {file: items.jsonl}", "foreach-source", doc.span(here, key=True))
    elif has_items and source is not None:
        report([*here, "items_from"], "`foreach` takes `items:` or `items_from:`, not both", None,
               "foreach-source", doc.span([*here, "items_from"], key=True))
    if isinstance(source, dict):
        given = [k for k in ("file", "glob", "step") if k in source]
        if len(given) != 1:
            report([*here, "items_from"], "`items_from` takes exactly one of `file`, `glob` or `step`"
                   + (f", not {' and '.join(given)}" if given else ""), None, "foreach-source",
                   doc.span([*here, "items_from"]))
        if "format" in source and "file" not in source:
            report([*here, "items_from", "format"], "`format` applies to `items_from: {file: …}` only", None,
                   "foreach-source", doc.span([*here, "items_from", "format"], key=True))
        if "stream" in source and "step" not in source:
            report([*here, "items_from", "stream"], "`stream` applies to `items_from: {step: …}` only", None,
                   "foreach-source", doc.span([*here, "items_from", "stream"], key=True))
        producer = source.get("step")
        if isinstance(producer, str) and producer not in needs:
            report([*here, "items_from", "step"], f"items come from step {producer!r}, which this step does not need",
                   f"add {producer!r} to `needs`", "foreach-source", doc.span([*here, "items_from", "step"]))
        elif isinstance(producer, str) and isinstance(steps.get(producer), dict) and "foreach" in steps[producer]:
            report([*here, "items_from", "step"], f"step {producer!r} has `foreach:`: its items print to logs of "
                   "their own, not to one output to read items from",
                   f"read its results instead: a step running `cat \"${{{{ needs.{producer}.results }}}}\"`",
                   "foreach-source", doc.span([*here, "items_from", "step"]))
    batch = raw.get("batch")
    refs = [(path, text, r) for path, text, shell in texts for r in item_refs([text], shell=shell)]
    for path, text, r in refs:
        if path[2] in ("cwd", "inputs", "outputs"):
            report(path, f"{text[r.start:r.end]} cannot be used in `{path[2]}`: it is the same for every item",
                   "use it in `run` or `env`", "foreach-expression", _span(doc, path, text, r))
        elif r.source == "item" and isinstance(batch, dict):
            report(path, f"{text[r.start:r.end]} is not defined in a batched step: a process gets many items",
                   "read the items from the JSONL file ${{ batch.file }}", "foreach-batch", _span(doc, path, text, r))
        elif r.source == "batch" and not isinstance(batch, dict):
            report(path, f"{text[r.start:r.end]} is only defined with `batch:`",
                   "use ${{ item }} or ${{ item.FIELD }}, or add `batch: {size: N}`", "foreach-batch",
                   _span(doc, path, text, r))
    # Only what the schema's pattern lets through (``0.1B``): the schema reports the rest, once.
    if isinstance(batch, dict) and isinstance(batch.get("max_bytes"), str) and re.match(SCHEMA_PATTERN, batch["max_bytes"]):
        try:
            parse_size(batch["max_bytes"])
        except ValueError as exc:
            report([*here, "batch", "max_bytes"], str(exc), None, "size", doc.span([*here, "batch", "max_bytes"]))
    key = raw.get("key")
    key_refs: list[expr.Ref] = []
    if isinstance(key, str):
        try:
            key_refs = expr.find_refs(key)
        except expr.ExprError as exc:
            report([*here, "key"], str(exc), exc.hint, "expression", doc.span([*here, "key"]))
            return
        if not any(r.source == "item" for r in key_refs) or any(r.source != "item" for r in key_refs):
            report([*here, "key"], "`key` must be made of ${{ item }} or ${{ item.FIELD }} expressions",
                   "e.g. key: ${{ item.path }}; leave it out to use the whole item", "foreach-key",
                   doc.span([*here, "key"]))
            return
    items = raw.get("items")
    if isinstance(items, list) and not batch:
        _check_literal(doc, here, items, key if isinstance(key, str) else None,
                       [(p, t, r) for p, t, r in refs if r.source == "item"], key_refs, report)


def _check_results(doc: Document, texts: list[tuple[list[Any], str, bool]], needs: Sequence[Any],
                   steps: Mapping[str, Any], report: Report) -> None:
    """``${{ needs.S.results }}``: S is a foreach step this one needs; only a shell ``run`` reads it."""
    for path, text, shell in texts:
        try:
            refs = [r for r in expr.find_refs(text, shell=shell) if r.source == "needs"]
        except expr.ExprError:
            continue
        for r in refs:
            other = steps.get(r.name)
            if r.name not in needs:
                message, hint = f"{text[r.start:r.end]}: this step does not need {r.name!r}", f"add {r.name!r} to `needs`"
            elif not isinstance(other, dict) or "foreach" not in other:
                message, hint = f"{text[r.start:r.end]}: step {r.name!r} has no `foreach:`, so no results", None
            elif not shell:
                message, hint = (f"{text[r.start:r.end]} is filled in only in a shell `run:`",
                                 f"read the variable ${expr.results_var(r.name)} instead")
            else:
                continue
            report(path, message, hint, "foreach-results", _span(doc, path, text, r))


def _check_literal(doc: Document, here: list[Any], items: list[Any], key: str | None,
                   refs: list[tuple[list[Any], str, expr.Ref]], key_refs: list[expr.Ref], report: Report) -> None:
    """Literal items against the fields the step uses and its key, each fault at the item."""
    seen: dict[str, int] = {}
    for i, value in enumerate(items):
        at = [*here, "items", i]
        bad = False
        for r in key_refs:
            try:
                field_of(value, r.path)
            except LookupError as exc:
                report(at, f"item {i + 1}: {exc.args[0]} (used by `key`)", None, "foreach-item-field", doc.span(at))
                bad = True
                break
        for path, text, r in [] if bad else refs:
            try:
                field_of(value, r.path)
            except LookupError as exc:
                report(at, f"item {i + 1}: {exc.args[0]} (used by {text[r.start:r.end]} in `{'.'.join(map(str, path[2:]))}`)",
                       None, "foreach-item-field", doc.span(at))
                bad = True
                break
        if bad:
            continue
        try:
            ident = canonical(value) if key is None else expr.fill_plain(
                key, key_refs, {("item", r.name): item_text(field_of(value, r.path)) for r in key_refs})
        except ValueError:
            continue  # NaN or infinity: the schema's JSON check reports it
        if ident in seen:
            report(at, f"items {seen[ident] + 1} and {i + 1} have the same key {ident!r}",
                   "each item needs its own key: remove the duplicate, or set `key:` to a field that differs",
                   "foreach-duplicate", doc.span(at))
        else:
            seen[ident] = i


def _texts(sid: str, step: Mapping[str, Any]) -> list[tuple[list[Any], str, bool]]:
    return [(["steps", sid, *path[2:]], text, shell) for path, text, shell in expression_places({"steps": {sid: step}})]


def _span(doc: Document, path: list[Any], text: str, r: expr.Ref) -> Span:
    return span_within(doc, path, text, r.start, r.end - r.start)


def build_foreach(doc: Document, sid: str, raw: Mapping[str, Any]) -> Foreach:
    """The model of a ``foreach`` that passed every check."""
    at = ["steps", sid, "foreach"]
    src = raw.get("items_from") or {}
    if "items" in raw:
        source = ItemsSource(ItemsKind.LITERAL, literal=tuple(canonical(v) for v in raw["items"]),
                             span=doc.span([*at, "items"], key=True))
    else:
        kind = next(ItemsKind(k) for k in ("file", "glob", "step") if k in src)
        source = ItemsSource(kind, path=str(src[kind.value]), lines=src.get("format") == "lines",
                             stream=bool(src.get("stream", False)), span=doc.span([*at, "items_from"], key=True))
    batch = raw.get("batch")
    tolerated = raw.get("tolerated_failure")
    return Foreach(
        source=source,
        key=raw.get("key"),
        batch=Batch(size=int(batch.get("size", 1)),
                    max_bytes=parse_size(batch["max_bytes"]) if "max_bytes" in batch else None,
                    split_on_failure=bool(batch.get("split_on_failure", False))) if isinstance(batch, dict) else None,
        max_concurrent=raw.get("max_concurrent"),
        max_items=int(raw.get("max_items", DEFAULT_MAX_ITEMS)),
        tolerated_percent=_number(tolerated.get("percent")) if isinstance(tolerated, dict) else None,
        tolerated_count=tolerated.get("count") if isinstance(tolerated, dict) else None,
        tolerated=isinstance(tolerated, dict),
        fail_fast=bool(raw.get("fail_fast", False)),
        span=doc.span(at, key=True),
    )


def _number(value: Any) -> float | None:
    return None if value is None or not math.isfinite(float(value)) else float(value)


__all__ = [
    "DEFAULT_MAX_ITEMS",
    "ItemFault",
    "build_foreach",
    "canonical",
    "check_items",
    "check_step",
    "checked_key",
    "field_of",
    "item_refs",
    "item_text",
    "item_values",
    "key_of",
]

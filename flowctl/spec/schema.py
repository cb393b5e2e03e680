"""The published JSON Schema and the schema check with clear, positioned messages.

The schema ships inside the package (``flowctl/schemas/pipeline.schema.json``; the repository's
``schemas/`` holds the same file). A compiled validator (``jsonschema-rs``) decides valid or
invalid on the happy path; only for an invalid document does the reference ``jsonschema``
(Draft 2020-12) run, to collect every error, which is then turned into a ``Diagnostic`` with the
span of the offending node and a "did you mean" where a key or value is misspelt.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources
from typing import Any

from flowctl.errors import Diagnostic
from flowctl.load.yamlsource import Document
from flowctl.spec.durations import EXAMPLES

SCHEMA_FILE = "pipeline.schema.json"
_STEP_ID = re.compile(r"[A-Za-z0-9_-]+")  # the schema's step-id pattern, for needs


def schema_text(name: str = SCHEMA_FILE) -> str:
    """A JSON Schema shipped in the package (``flowctl/schemas/NAME``): by default the pipeline's."""
    return resources.files("flowctl.schemas").joinpath(name).read_text(encoding="utf-8")


@cache
def schema() -> dict[str, Any]:
    return json.loads(schema_text())  # type: ignore[no-any-return]


@cache
def _fast_validator() -> Any:
    try:
        import jsonschema_rs
    except ImportError:  # the reference validator alone still gives the same answers
        return None
    return jsonschema_rs.Draft202012Validator(schema())


@cache
def _reference_validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema())


def is_valid_fast(data: Any) -> bool | None:
    """The compiled validator's verdict, or None when it is unavailable or cannot take the data."""
    fast = _fast_validator()
    if fast is None:
        return None
    try:
        return bool(fast.is_valid(data))
    except (OverflowError, ValueError, TypeError):  # e.g. integers beyond 64 bits
        return None


def is_valid_reference(data: Any) -> bool:
    return bool(_reference_validator().is_valid(data))


def check(doc: Document) -> list[Diagnostic]:
    """Every schema violation of ``doc.data`` as a positioned diagnostic (empty when valid)."""
    verdict = is_valid_fast(doc.data)
    if verdict is True:
        return []
    errors = list(_reference_validator().iter_errors(doc.data))
    out: list[Diagnostic] = []
    seen: set[tuple[int, int, str]] = set()
    bad_ids = _bad_step_ids(errors)
    for err in sorted(errors, key=_order):
        if _only_names_bad_ids(err, bad_ids):
            continue  # one error per fault: the step id itself is reported, with what to use
        for diag in _translate(doc, err):
            key = (diag.span.line if diag.span else 0, diag.span.col if diag.span else 0, diag.message)
            if key not in seen:
                seen.add(key)
                out.append(diag)
    return out


def _bad_step_ids(errors: Sequence[Any]) -> set[str]:
    """The step ids reported as invalid names (``extraktion_ü``)."""
    return {str(err.instance) for err in errors
            if list(err.absolute_path) == ["steps"] and "propertyNames" in err.relative_schema_path}


def _only_names_bad_ids(err: Any, bad_ids: set[str]) -> bool:
    """A ``needs`` error whose only fault is naming a step whose id is already reported."""
    path = list(err.absolute_path)
    if not bad_ids or len(path) < 3 or path[0] != "steps" or "needs" not in path[2:]:
        return False
    items = err.instance if isinstance(err.instance, list) else [err.instance]
    wrong = [i for i in items if not (isinstance(i, str) and _STEP_ID.fullmatch(i))]
    return bool(wrong) and all(isinstance(i, str) and i in bad_ids for i in wrong)


def _order(err: Any) -> tuple[Any, ...]:
    return tuple(str(p) for p in err.absolute_path)


def dotted(path: Iterable[Any]) -> str:
    return ".".join(str(p) for p in path)


def suggest(word: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate, when one is close enough to be what was meant."""
    match = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return match[0] if match else None


def _label(path: Sequence[Any]) -> str:
    """How a place in the document is named in a message."""
    if not path:
        return "the pipeline"
    if len(path) >= 2 and path[0] == "steps":
        inner = dotted(path[2:])
        return f"step {path[1]!r}" + (f" field {inner!r}" if inner else "")
    return repr(dotted(path))


def _translate(doc: Document, err: Any) -> list[Diagnostic]:
    path = list(err.absolute_path)
    where = dotted(path)
    kind = err.validator
    inst = err.instance
    sch = err.schema if isinstance(err.schema, dict) else {}

    def diag(message: str, hint: str | None = None, *, at: Sequence[Any] | None = None, key: bool = False) -> Diagnostic:
        target = path if at is None else at
        return Diagnostic(doc.span(target, key=key), message, hint=hint, code=f"schema.{kind}", path=dotted(target))

    if kind == "additionalProperties" and isinstance(inst, dict):
        allowed = list(sch.get("properties", {}))
        out = []
        for name in inst:
            if name in allowed:
                continue
            guess = suggest(name, allowed)
            hint = f"did you mean {guess!r}?" if guess else f"allowed keys: {', '.join(allowed)}"
            out.append(diag(f"unknown key {name!r} in {_label(path)}", hint, at=[*path, name], key=True))
        return out
    if kind == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        return [diag(f"{_label(path)} is missing the required key {missing!r}", key=True)]
    if kind == "propertyNames" or "propertyNames" in err.relative_schema_path:
        return [_name_diag(doc, path, inst, sch)]
    if kind == "type":
        want = sch.get("type")
        wanted = " or ".join(want) if isinstance(want, list) else str(want)
        if not path:
            return [diag(f"a pipeline must be a mapping (version, name, steps), not {_type_name(inst)}",
                         "start from `flowctl init`")]
        return [diag(f"{_label(path)} must be {_article(wanted)}, not {_type_name(inst)} ({_short(inst)})",
                     _shape_hint(path, inst, sch))]
    if kind == "const":
        return [diag(f"{_label(path)} must be {sch.get('const')!r}, not {_short(inst)}",
                     "this flowctl reads pipeline format version 1")]
    if kind == "enum":
        options = [str(o) for o in sch.get("enum", [])]
        guess = suggest(str(inst), options)
        hint = f"did you mean {guess!r}?" if guess else f"one of: {', '.join(options)}"
        return [diag(f"{_label(path)} must be one of {', '.join(options)}, not {_short(inst)}", hint)]
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        lo, hi = _range_of(sch)
        rng = f"between {lo} and {hi}" if lo is not None and hi is not None else (
            f"at least {lo}" if lo is not None else f"at most {hi}")
        return [diag(f"{_label(path)} must be {rng}, not {_short(inst)}")]
    if kind == "minProperties" and path == ["steps"]:
        return [diag("steps must hold at least one step", "add a step: `build: {run: make}`")]
    if kind in ("minLength", "minItems", "minProperties"):
        return [diag(f"{_label(path)} must not be empty")]
    if kind == "maxLength":
        return [diag(f"{_label(path)} is too long (at most {sch.get('maxLength')} characters)")]
    if kind == "uniqueItems":
        return [diag(f"{_label(path)} lists the same item twice")]
    if kind == "pattern":
        return [diag(_pattern_message(path, inst, sch))]
    if kind in ("anyOf", "oneOf"):
        return [diag(_any_of_message(path, err, inst))]
    return [diag(f"{_label(path)}: {err.message}" if where else err.message)]


def _shape_hint(path: Sequence[Any], inst: Any, sch: dict[str, Any]) -> str | None:
    """For a command given where a mapping with ``run`` belongs (``remediate: "make fix"``),
    the shape to write instead."""
    if sch.get("type") != "object" or "run" not in sch.get("properties", {}) or not path:
        return None
    command = json.dumps(inst) if isinstance(inst, str) else "COMMAND"
    return f"write it as a mapping: `{path[-1]}: {{run: {command}}}`"


def _name_diag(doc: Document, path: list[Any], inst: Any, sch: dict[str, Any]) -> Diagnostic:
    name = str(inst)
    if path == ["steps"]:
        message = f"step id {name!r} may only use ASCII letters (a-z, A-Z), digits, '-' and '_'"
    elif path == ["params"]:
        message = f"parameter name {name!r} must start with an ASCII letter or '_' and use ASCII letters, digits, '_'"
    else:
        message = (f"{name!r} is not a valid name in {_label(path)} "
                   "(ASCII letters, digits and '_', not starting with a digit)")
    if len(name) > 100:
        message = f"the name {name[:20]!r}… in {_label(path)} is too long"
    return Diagnostic(doc.span([*path, name], key=True), message, code="schema.propertyNames", path=dotted([*path, name]))


def _pattern_message(path: list[Any], inst: Any, sch: dict[str, Any]) -> str:
    if path == ["name"]:
        return (f"pipeline name {_short(inst)} must use lower-case letters, digits, '-' and '_', "
                "starting with a letter or digit")
    if "ms|s|m|h|d" in sch.get("pattern", ""):
        return f"{_label(path)}: {_short(inst)} is not a duration (use e.g. {EXAMPLES})"
    if (path and path[-1] == "run") or (len(path) >= 2 and path[-2] == "run"):
        return f"{_label(path)} must not be empty"
    if (len(path) >= 2 and path[-2] == "needs") or (path and path[-1] == "needs"):
        return f"{_label(path)}: {_short(inst)} is not a step id (letters, digits, '-' and '_')"
    if path and path[-1] == "webhook":
        return f"{_label(path)}: {_short(inst)} is not an http(s) URL"
    return f"{_label(path)}: {_short(inst)} does not match {sch.get('pattern')}"


def _any_of_message(path: list[Any], err: Any, inst: Any) -> str:
    last = path[-1] if path else ""
    if last in ("timeout", "retry_delay", "retry_max_delay"):
        return f"{_label(path)}: {_short(inst)} is not a duration (use e.g. {EXAMPLES})"
    if len(path) >= 2 and path[-2] == "resources":
        return (f"{_label(path)}: {_short(inst)} is neither an amount nor a size "
                "(use e.g. 1, 0.5, 256KiB, 4GiB, 1.5GB)")
    if last == "max_bytes":  # foreach's batch.max_bytes (issue 15)
        return f"{_label(path)}: {_short(inst)} is not a size (use e.g. 256KiB, 512MiB, 4GiB, 1.5GB, or a number of bytes)"
    if last == "run" and isinstance(inst, str):
        return f"{_label(path)} must not be empty"
    if last == "run":
        return f"{_label(path)} must be a non-empty shell command or a list of arguments, not {_type_name(inst)}"
    if last == "needs":
        return f"{_label(path)} must be a step id or a list of step ids"
    if len(path) >= 2 and path[-2] == "notify":
        return f"{_label(path)} must have exactly one of `run` or `webhook`"
    from jsonschema.exceptions import best_match

    best = best_match(err.context) if err.context else None
    if best is not None:
        return f"{_label(path)}: {best.message}"
    return f"{_label(path)}: {err.message}"


def _range_of(sch: dict[str, Any]) -> tuple[Any, Any]:
    return sch.get("minimum", sch.get("exclusiveMinimum")), sch.get("maximum", sch.get("exclusiveMaximum"))


def _article(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


__all__ = ["SCHEMA_FILE", "check", "dotted", "is_valid_fast", "is_valid_reference", "schema", "schema_text", "suggest"]

"""Where a (possibly malformed) pipeline document holds what a check looks at.

The places ``${{ … }}`` is filled in, the exact span of a part of a string value, and a step's
``needs`` whatever shape they were written in. Shared by the semantic checks (``spec.build``),
the foreach checks (``spec.foreach``), the environment checks (``spec.preflight``) and the lint
rules (``spec.lint``); defensive about shapes, because the checks also run on documents the
schema rejected. Nothing here reports: callers turn places into diagnostics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowctl.errors import Span
from flowctl.load.yamlsource import Document


def expression_places(data: Mapping[str, Any]) -> list[tuple[list[Any], str, bool]]:
    """Every string of a (possibly malformed) document where ``${{ … }}`` is filled in:
    (path, text, whether a shell parses it). Shared by the expression checks here and the
    environment checks of ``spec/preflight.py``."""
    raw_steps = data.get("steps")
    steps: Mapping[str, Any] = raw_steps if isinstance(raw_steps, dict) else {}
    places: list[tuple[list[Any], Any, bool]] = []
    places += _env_places(data.get("env"), ["env"])
    for sid, step in steps.items():
        if not isinstance(step, dict):
            continue
        base = ["steps", sid]
        places += _command_places(step.get("run"), [*base, "run"])
        places += _env_places(step.get("env"), [*base, "env"])
        if isinstance(step.get("cwd"), str):
            places.append(([*base, "cwd"], step["cwd"], False))
        for field in ("inputs", "outputs"):
            if isinstance(step.get(field), list):
                places += [([*base, field, i], v, False) for i, v in enumerate(step[field]) if isinstance(v, str)]
        rem = step.get("remediate")
        if isinstance(rem, dict):
            places += _command_places(rem.get("run"), [*base, "remediate", "run"])
            places += _env_places(rem.get("env"), [*base, "remediate", "env"])
    return places


def span_within(doc: Document, path: list[Any], text: str, offset: int, length: int = 0) -> Span:
    """The span of ``text[offset:offset + length]`` (to the end with 0), ``text`` being the string
    value at ``path``: exact for one-line scalars (quoted or not) and literal blocks (``|``);
    the whole value's span for other multi-line forms."""
    span = doc.span(path)
    lines = doc.text.splitlines()
    if not 0 < span.line <= len(lines):
        return span
    start = lines[span.line - 1][span.col - 1 : span.col]
    if "\n" not in text and span.end_line in (0, span.line):
        quoted = int(start in ("'", '"'))
        col = span.col + quoted + offset
        end = col + length if length else span.end_col - quoted
        return Span(span.file, span.line, col, span.line, max(col + 1, end))
    if start == "|" and span.line < len(lines):
        body = lines[span.line]  # the first content line sets the block's indentation
        indent = len(body) - len(body.lstrip(" "))
        line = span.line + 1 + text.count("\n", 0, offset)
        col = indent + offset - (text.rfind("\n", 0, offset) + 1) + 1
        return Span(span.file, line, col, line, col + max(1, length))
    return span


def _command_places(run: Any, path: list[Any]) -> list[tuple[list[Any], Any, bool]]:
    if isinstance(run, str):
        return [(path, run, True)]
    if isinstance(run, list):
        return [([*path, i], item, False) for i, item in enumerate(run) if isinstance(item, str)]
    return []


def _env_places(env: Any, path: list[Any]) -> list[tuple[list[Any], Any, bool]]:
    if not isinstance(env, dict):
        return []
    return [([*path, k], v, False) for k, v in env.items() if isinstance(v, str)]


def needs_of(step: Any) -> list[Any]:
    if not isinstance(step, dict):
        return []
    needs = step.get("needs")
    if isinstance(needs, str):
        return [needs]
    return needs if isinstance(needs, list) else []

"""``${{ params.NAME }}``, ``${{ env.NAME }}`` and the ``foreach`` expressions (``${{ item }}``,
``${{ item.FIELD }}``, ``${{ batch.file }}``, ``${{ batch.size }}``): finding, checking, filling.

No value can ever inject a command. In a shell command an expression is replaced by a quoted
reference to an environment variable that holds the value (``"${FLOWCTL_PARAM_DATE}"`` when it
stands unquoted, ``${FLOWCTL_PARAM_DATE}`` inside double quotes), so the shell never parses the
value; inside single quotes an expression is a validation error, because the shell would not
expand it. In argv form, in env values and in ``cwd`` the value is placed in as is. For showing
a command (``--dry-run``, ``plan``) the values are filled in, shell-quoted.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

EXPR = re.compile(r"\$\{\{(.*?)\}\}")
_REF = re.compile(r"^\s*(params|env)\.([A-Za-z_][A-Za-z0-9_]*)\s*$")
# issue 15: ``item``, ``item.a.b``, ``item.my-field``, ``item["a field.with dots"]``, ``batch.file``
_ITEM = re.compile(r'^\s*item((?:\.[^\s.\["}]+|\["(?:[^"\\]|\\.)*"\])*)\s*$')
_ITEM_PART = re.compile(r'\.([^\s.\["}]+)|\[("(?:[^"\\]|\\.)*")\]')
_BATCH = re.compile(r"^\s*batch\.(file|size)\s*$")
_NEEDS = re.compile(r"^\s*needs\.([A-Za-z0-9_-]+)\.results\s*$")  # a foreach step's results.jsonl
PARAM_VAR_PREFIX = "FLOWCTL_PARAM_"
ENV_VAR_PREFIX = "FLOWCTL_ENV_"
ITEM_VAR = "FLOWCTL_ITEM"  # the whole item: a string as is, anything else as compact JSON
ITEM_FIELD_VAR_PREFIX = "FLOWCTL_ITEM_FIELD_"
BATCH_VAR_PREFIX = "FLOWCTL_BATCH_"  # FLOWCTL_BATCH_FILE, FLOWCTL_BATCH_SIZE
#: Variables whose values came from outside the command (a nested interpreter must not parse them).
VALUE_VAR_PREFIXES = (PARAM_VAR_PREFIX, ENV_VAR_PREFIX, ITEM_VAR, BATCH_VAR_PREFIX)


class Quote(enum.Enum):
    NONE = "unquoted"
    DOUBLE = "double quotes"
    SINGLE = "single quotes"


@dataclass(frozen=True, slots=True)
class Ref:
    """One expression in a string: ``source`` is ``params``, ``env``, ``item`` or ``batch``.

    For ``item`` the name is "" (the whole item) or the field path as written (``a.b``,
    ``my-field``, ``["a b"]``), and ``path`` holds its field names.
    """

    source: str
    name: str
    start: int  # offset of ``${{`` in the string
    end: int
    quote: Quote = Quote.NONE
    path: tuple[str, ...] = ()

    @property
    def var(self) -> str:
        """The environment variable that carries the value into a shell command."""
        if self.source == "params":
            return param_var(self.name)
        if self.source == "item":
            return item_var(self.path)
        if self.source == "batch":
            return BATCH_VAR_PREFIX + self.name.upper()
        if self.source == "needs":
            return results_var(self.name)
        return ENV_VAR_PREFIX + self.name


def ref_text(ref: Ref) -> str:
    """The expression of ``ref`` as written in its usual form (``${{ item.path }}``)."""
    sep = "" if not ref.name or ref.name.startswith("[") else "."
    return f"${{{{ {ref.source}{sep}{ref.name} }}}}"


def item_var(path: tuple[str, ...]) -> str:
    """The variable of ``item`` (no path) or of one of its fields: ``FLOWCTL_ITEM_FIELD_PATH``
    for ``item.path``; a field name that is not lower-case letters, digits and ``_`` gets a
    short hash after its letters, so ``Path`` and ``path`` never share one."""
    if not path:
        return ITEM_VAR
    joined = "__".join(path)
    if re.fullmatch(r"[a-z0-9_]+", joined):
        return ITEM_FIELD_VAR_PREFIX + joined.upper()
    letters = re.sub(r"[^A-Z0-9_]", "_", joined.upper())
    digest = hashlib.sha1(json.dumps(list(path)).encode()).hexdigest()[:8]
    return f"{ITEM_FIELD_VAR_PREFIX}{letters}_{digest}"


def _item_path(text: str) -> tuple[str, ...]:
    return tuple(m.group(1) if m.group(1) is not None else str(json.loads(m.group(2)))
                 for m in _ITEM_PART.finditer(text))


def _parse_ref(body: str, start: int, end: int, quote: Quote) -> Ref | None:
    ref = _REF.match(body)
    if ref is not None:
        return Ref(ref.group(1), ref.group(2), start, end, quote)
    item = _ITEM.match(body)
    if item is not None:
        return Ref("item", item.group(1).lstrip("."), start, end, quote, _item_path(item.group(1)))
    batch = _BATCH.match(body)
    if batch is not None:
        return Ref("batch", batch.group(1), start, end, quote)
    needs = _NEEDS.match(body)
    if needs is not None:
        return Ref("needs", needs.group(1), start, end, quote)
    return None


def results_var(step: str) -> str:
    """The variable holding the path of foreach step ``step``'s ``results.jsonl``."""
    return f"FLOWCTL_NEEDS_{step.upper().replace('-', '_')}_RESULTS"


class ExprError(ValueError):
    """A malformed expression; ``offset`` is where it starts in the string."""

    def __init__(self, message: str, offset: int, hint: str | None = None) -> None:
        super().__init__(message)
        self.offset = offset
        self.hint = hint


def param_var(name: str) -> str:
    return PARAM_VAR_PREFIX + name.upper()


def find_refs(text: str, *, shell: bool = False) -> list[Ref]:
    """Every expression in ``text``; with ``shell`` each carries its quoting context.

    Raises ExprError for an expression that is not ``params.NAME`` or ``env.NAME``, and (shell
    only) for one inside single quotes.
    """
    if "${{" not in text:
        return []
    refs: list[Ref] = []
    quotes = _quote_context(text) if shell else None
    for m in EXPR.finditer(text):
        quote = quotes(m.start()) if quotes else Quote.NONE
        ref = _parse_ref(m.group(1), m.start(), m.end(), quote)
        if ref is None:
            raise ExprError(
                f"unknown expression {m.group(0)!r}",
                m.start(),
                hint="expressions are ${{ params.NAME }}, ${{ env.NAME }}, ${{ needs.STEP.results }}, and in a "
                     "foreach step ${{ item }}, ${{ item.FIELD }}, ${{ batch.file }}, ${{ batch.size }}",
            )
        if quote is Quote.SINGLE:
            raise ExprError(
                f"{m.group(0)} inside single quotes would not be filled in by the shell",
                m.start(),
                hint="write it unquoted or inside double quotes; flowctl quotes the value safely",
            )
        refs.append(ref)
    if "${{" in EXPR.sub("", text):
        raise ExprError("unterminated expression: '${{' without '}}'", text.find("${{", 0), hint="close it with }}")
    return refs


def _quote_context(text: str):  # type: ignore[no-untyped-def]
    """A function giving the shell quoting state at each offset of ``text``."""
    states: list[Quote] = []
    state = Quote.NONE
    i, n = 0, len(text)
    append = states.append
    while i < n:
        c = text[i]
        append(state)
        if state is Quote.SINGLE:
            if c == "'":
                state = Quote.NONE
        elif c == "\\" and i + 1 < n:
            append(state)
            i += 1
        elif state is Quote.DOUBLE:
            if c == '"':
                state = Quote.NONE
        elif c == "'":
            state = Quote.SINGLE
        elif c == '"':
            state = Quote.DOUBLE
        i += 1
    append(state)
    return lambda offset: states[offset]


def value_text(value: object) -> str:
    """How a parameter value is written into a command or variable."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def fill_plain(text: str, refs: list[Ref], values: Mapping[tuple[str, str], str]) -> str:
    """Replace each expression with its value as is (argv items, env values, cwd)."""
    return _splice(text, refs, lambda r: values[(r.source, r.name)])


def fill_shell(text: str, refs: list[Ref]) -> str:
    """Replace each expression with a quoted reference to the variable carrying its value."""
    return _splice(text, refs, lambda r: f"${{{r.var}}}" if r.quote is Quote.DOUBLE else f'"${{{r.var}}}"')


def show_shell(text: str, refs: list[Ref], values: Mapping[tuple[str, str], str]) -> str:
    """The shell command with values filled in and quoted, for display."""

    def shown(r: Ref) -> str:
        value = values[(r.source, r.name)]
        if r.quote is Quote.DOUBLE:
            return re.sub(r'([\\"$`])', r"\\\1", value)
        return shlex.quote(value)

    return _splice(text, refs, shown)


def _splice(text: str, refs: list[Ref], render) -> str:  # type: ignore[no-untyped-def]
    if not refs:
        return text
    parts: list[str] = []
    pos = 0
    for r in refs:
        parts.append(text[pos : r.start])
        parts.append(render(r))
        pos = r.end
    parts.append(text[pos:])
    return "".join(parts)


def iter_names(refs: list[Ref], source: str) -> Iterator[str]:
    return (r.name for r in refs if r.source == source)


__all__ = [
    "BATCH_VAR_PREFIX",
    "ENV_VAR_PREFIX",
    "EXPR",
    "ITEM_FIELD_VAR_PREFIX",
    "ITEM_VAR",
    "PARAM_VAR_PREFIX",
    "VALUE_VAR_PREFIXES",
    "ExprError",
    "Quote",
    "Ref",
    "fill_plain",
    "fill_shell",
    "find_refs",
    "item_var",
    "iter_names",
    "param_var",
    "ref_text",
    "results_var",
    "show_shell",
    "value_text",
]

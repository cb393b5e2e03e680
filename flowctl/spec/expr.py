"""``${{ params.NAME }}`` and ``${{ env.NAME }}`` expressions: finding, checking and filling them.

No value can ever inject a command. In a shell command an expression is replaced by a quoted
reference to an environment variable that holds the value (``"${FLOWCTL_PARAM_DATE}"`` when it
stands unquoted, ``${FLOWCTL_PARAM_DATE}`` inside double quotes), so the shell never parses the
value; inside single quotes an expression is a validation error, because the shell would not
expand it. In argv form, in env values and in ``cwd`` the value is placed in as is. For showing
a command (``--dry-run``, ``plan``) the values are filled in, shell-quoted.
"""

from __future__ import annotations

import enum
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

EXPR = re.compile(r"\$\{\{(.*?)\}\}")
_REF = re.compile(r"^\s*(params|env)\.([A-Za-z_][A-Za-z0-9_]*)\s*$")
PARAM_VAR_PREFIX = "FLOWCTL_PARAM_"
ENV_VAR_PREFIX = "FLOWCTL_ENV_"


class Quote(enum.Enum):
    NONE = "unquoted"
    DOUBLE = "double quotes"
    SINGLE = "single quotes"


@dataclass(frozen=True, slots=True)
class Ref:
    """One expression in a string: ``source`` is ``params`` or ``env``."""

    source: str
    name: str
    start: int  # offset of ``${{`` in the string
    end: int
    quote: Quote = Quote.NONE

    @property
    def var(self) -> str:
        """The environment variable that carries the value into a shell command."""
        return param_var(self.name) if self.source == "params" else ENV_VAR_PREFIX + self.name


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
        ref = _REF.match(m.group(1))
        if ref is None:
            raise ExprError(
                f"unknown expression {m.group(0)!r}",
                m.start(),
                hint="expressions are ${{ params.NAME }} or ${{ env.NAME }}",
            )
        quote = quotes(m.start()) if quotes else Quote.NONE
        if quote is Quote.SINGLE:
            raise ExprError(
                f"{m.group(0)} inside single quotes would not be filled in by the shell",
                m.start(),
                hint="write it unquoted or inside double quotes; flowctl quotes the value safely",
            )
        refs.append(Ref(ref.group(1), ref.group(2), m.start(), m.end(), quote))
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
    "ENV_VAR_PREFIX",
    "EXPR",
    "PARAM_VAR_PREFIX",
    "ExprError",
    "Quote",
    "Ref",
    "fill_plain",
    "fill_shell",
    "find_refs",
    "iter_names",
    "param_var",
    "show_shell",
    "value_text",
]

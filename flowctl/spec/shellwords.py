"""A small POSIX shell lexer: where the words of a command line start and end, and which
variables the shell expands where.

It owns no rule: ``spec/lint.py`` asks it which words a nested interpreter will parse. It is
an approximation of the shell's grammar made for that question, and errs on the side of
finding words: quotes, backslashes, ``$(…)``, backticks, ``${…}``, ``$((…))``, operators,
redirections, here-documents (``<<``, ``<<-``, quoted or not) and here-strings (``<<<``) are
understood; ``case`` patterns, aliases and functions are not. Command substitutions are lexed
as commands of their own, so ``x=$(bash -c "…")`` is seen. Offsets are into the text given;
nothing is ever executed or expanded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_BLANK = " \t"
_ENDS_WORD = " \t\n;&|()<>"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REDIRECT = re.compile(r"<<<|<<-|<<|>>|>&|<&|<>|>\||<|>")
_BODY_EXPANSION = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}|([A-Za-z_][A-Za-z0-9_]*))")


@dataclass(frozen=True, slots=True)
class Expansion:
    """``$NAME`` or ``${NAME…}`` that the shell expands (never one inside single quotes)."""

    name: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Word:
    """One word of a simple command; ``literal`` is its value after quote removal, or None
    when the shell would expand something in it."""

    start: int
    end: int
    literal: str | None
    expansions: tuple[Expansion, ...] = ()


@dataclass(frozen=True, slots=True)
class Stdin:
    """Text a command reads on its standard input: a here-document body or a here-string."""

    start: int
    end: int
    expanded: bool  # False for a here-document with a quoted delimiter (<<'EOF')
    expansions: tuple[Expansion, ...] = ()
    kind: str = "here-document"


@dataclass(slots=True)
class SimpleCommand:
    """The words of one simple command, what it reads on stdin, and the commands piped into it."""

    words: list[Word] = field(default_factory=list)
    stdin: list[Stdin] = field(default_factory=list)
    piped_from: list[SimpleCommand] = field(default_factory=list)


@dataclass(slots=True)
class _Pending:
    delimiter: str
    quoted: bool
    strip_tabs: bool
    command: SimpleCommand


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.n = len(text)
        self.commands: list[SimpleCommand] = []

    # -- commands -------------------------------------------------------------------------

    def parse(self, i: int, stop: str | None = None) -> int:
        """Commands from ``i`` until ``stop`` (``)`` or a backtick) or the end; the index after."""
        text, n = self.text, self.n
        current = SimpleCommand()
        pipeline: list[SimpleCommand] = []
        pending: list[_Pending] = []
        depth = 0

        def finish(piped: bool) -> SimpleCommand:
            nonlocal current, pipeline
            if current.words or current.stdin:
                current.piped_from = list(pipeline)
                self.commands.append(current)
                pipeline.append(current)
            if not piped:
                pipeline = []
            current = SimpleCommand()
            return current

        while i < n:
            c = text[i]
            if stop is not None and c == stop and depth == 0:
                finish(False)
                return i + 1
            if c in _BLANK:
                i += 1
            elif c == "\\" and text.startswith("\n", i + 1):
                i += 2
            elif c == "#":
                end = text.find("\n", i)
                i = n if end < 0 else end
            elif c == "\n":
                finish(False)
                i = self._bodies(i + 1, pending)
                pending = []
            elif c in ";&":
                finish(False)
                i += 2 if text.startswith(c, i + 1) else 1
            elif c == "|":
                if text.startswith("|", i + 1):
                    finish(False)
                    i += 2
                else:
                    finish(True)
                    i += 2 if text.startswith("&", i + 1) else 1
            elif c == "(":
                finish(False)
                depth += 1
                i += 1
            elif c == ")":
                finish(False)
                depth = max(0, depth - 1)
                i += 1
            elif c in "<>":
                i = self._redirect(i, current, pending, stop)
            else:
                word, i = self._word(i, stop)
                if not (word.literal and word.literal.isdigit() and self.text.startswith(("<", ">"), i)):
                    current.words.append(word)  # (an IO number such as the 2 of 2>&1 is no word)
        finish(False)
        if pending:
            self._bodies(n, pending)
        return n

    def _redirect(self, i: int, command: SimpleCommand, pending: list[_Pending], stop: str | None) -> int:
        m = _REDIRECT.match(self.text, i)
        op = m.group(0) if m else self.text[i]
        i += len(op)
        while i < self.n and self.text[i] in _BLANK:
            i += 1
        if i >= self.n or self.text[i] in _ENDS_WORD:
            return i
        start = i
        word, i = self._word(i, stop)
        if op in ("<<", "<<-"):
            raw = self.text[start:i]
            quoted = any(q in raw for q in "'\"\\")
            delimiter = word.literal if word.literal is not None else raw
            pending.append(_Pending(delimiter, quoted, op == "<<-", command))
        elif op == "<<<":
            command.stdin.append(Stdin(word.start, word.end, True, word.expansions, "here-string"))
        return i

    def _bodies(self, i: int, pending: list[_Pending]) -> int:
        """Read the bodies of the here-documents opened on the line that just ended."""
        text = self.text
        for doc in pending:
            start = i
            end = self.n
            while i < self.n:
                nl = text.find("\n", i)
                line_end = self.n if nl < 0 else nl
                line = text[i:line_end]
                if (line.lstrip("\t") if doc.strip_tabs else line) == doc.delimiter:
                    end = i
                    i = self.n if nl < 0 else nl + 1
                    break
                i = self.n if nl < 0 else nl + 1
            else:
                end = self.n
            found: tuple[Expansion, ...] = ()
            if not doc.quoted:  # quotes are plain characters in a body; every $NAME expands
                found = tuple(
                    Expansion(m.group(1) or m.group(2), m.start(), m.end())
                    for m in _BODY_EXPANSION.finditer(text, start, end)
                )
            doc.command.stdin.append(Stdin(start, end, not doc.quoted, found))
        return i

    # -- words ----------------------------------------------------------------------------

    def _word(self, i: int, stop: str | None) -> tuple[Word, int]:
        text, n = self.text, self.n
        start = i
        parts: list[str] = []
        expansions: list[Expansion] = []
        literal = True
        while i < n:
            c = text[i]
            if c in _ENDS_WORD or (stop is not None and c == stop):
                break
            if c == "\\":
                if text.startswith("\n", i + 1):
                    i += 2
                    continue
                parts.append(text[i + 1 : i + 2])
                i += 2
            elif c == "'":
                end = text.find("'", i + 1)
                end = n if end < 0 else end
                parts.append(text[i + 1 : end])
                i = end + 1
            elif c == '"':
                i, plain = self._double(i + 1, parts, expansions)
                literal = literal and plain
            elif c in "$`":
                i, expands = self._expansion(i, parts, expansions)
                literal = literal and not expands
            else:
                parts.append(c)
                i += 1
        return Word(start, min(i, n), "".join(parts) if literal else None, tuple(expansions)), min(i, n)

    def _double(self, i: int, parts: list[str], expansions: list[Expansion]) -> tuple[int, bool]:
        """Inside ``"…"`` from ``i``: the index after the closing quote, and whether nothing expands."""
        text, n = self.text, self.n
        plain = True
        while i < n:
            c = text[i]
            if c == '"':
                return i + 1, plain
            if c == "\\" and i + 1 < n and text[i + 1] in '$`"\\\n':
                if text[i + 1] != "\n":
                    parts.append(text[i + 1])
                i += 2
            elif c in "$`":
                i, expands = self._expansion(i, parts, expansions)
                plain = plain and not expands
            else:
                parts.append(c)
                i += 1
        return n, plain

    def _expansion(self, i: int, parts: list[str], expansions: list[Expansion]) -> tuple[int, bool]:
        """At a ``$`` or a backtick: the index after what it introduces, and whether the shell
        expands something there (a lone ``$`` is itself)."""
        if self.text[i] == "`":
            return self._backtick(i), True
        j = self._dollar(i, expansions)
        if j == i + 1:
            parts.append("$")
            return j, False
        return j, True

    def _dollar(self, i: int, expansions: list[Expansion]) -> int:
        """At a ``$``: the index after what it introduces (``i + 1`` for a lone ``$``)."""
        text = self.text
        if text.startswith("$((", i):
            return self._balanced(i + 1, "(", ")")
        if text.startswith("$(", i):
            return self.parse(i + 2, stop=")")
        if text.startswith("${", i):
            end = self._balanced(i + 1, "{", "}")
            m = _NAME.match(text, i + 2)
            if m:
                expansions.append(Expansion(m.group(0), i, end))
            return end
        m = _NAME.match(text, i + 1)
        if m:
            expansions.append(Expansion(m.group(0), i, m.end()))
            return m.end()
        if i + 1 < self.n and text[i + 1] in "0123456789@*#?$!-":
            return i + 2
        return i + 1

    def _backtick(self, i: int) -> int:
        end = i + 1
        while end < self.n and self.text[end] != "`":
            end += 2 if self.text[end] == "\\" else 1
        inner = _Lexer(self.text[: min(end, self.n)])
        inner.parse(i + 1)
        self.commands.extend(inner.commands)
        return min(end + 1, self.n)

    def _balanced(self, i: int, open_: str, close: str) -> int:
        """From the ``open_`` at ``i``: the index after its matching ``close``."""
        depth = 0
        text = self.text
        while i < self.n:
            c = text[i]
            if c == "\\":
                i += 2
                continue
            if c == "'" and open_ == "{":
                end = text.find("'", i + 1)
                i = self.n if end < 0 else end + 1
                continue
            if c == open_:
                depth += 1
            elif c == close:
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
        return self.n


def simple_commands(text: str) -> list[SimpleCommand]:
    """Every simple command in ``text``, those inside ``$(…)`` and backticks included."""
    lexer = _Lexer(text)
    lexer.parse(0)
    return lexer.commands


def single_quoted(text: str, word: Word) -> tuple[int, int] | None:
    """(start, end) of the body of ``word`` when it is written as one ``'…'``, else None."""
    raw = text[word.start : word.end]
    if len(raw) >= 2 and raw[0] == "'" and raw[-1] == "'" and "'" not in raw[1:-1]:
        return word.start + 1, word.end - 1
    return None


__all__ = ["Expansion", "SimpleCommand", "Stdin", "Word", "simple_commands", "single_quoted"]

"""The ``nested-shell-substitution`` rule: a value that reaches a script a nested interpreter parses.

flowctl never lets the shell of a step's ``run:`` parse a value (``spec/expr.py`` passes each
one as a quoted variable). It cannot protect a second interpreter that the command starts: in
``bash -c "echo ${{ params.name }}"`` the outer shell hands the value, as text, to ``bash -c``,
which parses it as code. This module finds such places, in the string form of ``run:`` and in
the argv form (``[sh, -c, "…"]``):

* the script argument of ``sh|bash|zsh|dash|ksh|mksh|ash|yash -c``, ``su|runuser -c``,
  ``python… -c``, ``perl -e``, ``ruby -e``, ``node -e``, ``php -r``; every argument of ``eval``;
  the remote command of ``ssh``. The interpreter is looked for anywhere in a simple command, so
  ``sudo sh -c``, ``xargs sh -c``, ``find … -exec sh -c`` and ``docker exec c sh -c`` are found;
* an expanded here-document or here-string read by an interpreter (``bash <<EOF``), and
  ``echo``/``printf`` output piped into one (``echo … | sh``);
* a ``$NAME`` the outer shell expands into such a script when ``NAME`` is an ``env:`` entry that
  carries a substitution (or flowctl's own ``FLOWCTL_PARAM_*`` variables); and inside a
  single-quoted inner script, the same one level down (``bash -c 'eval "$NAME"'``).

Every ``${{ … }}`` counts, whatever its namespace (``params``, ``env`` and any added later,
such as ``item``/``batch`` of foreach): the rule matches the substitution syntax, not a list of
sources. ``lint_document`` reports diagnostics for ``validate``; ``step_nested_uses`` serves
``run --dry-run``'s marks. The shell grammar is ``spec/shellwords.py``'s.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flowctl.errors import Diagnostic, Severity
from flowctl.load.yamlsource import Document
from flowctl.spec import expr
from flowctl.spec.model import Command, Pipeline, Step
from flowctl.spec.places import span_within
from flowctl.spec.rules import NESTED_SHELL
from flowctl.spec.shellwords import SimpleCommand, Word, simple_commands, single_quoted

_SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "yash"})
_PYTHON = re.compile(r"^(?:python|pypy)[0-9.]*$")
#: Interpreter → (the letter of its inline-code option, its long forms, options taking a value,
#: how its code reads an environment variable NAME).
_INLINE: Mapping[str, tuple[str, tuple[str, ...], tuple[str, ...], str]] = {
    "python": ("c", (), ("-W", "-X", "-Q"), 'os.environ["NAME"]'),
    "perl": ("e", (), ("-I", "-M", "-m"), "$ENV{NAME}"),
    "ruby": ("e", (), ("-I", "-r"), 'ENV["NAME"]'),
    "node": ("e", ("--eval", "--print"), ("-r", "--require"), "process.env.NAME"),
    "php": ("r", (), ("-c", "-d"), 'getenv("NAME")'),
}
_INLINE_ALIASES = {"nodejs": "node", "perl5": "perl"}
#: A command can only hold a finding if one of these words appears in it: the cheap test that
#: keeps ``validate`` fast on files with many commands.
_INTERPRETER_WORD = re.compile(
    r"(?<![\w.-])(?:sh|bash|zsh|dash|ksh|mksh|ash|yash|eval|su|runuser|ssh|python[0-9.]*|pypy[0-9.]*"
    r"|perl5?|ruby|node|nodejs|php)(?![\w.-])"
)
#: ... and one of these: an inline-code option, eval, ssh, a here-document or a pipe.
_CODE_HINT = re.compile(r"(?:^|\s)-[A-Za-z]*[cer](?:\s|$|[\"'])|--eval|--print|--command|\beval\b|\bssh\b|<<|\|")
_PRINTERS = frozenset({"echo", "printf"})
_SSH_VALUED = frozenset("BbcDEeFIiJLlmOopQRSWw")
_MAX_DEPTH = 3


@dataclass(frozen=True, slots=True)
class _Reader:
    """An interpreter found in a simple command: which words it parses as code."""

    first: int  # index of the first code word
    last: int  # index after the last one
    command: str  # e.g. ``bash -c``, ``eval``, ``ssh``, ``python3 -c``
    kind: str  # ``shell``, ``ssh``, or an _INLINE language


@dataclass(frozen=True, slots=True)
class NestedUse:
    """One value that reaches a nested interpreter's script.

    ``item`` is the argv index for the list form (None for a shell string); ``start``/``end``
    are offsets in that string or item; ``text`` is the substitution, or ``$NAME`` when the
    value arrives through an environment variable (``via``) that carries ``carried``.
    """

    item: int | None
    start: int
    end: int
    text: str
    place: str  # e.g. "the script of `bash -c`"
    command: str
    kind: str
    via: str | None = None
    carried: str | None = None

    @property
    def message(self) -> str:
        if self.via is not None:
            what = self.carried if self.carried not in (None, self.via) else "a value flowctl filled in"
            return f"{self.text} holds {what} and is expanded into {self.place}, which parses it as code"
        return f"{self.text} lands in {self.place}, which parses the value as code"

    @property
    def hint(self) -> str:
        name = self.via or _env_name(self.text)
        if self.kind == "ssh":
            return ("ssh joins its arguments into one command line for the remote shell, and env: does not reach "
                    "the remote side: quote the value for the remote shell (printf %q) or send it on stdin")
        env = f'env: {{{name}: "{self.text}"}}' if self.via is None else f"env: {name}"
        if self.kind in ("here-document", "here-string"):
            return (f"pass the value as an env: variable ({env}), quote the delimiter (<<'EOF') so the outer "
                    f"shell leaves the {self.kind} alone, and use \"${name}\" in it")
        if self.kind == "pipe":
            return f"pass the value as an env: variable ({env}) and use \"${name}\" in the script instead of piping it in"
        if self.via is not None:
            if self.kind == "shell":
                return f"single-quote the script so that {self.command} expands \"${name}\" itself: {self.command} '… \"${name}\" …'"
            return f"single-quote the code and read the variable inside it: {self._read(name)}"
        if self.kind == "shell":
            return (f"pass the value as an env: variable ({env}) and use \"${name}\" inside a single-quoted "
                    f"script: {self.command} '… \"${name}\" …'")
        return f"pass the value as an env: variable ({env}) and read it in single-quoted code: {self._read(name)}"

    def _read(self, name: str) -> str:
        lang = _INLINE[self.kind][3].replace("NAME", name)
        if self.kind == "python":
            return f"{self.command} 'import os; … {lang} …'"
        return f"{self.command} '… {lang} …'"


def _env_name(substitution: str) -> str:
    """A variable name for the hint: ``${{ params.day }}`` → ``DAY``."""
    inner = substitution.strip("${} ").split(".")[-1]
    name = re.sub(r"[^A-Za-z0-9_]", "_", inner).upper() or "VALUE"
    return name if not name[0].isdigit() else "V_" + name


# -- which words an interpreter parses ----------------------------------------------------


def _readers(lits: Sequence[str | None]) -> tuple[list[_Reader], str | None]:
    """The code words of every interpreter in one simple command, and the name of one that
    reads its script from stdin (None when none does)."""
    found: list[_Reader] = []
    stdin: str | None = None
    n = len(lits)
    for i, lit in enumerate(lits):
        if lit is None:
            continue
        name = lit.rsplit("/", 1)[-1]
        reader: _Reader | None = None
        reads_stdin = False
        if name in _SHELLS:
            reader, reads_stdin = _shell(lits, i, name)
        elif name == "eval" and i + 1 < n:
            reader = _Reader(i + 1, n, "eval", "shell")
        elif name in ("su", "runuser"):
            reader = _su(lits, i, name)
        elif name == "ssh":
            reader, reads_stdin = _ssh(lits, i)
        else:
            lang = "python" if _PYTHON.match(name) else _INLINE_ALIASES.get(name, name)
            if lang in _INLINE:
                reader, reads_stdin = _inline(lits, i, name, lang)
        if reader is not None:
            found.append(reader)
        if reads_stdin and stdin is None:
            stdin = name
    return found, stdin


def _shell(lits: Sequence[str | None], i: int, name: str) -> tuple[_Reader | None, bool]:
    j, n = i + 1, len(lits)
    has_c = reads_stdin = False
    while j < n:
        w = lits[j]
        if w is None or len(w) < 2 or w[0] not in "-+":
            break
        if w == "--":
            j += 1
            break
        if w.startswith("--"):
            j += 2 if w in ("--rcfile", "--init-file") else 1
            continue
        if w in ("-o", "+o", "-O", "+O"):
            j += 2
            continue
        has_c = has_c or "c" in w[1:]
        reads_stdin = reads_stdin or "s" in w[1:]
        j += 1
    if has_c:
        return (_Reader(j, j + 1, f"{name} -c", "shell") if j < n else None), False
    return None, j >= n or reads_stdin


def _su(lits: Sequence[str | None], i: int, name: str) -> _Reader | None:
    for j in range(i + 1, len(lits)):
        w = lits[j]
        if w is not None and w.rsplit("/", 1)[-1] in _SHELLS:
            return None  # `runuser -u x -- sh -c …`: the shell's own -c
        if w in ("-c", "--command") and j + 1 < len(lits):
            return _Reader(j + 1, j + 2, f"{name} -c", "shell")
        if w is not None and w.startswith("--command="):
            return _Reader(j, j + 1, f"{name} -c", "shell")
    return None


def _ssh(lits: Sequence[str | None], i: int) -> tuple[_Reader | None, bool]:
    j, n = i + 1, len(lits)
    while j < n:
        w = lits[j]
        if w is None or not w.startswith("-") or w == "-":
            break
        if w == "--":
            j += 1
            break
        j += 2 if len(w) == 2 and w[1] in _SSH_VALUED else 1
    if j >= n:
        return None, False
    if j + 1 < n:
        return _Reader(j + 1, n, "ssh", "ssh"), False
    return None, True  # `ssh host <<EOF`: the remote shell reads its script on stdin


def _inline(lits: Sequence[str | None], i: int, name: str, lang: str) -> tuple[_Reader | None, bool]:
    letter, longs, valued, _ = _INLINE[lang]
    j, n = i + 1, len(lits)
    while j < n:
        w = lits[j]
        if w is None or not w.startswith("-"):
            return None, False  # a script file: its arguments are data
        if w == "-":
            return None, True
        if w == "-m" and lang == "python":
            return None, False  # a module: its arguments are data
        if w in longs:
            return (_Reader(j + 1, j + 2, f"{name} {w}", lang) if j + 1 < n else None), False
        if any(w.startswith(long + "=") for long in longs):
            return _Reader(j, j + 1, f"{name} {w.split('=')[0]}", lang), False
        if not w.startswith("--") and letter in w[1:]:
            at = w.index(letter, 1)
            if at == len(w) - 1:
                return (_Reader(j + 1, j + 2, f"{name} -{letter}", lang) if j + 1 < n else None), False
            return _Reader(j, j + 1, f"{name} -{letter}", lang), False  # the code glued on: -c'…'
        j += 2 if w in valued else 1
    return None, True


def _place(reader: _Reader) -> str:
    if reader.command == "eval":
        return "the arguments of `eval`"
    if reader.kind == "ssh":
        return "the remote command of `ssh`"
    if reader.kind == "shell":
        return f"the script of `{reader.command}`"
    return f"the code of `{reader.command}`"


# -- finding the uses ---------------------------------------------------------------------

Tainted = Callable[[str], str | None]


def _mask(text: str) -> str:
    """``text`` with each substitution replaced by as many letters (offsets kept): the shell
    would see a plain word part there."""
    return expr.EXPR.sub(lambda m: "x" * len(m.group(0)), text)


class _Finder:
    def __init__(self, tainted: Tainted) -> None:
        self.tainted = tainted
        self.found: dict[tuple[int | None, int, int], NestedUse] = {}

    def add(self, item: int | None, start: int, end: int, text: str, place: str, command: str, kind: str,
            via: str | None = None) -> None:
        carried = self.tainted(via) if via is not None else None
        self.found.setdefault((item, start, end), NestedUse(item, start, end, text, place, command, kind, via, carried))

    def subs_in(self, text: str, lo: int, hi: int) -> Iterator[re.Match[str]]:
        return (m for m in expr.EXPR.finditer(text, lo, hi) if m.end() <= hi)

    def shell(self, text: str, base: int, item: int | None, depth: int) -> None:
        """Uses in ``text[base:]``-relative shell code (``text`` is the whole string or item)."""
        body = text[base:] if base else text
        masked = _mask(body)
        for cmd in simple_commands(masked):
            readers, stdin = _readers([w.literal for w in cmd.words])
            for reader in readers:
                self.code_words(text, base, item, cmd.words[reader.first : reader.last], reader, depth, masked)
            if stdin is not None:
                self.stdin(text, base, item, cmd, stdin)

    def code_words(self, text: str, base: int, item: int | None, words: Sequence[Word], reader: _Reader,
                   depth: int, masked: str) -> None:
        place = _place(reader)
        lo, hi = base + words[0].start, base + words[-1].end
        for m in self.subs_in(text, lo, hi):
            self.add(item, m.start(), m.end(), m.group(0), place, reader.command, reader.kind)
        for word in words:
            for x in word.expansions:
                if self.tainted(x.name) is not None:
                    self.add(item, base + x.start, base + x.end, text[base + x.start : base + x.end], place,
                             reader.command, reader.kind, via=x.name)
            inner = single_quoted(masked, word)
            if inner is not None and reader.kind == "shell" and depth < _MAX_DEPTH:
                # A single-quoted script reaches the nested shell as written: look one level down.
                self.shell(text[: base + inner[1]], base + inner[0], item, depth + 1)

    def stdin(self, text: str, base: int, item: int | None, cmd: SimpleCommand, reader: str) -> None:
        for src in cmd.stdin:
            if not src.expanded:
                continue
            place = f"a {src.kind} read by `{reader}`"
            for m in self.subs_in(text, base + src.start, base + src.end):
                self.add(item, m.start(), m.end(), m.group(0), place, reader, src.kind)
            for x in src.expansions:
                if self.tainted(x.name) is not None:
                    self.add(item, base + x.start, base + x.end, text[base + x.start : base + x.end], place,
                             reader, src.kind, via=x.name)
        for prev in cmd.piped_from:
            if not prev.words or prev.words[0].literal not in _PRINTERS:
                continue
            place = f"text piped into `{reader}`"
            for m in self.subs_in(text, base + prev.words[0].start, base + prev.words[-1].end):
                self.add(item, m.start(), m.end(), m.group(0), place, reader, "pipe")
            for word in prev.words:
                for x in word.expansions:
                    if self.tainted(x.name) is not None:
                        self.add(item, base + x.start, base + x.end, text[base + x.start : base + x.end], place,
                                 reader, "pipe", via=x.name)

    def argv(self, items: Sequence[str]) -> None:
        readers, _ = _readers([_mask(item) for item in items])
        for reader in readers:
            place = _place(reader)
            for index in range(reader.first, reader.last):
                item = items[index]
                for m in self.subs_in(item, 0, len(item)):
                    self.add(index, m.start(), m.end(), m.group(0), place, reader.command, reader.kind)
                if reader.kind == "shell":  # no outer shell: the item is the nested shell's script
                    self.shell(item, 0, index, 1)


def _may_nest(run: Command) -> bool:
    """The cheap test: could any value reach an interpreter's script in ``run`` at all?"""
    text = run if isinstance(run, str) else " ".join(run)
    return "$" in text and _INTERPRETER_WORD.search(text) is not None and _CODE_HINT.search(text) is not None


def nested_uses(run: Command, tainted: Tainted = lambda name: None) -> list[NestedUse]:
    """Every place where a value reaches a nested interpreter's script in ``run``.

    ``tainted(NAME)`` says what an environment variable carries (a substitution's text), or None.
    """
    if not _may_nest(run):
        return []
    finder = _Finder(tainted)
    if isinstance(run, str):
        finder.shell(run, 0, None, 0)
    else:
        finder.argv(run)
    return sorted(finder.found.values(), key=lambda u: (u.item or 0, u.start))


def carriers(*envs: Mapping[str, Any] | None) -> Tainted:
    """What each variable of these ``env:`` maps (later ones win) carries into a shell: the
    first substitution in its value; flowctl's own FLOWCTL_PARAM_*/FLOWCTL_ENV_*/FLOWCTL_ITEM*/FLOWCTL_BATCH_* carry theirs."""
    carried: dict[str, str] = {}
    for env in envs:
        for key, value in (env or {}).items():
            m = expr.EXPR.search(value) if isinstance(value, str) else None
            if m:
                carried[key] = m.group(0)
            else:
                carried.pop(key, None)

    def tainted(name: str) -> str | None:
        if name in carried:
            return carried[name]
        if name.startswith(expr.VALUE_VAR_PREFIXES):
            return name
        return None

    return tainted


def step_nested_uses(pipeline: Pipeline, step: Step) -> list[NestedUse]:
    """The nested uses in a step's command and its remediation (``run --dry-run`` marks them)."""
    uses = nested_uses(step.run, carriers(pipeline.env, step.env)) if _may_nest(step.run) else []
    if step.remediate is not None and _may_nest(step.remediate.run):
        uses += nested_uses(step.remediate.run, carriers(pipeline.env, step.env, step.remediate.env))
    return uses


# -- diagnostics for validate -------------------------------------------------------------


def _command(raw: Any) -> Command | None:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, list) and raw:
        return tuple(x if isinstance(x, str) else str(x) for x in raw)
    return None


_Env = Mapping[str, Any] | None


def _commands(data: Mapping[str, Any]) -> Iterator[tuple[list[Any], Command, tuple[_Env, ...]]]:
    """Every command of a document, with the ``env:`` maps (pipeline first) that reach it."""
    env = data.get("env") if isinstance(data.get("env"), dict) else None
    raw_steps = data.get("steps")
    steps: Mapping[str, Any] = raw_steps if isinstance(raw_steps, dict) else {}
    for sid, step in steps.items():
        if not isinstance(step, dict):
            continue
        step_env = step.get("env") if isinstance(step.get("env"), dict) else None
        run = _command(step.get("run"))
        if run is not None:
            yield ["steps", sid, "run"], run, (env, step_env)
        rem = step.get("remediate")
        if isinstance(rem, dict) and (rem_run := _command(rem.get("run"))) is not None:
            rem_env = rem.get("env") if isinstance(rem.get("env"), dict) else None
            yield ["steps", sid, "remediate", "run"], rem_run, (env, step_env, rem_env)
    notify = data.get("notify")
    for i, notifier in enumerate(notify if isinstance(notify, list) else []):
        if isinstance(notifier, dict) and (note_run := _command(notifier.get("run"))) is not None:
            yield ["notify", i, "run"], note_run, (env,)


def lint_document(doc: Document) -> list[Diagnostic]:
    """The ``nested-shell-substitution`` warnings of a parsed, schema-valid document."""
    if not isinstance(doc.data, dict) or ("${{" not in doc.text and "FLOWCTL_" not in doc.text):
        return []  # the fast path: nothing a nested interpreter could receive
    out: list[Diagnostic] = []
    for path, run, envs in _commands(doc.data):
        if not _may_nest(run):
            continue
        for use in nested_uses(run, carriers(*envs)):
            at = path if use.item is None else [*path, use.item]
            text = run if isinstance(run, str) else run[use.item or 0]
            span = span_within(doc, at, text, use.start, use.end - use.start)
            out.append(Diagnostic(span, use.message, hint=use.hint, code=NESTED_SHELL,
                                  path=".".join(str(p) for p in at), severity=Severity.WARNING))
    return out


__all__ = ["NestedUse", "carriers", "lint_document", "nested_uses", "step_nested_uses"]

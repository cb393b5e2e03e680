"""The one place errors become output and exit codes.

``run_app`` runs the typer app and maps everything that escapes to the shared exit-code table:
``FlowctlError`` → its code with a clear message; usage errors → 2; Ctrl-C → 130; anything else
→ 70 with a crash report written to a file (never a bare traceback). ``render_diagnostics``
prints pipeline diagnostics as text (``file:line:col`` + source line + carets), JSON, GitHub
annotations or SARIF 2.1.0.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sys
import tempfile
import traceback
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any, Protocol

from flowctl import __version__
from flowctl.errors import Diagnostic, ExitCode, Findings, FlowctlError, PipelineError

FORMATS = ("text", "json", "github", "sarif")


class Reported(Protocol):
    """What is rendered: a file's diagnostics and its text (a PipelineError or Findings)."""

    @property
    def file(self) -> str: ...
    @property
    def diagnostics(self) -> tuple[Diagnostic, ...]: ...
    @property
    def sources(self) -> Mapping[str, str]: ...


def run_app(app: Any, argv: Sequence[str] | None) -> int:
    """Run the typer ``app`` with ``argv`` and return the exit code."""
    from flowctl.cli._common import reader_safe_output

    with reader_safe_output():
        code = _run(app, argv)
        try:  # output still buffered, pushed out now so a full disk is reported (trial 17)
            sys.stdout.flush()
        except FlowctlError as exc:
            report_error(exc)
            return int(exc.exit_code)
        return code


def _run(app: Any, argv: Sequence[str] | None) -> int:
    import typer

    command = typer.main.get_command(app)
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        result = command.main(args=args, prog_name="flowctl", standalone_mode=False)
    except FlowctlError as exc:
        report_error(exc)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except Exception as exc:
        click_code = _click_exit(exc)
        if click_code is not None:
            return click_code
        return _crash(exc)
    if isinstance(result, int):
        return result
    return int(ExitCode.OK)


def _click_exit(exc: BaseException) -> int | None:
    """Map typer's own exceptions (usage errors, ``Exit``, ``Abort``) to exit codes."""
    import typer
    from typer._click import exceptions as click_exc  # typer vendors click

    if isinstance(exc, typer.Exit):
        return int(getattr(exc, "exit_code", 0) or 0)
    if isinstance(exc, typer.Abort):
        print("\ninterrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    if isinstance(exc, click_exc.ClickException):
        exc.show()
        return int(ExitCode.USAGE)
    return None


def _crash(exc: BaseException) -> int:
    stamp = _dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    directory = os.environ.get("FLOWCTL_CRASH_DIR") or tempfile.gettempdir()
    path = os.path.join(directory, f"flowctl-crash-{stamp}-{os.getpid()}.txt")
    text = (
        f"flowctl {__version__} crashed\nargv: {sys.argv!r}\npython: {sys.version}\n\n"
        + "".join(traceback.format_exception(exc))
    )
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        where = f"a crash report is in {path}"
    except OSError:
        where = "the crash report could not be written"
    print(
        f"flowctl: internal error: {type(exc).__name__}: {exc}\n{where}; please attach it to a bug report.",
        file=sys.stderr,
    )
    return int(ExitCode.INTERNAL)


def report_error(exc: FlowctlError, stream: IO[str] | None = None) -> None:
    """Print one error as text on stderr (pipeline errors with their source lines)."""
    out = stream or sys.stderr
    if isinstance(exc, PipelineError):
        render_diagnostics([exc], "text", out)
        return
    print(f"flowctl: error: {exc.message}", file=out)
    if exc.hint:
        print(f"  hint: {exc.hint}", file=out)


# -- diagnostics ---------------------------------------------------------------------------


def report_warnings(found: Findings, stream: IO[str] | None = None) -> None:
    """Print warnings (as ``validate`` shows them) on stderr; nothing when there are none."""
    if found.diagnostics:
        render_diagnostics([found], "text", stream or sys.stderr)


def _source_line(diag: Diagnostic, cache: dict[str, list[str] | None], sources: Mapping[str, str]) -> str | None:
    span = diag.span
    if span is None or span.line < 1:
        return None
    if span.file not in cache:
        text = sources.get(span.file)
        if text is None:
            try:
                with open(span.file, encoding="utf-8", errors="replace") as fh:
                    text = fh.read()
            except OSError:
                text = None
        cache[span.file] = text.splitlines() if text is not None else None
    lines = cache[span.file]
    if lines is None or span.line > len(lines):
        return None
    return lines[span.line - 1]


def _all_diagnostics(errors: Iterable[Reported]) -> list[tuple[Reported, Diagnostic]]:
    return [(err, d) for err in errors for d in err.diagnostics]


def _location(err: Reported, diag: Diagnostic) -> str:
    if diag.span is None:
        return err.file
    return f"{diag.span.file}:{diag.span.line}:{diag.span.col}"


def render_diagnostics(errors: Sequence[Reported], fmt: str, out: IO[str]) -> None:
    """Print every diagnostic of ``errors`` in ``fmt`` (text, json, github or sarif)."""
    pairs = _all_diagnostics(errors)
    if fmt == "json":
        json.dump([diagnostic_json(err, d) for err, d in pairs], out, indent=2)
        out.write("\n")
    elif fmt == "github":
        for err, d in pairs:
            out.write(_github(err, d) + "\n")
    elif fmt == "sarif":
        json.dump(sarif_log(pairs), out, indent=2)
        out.write("\n")
    else:
        _text(errors, out)


def _text(errors: Sequence[Reported], out: IO[str]) -> None:
    from flowctl.spec.rules import RULES

    cache: dict[str, list[str] | None] = {}
    for err in errors:
        sources = err.sources
        for d in err.diagnostics:
            where = f" ({d.path})" if d.path else ""
            # A named rule (one that can be a warning) shows its name: `validate --strict`,
            # docs/validation-rules.md and CI annotations all speak of it by that name.
            rule = f"[{d.code}]" if d.code in RULES else ""
            out.write(f"{_location(err, d)}: {d.severity.value}{rule}: {d.message}{where}\n")
            line = _source_line(d, cache, sources)
            if line is not None and d.span is not None:
                shown = line.replace("\t", " ")
                out.write(f"  {d.span.line:>4} | {shown}\n")
                width = 1
                if d.span.end_line == d.span.line and d.span.end_col > d.span.col:
                    width = d.span.end_col - d.span.col
                width = max(1, min(width, max(1, len(shown) - d.span.col + 1)))
                out.write(f"       | {' ' * (d.span.col - 1)}{'^' * width}\n")
            if d.hint:
                out.write(f"  hint: {d.hint}\n")


def diagnostic_json(err: Reported, d: Diagnostic) -> dict[str, Any]:
    return {
        "file": d.span.file if d.span else err.file,
        "line": d.span.line if d.span else None,
        "column": d.span.col if d.span else None,
        "end_line": d.span.end_line if d.span else None,
        "end_column": d.span.end_col if d.span else None,
        "path": d.path,
        "code": d.code,
        "severity": d.severity.value,
        "message": d.message,
        "hint": d.hint,
    }


def _gh_escape(text: str, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def _github(err: Reported, d: Diagnostic) -> str:
    file = d.span.file if d.span else err.file
    props = [f"file={_gh_escape(file, True)}"]
    if d.span:
        props += [f"line={d.span.line}", f"col={d.span.col}"]
        if d.span.end_line:
            props += [f"endLine={d.span.end_line}", f"endColumn={d.span.end_col}"]
    props.append(f"title={_gh_escape('flowctl ' + d.code, True)}")
    message = d.message + (f" ({d.path})" if d.path else "") + (f". Hint: {d.hint}" if d.hint else "")
    kind = "error" if d.severity.value == "error" else "warning"
    return f"::{kind} {','.join(props)}::{_gh_escape(message)}"


def sarif_log(pairs: Sequence[tuple[Reported, Diagnostic]]) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one result per diagnostic."""
    from flowctl.spec.rules import RULES

    codes = sorted({d.code for _, d in pairs})
    rules = [{"id": c, "name": c, "shortDescription": {"text": RULES[c].summary if c in RULES else f"flowctl {c}"}}
             for c in codes]
    results = []
    for err, d in pairs:
        file = d.span.file if d.span else err.file
        region: dict[str, int] = {}
        if d.span:
            region = {"startLine": d.span.line, "startColumn": d.span.col}
            if d.span.end_line:
                region["endLine"] = d.span.end_line
                region["endColumn"] = max(d.span.end_col, 1)
        location: dict[str, Any] = {"artifactLocation": {"uri": _uri(file)}}
        if region:
            location["region"] = region
        text = d.message + (f" ({d.path})" if d.path else "") + (f". Hint: {d.hint}" if d.hint else "")
        results.append(
            {
                "ruleId": d.code,
                "ruleIndex": codes.index(d.code),
                "level": "error" if d.severity.value == "error" else "warning",
                "message": {"text": text},
                "locations": [{"physicalLocation": location}],
            }
        )
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "flowctl",
                        "version": __version__,
                        "informationUri": "https://github.com/flowctl/flowctl",
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }


def _uri(file: str) -> str:
    from urllib.parse import quote

    if os.path.isabs(file):
        try:
            file = os.path.relpath(file)
        except ValueError:
            return "file://" + quote(file)
    return quote(file.replace(os.sep, "/"))


__all__ = [
    "FORMATS", "Reported", "diagnostic_json", "render_diagnostics", "report_error", "report_warnings", "run_app", "sarif_log",
]

"""``flowctl validate``: check pipeline files; exit 1 when any is invalid."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from flowctl.cli._app import app
from flowctl.cli._common import json_option, param_option, pick_format
from flowctl.errors import ExitCode

FORMATS = ("text", "json", "github", "sarif")


@app.command()
def validate(
    paths: list[Path] = typer.Argument(None, help="Pipeline files or folders (default: pipelines/ at the project root)."),
    fmt: str = typer.Option("text", "--format", "-f", help="text, json, github (annotations) or sarif (2.1.0)."),
    as_json: bool = json_option(),
    params: list[str] = param_option(),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only problems."),
    strict: bool = typer.Option(False, "--strict", help="Treat warnings as errors (exit 1 when there is any)."),
) -> int:
    """Check pipeline files against the schema and the rules beyond it.

    Every problem is reported as FILE:LINE:COL with what to do; warnings name their rule
    (docs/validation-rules.md). Exit 0 when all are valid (warnings allowed), 1 when any is
    invalid (or, with --strict, has a warning), 2 when no pipeline file was found.

    Example: flowctl validate --format github pipelines/

    Example: flowctl validate --strict pipelines/etl.yaml -p day=2026-11-24
    """
    from flowctl.cli._boundary import render_diagnostics
    from flowctl.spec.validation import validate_paths

    chosen = pick_format(fmt, as_json, FORMATS)
    report = validate_paths(paths or [], params=params, strict=strict)
    out = sys.stdout
    if chosen == "json":
        json.dump(_json(report), out, indent=2)
        out.write("\n")
    else:
        render_diagnostics(report.results, chosen, out)
        if chosen == "text" and not quiet:
            for result in report.results:
                if result.error is None:
                    out.write(f"ok    {result.file} ({result.steps} steps)\n")
            bad = len(report.errors)
            total = len(report.results)
            problems = sum(len(e.diagnostics) for e in report.errors)
            warned = f", {report.warnings} warning(s)" if report.warnings else ""
            if bad:
                out.write(f"{bad} of {total} pipeline file(s) invalid, {problems} problem(s){warned}\n")
            else:
                out.write(f"all {total} pipeline file(s) valid{warned}\n")
    return int(ExitCode.FAILED if report.errors else ExitCode.OK)


def _json(report: Any) -> dict[str, Any]:
    from flowctl.cli._boundary import diagnostic_json

    return {
        "valid": not report.errors,
        "warnings": report.warnings,
        "files": [
            {
                "file": r.file,
                "valid": r.error is None,
                "steps": r.steps,
                "diagnostics": [diagnostic_json(r, d) for d in r.diagnostics],
            }
            for r in report.results
        ],
    }

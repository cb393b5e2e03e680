"""``flowctl plan``: what a run would do — levels, the critical path, the selection, commands."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import typer

from flowctl.cli._app import app
from flowctl.cli._common import json_option, param_option, pick_format

FORMATS = ("text", "json")


@app.command()
def plan(
    pipeline: str = typer.Argument(..., help="The pipeline file."),
    params: list[str] = param_option(),
    only: list[str] = typer.Option([], "--only", metavar="STEP", help="Only these steps and what they need."),
    from_: list[str] = typer.Option([], "--from", metavar="STEP", help="These steps and everything downstream."),
    fmt: str = typer.Option("text", "--format", "-f", help="text or json."),
    as_json: bool = json_option(),
    explain: bool = typer.Option(False, "--explain", help="Say for each step whether it would run, be reused or be up to date, and why."),
    check: bool = typer.Option(False, "--check", help="With --explain: exit 1 when any step would run (a CI gate)."),
    resume: bool = typer.Option(False, "--resume", help="With --explain: as `run --resume` would see it."),
    run_id: str = typer.Option(None, "--run-id", metavar="ID", help="With --explain --resume: that run (an id, or latest~N) instead of the latest."),
    force: bool = typer.Option(False, "--force", help="With --explain: as `run --force` would see it."),
    force_step: list[str] = typer.Option([], "--force-step", metavar="STEP", help="With --explain: as `run --force-step` would see it."),
    state_dir: str = typer.Option(None, "--state-dir", metavar="DIR", help="The state folder (default: $FLOWCTL_STATE_DIR, else the project's, as `flowctl run` finds it)."),
    strict: bool = typer.Option(False, "--strict", help="Treat warnings (e.g. an unset ${{ env.X }}) as errors: exit 2."),
) -> int:
    """Show the execution levels (what can run in parallel), the critical path and the commands.

    With --explain, say instead what a run would do with each step and why. Warnings (an unset
    ${{ env.X }}, a missing input, a value reaching a nested shell) go to stderr; --strict makes
    them errors.

    Example: flowctl plan pipelines/etl.yaml -p day=2026-11-24 --from transform

    Example: flowctl plan pipelines/etl.yaml --explain --check
    """
    from flowctl.cli._boundary import report_warnings
    from flowctl.graph import compile_plan
    from flowctl.spec import load_source
    from flowctl.spec.resolve import Resolver, parse_param_args, resolve_params
    from flowctl.spec.rules import Stage
    from flowctl.spec.validation import gate

    chosen = pick_format(fmt, as_json, FORMATS)
    if explain or check:
        from flowctl.cli._explain import explain as explain_plan

        return explain_plan(
            pipeline, overrides=parse_param_args(params), only=only, from_=from_, state_dir=state_dir,
            resume=resume, run_id=run_id, force=force, force_steps=force_step, fmt=chosen, check=check,
            strict=strict,
        )
    source = load_source(pipeline)
    pipe = source.pipeline
    values = resolve_params(pipe, parse_param_args(params))
    compiled = compile_plan(pipe, only=only, from_=from_)
    environ = dict(os.environ)
    warnings = gate(source, stage=Stage.CHECK, params=values, environ=environ, selected=compiled.selected,
                    strict=strict)
    del source  # the document's node tree: not needed any more (peak memory on large files)
    report_warnings(warnings)
    resolver = Resolver(pipe, values, environ)
    commands = {sid: resolver.step(pipe.steps[sid]).display for sid in compiled.selected}
    if chosen == "json":
        json.dump({**_json(compiled, values, commands), "warnings": _warnings_json(warnings)}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    out = sys.stdout
    total = len(pipe.steps)
    conc = pipe.concurrency or os.cpu_count() or 1
    out.write(f"Pipeline {pipe.name} ({pipeline}): {len(compiled.selected)} of {total} steps, "
              f"{len(compiled.levels)} levels, concurrency {conc}\n")
    if values:
        out.write("Parameters: " + ", ".join(f"{k}={v!r}" for k, v in values.items()) + "\n")
    width = max((len(s) for s in compiled.selected), default=0)
    critical = frozenset(compiled.critical_path)  # membership per step: a set, not the tuple (issue 12)
    for n, level in enumerate(compiled.levels, 1):
        note = f" ({len(level)} in parallel)" if len(level) > 1 else ""
        out.write(f"\nLevel {n}{note}\n")
        for sid in level:
            mark = "*" if sid in critical else " "
            shown = commands[sid].rstrip("\n").replace("\n", "\n" + " " * (width + 6))
            out.write(f"  {mark} {sid:<{width}}  {shown}\n")
    out.write(f"\n* critical path ({len(compiled.critical_path)} steps): {' → '.join(compiled.critical_path)}\n")
    selected = frozenset(compiled.selected)  # built once: per step it made `plan` quadratic (issue 12)
    skipped = [s for s in pipe.steps if s not in selected]
    if skipped:
        out.write(f"Not selected ({len(skipped)}): {', '.join(skipped)}\n")
    return 0


def _warnings_json(found: Any) -> list[dict[str, Any]]:
    from flowctl.cli._boundary import diagnostic_json

    return [diagnostic_json(found, d) for d in found.diagnostics]


def _json(compiled: Any, values: dict[str, Any], commands: dict[str, str]) -> dict[str, Any]:
    pipe = compiled.pipeline
    critical = frozenset(compiled.critical_path)
    return {
        "pipeline": pipe.name,
        "file": pipe.path,
        "params": values,
        "selected": list(compiled.selected),
        "levels": [list(level) for level in compiled.levels],
        "critical_path": list(compiled.critical_path),
        "steps": [
            {"id": sid, "needs": list(pipe.steps[sid].needs), "command": commands[sid],
             "critical": sid in critical}
            for sid in compiled.selected
        ],
    }

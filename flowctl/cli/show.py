"""``flowctl show RUN_ID``: one run step by step (status, attempts, durations, exit codes, logs).

``RUN_ID`` may be ``latest`` or ``latest~N`` (``--pipeline FILE`` narrows them to one pipeline);
``state.queries.find_run`` resolves it.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

import typer

from flowctl.cli._app import app
from flowctl.cli._common import json_option, pick_format
from flowctl.cli._history import RUN_ID_HELP, format_option, pipeline_option, state_dir_option

if TYPE_CHECKING:
    from flowctl.state.items import ItemsSummary


@app.command()
def show(
    run_id: str = typer.Argument(..., help=RUN_ID_HELP),
    pipeline: str = pipeline_option(),
    state_dir: str = state_dir_option(),
    fmt: str = format_option(),
    as_json: bool = json_option(),
) -> int:
    """Show one run step by step: status, attempts, durations, exit codes and log paths.

    Example: flowctl show latest

    Example: flowctl show 20261125T020000-3fa1 --json
    """
    import dataclasses
    import os

    from flowctl.cli._history import counts_text, emit_json, seconds, stamp, table
    from flowctl.observe.plain import is_worker
    from flowctl.observe.report import metrics_lines
    from flowctl.observe.stored_metrics import detail_metrics
    from flowctl.state.items import summarize
    from flowctl.state.views import attempt_log_path, run_details, state_dir_for

    chosen = pick_format(fmt, as_json, ("text", "json"))
    root = state_dir_for(state_dir, pipeline)
    detail = run_details(root, run_id, pipeline)
    metrics = detail_metrics(detail)
    items = summarize(list(detail.items))  # issue 15: each foreach step's items, aggregated
    if chosen == "json":
        # One conversion pass (emit_json's): the fields of the detail, then the metrics.
        fields = {f.name: getattr(detail, f.name) for f in dataclasses.fields(detail)
                  if not f.name.startswith("_") and f.name != "items"}  # items: aggregated below
        emit_json({**fields, "metrics": metrics.to_dict(), "items": {s.step: s for s in items}})
        return 0
    run = detail.run
    print(f"Run {run.run_id} of {run.pipeline} ({run.pipeline_path or '-'}): {run.status}")
    print(f"  started {stamp(run.started_at)}, duration {seconds(run.duration)}, steps: {counts_text(run.counts)}")
    if run.params:
        print("  params: " + ", ".join(f"{k}={v!r}" for k, v in run.params.items()))
    if run.resumed_from:
        print(f"  resumed from {run.resumed_from}")
    commit = run.provenance.get("git_commit")
    if run.provenance:
        dirty = " (dirty tree)" if run.provenance.get("git_dirty") else ""
        sha = str(run.provenance.get("pipeline_sha256", ""))[:12]
        print(f"  provenance: file sha256 {sha or '-'}, commit {str(commit)[:12] if commit else '-'}{dirty}")
    if run.root_failure:
        print(f"  root failure: {run.root_failure}")
    item_faults: dict[str, str] = {}
    if run.chaos:  # issue 17: which attempts' failures were injected (a foreach step's: its items')
        print(f"  chaos: {run.chaos} (replay: flowctl chaos replay {run.run_id})")
        from flowctl.state.item_checks import item_fault_counts

        records = detail.items
        for sid in {r.step for r in records}:
            counts = item_fault_counts([r for r in records if r.step == sid])
            if counts:
                item_faults[sid] = "items: " + ", ".join(f"{f} {n}" for f, n in sorted(counts.items()))
    rows = []
    # Attempts that ran on Dask workers name their worker (each attempt's, comma-separated).
    workers = any(is_worker(a.host) for step in detail.steps for a in step.attempt_records)
    for step in detail.steps:
        attempts = step.attempt_records
        codes = ",".join("-" if a.exit_code is None else str(a.exit_code) for a in attempts) or "-"
        logs = attempts[-1].log_path if attempts else ""
        if logs and not os.path.isfile(attempt_log_path(root, attempts[-1])):
            logs = "(no output)" if attempts[-1].outcome else ""  # finished: it printed nothing
        where = [",".join(a.host or "-" for a in attempts) or "-"] if workers else []
        injected = [",".join(f"{a.attempt}:{a.injected}" for a in attempts if a.injected)
                    or item_faults.get(step.step, "-")] if run.chaos else []
        rows.append([step.step, step.status, str(step.attempts), seconds(step.duration), codes, *where,
                     *injected, step.reason or "", logs or "-"])
    print()
    table(["STEP", "STATUS", "ATTEMPTS", "DURATION", "EXIT", *(["WORKER"] if workers else []),
           *(["INJECTED"] if run.chaos else []), "REASON", "LOG"], rows)
    print()
    for line in metrics_lines(metrics):
        print("  " + line)
    for summary in items:
        print()
        for line in item_lines(summary):
            print(line)
    return 0


def item_lines(s: ItemsSummary) -> list[str]:
    """``show``'s lines for one foreach step's items."""
    from flowctl.cli._history import seconds

    counts = ", ".join(f"{n} {status}" for status, n in sorted(s.counts.items()))
    rate = f"{s.items_per_second:.1f} items/s, " if s.items_per_second else ""
    lines = [f"Items of {s.step}: {counts}",
             f"  {rate}error rate {s.error_rate:.1%}, p50 {seconds(s.p50)}, p95 {seconds(s.p95)}, p99 {seconds(s.p99)}"]
    if s.slowest:
        lines.append("  slowest: " + ", ".join(f"{r.key} {seconds(r.duration)}" for r in s.slowest))
    for r in s.failed:
        lines.append(f"  {r.status}: {r.key} after {r.attempts} attempt(s), exit {r.exit_code}"
                     f" (flowctl logs {r.run_id} {r.step} --item {shlex.quote(r.key)})")
    return lines

"""``flowctl bench``: run a pipeline many times (in turn or N at once) and report its figures.

Thin: the options fill a ``BenchRequest``; ``prepare_bench`` checks everything (exit 2 before
anything runs); ``run_bench`` runs the executions with progress on stderr; the report goes to
stdout as text, Markdown or JSON, and ``--export-json`` writes the JSON document too. Exit 1
when a ``--threshold`` does not hold.
"""

from __future__ import annotations

import sys

import typer

from flowctl.cli._app import app
from flowctl.cli._common import param_option, pick_format
from flowctl.limits import MAX_BENCH_RUNS, MAX_CONCURRENCY

FORMATS = ("text", "json", "markdown")


@app.command("bench")
def bench(
    pipeline: str = typer.Argument(..., help="The pipeline file."),
    runs: int = typer.Option(10, "--runs", "-r", min=1, max=MAX_BENCH_RUNS, metavar="N", help="Measured executions."),
    warmup: int = typer.Option(0, "--warmup", "-w", min=0, max=MAX_BENCH_RUNS, metavar="N", help="Executions to run first, not measured."),
    parallel: int = typer.Option(
        1, "--parallel", min=1, max=MAX_CONCURRENCY, metavar="N",
        help="Executions at once, each with its own working copy and state (load, as k6's virtual users).",
    ),
    concurrency: int | None = typer.Option(
        None, "--concurrency", "-j", min=1, max=MAX_CONCURRENCY, metavar="N",
        help="Steps at once within each execution (default: the pipeline's, else the CPU count).",
    ),
    params: list[str] = param_option(),
    threshold: list[str] = typer.Option(
        [], "--threshold", metavar="EXPR",
        help="SUBJECT OP VALUE that must hold, e.g. 'p99 < 2s' or 'error_rate < 1%' (repeatable); exit 1 if one does not.",
    ),
    compare: str | None = typer.Option(
        None, "--compare", metavar="FILE", help="Show changes against an earlier --export-json (noise band: 2 sd)."
    ),
    export_json: str | None = typer.Option(
        None, "--export-json", metavar="FILE", help="Also write the result as JSON (schema: bench-result.schema.json)."
    ),
    keep_state: bool = typer.Option(
        False, "--keep-state", help="Keep each execution's state folder and output (under the project's .flowctl/bench/)."
    ),
    chaos: str | None = typer.Option(
        None, "--chaos", metavar="SPEC",
        help="Inject these faults into every execution, as `flowctl run --chaos` (no kill-runner); docs/chaos.md.",
    ),
    no_progress: bool = typer.Option(False, "--no-progress", help="Plain progress lines even on a terminal."),
    fmt: str = typer.Option("text", "--format", "-f", help="text, json or markdown."),
    as_json: bool = typer.Option(False, "--json", help="Shorthand for --format json."),
) -> int:
    """Run the pipeline RUNS times (PARALLEL at once) as real `flowctl run`s and report wall time
    (mean ± sd, median, min, max), throughput, step latency p50/p95/p99, queue wait, queue
    depth, error rate, retries and runner overhead, per run and over all runs.

    Each execution gets a private copy of the project (the files git sees, else the pipeline's
    folder) and an empty state folder, so every step runs and nothing collides; alerts,
    notifications and metrics exports stay muted. Thresholds use the alerts' grammar; `p99`
    alone is the step latency p99. Exit codes: 0 every threshold held, 1 one did not, 2 usage
    (before anything runs), 74 no room for the working copies, 130 interrupted.

    Example: flowctl bench pipelines/etl.yaml --runs 20 --warmup 2 --parallel 4 --threshold 'p99 < 2s' --export-json bench.json

    Example: flowctl bench pipelines/etl.yaml --runs 10 --chaos fail=0.1,delay=200ms@0.2,seed=1
    """
    from flowctl.benchmark import BenchRequest, prepare_bench, run_bench
    from flowctl.benchmark.document import dumps, result_document, write_export
    from flowctl.benchmark.executions import BenchEvent, ExecutionFinished
    from flowctl.benchmark.render import heading, markdown_report, text_report
    from flowctl.cli._bench_view import progress_view
    from flowctl.errors import InterruptedRun

    chosen = pick_format(fmt, as_json, FORMATS)
    request = BenchRequest(
        pipeline=pipeline, runs=runs, warmup=warmup, parallel=parallel, concurrency=concurrency,
        params=tuple(params), thresholds=tuple(threshold), compare=compare, keep_state=keep_state, chaos=chaos,
    )
    plan = prepare_bench(request)
    for warning in plan.warnings:
        print(f"flowctl: warning: {warning}", file=sys.stderr)
    if chosen == "text":
        _write(heading(plan))
    finished: list[int] = []  # measured executions that ended, for the message on Ctrl-C
    with progress_view(plain=no_progress) as show:
        def emit(event: BenchEvent) -> None:
            if isinstance(event, ExecutionFinished) and not event.warmup:
                finished.append(event.index)
            show(event)

        try:
            result = run_bench(plan, emit)
        except KeyboardInterrupt:  # typer would turn it into a silent exit 130 (trial 17)
            raise InterruptedRun(
                f"bench interrupted after {len(finished)} of {runs} run(s): the executions under way were stopped "
                "and their working copies removed", hint="nothing was reported or exported; run it again to measure",
            ) from None
    document = result_document(result)
    if export_json is not None:
        write_export(export_json, document)
    if chosen == "json":
        sys.stdout.write(dumps(document))
    elif chosen == "markdown":
        _write(markdown_report(result))
    else:
        _write(text_report(result))
    return 0 if result.passed else 1


def _write(lines: list[str]) -> None:
    sys.stdout.write("".join(line + "\n" for line in lines))
    sys.stdout.flush()

"""``flowctl chaos replay|check|soak`` (issue 17): run again with a run's faults, check a run's
history against the invariants, soak a pipeline over many seeds.

Thin: ``check`` calls ``state.invariants.check_run``, ``soak`` calls ``benchmark.soak.run_soak``
(both return values, rendered here); ``replay`` starts one ``flowctl run`` with the recorded
settings and parameters. Exit 1 on a violation.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import typer

from flowctl.cli._app import app
from flowctl.cli._common import json_option, param_option, pick_format
from flowctl.cli._history import RUN_ID_HELP, format_option, pipeline_option, state_dir_option
from flowctl.limits import MAX_BENCH_RUNS, MAX_CONCURRENCY, MAX_SEED

if TYPE_CHECKING:
    from flowctl.spec.model import Pipeline
    from flowctl.state.invariants import CheckReport

chaos_app = typer.Typer(
    name="chaos",
    help="Prove a pipeline converges under faults: replay a chaos run, check its history, soak many seeds "
    "(docs/chaos.md).\n\nExample: flowctl chaos soak pipelines/etl.yaml --runs 50 --chaos fail=0.2,kill=0.1,kill-runner=0.05",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(chaos_app, name="chaos")


def _shape(pipeline_path: str) -> tuple[dict[str, tuple[str, ...]] | None, dict[str, int] | None, dict[str, str]]:
    """What each step needs, how many attempts it allows and the streams (see ``_streams``),
    from the pipeline file the run recorded (None, None, {} when it is gone or invalid)."""
    from flowctl.observe.stored_metrics import recorded_pipeline

    pipe = recorded_pipeline(pipeline_path)
    if pipe is None:
        return None, None, {}
    return ({sid: step.needs for sid, step in pipe.steps.items()},
            {sid: step.max_attempts for sid, step in pipe.steps.items()}, _streams(pipe))


def _streams(pipe: Pipeline) -> dict[str, str]:
    """Foreach step -> the step whose output it streams (its items may start before that step ended)."""
    return {sid: s.foreach.source.path for sid, s in pipe.steps.items() if s.foreach is not None and s.foreach.source.stream}


@chaos_app.command("check")
def check(
    run_id: str = typer.Argument("latest", help=RUN_ID_HELP),
    pipeline: str = pipeline_option(),
    state_dir: str = state_dir_option(),
    fmt: str = format_option(),
    as_json: bool = json_option(),
) -> int:
    """Check a run and the runs it resumed against the invariants: it finished and converged
    (every step succeeded, or failed only through injected faults; a foreach step's dead-lettered
    items only through injected faults), no step started before what it needs succeeded, no step
    or item that succeeded ran again after a resume, a runner's death left at most its
    concurrency in flight, retries within limits (per item too), no process left alive, and no
    effect in the ledger (FLOWCTL_LEDGER) recorded twice. Exit 1 on a violation.

    Example: flowctl chaos check latest

    Example: flowctl chaos check 20261202T101500-3fa1 --json
    """
    from flowctl.state.invariants import check_run
    from flowctl.state.views import run_details, state_dir_for

    chosen = pick_format(fmt, as_json, ("text", "json"))
    root = state_dir_for(state_dir, pipeline)
    run = run_details(root, run_id, pipeline, command=("chaos", "check")).run
    needs, allowed, streams = _shape(run.pipeline_path)
    report = check_run(root, run.run_id, needs, streams=streams, allowed=allowed)
    if chosen == "json":
        print(json.dumps(report.to_dict(), indent=2))
    else:
        sys.stdout.write("\n".join(report_lines(report)) + "\n")
    return 0 if report.ok else 1


def runner_kills(report: CheckReport) -> str:
    """"runner killed N time(s)" for a run that asked for kill-runner (or whose runner died);
    "" otherwise (trial of main: "killed 0 time(s)" for a run that never asked misled)."""
    asked = report.runner_kills or "kill-runner" in report.chaos
    return f"runner killed {report.runner_kills} time(s)" if asked else ""


def report_lines(report: CheckReport) -> list[str]:
    """The readable report of one check: the chain, what was injected, each check, the verdict."""
    from flowctl.state.invariants import CHECKS

    chain = " -> ".join(report.chain)
    lines = [f"chaos check {report.run_id} ({report.pipeline}; {len(report.chain)} run(s): {chain})"]
    if report.chaos:
        lines.append(f"  chaos: {report.chaos}")
    faults = ", ".join(f"{fault} {n}" for fault, n in report.injected.items()) or "none"
    kills = runner_kills(report)
    lines.append(f"  injected: {faults}{'; ' + kills if kills else ''}; {report.effects} effect(s) in the ledger")
    broken = {v.check for v in report.violations}
    skipped = {why.partition(":")[0]: why.partition(":")[2].strip() for why in report.skipped}
    for name in CHECKS:  # one line per check, in one order: ok, FAIL (with why) or skip (with why)
        if name in broken:
            lines.append(f"  FAIL {name}")
            lines.extend(f"       {v.message}" for v in report.violations if v.check == name)
        elif name in skipped:
            lines.append(f"  skip {name}: {skipped[name]}")
        else:
            lines.append(f"  ok   {name}")
    if report.ok:
        lines.append("PASS")
    else:
        lines.append(f"FAIL: {len(report.violations)} violation(s)")
        if report.chaos:
            lines.append(f"To run again with the same faults: flowctl chaos replay {report.chain[0]}")
    return lines


@chaos_app.command("replay")
def replay(
    run_id: str = typer.Argument(..., help=RUN_ID_HELP),
    pipeline: str = pipeline_option(),
    state_dir: str = state_dir_option(),
) -> int:
    """Run the pipeline of a chaos run again with the same faults: its settings (seed included),
    parameters and selection. The exit code is that run's (137 when it killed itself, as the
    original did under kill-runner: continue it with `flowctl run PIPELINE --resume`).

    Example: flowctl chaos replay latest
    """
    from flowctl.errors import UsageError
    from flowctl.state.views import run_details, state_dir_for

    root = state_dir_for(state_dir, pipeline)
    run = run_details(root, run_id, pipeline, command=("chaos", "replay")).run
    if not run.chaos:
        raise UsageError(f"run {run.run_id} ran without --chaos: there are no faults to replay",
                         hint="pick a run that `flowctl show` lists with a chaos: line")
    if not run.pipeline_path or not os.path.isfile(run.pipeline_path):
        raise UsageError(f"run {run.run_id}: its pipeline file {run.pipeline_path or '?'} is gone")
    argv: list[str] = ["run", run.pipeline_path, "--state-dir", str(root), "--chaos", run.chaos]
    argv += [f"-p{k}={v}" for k, v in run.params.items()]
    for option in ("only", "from"):
        argv += [f"--{option}={s}" for s in run.selection.get(option) or ()]
    print(f"flowctl: replaying {run.run_id}: flowctl {shlex.join(argv)}", file=sys.stderr, flush=True)
    code = subprocess.run([sys.executable, "-m", "flowctl", *argv], check=False).returncode
    if code < 0:  # kill-runner: it killed itself, as the original did (and said how to go on); its exit, as a shell reports it
        return 128 - code
    return code


@chaos_app.command("soak")
def soak(
    pipeline: str = typer.Argument(..., help="The pipeline file."),
    runs: int = typer.Option(20, "--runs", "-r", min=1, max=MAX_BENCH_RUNS, metavar="N", help="How many seeds."),
    seed_from: int = typer.Option(0, "--seed-from", min=0, max=MAX_SEED, metavar="S", help="The first seed (then S+1, …)."),
    chaos: str | None = typer.Option(
        None, "--chaos", metavar="SPEC", help="The faults (their seed is replaced); default: the pipeline's `chaos:` block."
    ),
    concurrency: int | None = typer.Option(None, "--concurrency", "-j", min=1, max=MAX_CONCURRENCY, metavar="N", help="Steps at once in each run."),
    params: list[str] = param_option(),
    fmt: str = format_option(),
    as_json: bool = json_option(),
) -> int:
    """Run the pipeline under chaos for N seeds, each in a fresh working copy and state folder,
    resuming after every kill-runner until the run ends, and check each seed (`chaos check`).
    Prints PASS n/n seeds, or the first failing seed with the command that reproduces it (its
    folder is kept). Exit 1 when a seed fails.

    Example: flowctl chaos soak pipelines/etl.yaml --runs 50 --chaos fail=0.2,kill=0.1,kill-runner=0.05
    """
    from flowctl.benchmark.soak import SoakRequest, run_soak
    from flowctl.cli._chaos import parse_option, soak_launcher
    from flowctl.errors import UsageError
    from flowctl.run.chaos import check_chaos
    from flowctl.spec import load_pipeline

    chosen = pick_format(fmt, as_json, ("text", "json"))
    pipe = load_pipeline(pipeline)
    text = chaos or pipe.chaos
    if not text:
        raise UsageError(f"{pipeline} has no `chaos:` block: say which faults to inject",
                         hint="e.g. --chaos fail=0.2,kill=0.1,kill-runner=0.05")
    settings = parse_option(text)
    check_chaos(settings, pipe.steps, "local")
    run_args = (*(["-j", str(concurrency)] if concurrency else []), *(f"-p{p}" for p in params))
    request = SoakRequest(pipeline=pipeline, settings=settings, runs=runs, seed_from=seed_from, run_args=run_args)

    def said(result: object) -> None:
        if chosen == "text":
            sys.stdout.write(_seed_line(result) + "\n")
            sys.stdout.flush()

    results = run_soak(request, {sid: step.needs for sid, step in pipe.steps.items()}, said, soak_launcher(),
                       streams=_streams(pipe), allowed={sid: step.max_attempts for sid, step in pipe.steps.items()})
    failed = next((r for r in results if not r.report.ok), None)
    if chosen == "json":
        print(json.dumps({
            "pipeline": pipeline, "passed": sum(r.report.ok for r in results), "seeds": runs, "ok": failed is None,
            "results": [{"seed": r.seed, "runs": r.runs, "command": r.command, "folder": r.folder if not r.report.ok else None,
                         "check": r.report.to_dict()} for r in results],
        }, indent=2))
    elif failed is None:
        print(f"PASS {len(results)}/{runs} seeds")
    else:
        print(f"FAIL at seed {failed.seed} ({sum(r.report.ok for r in results)}/{runs} passed before it)")
        sys.stdout.write("\n".join(report_lines(failed.report)[:-2]) + "\n")
        print(f"Reproduce: {failed.command}")
        print(f"Kept: {failed.folder}")
    return 0 if failed is None else 1


def _seed_line(result: object) -> str:
    from flowctl.benchmark.soak import SeedResult

    assert isinstance(result, SeedResult)
    rep = result.report
    faults = sum(rep.injected.values())
    verdict = "ok" if rep.ok else f"FAIL ({len(rep.violations)} violation(s))"
    kills = runner_kills(rep)
    return f"seed {result.seed}: {verdict} — {result.runs} run(s), {kills + ', ' if kills else ''}{faults} fault(s) injected"


__all__: Sequence[str] = ["chaos_app", "report_lines"]

"""``flowctl alerts check``: evaluate a pipeline's alerts on its latest recorded run."""

from __future__ import annotations

import json
import sys

import typer

from flowctl.cli._app import app

alerts_app = typer.Typer(
    name="alerts",
    help="Check the alerts a pipeline declares.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(alerts_app, name="alerts")

FORMATS = ("text", "json")


@alerts_app.command("check")
def check(
    pipeline: str = typer.Argument(..., help="The pipeline file."),
    run_id: str | None = typer.Option(None, "--run-id", help="Check this run instead of the latest (an id, or latest~N)."),
    notify: bool = typer.Option(False, "--notify", help="Also send the firing alerts to the notifiers."),
    state_dir: str | None = typer.Option(None, "--state-dir", help="The state folder (default: the project's, as `flowctl run` finds it)."),
    fmt: str = typer.Option("text", "--format", "-f", help="text or json."),
    as_json: bool = typer.Option(False, "--json", help="Shorthand for --format json."),
) -> int:
    """Evaluate the pipeline's `alerts:` on its latest run; exit 1 when any fires.

    Example: flowctl alerts check pipelines/etl.yaml --notify
    """
    from flowctl.cli._common import load, pick_format
    from flowctl.errors import UsageError
    from flowctl.observe.alerts import check_pipeline_alerts
    from flowctl.observe.report import alert_lines, delivery_lines
    from flowctl.observe.stored_metrics import history_metrics, run_metrics
    from flowctl.state.views import state_dir_for

    chosen = pick_format(fmt, as_json, FORMATS)
    pipe = load(pipeline)
    folder = str(state_dir_for(state_dir, pipeline))
    needs = {sid: step.needs for sid, step in pipe.steps.items()}
    history = history_metrics(folder, pipe.name, last=50, needs=needs)
    if run_id is not None:
        current = run_metrics(folder, run_id, needs, pipe.name)
    elif history:
        current = history[0]
    else:
        from flowctl.state.elsewhere import where_hint

        raise UsageError(
            f"no recorded run of {pipe.name} in {folder}",
            hint=where_hint(folder, pipe.name, ("alerts", "check", pipeline)) or f"run it first: flowctl run {pipeline}",
        )
    results, deliveries = check_pipeline_alerts(pipe, current, history, notify=notify)
    fired = any(r.fired for r in results)
    if chosen == "json":
        payload = {
            "run_id": current.run_id,
            "pipeline": current.pipeline,
            "fired": fired,
            "alerts": [r.to_dict() for r in results],
            "notifications": [{"notifier": d.notifier, "alert": d.alert, "ok": d.ok, "detail": d.detail} for d in deliveries],
        }
        json.dump(payload, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        out = [f"run {current.run_id} of {current.pipeline} ({current.status.value})"]
        out += alert_lines(results) or ["no alerts declared"]
        out += delivery_lines(deliveries)
        sys.stdout.write("\n".join(out) + "\n")
    return 1 if fired else 0

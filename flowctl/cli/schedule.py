"""``flowctl schedule``: list, install, uninstall and next — scheduling pipelines with cron."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer

from flowctl.cli._app import app
from flowctl.cli._common import json_option, pick_format, stdout_is_tty
from flowctl.errors import ExitCode, UsageError
from flowctl.limits import MAX_FIRE_TIMES

if TYPE_CHECKING:
    from flowctl.schedule.install import InstallResult
    from flowctl.schedule.service import ScheduleList
    from flowctl.schedule.status import RunRecord, ScheduleStatus

FORMATS = ("text", "json")

schedule_app = typer.Typer(
    name="schedule",
    help="Schedule pipelines with cron: list, install, uninstall, next.\n\n"
    "Example: flowctl schedule install pipelines/etl.yaml --ref latest-release",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(schedule_app, name="schedule")

_FILE_HELP = "Use this file in user-crontab format instead of your crontab."
_CRON_D_HELP = "Use this /etc/cron.d style file (with a user column) instead of your crontab."


def _file_option() -> Any:
    return typer.Option(None, "--file", metavar="FILE", help=_FILE_HELP)


def _cron_d_option() -> Any:
    return typer.Option(None, "--cron-d", metavar="FILE", help=_CRON_D_HELP)


def _now() -> datetime:
    return datetime.now(UTC)


def _when(moment: datetime) -> str:
    """A time in its own zone with the zone's abbreviation, plus UTC when that differs."""
    local = moment.strftime("%Y-%m-%d %H:%M %Z")
    utc = moment.astimezone(UTC)
    if moment.utcoffset() == utc.utcoffset():
        return local
    return f"{local} ({utc.strftime('%H:%M')} UTC)"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


@schedule_app.command("list")
def list_command(
    paths: list[str] = typer.Argument(None, help="Pipeline files or folders (default: pipelines/)."),
    fmt: str = typer.Option("text", "--format", "-f", help="text or json."),
    as_json: bool = json_option(),
    file: str = _file_option(),
    cron_d: str = _cron_d_option(),
    state_dir: str = typer.Option(None, "--state-dir", help="Read runs from this state folder."),
    check: bool = typer.Option(False, "--check", help="Exit 1 when any scheduled run was missed."),
) -> int:
    """List scheduled pipelines: the expression in words, the next 3 fire times, the last run and
    missed runs (a fire time since install with no run started within min(half the interval,
    15 minutes) after it; the last 7 days are checked).

    Example: flowctl schedule list --format json
    """
    from flowctl.schedule.service import list_schedules

    chosen = pick_format(fmt, as_json, FORMATS)
    result = list_schedules(paths or [], file=file, cron_d=cron_d, state_dir=state_dir, now=_now())
    if chosen == "json":
        json.dump(_list_json(result), sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif stdout_is_tty():
        _list_table(result)
    else:
        _list_text(result)
    if result.note:
        print(f"flowctl: note: {result.note}", file=sys.stderr)
    missed = any(s.missed for s in result.statuses)
    return int(ExitCode.FAILED if check and missed else ExitCode.OK)


def _run_json(run: RunRecord | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "run_id": run.run_id,
        "started_at": _iso(run.started_at),
        "status": run.status,
        "scheduled_at": _iso(run.scheduled_at),
    }


def _list_json(result: ScheduleList) -> dict[str, Any]:
    return {
        "crontab": result.target,
        "note": result.note,
        "schedules": [
            {
                "pipeline": s.pipeline,
                "name": s.name,
                "schedule": s.expression,
                "timezone": s.timezone,
                "description": s.words,
                "next": [_iso(t) for t in s.next_fires],
                "installed": None
                if s.installed is None
                else {
                    "at": _iso(s.installed.installed_at),
                    "ref": s.installed.ref,
                    "guarded": s.installed.guarded,
                    "log": s.installed.log_file,
                    "line": s.installed.line(),
                    "stale": s.stale,
                    "state_dir": s.installed.state_dir or None,
                    "state_dir_differs": s.state_dir_differs,
                },
                "manual_state_dir": s.manual_state_dir,
                "last_run": _run_json(s.last_run),
                "missed": {
                    "count": len(s.missed),
                    "since": _iso(s.missed_since),
                    "times": [_iso(t) for t in s.missed],
                },
            }
            for s in result.statuses
        ],
        "unscheduled": list(result.unscheduled),
    }


def _last_run_text(run: RunRecord | None) -> str:
    if run is None:
        return "never"
    text = f"{run.status} at {_when(run.started_at.astimezone())} ({run.run_id})"
    if run.scheduled_at is not None:
        late = (run.started_at - run.scheduled_at).total_seconds()
        text += f", {late:.1f}s after its fire time"
    return text


def _installed_text(status: ScheduleStatus, target: str | None) -> str:
    entry = status.installed
    if entry is None:
        return f"not installed in {target}" if target else "unknown"
    text = f"{_when(entry.installed_at)} in {target}"
    if status.stale:
        text += (
            f", STALE: installed for {entry.schedule!r} ({entry.timezone or 'local'}); "
            "run `flowctl schedule install` again"
        )
    if status.state_dir_differs:
        text += ", " + _state_dir_warning(status)
    if entry.ref:
        text += f", pinned to {entry.ref}"
    if entry.guarded:
        text += ", guarded (the machine's zone differs)"
    return text


def _state_dir_warning(status: ScheduleStatus) -> str:
    entry = status.installed
    where = entry.state_dir if entry is not None else "?"
    return (
        f"STATE FOLDER DIFFERS: its runs keep state and the overlap lock in {where}, a manual "
        f"`flowctl run` would use {status.manual_state_dir}; run `flowctl schedule install` again "
        f"to move the line, or give manual runs --state-dir {where}"
    )


def _missed_text(status: ScheduleStatus) -> str:
    if status.installed is None:
        return "-"
    if not status.missed:
        return "none"
    shown = ", ".join(_when(t) for t in status.missed[-3:])
    more = f" (latest: {shown})"
    return f"{len(status.missed)}{more}"


def _list_text(result: ScheduleList) -> None:
    out = sys.stdout
    for s in result.statuses:
        out.write(f"{s.name}  {s.pipeline}\n")
        out.write(f"  schedule   {s.expression}: {s.words} ({s.timezone})\n")
        out.write(f"  next       {'; '.join(_when(t) for t in s.next_fires)}\n")
        out.write(f"  installed  {_installed_text(s, result.target)}\n")
        out.write(f"  last run   {_last_run_text(s.last_run)}\n")
        out.write(f"  missed     {_missed_text(s)}\n")
    for path in result.unscheduled:
        out.write(f"{path}: no schedule\n")
    if not result.statuses:
        out.write("no scheduled pipelines\n")


def _list_table(result: ScheduleList) -> None:
    from rich.table import Table

    from flowctl.cli._common import console

    table = Table(title="Scheduled pipelines")
    for column in ("pipeline", "schedule", "next fire times", "last run", "missed"):
        table.add_column(column)
    for s in result.statuses:
        table.add_row(
            f"{s.name}\n{s.pipeline}",
            f"{s.expression}\n{s.words}\n{s.timezone}",
            "\n".join(_when(t) for t in s.next_fires),
            _last_run_text(s.last_run),
            _missed_text(s),
        )
    out = console()
    out.print(table)
    for s in result.statuses:
        if s.state_dir_differs:
            out.print(f"{s.name}: {_state_dir_warning(s)}", soft_wrap=True, markup=False)
    for path in result.unscheduled:
        out.print(f"{path}: no schedule")


@schedule_app.command("install")
def install_command(
    paths: list[str] = typer.Argument(None, help="Pipeline files or folders (default: pipelines/)."),
    file: str = _file_option(),
    cron_d: str = _cron_d_option(),
    ref: str = typer.Option(
        None, "--ref", metavar="latest-release|REF", help="Run the pipeline as released (run --ref)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the block; change nothing."),
    metrics_file: str = typer.Option(
        None, "--metrics-file", metavar="FILE", help="Each run writes Prometheus metrics here ({name} = pipeline name)."
    ),
    state_dir: str = typer.Option(None, "--state-dir", help="State folder of the runs (default: each pipeline's, as `flowctl run` finds it)."),
    user: str = typer.Option(None, "--user", help="The user column of a --cron-d file (default: you)."),
) -> int:
    """Install one crontab line per scheduled pipeline inside a marked block.

    Re-running replaces the block; lines outside it are never touched. Each line runs
    `flowctl run` with absolute paths, PATH and the working folder set, --no-progress, a log
    file, the overlap lock (exit 75 if the previous run still holds it) and --scheduled.

    Example: flowctl schedule install pipelines/etl.yaml --ref latest-release --dry-run
    """
    from flowctl.schedule.install import InstallOptions
    from flowctl.schedule.service import install_schedules

    if user and not cron_d:
        raise UsageError("--user only applies to --cron-d files")
    options = InstallOptions(state_dir=state_dir, ref=ref, metrics_file=metrics_file, user=user)
    result = install_schedules(
        paths or [], options, file=file, cron_d=cron_d, now=_now(), dry_run=dry_run
    )
    from flowctl.cli._boundary import report_warnings

    for found in result.warnings:
        report_warnings(found)
    if dry_run:
        sys.stdout.write(result.block)
        return int(ExitCode.OK)
    _install_text(result)
    return int(ExitCode.OK)


def _install_text(result: InstallResult) -> None:
    out = sys.stdout
    verb = "installed" if result.changed else "already installed (unchanged)"
    out.write(f"{verb}: {len(result.entries)} pipeline(s) in {result.target}\n")
    for entry in result.entries:
        guard = " [guarded]" if entry.guarded else ""
        out.write(f"  {entry.name}: {entry.fields}{guard}  log: {entry.log_file}\n")


@schedule_app.command("uninstall")
def uninstall_command(
    file: str = _file_option(),
    cron_d: str = _cron_d_option(),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the crontab as it would be; change nothing."),
) -> int:
    """Remove the flowctl block; every other line stays.

    Example: flowctl schedule uninstall --cron-d /etc/cron.d/flowctl
    """
    from flowctl.schedule.service import uninstall_schedules

    result = uninstall_schedules(file=file, cron_d=cron_d, dry_run=dry_run)
    if dry_run:
        sys.stdout.write(result.text)
    elif result.changed:
        sys.stdout.write(f"removed the flowctl block ({len(result.entries)} pipeline(s)) from {result.target}\n")
    else:
        sys.stdout.write(f"no flowctl block in {result.target}\n")
    return int(ExitCode.OK)


@schedule_app.command("next")
def next_command(
    pipeline: str = typer.Argument(..., help="The pipeline file."),
    count: int = typer.Option(5, "--count", "-n", min=1, max=MAX_FIRE_TIMES, help="How many fire times."),
    after: str = typer.Option(None, "--after", metavar="ISO-TIME", help="Start here instead of now (e.g. 2026-03-07T00:00Z)."),
    fmt: str = typer.Option("text", "--format", "-f", help="text or json."),
    as_json: bool = json_option(),
) -> int:
    """Print the next fire times of a pipeline's schedule, in its time zone.

    Example: flowctl schedule next pipelines/etl.yaml --count 10
    """
    from flowctl.schedule.service import upcoming
    from flowctl.schedule.words import describe

    chosen = pick_format(fmt, as_json, FORMATS)
    start = _parse_after(after) if after else _now()
    schedule, times = upcoming(pipeline, count=count, after=start)
    if chosen == "json":
        data = {
            "pipeline": pipeline,
            "schedule": schedule.cron.text,
            "timezone": schedule.tz_name,
            "description": describe(schedule.cron),
            "next": [_iso(t) for t in times],
        }
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return int(ExitCode.OK)
    sys.stdout.write(f"{schedule.cron.text}: {describe(schedule.cron)} ({schedule.tz_name})\n")
    for moment in times:
        sys.stdout.write(f"{moment.isoformat()}  {_when(moment)}\n")
    return int(ExitCode.OK)


def _parse_after(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)  # Python 3.11 reads a trailing Z
    except ValueError:
        raise UsageError(
            f"--after {text!r} is not an ISO 8601 time", hint="e.g. 2026-03-07T00:00:00+00:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # a bare time is the machine's local time
    return moment

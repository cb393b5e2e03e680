"""What ``flowctl schedule install`` puts on each crontab line, and installing/removing the block.

cron starts jobs with a minimal environment (``PATH=/usr/bin:/bin``, ``$HOME`` as the working
directory, no terminal), so each line says everything explicitly::

    cd /abs/folder && PATH='…' /abs/bin/flowctl run /abs/pipeline.yaml --state-dir /abs/.flowctl \\
        --no-progress --scheduled [--ref REF] [--metrics-file F] >> /abs/.flowctl/cron/NAME.log 2>&1

``--scheduled`` makes the run find its fire time (recorded for lateness) and skip, exiting 0,
when the current minute is not one (the guard of ``schedule/guard.py``). The overlap lock is
``flowctl run``'s default: a run that finds the previous one still going exits 75. Reading and
writing the crontab is ``schedule/crontab.py``'s job.
"""

from __future__ import annotations

import os
import shlex
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo

from flowctl.errors import Findings, UsageError
from flowctl.repo.releases import LATEST_RELEASE
from flowctl.schedule.crontab import (
    Entry,
    Target,
    read_entries,
    remove_block,
    render_block,
    replace_block,
)
from flowctl.schedule.fire import UTC, make_schedule
from flowctl.schedule.guard import machine_fields
from flowctl.spec.model import Pipeline

_FALLBACK_PATH = "/usr/local/bin:/usr/bin:/bin"



@dataclass(frozen=True, slots=True)
class InstallOptions:
    """How the lines are written; every path is made absolute before use."""

    state_dir: str | None = None  # None: each pipeline's, as a manual `flowctl run` finds it
    ref: str | None = None  # a git ref, or "latest-release" (resolved by each run)
    metrics_file: str | None = None  # may hold {name}; required when several pipelines share it
    user: str | None = None  # the user column (cron.d files)
    path: str | None = None  # PATH for the runs; default: the installing shell's absolute entries
    flowctl: tuple[str, ...] = ()  # how to start flowctl; default: this very executable
    extra_env: Mapping[str, str] | None = None  # e.g. PYTHONPATH for a checkout run with -m


@dataclass(frozen=True, slots=True)
class InstallResult:
    target: str
    entries: tuple[Entry, ...]
    block: str
    text: str  # the whole crontab after the change
    changed: bool
    warnings: tuple[Findings, ...] = ()  # per pipeline: e.g. an unset ${{ env.X }}


def flowctl_invocation() -> tuple[tuple[str, ...], dict[str, str]]:
    """The absolute command that starts this flowctl, and the env it needs (cron has none)."""
    argv0 = sys.argv[0] if sys.argv else ""
    if os.path.basename(argv0) == "flowctl" and os.path.isfile(argv0):
        return (os.path.abspath(argv0),), {}
    # Started as ``python -m flowctl``: keep the interpreter path as is (a venv's python is a
    # symlink whose location selects the venv), and point PYTHONPATH at a checkout if the
    # package is not installed in that interpreter.
    import flowctl

    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(flowctl.__file__)))
    installed = {os.path.abspath(sysconfig.get_paths()[k]) for k in ("purelib", "platlib")}
    env = {} if package_parent in installed else {"PYTHONPATH": package_parent}
    return (os.path.abspath(sys.executable), "-m", "flowctl"), env


def default_state_dir(pipeline_path: str) -> str:
    """The state folder a plain ``flowctl run PIPELINE`` would use, made absolute."""
    from flowctl.state.views import state_dir_for

    return os.path.abspath(state_dir_for(None, pipeline_path))


def cron_escape(command: str) -> str:
    """Escape ``%`` (cron turns a bare one into a newline) and refuse newlines."""
    if "\n" in command or "\r" in command:
        raise UsageError("a scheduled command cannot contain a newline (check the paths given)")
    return command.replace("%", "\\%")


def check_ref(pipeline: Pipeline, ref: str) -> None:
    """Refuse a ``--ref`` the pipeline's repository cannot resolve now (a typo would otherwise
    fail at every firing). ``latest-release`` is checked with the lookup each run makes.

    Raises UsageError.
    """
    from flowctl.errors import GitError
    from flowctl.repo.releases import latest_release_tag
    from flowctl.repo.repository import Repository

    folder = os.path.dirname(os.path.abspath(pipeline.path))
    try:
        repo = Repository(folder)
    except GitError:
        raise UsageError(
            f"--ref {ref}: {pipeline.path} is not in a git repository",
            hint="schedules can be pinned to releases only in a git repository",
        ) from None
    try:
        with repo:
            if ref == LATEST_RELEASE:
                latest_release_tag(repo, pipeline.name, pipeline.path)
            else:
                repo.resolve(ref)
    except GitError as exc:
        if ref == LATEST_RELEASE:
            raise UsageError(exc.message, hint=exc.hint) from None
        raise UsageError(
            f"--ref {ref}: no such tag, branch or commit in the repository of {pipeline.path}",
            hint="`git tag --list` shows the releases",
        ) from None


def _run_path(options: InstallOptions) -> str:
    if options.path:
        return options.path
    entries = [p for p in os.environ.get("PATH", "").split(os.pathsep) if os.path.isabs(p)]
    return os.pathsep.join(dict.fromkeys(entries)) or _FALLBACK_PATH


def build_entry(
    pipeline: Pipeline,
    options: InstallOptions,
    *,
    now: datetime,
    machine_tz: tzinfo,
    previous: Entry | None = None,
) -> Entry:
    """The crontab entry for one scheduled pipeline. Raises UsageError if it has no schedule."""
    if not pipeline.schedule:
        raise UsageError(
            f"{pipeline.path}: pipeline {pipeline.name!r} has no schedule",
            hint="add e.g. `schedule: \"0 2 * * *\"` to the pipeline, or leave it out of install",
        )
    schedule = make_schedule(pipeline.schedule, pipeline.timezone)
    fields = machine_fields(schedule, machine_tz, now)
    path = os.path.abspath(pipeline.path)
    state_dir = os.path.abspath(options.state_dir) if options.state_dir else default_state_dir(path)
    log_file = os.path.join(state_dir, "cron", f"{pipeline.name}.log")
    start_env: dict[str, str] = {}
    if options.flowctl:
        start = options.flowctl
    else:
        start, start_env = flowctl_invocation()
    env = {**start_env, **(options.extra_env or {}), "PATH": _run_path(options)}
    argv = [*start, "run", path, "--state-dir", state_dir, "--no-progress", "--scheduled"]
    if options.ref:
        argv += ["--ref", options.ref]
    if options.metrics_file:
        metrics = options.metrics_file.replace("{name}", pipeline.name)
        argv += ["--metrics-file", os.path.abspath(metrics)]
    assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(env.items()))
    folder = pipeline.base_dir if os.path.isabs(pipeline.base_dir) else os.path.dirname(path)
    command = (
        f"cd {shlex.quote(folder)} && {assignments} {shlex.join(argv)}"
        f" >> {shlex.quote(log_file)} 2>&1"
    )
    entry = Entry(
        pipeline=path,
        name=pipeline.name,
        schedule=schedule.cron.text,
        timezone=pipeline.timezone,
        installed_at=now.astimezone(UTC).replace(microsecond=0),
        fields=fields.fields,
        command=cron_escape(command),
        user=options.user,
        ref=options.ref,
        guarded=fields.guarded,
        log_file=log_file,
        state_dir=state_dir,
    )
    # Re-installing an unchanged line keeps its install time: the block stays byte-identical
    # and missed-run detection keeps its history.
    if previous is not None and _same_line(previous, entry):
        entry = replace(entry, installed_at=previous.installed_at)
    return entry


def _same_line(previous: Entry, entry: Entry) -> bool:
    return (
        previous.schedule == entry.schedule
        and previous.timezone == entry.timezone
        and previous.line() == entry.line()
    )


def install(
    target: Target,
    pipelines: Sequence[Pipeline],
    options: InstallOptions,
    *,
    now: datetime,
    machine_tz: tzinfo,
    dry_run: bool = False,
) -> InstallResult:
    """Replace the flowctl block of ``target`` with one line per scheduled pipeline.

    Lines outside the block are kept as they are. Raises UsageError (no scheduled pipeline, a
    shared metrics file, a bad schedule) and CrontabError (crontab missing or refusing).
    """
    scheduled = [p for p in pipelines if p.schedule]
    if not scheduled:
        raise UsageError(
            "none of the pipelines given has a schedule",
            hint="add `schedule:` (e.g. \"0 2 * * *\") to a pipeline first",
        )
    if options.metrics_file and len(scheduled) > 1 and "{name}" not in options.metrics_file:
        raise UsageError(
            "several pipelines would write the same --metrics-file",
            hint="put {name} in the path, e.g. --metrics-file /var/lib/node_exporter/{name}.prom",
        )
    if options.ref:
        for pipeline in scheduled:
            check_ref(pipeline, options.ref)
    if target.user_column and not options.user:
        options = _with_user(options)
    text = target.read()
    previous = {e.pipeline: e for e in read_entries(text, target.description)}
    entries = tuple(
        build_entry(
            p, options, now=now, machine_tz=machine_tz, previous=previous.get(os.path.abspath(p.path))
        )
        for p in scheduled
    )
    names = [e.pipeline for e in entries]
    if len(set(names)) != len(names):
        raise UsageError("the same pipeline was given twice")
    block = render_block(entries)
    new_text = replace_block(text, block, target.description)
    changed = new_text != text
    if changed and not dry_run:
        for entry in entries:
            _make_log_folder(entry)
        target.write(new_text)
    return InstallResult(target.description, entries, block, new_text, changed)


def _with_user(options: InstallOptions) -> InstallOptions:
    import pwd

    return replace(options, user=pwd.getpwuid(os.geteuid()).pw_name)


def _make_log_folder(entry: Entry) -> None:
    # cron's shell cannot append to a log in a folder that does not exist.
    if entry.log_file:
        os.makedirs(os.path.dirname(entry.log_file), exist_ok=True)


def uninstall(target: Target, *, dry_run: bool = False) -> InstallResult:
    """Remove the flowctl block from ``target``; other lines stay. Raises CrontabError."""
    text = target.read()
    entries = read_entries(text, target.description)
    new_text = remove_block(text, target.description)
    changed = new_text != text
    if changed and not dry_run:
        target.write(new_text)
    return InstallResult(target.description, entries, "", new_text, changed)


def installed_entries(target: Target) -> tuple[Entry, ...]:
    """The entries installed in ``target``'s block."""
    return read_entries(target.read(), target.description)


__all__ = [
    "LATEST_RELEASE",
    "InstallOptions",
    "InstallResult",
    "build_entry",
    "check_ref",
    "cron_escape",
    "default_state_dir",
    "flowctl_invocation",
    "install",
    "installed_entries",
    "uninstall",
]

"""``flowctl dlq``: the dead-letter queue of foreach steps (issue 15): list, show, drop, replay.

Each command reads one run (``--run``, default the latest; ``--pipeline`` narrows "latest");
the queue lives in the state database (``state/deadletter.py``). ``replay`` is a ``flowctl
run`` that goes on in that run itself (``RunRequest.replay``: same id, lock, store in place).
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer

from flowctl.cli._app import app
from flowctl.cli._common import json_option, metrics_file_option, pick_format, pushgateway_option
from flowctl.cli._history import format_option, pipeline_option, state_dir_option
from flowctl.cli._wait import OptionalWaitCommand, wait_option
from flowctl.limits import MAX_REPLAYS

if TYPE_CHECKING:
    from flowctl.state.items import ItemRecord
    from flowctl.state.run_records import RunDetail

dlq_app = typer.Typer(
    name="dlq",
    help="The dead-letter queue of foreach steps: items that failed their last attempt.\n\n"
    "Example: flowctl dlq list --run latest",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(dlq_app, name="dlq")

_RUN_HELP = "The run (an id, a unique prefix, latest or latest~N; default: latest)."


@dataclass(frozen=True, slots=True)
class _Where:
    """Which queue a ``dlq`` command reads: ``--run``, ``--step``, ``--pipeline``, ``--state-dir``."""

    run: str
    step: str | None
    pipeline: str | None
    state_dir: str | None


# The options every dlq command takes, declared once: ``_queue_options`` adds them to a
# command's signature (typer reads ``__signature__``) and hands the command one ``_Where``.
def _run_option() -> Any:
    return typer.Option("latest", "--run", metavar="ID", help=_RUN_HELP)


def _step_option() -> Any:
    return typer.Option(None, "--step", metavar="STEP", help="Only this foreach step.")


_WHERE: tuple[tuple[str, object, Callable[[], Any]], ...] = (
    ("run", str, _run_option),
    ("step", str | None, _step_option),
    ("pipeline", str | None, pipeline_option),
    ("state_dir", str | None, state_dir_option),
)


def _queue_options(command: Callable[..., int]) -> Callable[..., int]:
    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != "where"]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option(), annotation=kind)
             for name, kind, option in _WHERE]

    @functools.wraps(command)
    def wrapper(**given: Any) -> int:
        where = _Where(*(given.pop(name) for name, _, _ in _WHERE))
        return command(where=where, **given)

    wrapper.__signature__ = signature.replace(parameters=[*own, *added])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in (*own, *added)}
    return wrapper


def _resolve(where: _Where) -> tuple[str, RunDetail]:
    """The state folder and the run; a ``--step`` the run does not have is a usage error."""
    from flowctl.errors import UsageError
    from flowctl.spec.schema import suggest
    from flowctl.state.views import run_details, state_dir_for

    root = str(state_dir_for(where.state_dir, where.pipeline))
    detail = run_details(root, where.run, where.pipeline, command=("dlq", "list", "--run", where.run))
    steps = [s.step for s in detail.steps]
    if where.step is not None and where.step not in steps:
        close = suggest(where.step, steps)
        raise UsageError(f"run {detail.run.run_id} has no step {where.step!r}",
                         hint=f"did you mean {close!r}?" if close else f"its steps: {', '.join(steps)}")
    return root, detail


@dlq_app.command("list")
@_queue_options
def list_(where: _Where, fmt: str = format_option(), as_json: bool = json_option()) -> int:
    """List the dead-lettered items of a run: key, step, attempts, last exit code, last failure.

    Example: flowctl dlq list

    Example: flowctl dlq list --run 20261125T020000-3fa1 --step resize --json
    """
    from flowctl.cli._history import emit_json, stamp, table
    from flowctl.state.deadletter import dead_letters

    chosen = pick_format(fmt, as_json, ("text", "json"))
    root, detail = _resolve(where)
    run_id = detail.run.run_id
    found = dead_letters(root, run_id, where.step)
    if chosen == "json":
        emit_json({"run_id": run_id, "items": found})
        return 0
    if not found:
        print(f"the dead-letter queue of run {run_id} is empty")
        return 0
    table(["KEY", "STEP", "STATUS", "ATTEMPTS", "EXIT", "LAST FAILURE", "REPLAYS"],
          [[r.key, r.step, r.status, str(r.attempts), "-" if r.exit_code is None else str(r.exit_code),
            stamp(r.last_failure) if r.last_failure else "-", str(r.replays)] for r in found])
    print(f"{len(found)} item(s) in the dead-letter queue of run {run_id}; details: flowctl dlq show KEY --run {run_id}")
    return 0


_KEY_HELP = "The item's key (as `dlq list` shows it; a string item's without its JSON quotes too)."


@dlq_app.command("show")
@_queue_options
def show(where: _Where, key: str = typer.Argument(..., help=_KEY_HELP), fmt: str = format_option(),
         as_json: bool = json_option()) -> int:
    """Show one dead-lettered item: its value, attempts, exit code, failures and log tail.

    Example: flowctl dlq show in/b.png
    """
    from flowctl.cli._history import emit_json
    from flowctl.state.deadletter import dead_letter

    chosen = pick_format(fmt, as_json, ("text", "json"))
    root, detail = _resolve(where)
    run_id = detail.run.run_id
    record = dead_letter(root, run_id, key, where.step)
    if chosen == "json":
        emit_json(record)
        return 0
    for line in _lines(record):
        print(line)
    return 0


def _lines(r: ItemRecord) -> list[str]:
    import json
    import shlex

    from flowctl.cli._history import stamp

    lines = [
        f"Item {r.key} of step {r.step}, run {r.run_id}: {r.status}",
        f"  item: {_clip(json.dumps(r.item, ensure_ascii=False))}",
        f"  attempts: {r.attempts}, last exit code: {'-' if r.exit_code is None else r.exit_code}, replays: {r.replays}",
        f"  first failure: {stamp(r.first_failure) if r.first_failure else '-'}, "
        f"last failure: {stamp(r.last_failure) if r.last_failure else '-'}",
    ]
    if r.injected:  # issue 17: a failure chaos made is no bug of the item's
        from flowctl.run.chaos import injected_only

        faults = ", ".join(f"attempt {n}: {fault}" for n, fault in r.injected)
        cause = ("every failed attempt was injected; replayed without --chaos it should succeed"
                 if injected_only(r.attempts, r.injected) else "other failures were real")
        lines.append(f"  injected by --chaos: {faults} ({cause})")
    if r.error:
        lines.append(f"  error: {r.error}")
    if r.tail:
        lines.append("  log tail:")
        lines += [f"    {line}" for line in r.tail]
    lines.append(f"  log: flowctl logs {r.run_id} {r.step} --item {shlex.quote(r.key)}")
    return lines


_ITEM_SHOWN = 2000  # characters of an item's value in text output; --json has it whole


def _clip(text: str) -> str:
    if len(text) <= _ITEM_SHOWN:
        return text
    return f"{text[:_ITEM_SHOWN]}… ({len(text.encode()) / 1024:.0f} KiB in all; --json shows it whole)"


@dlq_app.command("drop")
@_queue_options
def drop(
    where: _Where,
    key: str = typer.Argument(..., help=_KEY_HELP),
    reason: str = typer.Option(..., "--reason", metavar="TEXT", help="Why it is dropped (kept for audit)."),
) -> int:
    """Take an item out of the dead-letter queue for good; its record stays (status dropped).

    Example: flowctl dlq drop in/b.png --reason "corrupt upload, re-requested"
    """
    from flowctl.errors import UsageError
    from flowctl.state.deadletter import dead_letter
    from flowctl.state.deadletter import drop as drop_item

    if not reason.strip():
        raise UsageError("--reason must say why the item is dropped", hint='e.g. --reason "corrupt input"')
    root, detail = _resolve(where)
    run_id = detail.run.run_id
    record = dead_letter(root, run_id, key, where.step)
    drop_item(root, record, reason.strip())
    print(f"dropped {record.key} of step {record.step} from the dead-letter queue of run {run_id}")
    return 0


@dlq_app.command("replay", cls=OptionalWaitCommand)
@_queue_options
def replay(
    where: _Where,
    key: list[str] = typer.Option([], "--key", "-k", metavar="KEY", help="An item to replay (repeat it for more)."),
    all_: bool = typer.Option(False, "--all", help="Replay every item in the queue of the step."),
    max_replays: int = typer.Option(3, "--max-replays", min=1, max=MAX_REPLAYS, help="Refuse (and mark poisoned) an item replayed this often."),
    force: bool = typer.Option(False, "--force", help="Replay poisoned items too."),
    wait: str | None = wait_option(),
    metrics_file: str | None = metrics_file_option(),
    pushgateway: str | None = pushgateway_option(),
) -> int:
    """Run dead-lettered items again with the step's current definition, in the same run;
    items that succeeded are untouched, what needs the step continues as --resume would.

    The replay goes on in the run itself (same run id; it holds the pipeline's lock as a run
    does): every other item keeps its record, and the run's status becomes the new outcome
    (failed -> succeeded when all is well). An item replayed --max-replays times becomes
    poisoned and is refused without --force (the others are replayed). Exit 1 when an item
    was refused or failed again (it is back in the queue). A replay stopped or killed leaves
    the items it had not finished in the queue: replay again. --metrics-file/--pushgateway
    write the run's metrics as `run` does (flowctl_dead_letter_items goes back to 0).

    Example: flowctl dlq replay --all --wait 10m

    Example: flowctl dlq replay --run latest --step resize --key in/b.png --max-replays 5
    """
    from flowctl.cli._run_build import RunRequest
    from flowctl.cli.run import run_pipeline
    from flowctl.errors import UsageError
    from flowctl.state.deadletter import QUEUED, dead_letters, poison

    if bool(key) == all_:
        raise UsageError("say which items: --key KEY (repeatable) or --all", hint="e.g. flowctl dlq replay --all")
    from flowctl.state.items import match_key

    root, detail = _resolve(where)
    run_id = detail.run.run_id
    queue = dead_letters(root, run_id, where.step)
    steps = sorted({r.step for r in queue})
    if not queue:
        print(f"the dead-letter queue of run {run_id} is empty: nothing to replay")
        if detail.run.status != "succeeded":  # it failed elsewhere (a producer, a step): resume it
            import shlex

            print(f"run {run_id} {detail.run.status}; to run what did not finish: "
                  f"flowctl run {shlex.quote(detail.run.pipeline_path)} --run-id {run_id}")
        return 0
    if len(steps) > 1:
        raise UsageError(f"run {run_id} has dead-lettered items in steps {', '.join(steps)}", hint="say which with --step")
    keys = [match_key(k, [r.key for r in queue]) or k for k in key]
    chosen = queue if all_ else [r for r in queue if r.key in set(keys)]
    missing = sorted(set(keys) - {r.key for r in chosen})
    if missing:
        raise UsageError(f"not in the dead-letter queue of run {run_id}: {', '.join(missing)}",
                         hint="`flowctl dlq list` shows its keys")
    # a poisoned item is refused while its replays reach the limit (a higher --max-replays
    # lets it through); the others still go (trial 15: one poison item held back the queue)
    spent = [] if force else [r for r in chosen if r.replays >= max_replays]
    if spent:
        poison(root, spent, max_replays)
        for r in spent:
            print(f"poisoned: {r.key} was replayed {r.replays} time(s), --max-replays is {max_replays}: refused; "
                  "--force replays it anyway, `flowctl dlq drop` takes it out", file=sys.stderr)
    sent = [r for r in chosen if r not in spent]
    if not sent:
        return 1
    try:
        code = run_pipeline(RunRequest(
            pipeline=detail.run.pipeline_path, state_dir=where.state_dir, resume=True, run_id=run_id,
            force_steps=(steps[0],), replay=(steps[0], tuple(r.key for r in sent)),
            wait=wait, metrics_file=metrics_file, pushgateway=pushgateway,
        ))
    except UsageError as exc:  # the replay forces the step: never name an option the user did not type
        if not exc.message.startswith(f"--force-step {steps[0]}:"):
            raise
        raise UsageError(f"step {steps[0]!r}, whose items are in the queue of run {run_id}, is no longer a step of "
                         f"{detail.run.pipeline_path}", hint=exc.hint) from exc
    if code not in (0, 1):  # it did not run (the lock, a bad pipeline) or was stopped
        return code
    # the run may succeed within its tolerance while the items replayed failed again: say so
    sent_keys = {r.key for r in sent}
    back = sorted(r.key for r in dead_letters(root, run_id, steps[0]) if r.key in sent_keys and r.status in QUEUED)
    if back:
        print(f"{len(back)} of {len(sent)} replayed item(s) failed again and are back in the dead-letter queue: "
              f"{', '.join(back)} (flowctl dlq show KEY --run {run_id})", file=sys.stderr)
    return 1 if code or back or spent else 0

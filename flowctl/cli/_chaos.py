"""Which chaos a ``flowctl run`` injects (issue 17): ``--chaos``, ``FLOWCTL_CHAOS``, the pipeline's
``chaos:`` block, or the run a ``--resume`` continues.

The flag wins; then ``FLOWCTL_CHAOS`` (a spec, or ``1`` for the pipeline's block); a pipeline's
``chaos:`` block is active only when one of them asks for it (``--chaos`` with no value), so a
committed block never reaches cron runs. A ``--resume`` with neither keeps the settings of the
run it continues. The faults that run (and the runs it resumed) spent are carried over, and the
runner's self-kill is the test-only failpoint's ``kill`` (``state/failpoint.py``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flowctl.benchmark.soak import Launcher
    from flowctl.run.chaos import ChaosRun
    from flowctl.run.prepare import PreparedRun
    from flowctl.spec.chaos import ChaosSettings
    from flowctl.state.run_records import RunRecord


def chaos_text(option: str | None, block: str | None, environ: Mapping[str, str], resumed: str = "") -> tuple[str, str]:
    """The chaos spec this run uses ("" for none) and where it came from, as errors name it
    (``--chaos``, ``FLOWCTL_CHAOS``, the pipeline's block, the resumed run). Raises
    ``UsageError`` when the pipeline's block is asked for and there is none."""
    from flowctl.cli._wait import FROM_PIPELINE
    from flowctl.errors import UsageError
    from flowctl.spec.chaos import ENV_VAR
    from flowctl.spec.chaos import FROM_PIPELINE as ENV_BLOCK

    if option is not None:
        asked, text, source = option == FROM_PIPELINE, option, "--chaos without a value"
    elif environ.get(ENV_VAR, "").strip():
        text = environ[ENV_VAR].strip()
        asked, source = text == ENV_BLOCK, f"{ENV_VAR}={ENV_BLOCK}"
    else:
        return resumed, "the chaos of the run it resumes"
    if not asked:
        return text, ("--chaos" if option is not None else ENV_VAR)
    if not block:
        raise UsageError(f"{source} injects the pipeline's `chaos:` block, and the pipeline has none",
                         hint="add `chaos: \"fail=0.1,seed=1\"` to the pipeline, or give the spec: --chaos fail=0.1,seed=1")
    return block, "the pipeline's chaos: block"


def parse_option(text: str, option: str = "--chaos") -> ChaosSettings:
    """Settings from a chaos spec given as ``option`` (``--chaos``, ``FLOWCTL_CHAOS``, ...).
    Raises ``UsageError`` (exit 2) naming it."""
    from flowctl.errors import UsageError
    from flowctl.spec.chaos import ChaosError, parse_chaos

    try:
        return parse_chaos(text)
    except ChaosError as exc:
        raise UsageError(f"{option}: {exc.message}", hint=exc.hint) from None


def chaos_for(
    option: str | None, prepared: PreparedRun, resumed: RunRecord | None, executor: str, state_dir: str,
    environ: Mapping[str, str] | None = None, shown: str = "PIPELINE",
) -> ChaosRun | None:
    """The chaos of this run, checked against its steps; None without chaos (``shown``: the
    pipeline as the hints name it). Raises ``UsageError``."""
    text, source = chaos_text(option, prepared.pipeline.chaos, os.environ if environ is None else environ,
                              resumed.chaos if resumed is not None else "")
    if not text:
        return None
    from flowctl.run.chaos import ChaosRun, check_chaos
    from flowctl.state.views import chaos_spent

    settings = parse_option(text, source)  # a bad FLOWCTL_CHAOS is named as such (trial of main)
    steps = prepared.pipeline.steps
    check_chaos(settings, {sid: steps[sid] for sid in prepared.plan.selected}, executor, source)
    spent = chaos_spent(state_dir, resumed.run_id) if resumed is not None else ()
    return ChaosRun(settings, spent=spent, kill_runner=lambda: _kill_runner(shown))


def _kill_runner(shown: str) -> None:
    """Say why the run stops and how to go on (the run's lines are out: the scheduler showed
    them), then die as ``kill -9`` would: a cron log otherwise ended with nothing (trial 17)."""
    import sys

    from flowctl.state.failpoint import kill_self

    try:
        sys.stdout.flush()
        if os.isatty(1):  # the live view hid the cursor and cannot show it again once killed
            os.write(1, b"\x1b[?25h\n")
        sys.stderr.write("flowctl: chaos kill-runner: the runner kills itself now, as `kill -9` would (exit 137); "
                         f"continue with: flowctl run {shown} --resume\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed or full stream must not save the runner
        pass
    kill_self()


__all__ = ["chaos_for", "chaos_text", "parse_option"]


def soak_launcher() -> Launcher:
    """How ``chaos soak`` runs ``flowctl run`` in its forked children: this CLI, imported once."""
    from flowctl.benchmark.soak import Launcher

    return Launcher(preload=_preload_run, main=_main)


def _preload_run(pipeline: str) -> None:
    """Import what ``flowctl run`` imports, before the first fork: its modules, and what
    preparing ``pipeline`` loads (the schema validator, the graph); nothing is run or written."""
    import importlib

    from flowctl.cli.app import register
    from flowctl.run.prepare import prepare_run

    register(["run"])
    for name in ("flowctl.cli._executor", "flowctl.cli._run_state", "flowctl.cli._chaos", "flowctl.cli._history",
                 "flowctl.cli._ref", "flowctl.run.scheduler", "flowctl.run.executors.local", "flowctl.state.session",
                 "flowctl.state.store", "flowctl.state.leftovers", "flowctl.observe.observer", "flowctl.observe.plain",
                 "flowctl.observe.summary", "flowctl.observe.fanout", "flowctl.observe.report"):
        importlib.import_module(name)
    prepare_run(pipeline)


def _main(argv: Sequence[str]) -> int:
    from flowctl.cli._app import app
    from flowctl.cli._boundary import run_app

    return run_app(app, list(argv))

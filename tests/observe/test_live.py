"""The live view tells the truth about retries and failures (issue 13), fed real event values.

The printed lines are read from a console that is not a terminal (rich then draws no live area,
so what is left is exactly what was printed above it); the live area itself from ``render``.
A real terminal is in tests/cli/test_live_tty.py.
"""

from __future__ import annotations

import calendar
import io

from rich.console import Console

from flowctl.observe.live import TAIL_SHOWN, LiveView
from flowctl.run.events import (
    AttemptFinished,
    AttemptKind,
    AttemptOutcome,
    AttemptStarted,
    RetryScheduled,
    RunFinished,
    RunId,
    RunStarted,
    RunStatus,
    StepFinished,
    StepReady,
    StepStatus,
)

RID = RunId("20261125T020000-3fa1")
T = float(calendar.timegm((2026, 11, 25, 2, 0, 1)))
TAIL = tuple(f"line {i}" for i in range(1, 9))


def _view(**kwargs: object) -> tuple[LiveView, io.StringIO]:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=False, width=160, no_color=True)
    return LiveView(console, **kwargs), buf  # type: ignore[arg-type]


def _failed(step: str, attempt: int, kind: AttemptKind = AttemptKind.ATTEMPT) -> AttemptFinished:
    return AttemptFinished(RID, step, attempt, T + attempt, AttemptOutcome.FAILED, exit_code=3, duration=0.1,
                           kind=kind, log_path=f"/s/{step}/{attempt}.log", tail=TAIL)


def test_retried_attempts_are_one_line_each_and_only_the_final_failure_is_a_block() -> None:
    view, buf = _view()
    view(RunStarted(RID, "etl", T, ("extract",), concurrency=2))
    for n in range(1, 5):
        view(AttemptStarted(RID, "extract", n, T + n, max_attempts=4))
        view(_failed("extract", n))
        if n < 4:
            view(RetryScheduled(RID, "extract", n + 1, 3.25, T + n))
    view(StepFinished(RID, "extract", StepStatus.FAILED, T + 5, attempts=4, reason="exit 3", exit_code=3))
    view(RunFinished(RID, T + 5, RunStatus.FAILED, root_failure="extract"))
    lines = buf.getvalue().splitlines()
    marks = [line for line in lines if line.startswith("✗")]
    assert marks == [
        "✗ extract attempt 1: exit 3 · attempt 2/4 in 3.2s  (log: /s/extract/1.log)",
        "✗ extract attempt 2: exit 3 · attempt 3/4 in 3.2s  (log: /s/extract/2.log)",
        "✗ extract attempt 3: exit 3 · attempt 4/4 in 3.2s  (log: /s/extract/3.log)",
        "✗ extract attempt 4: exit 3  (log: /s/extract/4.log)",
    ]
    tail = lines[lines.index(marks[-1]) + 1:]
    assert tail == [f"    {t}" for t in TAIL[-TAIL_SHOWN:]]  # the block: once, with the end of the log


def test_remediation_steps_are_one_line_and_a_continue_on_error_failure_says_so() -> None:
    view, buf = _view()
    view(RunStarted(RID, "etl", T, ("fix",), concurrency=1))
    view(AttemptStarted(RID, "fix", 1, T))
    view(_failed("fix", 1))
    view(StepReady(RID, "fix", T + 1))  # the remediation comes next
    view(AttemptStarted(RID, "fix", 2, T + 1, kind=AttemptKind.REMEDIATE))
    view(_failed("fix", 2, AttemptKind.REMEDIATE))
    view(StepReady(RID, "fix", T + 2))  # the final attempt comes next
    view(AttemptStarted(RID, "fix", 3, T + 2, kind=AttemptKind.FINAL))
    view(_failed("fix", 3, AttemptKind.FINAL))
    view(StepFinished(RID, "fix", StepStatus.FAILED_ALLOWED, T + 3, attempts=3, reason="exit 3"))
    view(RunFinished(RID, T + 3, RunStatus.SUCCEEDED))
    marks = [line for line in buf.getvalue().splitlines() if line.startswith("✗")]
    assert marks == [
        "✗ fix attempt 1: exit 3 · remediating  (log: /s/fix/1.log)",
        "✗ remediation of fix attempt 2: exit 3 · final attempt next  (log: /s/fix/2.log)",
        "✗ fix attempt 3: exit 3 (continue_on_error)  (log: /s/fix/3.log)",
    ]
    assert buf.getvalue().count("line 8") == 1


def test_a_cancelled_attempt_prints_nothing() -> None:
    view, buf = _view()
    view(RunStarted(RID, "etl", T, ("a",)))
    view(AttemptStarted(RID, "a", 1, T))
    view(AttemptFinished(RID, "a", 1, T + 1, AttemptOutcome.CANCELLED))
    view(StepFinished(RID, "a", StepStatus.CANCELLED, T + 1, attempts=1, reason="interrupted"))
    view(RunFinished(RID, T + 1, RunStatus.INTERRUPTED))
    assert "✗" not in buf.getvalue()


def _area(view: LiveView) -> str:
    buf = io.StringIO()
    Console(file=buf, force_terminal=False, width=160, no_color=True).print(view.render())
    return buf.getvalue()


def test_the_live_area_shows_steps_waiting_to_retry_with_their_countdown() -> None:
    view, _ = _view()
    view(RunStarted(RID, "etl", T, ("extract", "load"), concurrency=2))
    view(AttemptStarted(RID, "extract", 1, T, max_attempts=4))
    view(AttemptStarted(RID, "load", 1, T, max_attempts=1))
    assert "2 running" in _area(view)
    view(_failed("extract", 1))
    view(RetryScheduled(RID, "extract", 2, 30.0, T + 1))
    area = _area(view)
    view.stop()
    # not "0 running" and nothing shown, as in issue 13
    assert "1 running · 1 waiting to retry" in area
    row = next(line for line in area.splitlines() if "↻ extract" in line)
    assert "attempt 2/4 in 29" in row or "attempt 2/4 in 30" in row
    assert "▸ load" in area


def test_the_eta_comes_from_earlier_runs_and_says_when_it_guesses() -> None:
    view, _ = _view(typical={"extract": 600.0, "load": 300.0}, needs={"load": ("extract",)})
    view(RunStarted(RID, "etl", T, ("extract", "load"), concurrency=4))
    view(AttemptStarted(RID, "extract", 1, T))
    area = _area(view)
    assert "ETA 14m5" in area or "ETA 15m0" in area  # 10 min + 5 min after it: a chain
    guess, _ = _view(typical={"extract": 600.0})
    guess(RunStarted(RID, "etl", T, ("extract", "load"), concurrency=4))
    guess(AttemptStarted(RID, "extract", 1, T))
    assert "ETA ~" in _area(guess)  # load never ran before
    view.stop()
    guess.stop()

"""The run's sinks: plain lines, the fan-out, the summary with its root failure, the live view."""

from __future__ import annotations

import calendar
import io
import re

from flowctl.observe.fanout import FanOut
from flowctl.observe.live import LiveView
from flowctl.observe.plain import PlainSink
from flowctl.observe.summary import MAX_ROWS, RunSummary, table_rows, write_summary
from flowctl.run.events import (
    AttemptFinished,
    AttemptOutcome,
    AttemptStarted,
    RetryScheduled,
    RunFinished,
    RunId,
    RunStarted,
    RunStatus,
    StepFinished,
    StepStatus,
)

RID = RunId("20261125T020000-3fa1")
T = float(calendar.timegm((2026, 11, 25, 2, 0, 1)))


def _failed_run() -> list:
    return [
        RunStarted(RID, "etl", T, ("extract", "load", "report"), concurrency=2),
        AttemptStarted(RID, "extract", 1, T, max_attempts=2, log_path="/s/extract/1.log"),
        AttemptStarted(RID, "report", 1, T),
        AttemptFinished(RID, "extract", 1, T + 1, AttemptOutcome.FAILED, exit_code=3, duration=1.0,
                        log_path="/s/extract/1.log", tail=("reading", "bad row 17")),
        RetryScheduled(RID, "extract", 2, 0.5, T + 1),
        AttemptStarted(RID, "extract", 2, T + 1.5, max_attempts=2, log_path="/s/extract/2.log"),
        AttemptFinished(RID, "extract", 2, T + 2, AttemptOutcome.FAILED, exit_code=3, duration=0.5,
                        log_path="/s/extract/2.log", tail=("bad row 17",)),
        StepFinished(RID, "extract", StepStatus.FAILED, T + 2, attempts=2, duration=2.0, reason="exit 3", exit_code=3),
        StepFinished(RID, "load", StepStatus.SKIPPED, T + 2, reason="upstream extract failed"),
        StepFinished(RID, "report", StepStatus.SUCCEEDED, T + 4.2, attempts=1, duration=4.2),
        RunFinished(RID, T + 4.2, RunStatus.FAILED, duration=4.2, counts={"failed": 1, "skipped": 1, "succeeded": 1},
                    root_failure="extract"),
    ]


def test_plain_lines_carry_timestamp_and_run_id():
    out = io.StringIO()
    sink = PlainSink(out)
    for ev in _failed_run():
        sink(ev)
    lines = out.getvalue().splitlines()
    assert lines[1] == "2026-11-25T02:00:01Z 20261125T020000-3fa1 START extract (attempt 1/2)"
    assert "2026-11-25T02:00:02Z 20261125T020000-3fa1 FAIL extract exit 3 (log: /s/extract/1.log)" in lines
    assert "2026-11-25T02:00:02Z 20261125T020000-3fa1 RETRY extract attempt 2/2 in 0.50s" in lines
    assert "2026-11-25T02:00:05Z 20261125T020000-3fa1 OK report 4.2s" in lines
    assert "2026-11-25T02:00:03Z 20261125T020000-3fa1 SKIP load (upstream extract failed)" in lines
    assert all(re.match(r"^\S+Z 20261125T020000-3fa1 [A-Z-]+ ", line) for line in lines)


def test_a_failing_sink_is_switched_off_and_the_others_go_on():
    seen = []

    def broken(event):
        raise RuntimeError("disk full")

    fan = FanOut([broken, seen.append])
    for ev in _failed_run():
        fan(ev)
    assert len(seen) == len(_failed_run())
    assert len(fan.errors) == 1 and str(fan.errors[0][1]) == "disk full"


class _CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


def test_plain_lines_are_flushed_once_per_batch_through_the_fan_out():
    out = _CountingStream()
    fan = FanOut([PlainSink(out)])
    for ev in _failed_run():
        fan(ev)
    assert out.flushes == 0 and out.getvalue().count("\n") == len(_failed_run())  # a line per event
    fan.flush()
    assert out.flushes == 1


def test_a_sink_whose_flush_fails_is_switched_off():
    class Stuck:
        def __init__(self) -> None:
            self.seen = 0

        def __call__(self, event) -> None:
            self.seen += 1

        def flush(self) -> None:
            raise OSError("pipe closed")

    stuck, seen = Stuck(), []
    fan = FanOut([stuck, seen.append])
    fan(_failed_run()[0])
    fan.flush()
    fan(_failed_run()[1])
    assert stuck.seen == 1 and len(seen) == 2
    assert len(fan.errors) == 1 and str(fan.errors[0][1]) == "pipe closed"


def test_summary_ends_with_the_root_failure():
    summary = RunSummary()
    for ev in _failed_run():
        summary(ev)
    out = io.StringIO()
    write_summary(summary, out, hint=["Logs: /s"])
    text = out.getvalue()
    table = text.index("extract  failed")
    root = text.index("Root failure: extract (exit 3, after 2 attempts)")
    skipped = text.index("Skipped because an upstream step failed: load")
    assert table < skipped < text.index("Logs: /s") < root < text.index("  | bad row 17")
    assert "1 succeeded, 1 failed, 1 skipped · wall time 4.2s" in text
    assert text.rstrip().endswith("  | bad row 17")


def test_big_runs_show_the_interesting_rows_only():
    steps = tuple(f"s{i}" for i in range(100))
    summary = RunSummary()
    summary(RunStarted(RID, "big", T, steps))
    for i, sid in enumerate(steps):
        status = StepStatus.FAILED if sid == "s50" else StepStatus.SUCCEEDED
        summary(StepFinished(RID, sid, status, T, attempts=1, duration=i / 100))
    rows, _, hidden = table_rows(summary)
    assert len(rows) <= MAX_ROWS and hidden == 100 - len(rows)
    shown = [r[0] for r in rows]
    assert "s50" in shown and "s99" in shown and "s1" not in shown


def test_live_view_draws_progress_and_prints_failures():
    from rich.console import Console

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=100, no_color=True)
    view = LiveView(console, refresh_per_second=50)
    for ev in _failed_run():
        view(ev)
    text = buf.getvalue()
    assert "Run 20261125T020000-3fa1 of etl" in text
    assert "✗ extract attempt 1: exit 3" in text and "bad row 17" in text
    assert "done" in text


def test_other_failures_get_their_tails_above_the_root_failure_which_comes_last():
    steps = ("root", *(f"other{i}" for i in range(1, 8)), "fine")
    tail = tuple(f"log line {i}" for i in range(1, 13))
    summary = RunSummary()
    summary(RunStarted(RID, "etl", T, steps))
    for n, sid in enumerate(steps[:-1]):  # root fails first, then the others
        summary(AttemptFinished(RID, sid, 1, T + n, AttemptOutcome.FAILED, exit_code=n + 1,
                                log_path=f"/s/{sid}/1.log", tail=tail))
        summary(StepFinished(RID, sid, StepStatus.FAILED, T + n, attempts=1, exit_code=n + 1))
    summary(StepFinished(RID, "fine", StepStatus.SUCCEEDED, T + 9, attempts=1, duration=1.0))
    summary(RunFinished(RID, T + 9, RunStatus.FAILED, duration=9.0, root_failure="root"))
    out = io.StringIO()
    write_summary(summary, out, hint=["Logs: /s"], details=["throughput     1.0 steps/min"])
    lines = out.getvalue().splitlines()
    order = [lines.index(x) for x in ("throughput     1.0 steps/min", "Logs: /s",
                                      "Also failed (2 more, see `flowctl show`): other6, other7")]
    assert order == sorted(order) and lines.index(next(x for x in lines if x.startswith("1 succeeded"))) < order[0]
    blocks = [i for i, x in enumerate(lines) if x.startswith(("Also failed: ", "Root failure: "))]
    assert [lines[i] for i in blocks] == [
        *(f"Also failed: other{i} (exit {i + 1}, after 1 attempt)" for i in range(1, 6)),
        "Root failure: root (exit 1, after 1 attempt)",
    ]
    assert lines[blocks[0] + 1] == "  log: /s/other1/1.log"
    assert lines[blocks[0] + 2:blocks[1]] == [f"  | log line {i}" for i in range(8, 13)]  # the last 5
    assert lines[blocks[-1] + 2:] == [f"  | {x}" for x in tail]  # the root's whole tail, last of all
def _dask_run() -> list:
    """Two attempts on Dask workers: one taken by a worker, one lost with its worker."""
    from flowctl.run.events import AttemptPlaced

    return [
        RunStarted(RID, "etl", T, ("extract", "load"), concurrency=4, provenance={"executor": "dask"}),
        AttemptStarted(RID, "extract", 1, T, max_attempts=2),
        AttemptStarted(RID, "load", 1, T),
        AttemptPlaced(RID, "extract", 1, "tcp://10.0.0.7:40117", T + 0.1),
        AttemptFinished(RID, "extract", 1, T + 1, AttemptOutcome.LOST, duration=0.9,
                        error="worker tcp://10.0.0.7:40117 died while running it", host="tcp://10.0.0.7:40117"),
    ]


def test_every_sink_names_the_worker_of_an_attempt_under_dask():
    from rich.console import Console

    out = io.StringIO()
    plain = PlainSink(out)
    summary = RunSummary()
    for ev in _dask_run():
        plain(ev)
        summary(ev)
    lines = out.getvalue().splitlines()
    assert lines[3].endswith("RUNNING extract on tcp://10.0.0.7:40117 (attempt 1)")
    assert lines[4].endswith("FAIL extract on tcp://10.0.0.7:40117 worker-lost: worker tcp://10.0.0.7:40117 "
                             "died while running it (no output)")
    assert table_rows(summary)[0][0][4] == "tcp://10.0.0.7:40117"  # the worker column

    buf = io.StringIO()
    view = LiveView(Console(file=buf, force_terminal=True, width=120, no_color=True), refresh_per_second=50)
    for ev in _dask_run()[:4]:  # extract runs on a worker, load still waits for one
        view(ev)
    console = Console(file=io.StringIO(), width=120, no_color=True)
    console.print(view.render())
    drawn = console.file.getvalue()  # type: ignore[attr-defined]
    view.stop()
    assert "attempt 1/2 on tcp://10.0.0.7:40117" in drawn
    assert "attempt 1/1, waiting for a worker" in drawn

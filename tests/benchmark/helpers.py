"""Benchmark samples built from hand-made run records, for the pure parts of ``flowctl bench``."""

from __future__ import annotations

from collections.abc import Sequence

from flowctl.benchmark.figures import RunSample
from flowctl.observe.metric_records import AttemptRecord, RunRecord, StepRecord
from flowctl.observe.metrics import compute_run_metrics, run_samples
from flowctl.run.events import AttemptOutcome, RunStatus, StepStatus


def sample(
    index: int,
    *,
    start: float = 1000.0,
    wall: float = 2.0,
    step_times: Sequence[tuple[float, float, float]] = ((0.5, 0.5, 1.0),),
    failed: Sequence[int] = (),
) -> RunSample:
    """An execution spawned at ``start`` and exiting ``wall`` seconds later whose run started
    0.4 s in; each step is (ready, started, finished) in seconds after the run's start, all
    independent; steps whose position is in ``failed`` failed."""
    run_start = start + 0.4
    steps = []
    for n, (ready, started, finished) in enumerate(step_times):
        ok = n not in failed
        attempt = AttemptRecord(1, run_start + started, run_start + finished, AttemptOutcome.OK if ok else AttemptOutcome.FAILED, 0 if ok else 1)
        steps.append(
            StepRecord(f"s{n}", StepStatus.SUCCEEDED if ok else StepStatus.FAILED, run_start + ready, run_start + finished, (attempt,))
        )
    end = run_start + max((f for _, _, f in step_times), default=0.0)
    record = RunRecord(
        f"run-{index}", "p", RunStatus.FAILED if failed else RunStatus.SUCCEEDED, run_start, end, tuple(steps),
        needs={s.step: () for s in steps},
    )
    return RunSample(
        index=index,
        exit_code=1 if failed else 0,
        started_at=start,
        finished_at=start + wall,
        wall_seconds=wall,
        metrics=compute_run_metrics(record),
        samples=run_samples(record),
    )

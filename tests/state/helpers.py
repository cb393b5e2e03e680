"""Event streams like the scheduler's, for feeding a store in unit tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from flowctl.run.events import (
    AttemptFinished,
    AttemptOutcome,
    AttemptStarted,
    Event,
    RetryScheduled,
    RunFinished,
    RunId,
    RunStarted,
    RunStatus,
    StepFinished,
    StepReady,
    StepStatus,
)


def run_events(
    run_id: str,
    steps: Sequence[str],
    *,
    pipeline: str = "etl",
    start: float = 1000.0,
    fail: Mapping[str, int] | None = None,
    fingerprints: Mapping[str, str] | None = None,
    outputs: Mapping[str, Mapping[str, str]] | None = None,
    finish: bool = True,
    stop_after: int | None = None,
    params: Mapping[str, object] | None = None,
) -> list[Event]:
    """A sequential run: each step gets ready at t, starts at t+0.5, ends at t+1.5.

    ``fail`` maps a step to how many attempts fail before one succeeds (a value above the
    attempts count, e.g. 99 with a single attempt, fails the step). ``stop_after`` ends the
    stream after that many steps have started, leaving the last one running."""
    rid = RunId(run_id)
    fail = fail or {}
    fps = fingerprints or {}
    events: list[Event] = [
        RunStarted(rid, pipeline, start, tuple(steps), params=params or {"day": "mon"},
                   selection={"only": []}, concurrency=2, pipeline_path=f"/p/{pipeline}.yaml")
    ]
    t = start
    counts: dict[str, int] = {}
    for index, step in enumerate(steps):
        events.append(StepReady(rid, step, t, queue_depth=1))
        failures = fail.get(step, 0)
        attempts = min(failures, 1) + 1 if failures and failures < 99 else 1
        status = StepStatus.SUCCEEDED
        for attempt in range(1, attempts + 1):
            events.append(AttemptStarted(rid, step, attempt, t + 0.5, max_attempts=2,
                                         fingerprint=fps.get(step, ""), log_path=f"/logs/{step}/{attempt}.log"))
            if stop_after is not None and index + 1 >= stop_after:
                return events
            ok = attempt > failures
            events.append(AttemptFinished(rid, step, attempt, t + 1.5,
                                          AttemptOutcome.OK if ok else AttemptOutcome.FAILED,
                                          exit_code=0 if ok else 3, duration=1.0,
                                          log_path=f"/logs/{step}/{attempt}.log"))
            if not ok and attempt < attempts:
                events.append(RetryScheduled(rid, step, attempt + 1, 0.25, t + 1.5))
                t += 2
            if not ok and attempt == attempts:
                status = StepStatus.FAILED
        events.append(StepFinished(rid, step, status, t + 1.5, attempts=attempts, duration=1.0,
                                   fingerprint=fps.get(step, ""), exit_code=0 if status.done_ok else 3,
                                   outputs=(outputs or {}).get(step, {})))
        counts[status.value] = counts.get(status.value, 0) + 1
        t += 2
    if finish:
        failed = any(s == StepStatus.FAILED.value for s in counts)
        events.append(RunFinished(rid, t, RunStatus.FAILED if failed else RunStatus.SUCCEEDED,
                                  duration=t - start, counts=counts))
    return events

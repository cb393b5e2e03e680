"""What a run's step durations are compared with: ``--baseline last-success|RUN_ID|median:N``.

The default, ``median:10``, is the median of a step's execution time over the last
``BASELINE_RUNS`` (10) successful runs that executed it, looking back at most ``LOOKBACK``
successful runs. Only runs of the same pipeline that started before the reported run count, so a
report of a run reads the same tomorrow as today. Execution times come from ``observe.metrics``
like every other figure; the "slower" flag is ``observe.trends.is_slower``, the threshold
``stats`` uses.
Raises ``UsageError`` for a bad spec or an unknown run, ``StateError`` for a bad database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from flowctl.errors import UsageError
from flowctl.limits import MAX_RUNS_LISTED
from flowctl.observe.metrics import RunMetrics, median
from flowctl.observe.stored_metrics import run_metrics
from flowctl.observe.trends import BASELINE_RUNS
from flowctl.run.events import RunStatus
from flowctl.state.run_records import RunRecord

_HINT = "use last-success, a run id, or median:N (e.g. median:5)"


@dataclass(frozen=True, slots=True)
class BaselineSpec:
    """A parsed ``--baseline``: ``median`` of ``runs`` successful runs, ``last-success``, or ``run``."""

    kind: str
    runs: int = BASELINE_RUNS
    run_id: str = ""


def parse_baseline(text: str | None) -> BaselineSpec:
    """``--baseline`` as given (None: the default, ``median:10``). Raises ``UsageError``."""
    if text is None or text.strip() in ("", "median"):
        return BaselineSpec("median")
    value = text.strip()
    if value == "last-success":
        return BaselineSpec("last-success")
    head, colon, tail = value.partition(":")
    if colon:
        if head != "median":
            raise UsageError(f"--baseline {value!r}: unknown kind {head!r}", hint=_HINT)
        try:
            runs = int(tail)
        except ValueError:
            raise UsageError(f"--baseline {value!r}: N must be a whole number of runs", hint=_HINT) from None
        if not 1 <= runs <= MAX_RUNS_LISTED:
            raise UsageError(f"--baseline {value!r}: N must be from 1 to {MAX_RUNS_LISTED}", hint=_HINT)
        return BaselineSpec("median", runs=runs)
    return BaselineSpec("run", run_id=value)


def median_baseline(step: str, runs: Sequence[RunMetrics], limit: int = BASELINE_RUNS) -> float | None:
    """A step's ``median:N`` baseline: the median of its execution time over the ``limit`` most
    recent successful runs among ``runs`` (newest first, chaos runs left out) that executed it;
    None when none did."""
    times = [r.step_duration[step] for r in runs
             if r.status is RunStatus.SUCCEEDED and not r.chaos and step in r.step_duration]
    return median(times[:limit])


#: How far back ``median:N`` looks for a step that did not run in every successful run: at most
#: this many earlier successful runs (``stats`` reads its last 50 runs).
LOOKBACK = 50
_BATCH, _MOST_ROWS = 64, 16384


def _earlier_successes(state_dir: str | os.PathLike[str], run: RunRecord, most: int) -> Iterator[RunRecord]:
    """Successful runs of ``run``'s pipeline that started before it, newest first, at most
    ``most``. Reads the run list in growing pages (a report of an old run skips the newer ones)."""
    from flowctl.state.views import recent_runs

    limit, seen, found = _BATCH, set(), 0
    while True:
        batch = recent_runs(state_dir, run.pipeline, limit=limit)  # newest first
        for other in batch:
            if other.run_id in seen:
                continue
            seen.add(other.run_id)
            if (other.status == RunStatus.SUCCEEDED.value and not other.chaos  # issue 17: chaos shifts no baseline
                    and (other.started_at, other.run_id) < (run.started_at, run.run_id)):
                yield other
                found += 1
                if found >= most:
                    return
        if len(batch) < limit or limit >= _MOST_ROWS:
            return
        limit *= 4


def step_baselines(
    state_dir: str | os.PathLike[str], run: RunRecord, steps: Sequence[str], spec: BaselineSpec
) -> tuple[str, Mapping[str, float]]:
    """In words what ``steps`` of ``run`` are compared with, and each step's baseline duration
    (steps without one are left out)."""
    if spec.kind == "run":
        other = run_metrics(state_dir, spec.run_id)
        return f"run {other.run_id} ({other.status.value})", {
            s: other.step_duration[s] for s in steps if s in other.step_duration
        }
    if spec.kind == "last-success":
        previous = next(_earlier_successes(state_dir, run, 1), None)
        if previous is None:
            return "the last successful run (there is none before this run)", {}
        other = run_metrics(state_dir, previous.run_id)
        return f"the last successful run, {other.run_id}", {
            s: other.step_duration[s] for s in steps if s in other.step_duration
        }
    # median:N: walk earlier successful runs, newest first, until every step has N samples.
    seen: list[RunMetrics] = []
    samples = dict.fromkeys(steps, 0)
    for record in _earlier_successes(state_dir, run, max(LOOKBACK, spec.runs)):
        metrics = run_metrics(state_dir, record.run_id)
        seen.append(metrics)
        for s in metrics.step_duration:
            if s in samples:
                samples[s] += 1
        if all(n >= spec.runs for n in samples.values()):
            break
    found = {s: b for s in steps if (b := median_baseline(s, seen, spec.runs)) is not None}
    words = f"the median of each step's last {spec.runs} successful run{'s' if spec.runs != 1 else ''}"
    if not seen:
        words += " (there are none before this run)"
    return words, found


__all__ = ["LOOKBACK", "BaselineSpec", "median_baseline", "parse_baseline", "step_baselines"]

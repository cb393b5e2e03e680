"""Running a prepared benchmark and what it found.

``run_bench`` runs the warm-up executions (measured by nobody), then the measured ones, both
``--parallel`` at once, in a private temporary folder that is always removed; with
``--keep-state`` the measured executions' state folders and output are kept under the project's
state folder, in ``bench/<id>/run-NNN/``. It returns a ``BenchResult``: the samples, the
aggregate, the thresholds judged and, with ``--compare``, the comparison. Never prints: progress
goes to ``emit`` as ``executions`` events.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

from flowctl.benchmark.compare import Comparison, compare
from flowctl.benchmark.executions import (
    BenchEvent,
    Launch,
    child_environment,
    run_executions,
)
from flowctl.benchmark.figures import Aggregate, RunSample, aggregate
from flowctl.benchmark.request import BenchPlan
from flowctl.benchmark.thresholds import ThresholdResult, evaluate_thresholds
from flowctl.errors import StorageError

_ROOM = "free space there, or point TMPDIR at a folder with room"


@dataclass(frozen=True, slots=True)
class BenchResult:
    plan: BenchPlan
    samples: tuple[RunSample, ...]
    aggregate: Aggregate
    thresholds: tuple[ThresholdResult, ...]
    comparison: Comparison | None = None
    kept: str | None = None  # where the executions' state folders were kept

    @property
    def passed(self) -> bool:
        """Every threshold holds (no thresholds: true)."""
        return all(t.passed for t in self.thresholds)


def kept_folder(plan: BenchPlan) -> str:
    """Where ``--keep-state`` keeps this benchmark's executions: ``<state>/bench/<id>``."""
    from flowctl.run.options import new_run_id
    from flowctl.state.location import state_dir_for

    state = state_dir_for(None, plan.request.pipeline)
    return os.path.abspath(os.path.join(state, "bench", str(new_run_id())))


def run_bench(plan: BenchPlan, emit: Callable[[BenchEvent], None] | None = None) -> BenchResult:
    """Run the benchmark ``plan`` describes. Raises ``ExecutionFailed`` (an execution ended with
    no run result), ``InterruptedRun`` (Ctrl-C, SIGTERM) or ``StorageError`` (no room for the
    working copies or the kept state)."""
    request = plan.request
    sink: Callable[[BenchEvent], None] = emit or (lambda event: None)
    keep = kept_folder(plan) if request.keep_state else None
    try:
        scratch = tempfile.mkdtemp(prefix="flowctl-bench-")
    except OSError as exc:
        raise StorageError(f"cannot make a temporary folder for the benchmark: {exc}", hint=_ROOM) from None
    launch = Launch(
        workspace=plan.workspace,
        run_args=plan.run_args,
        environ=child_environment(request.environ),
        needs={sid: step.needs for sid, step in plan.prepared.pipeline.steps.items()},
        scratch=scratch,
        keep=keep,
    )
    try:
        run_executions(launch, count=request.warmup, parallel=request.parallel, warmup=True, emit=sink)
        samples = run_executions(launch, count=request.runs, parallel=request.parallel, warmup=False, emit=sink)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    figures = aggregate(samples)
    baseline = plan.baseline
    comparison = None
    if baseline is not None:
        comparison = compare(
            baseline, figures.per_run, pipeline=plan.prepared.pipeline.name, settings=plan.settings(),
            environment=plan.environment.to_dict(),
        )
    return BenchResult(
        plan=plan,
        samples=samples,
        aggregate=figures,
        thresholds=evaluate_thresholds(plan.rules, figures.subjects, baseline.subjects if baseline else None),
        comparison=comparison,
        kept=keep,
    )


__all__ = ["BenchResult", "kept_folder", "run_bench"]

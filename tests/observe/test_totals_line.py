"""The totals line claims time saved by running in parallel only for a run that finished
(issue 13: a cancelled run said "1.0s saved by running in parallel")."""

from __future__ import annotations

import pytest

from flowctl.observe.summary import RunSummary, totals_line
from flowctl.run.events import RunFinished, RunId, RunStatus, StepFinished, StepStatus

RUN = RunId("r1")


def _summary(status: RunStatus, step_status: StepStatus) -> RunSummary:
    summary = RunSummary()
    for step in ("a", "b"):
        summary(StepFinished(RUN, step, step_status, at=1.0, attempts=1, duration=1.0))
    summary(RunFinished(RUN, at=2.0, status=status, duration=1.0))
    return summary


@pytest.mark.parametrize("status", [RunStatus.SUCCEEDED, RunStatus.FAILED])
def test_a_finished_run_says_what_parallelism_saved(status: RunStatus) -> None:
    assert "1.0s saved by running in parallel" in totals_line(_summary(status, StepStatus.SUCCEEDED))


@pytest.mark.parametrize("status", [RunStatus.CANCELLED, RunStatus.INTERRUPTED])
def test_a_run_that_did_not_finish_claims_no_saving(status: RunStatus) -> None:
    assert "saved" not in totals_line(_summary(status, StepStatus.CANCELLED))

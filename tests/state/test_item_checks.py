"""``chaos check``'s item invariants (issue 17) over hand-made item records: what each check
accepts and what it reports, including histories a real run should never produce."""

from __future__ import annotations

from flowctl.state.item_checks import converged_items, in_flight_items, item_fault_counts, rerun_items, retried_items
from flowctl.state.items import ItemRecord


def rec(key: str, status: str, attempts: int = 1, injected: tuple[tuple[int, str], ...] = (), *, run: str = "r1",
        batch: int = 0, exit_code: int | None = None) -> ItemRecord:
    return ItemRecord(run, "each", key, key, status, attempts, exit_code, 1.0, 2.0, 1.0, None, (), "", None, None, 0, "",
                      batch, injected)


def test_an_item_that_succeeded_and_ran_again_after_a_resume_is_a_rerun() -> None:
    first = [rec("a", "succeeded"), rec("b", "interrupted")]
    good = [rec("a", "reused", 0, run="r2"), rec("b", "succeeded", run="r2")]
    assert rerun_items([("r1", first), ("r2", good)]) == []
    bad = [rec("a", "succeeded", run="r2"), rec("b", "succeeded", run="r2")]
    [v] = rerun_items([("r1", first), ("r2", bad)])
    assert (v.check, v.run_id, v.step) == ("no-rerun", "r2", "each")
    assert v.message == "item 'a' of step each ran again in r2 although it had succeeded in r1"


def test_dead_items_converge_only_when_every_attempt_was_injected_with_a_failing_fault() -> None:
    assert converged_items("r1", {"each": "exceeded-tolerated-failures"}, [rec("a", "dead-lettered", 2, ((1, "fail"), (2, "kill")))]) == []
    [v] = converged_items("r1", {"each": "exceeded-tolerated-failures"}, [rec("a", "dead-lettered", 2, ((1, "fail"), (2, "delay")), exit_code=4)])
    assert v.message == "item 'a' of step each was dead-lettered for real: attempt 2 (exit 4) was not injected"
    [v] = converged_items("r1", {"each": "items_from: no file matches"}, [rec("a", "succeeded")])
    assert v.message == "step each failed for real: items_from: no file matches"


def test_retries_in_flight_and_fault_counts_count_a_batch_once() -> None:
    assert retried_items("r1", [rec("a", "succeeded", 3)], {"each": 3}) == []
    [v] = retried_items("r1", [rec("a", "succeeded", 4)], {"each": 3})
    assert v.message == "item 'a' of step each made 4 attempts; it allows 3"
    batch = [rec(k, "interrupted", 1, ((1, "fail"),), batch=2) for k in "xyz"]
    assert in_flight_items([*batch, rec("a", "interrupted"), rec("b", "succeeded")]) == ["each[batch 2]", "each[a]"]
    assert item_fault_counts([*batch, rec("a", "dead-lettered", 2, ((1, "fail"), (2, "kill")))]) == {"fail": 2, "kill": 1}

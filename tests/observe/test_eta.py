"""The live view's ETA: from earlier runs' durations when there are any, "~" when guessing."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from flowctl.observe.eta import Eta, EtaModel


def test_one_long_step_with_history_counts_down_instead_of_climbing() -> None:
    # Issue 13: the ETA climbed 2.4 s -> 6.3 s during one 10 s step.
    model = EtaModel(["load"], {"load": 10.0}, {}, concurrency=4)
    model.leave("load")
    seen = [model.estimate([("load", t)]) for t in (0.0, 2.0, 5.0, 9.0)]
    assert [e.seconds for e in seen if e] == [10.0, 8.0, 5.0, 1.0]
    assert not any(e.guessed for e in seen if e)
    assert seen[1] == Eta(8.0, False) and seen[1].text() == "8.0s"


def test_a_chain_runs_one_after_the_other_however_many_slots_are_free() -> None:
    needs = {"transform": ["extract"], "load": ["transform"]}
    model = EtaModel(["extract", "transform", "load"], {"extract": 5.0, "transform": 10.0, "load": 3.0}, needs, 8)
    model.leave("extract")
    assert model.estimate([("extract", 1.0)]) == Eta(17.0, False)  # 4 + 10 + 3, not 18 / 8
    model.finished("extract", 5.0, executed=True)
    model.leave("transform")
    assert model.estimate([("transform", 0.0)]) == Eta(13.0, False)


def test_independent_steps_share_the_slots() -> None:
    steps = [f"s{i}" for i in range(8)]
    model = EtaModel(steps, dict.fromkeys(steps, 2.0), {}, concurrency=2)
    for s in steps[:2]:
        model.leave(s)
    assert model.estimate([("s0", 0.0), ("s1", 0.0)]) == Eta(8.0, False)  # 16 s of work on 2 slots


def test_steps_never_seen_before_make_it_a_guess() -> None:
    model = EtaModel(["old", "new"], {"old": 4.0}, {}, concurrency=1)
    eta = model.estimate([])
    assert eta == Eta(8.0, True) and eta.text() == "~8.0s"  # "new" counted as the median of the known


def test_without_history_it_guesses_from_this_run_once_a_step_finished() -> None:
    model = EtaModel(["a", "b", "c"], {}, {}, concurrency=1)
    assert model.estimate([]) is None  # nothing to go on yet
    model.leave("a")
    assert model.estimate([("a", 1.0)]) is None
    model.finished("a", 2.0, executed=True)
    assert model.estimate([]) == Eta(4.0, True)


def test_a_step_past_its_usual_time_is_a_guess_and_a_retry_wait_adds_its_countdown() -> None:
    model = EtaModel(["a"], {"a": 3.0}, {}, concurrency=1)
    model.leave("a")
    assert model.estimate([("a", 5.0)]) == Eta(0.0, True)
    assert model.estimate([("a", -2.0)]) == Eta(5.0, False)  # waits 2 s to retry, then 3 s


def test_skipped_and_reused_steps_leave_the_work_without_counting_as_this_runs_durations() -> None:
    model = EtaModel(["a", "b"], {}, {}, concurrency=1)
    model.finished("a", 0.0, executed=False)  # reused: no real duration
    assert model.estimate([]) is None
    model.finished("b", 0.0, executed=False)
    assert model.estimate([]) == Eta(0.0, False)


@given(
    durations=st.lists(st.floats(min_value=0.01, max_value=100), min_size=1, max_size=12),
    concurrency=st.integers(min_value=1, max_value=6),
    chain=st.booleans(),
)
def test_with_full_history_it_never_climbs_while_steps_run_as_usual(
    durations: list[float], concurrency: int, chain: bool
) -> None:
    """Steps that take exactly their usual time, started in order as slots free up: the
    estimate only goes down, and never promises more time than is really left."""
    steps = [f"s{i}" for i in range(len(durations))]
    typical = dict(zip(steps, durations, strict=False))
    needs = {s: [steps[i - 1]] for i, s in enumerate(steps) if i and chain}
    model = EtaModel(steps, typical, needs, concurrency)
    # simulate: each slot takes the next step when free (a chain: one at a time)
    width = 1 if chain else concurrency
    clock, running, todo = 0.0, {}, list(steps)
    seen: list[tuple[float, float]] = []  # (when, estimate)
    while todo or running:
        while todo and len(running) < width:
            s = todo.pop(0)
            model.leave(s)
            running[s] = clock
        eta = model.estimate([(s, clock - t0) for s, t0 in running.items()])
        assert eta is not None and not eta.guessed
        seen.append((clock, eta.seconds))
        s, t0 = min(running.items(), key=lambda kv: kv[1] + typical[kv[0]])
        clock = t0 + typical[s]
        del running[s]
        model.finished(s, typical[s], executed=True)
    assert model.estimate([]) == Eta(0.0, False)
    estimates = [e for _, e in seen]
    assert all(b <= a + 1e-6 for a, b in itertools.pairwise(estimates))
    assert all(e <= clock - when + 1e-6 for when, e in seen)

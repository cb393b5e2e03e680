"""Resource limits (issue 16): ``--resources`` counts what running attempts hold, a step that
could never fit is refused before anything starts, and an executor's ``slots`` caps the run.

The invariant ("running attempts never hold more than the limit, and every step still runs") is
checked over generated pipelines with an in-memory executor that ends attempts in a seeded
random order, so every interleaving the scheduler can meet is cheap to try.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowctl.errors import UsageError
from flowctl.graph import compile_plan
from flowctl.run.events import AttemptOutcome, Event, RunStatus
from flowctl.run.memory import MemoryRunStore
from flowctl.run.ports import AttemptKey, AttemptResult, AttemptSpec
from flowctl.run.resources import (
    ResourcePool,
    check_local,
    parse_resource_list,
    unsatisfiable,
)
from flowctl.run.scheduler import RunOptions, Scheduler, new_run_id
from flowctl.spec.model import Pipeline, Step
from flowctl.spec.resolve import resolve_step


class RandomEndExecutor:
    """Runs nothing: each ``wait`` ends a random non-empty subset of what was submitted."""

    def __init__(self, seed: int, slots: int | None = None) -> None:
        self.rng = random.Random(seed)
        self.open: dict[AttemptKey, AttemptSpec] = {}
        self.held_at_start: list[dict[str, float]] = []
        self.peak = 0
        self._slots = slots
        self.backlogs: list[int] = []

    def submit(self, spec: AttemptSpec) -> None:
        self.open[spec.key] = spec
        held: dict[str, float] = {}
        for s in self.open.values():
            for name, amount in s.resources.items():
                held[name] = held.get(name, 0.0) + amount
        self.held_at_start.append(held)
        self.peak = max(self.peak, len(self.open))

    def wait(self, timeout: float | None) -> Sequence[AttemptResult]:
        keys = list(self.open)
        ended = self.rng.sample(keys, self.rng.randint(1, len(keys))) if keys else []
        return [
            AttemptResult(k, AttemptOutcome.OK, 0, 0.0, 0.0, host="fake") for k in ended if self.open.pop(k, None)
        ]

    def wakeup(self) -> None: ...
    def cancel(self, key: AttemptKey, *, force: bool = False) -> None: ...
    def cancel_all(self, *, force: bool = False) -> None: ...
    def running(self) -> int:
        return len(self.open)
    def close(self) -> None: ...

    def slots(self, backlog: int) -> int | None:
        self.backlogs.append(backlog)
        return self._slots


def _pipeline(wants: list[dict[str, float]], needs: list[list[int]]) -> Pipeline:
    steps = {
        f"s{i}": Step(id=f"s{i}", run="true", resources=MappingProxyType(w), needs=tuple(f"s{n}" for n in needs[i]))
        for i, w in enumerate(wants)
    }
    return Pipeline(path="p.yaml", name="p", steps=MappingProxyType(steps), base_dir="/")


def _run(pipe: Pipeline, executor: RandomEndExecutor, *, concurrency: int, limits: dict[str, float]) -> RunStatus:
    plan = compile_plan(pipe)
    invocations = {sid: resolve_step(pipe, s, {}, {}) for sid, s in pipe.steps.items()}
    events: list[Event] = []
    scheduler = Scheduler(
        plan, invocations, executor, MemoryRunStore(), events.append,
        RunOptions(logs_dir="/nonexistent", concurrency=concurrency, handle_signals=False,
                   resources=limits),
        run_id=new_run_id(),
    )
    return scheduler.run().status


amounts = st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0])


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    n=st.integers(min_value=1, max_value=12),
    gpu=st.sampled_from([1.0, 2.0, 3.0]),
    memory=st.sampled_from([4.0 * 2**30, 8.0 * 2**30]),
    concurrency=st.integers(min_value=1, max_value=6),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_running_attempts_never_hold_more_than_the_limits(data, n, gpu, memory, concurrency, seed) -> None:
    wants = [
        {k: v for k, v in {"gpu": data.draw(amounts) * gpu / 3.0,
                           "memory": data.draw(st.sampled_from([0.0, 2**30, 4.0 * 2**30])) * memory / (8 * 2**30),
                           "other": data.draw(amounts)}.items() if v}
        for _ in range(n)
    ]
    needs = [sorted(set(data.draw(st.lists(st.integers(0, i - 1), max_size=2)))) if i else [] for i in range(n)]
    limits = {"gpu": gpu, "memory": memory}  # "other" is not limited: unlimited
    pipe = _pipeline(wants, needs)
    check_local(pipe.steps.values(), limits)  # every generated step fits on its own
    executor = RandomEndExecutor(seed)
    assert _run(pipe, executor, concurrency=concurrency, limits=limits) is RunStatus.SUCCEEDED
    assert len(executor.held_at_start) == n  # every step ran, once
    for held in executor.held_at_start:
        assert held.get("gpu", 0.0) <= gpu + 1e-9 and held.get("memory", 0.0) <= memory + 1e-9, held
    assert executor.peak <= concurrency


def test_without_limits_resources_do_not_hold_anything_back() -> None:
    pipe = _pipeline([{"gpu": 5.0}] * 4, [[]] * 4)
    executor = RandomEndExecutor(1)
    executor.rng = random.Random(0)
    executor.wait = lambda timeout: [] if len(executor.open) < 4 else RandomEndExecutor.wait(executor, timeout)  # type: ignore[method-assign]
    assert _run(pipe, executor, concurrency=4, limits={}) is RunStatus.SUCCEEDED
    assert executor.peak == 4


def test_an_executor_s_slots_cap_the_run_and_see_the_backlog() -> None:
    pipe = _pipeline([{}] * 10, [[]] * 10)
    executor = RandomEndExecutor(3, slots=3)
    assert _run(pipe, executor, concurrency=8, limits={}) is RunStatus.SUCCEEDED
    assert executor.peak == 3
    assert executor.backlogs[0] == 10  # all ten were ready when the run began


def test_a_step_that_could_never_fit_is_refused_naming_it() -> None:
    pipe = _pipeline([{"gpu": 2.0}, {"gpu": 1.0, "memory": 2.0**30}, {"licenses": 9.0}], [[], [], []])
    with pytest.raises(UsageError) as info:
        check_local(pipe.steps.values(), {"gpu": 1.0, "memory": 2.0**30})
    assert "'s0' needs gpu=2" in info.value.message and "s1" not in info.value.message
    assert "--resources gives gpu=1, memory=1GiB" in (info.value.hint or "")


def test_unsatisfiable_wants_one_worker_to_have_everything() -> None:
    pipe = _pipeline([{"gpu": 1.0, "memory": 8.0 * 2**30}, {"gpu": 1.0}], [[], []])
    workers = [{"gpu": 1.0, "memory": 4.0 * 2**30}, {"memory": 16.0 * 2**30}]
    assert [(s.id, why) for s, why in unsatisfiable(pipe.steps.values(), workers)] == [("s0", "memory=8GiB")]
    assert [s.id for s, _ in unsatisfiable(pipe.steps.values(), [])] == ["s0", "s1"]  # no worker at all


@pytest.mark.parametrize(
    ("values", "expected"),
    [(["gpu=2,memory=16GiB"], {"gpu": 2.0, "memory": 16.0 * 2**30}), (["a=0.5", "b=3"], {"a": 0.5, "b": 3.0}),
     (["mem = 1.5GB"], {"mem": 1.5e9})],
)
def test_resource_lists_read_amounts_and_sizes(values: list[str], expected: dict[str, float]) -> None:
    assert parse_resource_list(values, "--resources") == expected


@pytest.mark.parametrize("bad", ["gpu", "=1", "gpu=lots", "gpu=-1", "bad-name=1", "gpu=inf"])
def test_a_bad_resource_list_names_the_option(bad: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_resource_list([bad], "--dask-resources")
    assert "--dask-resources" in info.value.message


def test_the_pool_gives_back_what_it_took() -> None:
    pool = ResourcePool({"gpu": 1.0})
    assert pool.fits({"gpu": 1.0, "other": 99.0})
    pool.take({"gpu": 1.0})
    assert not pool.fits({"gpu": 0.5}) and pool.fits({"cpu": 4.0})
    pool.give({"gpu": 1.0})
    assert pool.fits({"gpu": 1.0})

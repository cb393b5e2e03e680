"""Chaos decisions (issue 17): the grammar, the hash, caps, and the wrapped commands really
doing what they say (real /bin/sh processes)."""

from __future__ import annotations

import subprocess
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowctl.errors import UsageError
from flowctl.run.chaos import ChaosRun, Injected, check_chaos, draw
from flowctl.run.events import RunId
from flowctl.run.ports import AttemptKey, AttemptSpec
from flowctl.spec.chaos import ChaosError, ChaosSettings, parse_chaos
from flowctl.spec.model import Step


def test_the_grammar_parses_every_key_and_prints_back_canonically() -> None:
    cfg = parse_chaos("fail=0.1:rc=3, delay=500ms@0.2,hang=0.02,kill=5%,kill-runner=0.02,max=2,steps=load-*,seed=42")
    assert cfg == ChaosSettings(fail=0.1, fail_rc=3, delay=0.2, delay_seconds=0.5, hang=0.02, kill=0.05,
                                kill_runner=0.02, max=2, steps="load-*", seed=42)
    assert parse_chaos(cfg.text) == cfg
    assert cfg.text == "fail=0.1:rc=3,delay=500ms@0.2,hang=0.02,kill=0.05,kill-runner=0.02,max=2,steps=load-*,seed=42"


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        ("fial=0.1", "unknown key 'fial'", "did you mean 'fail'?"),
        ("kill_runner=0.1", "unknown key 'kill_runner'", "did you mean 'kill-runner'?"),
        ("fail=2", "not a probability", "fail=P"),
        ("fail=0.1:rc=x", "rc=N", "fail=0.1:rc=3"),
        ("delay=0.2", "delay=DURATION@P", "delay=500ms@0.2"),
        ("delay=5q@0.1", "not a duration", "delay=DURATION@P"),
        ("max=0", "whole number from 1", "max=N"),
        ("seed=x", "whole number", "seed=N"),
        ("kill", "needs a value", "kill=P"),
        ("kill=0.1,kill=0.2", "given twice", "once"),
    ],
)
def test_bad_specs_say_what_is_wrong_and_what_was_meant(text: str, message: str, hint: str) -> None:
    with pytest.raises(ChaosError) as err:
        parse_chaos(text)
    assert message in err.value.message
    assert hint in err.value.hint


@settings(max_examples=200, deadline=None, database=None)
@given(st.integers(), st.text(max_size=8), st.text(max_size=4), st.integers(1, 50), st.sampled_from(["fail", "kill"]))
def test_a_draw_is_a_fixed_value_in_the_unit_interval(seed: int, step: str, item: str, attempt: int, fault: str) -> None:
    value = draw(seed, step, item, attempt, fault)
    assert 0.0 <= value < 1.0
    assert value == draw(seed, step, item, attempt, fault)


def test_draws_are_spread_and_independent_of_each_other() -> None:
    values = [draw(7, f"s{i}", "", 1, "fail") for i in range(4000)]
    assert 0.45 < sum(v < 0.5 for v in values) / len(values) < 0.55
    assert draw(7, "s1", "", 1, "fail") != draw(7, "s1", "", 1, "kill") != draw(8, "s1", "", 1, "fail")


def _decisions(cfg: ChaosSettings, order: list[str], attempts: int = 4) -> set[tuple[str, int, str]]:
    run = ChaosRun(cfg)
    out = set()
    for step in order:
        for n in range(1, attempts + 1):
            fault = run.decide(step, n)
            if fault:
                out.add((step, n, fault))
    return out


def test_decisions_do_not_depend_on_the_order_steps_are_asked_in() -> None:
    cfg = parse_chaos("fail=0.3,kill=0.2,delay=1ms@0.3,max=2,seed=11")
    steps = [f"step{i}" for i in range(60)]
    forward = _decisions(cfg, steps)
    assert forward == _decisions(cfg, list(reversed(steps)))
    assert len(forward) > 30  # something was injected
    assert all(sum(1 for s, _, f in forward if s == step and f == fault) <= 2
               for step in steps for fault in ("fail", "kill", "delay"))


def test_max_holds_across_a_resume_and_a_spent_kill_runner_never_fires_again() -> None:
    cfg = parse_chaos("kill-runner=1,fail=1,max=1")
    first = ChaosRun(cfg)
    assert first.decide("a", 1) == "kill-runner" and first.kill_due
    resumed = ChaosRun(cfg, spent=[Injected("a", "", 1, "kill-runner")])
    assert resumed.decide("a", 1) == "fail"  # the runner's one kill is spent: the next fault in order
    assert resumed.decide("a", 2) == ""  # and fail's one per step too
    assert not resumed.kill_due


def test_scope_and_hang_without_timeout() -> None:
    run = ChaosRun(parse_chaos("fail=1,steps=load-*"))
    assert run.decide("extract", 1) == "" and run.decide("load-a", 1) == "fail"
    hang = ChaosRun(parse_chaos("hang=1"))
    assert hang.decide("a", 1) == "" and hang.decide("a", 1, timeout=5.0) == "hang"
    steps = {"a": Step(id="a", run="true"), "b": Step(id="b", run="true", timeout=3.0)}
    with pytest.raises(UsageError, match="step a has no timeout") as refused:
        check_chaos(parse_chaos("hang=0.1"), steps, "local", "FLOWCTL_CHAOS")
    assert refused.value.message.startswith("FLOWCTL_CHAOS: hang=0.1 needs a timeout on every step it may hang")
    assert refused.value.hint == "add `timeout: 5m` to it (e.g. `a: {run: ..., timeout: 5m}`), or keep hang to steps " \
        "that have one with steps=GLOB (e.g. steps=b)"
    check_chaos(parse_chaos("hang=0.1,steps=b"), steps, "local")
    with pytest.raises(UsageError, match="kill-worker"):
        check_chaos(parse_chaos("kill-worker=0.1"), steps, "local")


def _run(argv: tuple[str, ...], timeout: float = 10) -> tuple[int, str, float]:
    t0 = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, start_new_session=True)
    return proc.returncode, proc.stdout, time.monotonic() - t0


def _spec(argv: tuple[str, ...], timeout: float | None = None) -> AttemptSpec:
    return AttemptSpec(key=AttemptKey(RunId("r"), "s", 1), argv=argv, env={}, cwd="/", log_path="/dev/null", timeout=timeout)


def test_the_wrapped_commands_do_what_they_say(tmp_path: object) -> None:
    cmd = ("/bin/sh", "-c", "echo ran")
    run = ChaosRun(parse_chaos("fail=1:rc=7"))
    assert _run(run.wrap(_spec(cmd), "fail").argv)[:2] == (7, "")
    delayed = ChaosRun(parse_chaos("delay=300ms@1")).wrap(_spec(cmd), "delay").argv
    code, out, took = _run(delayed)
    assert (code, out) == (0, "ran\n") and took >= 0.3
    killed = ChaosRun(parse_chaos("kill=1")).wrap(_spec(cmd), "kill").argv
    code, out, _ = _run(killed)
    assert code == -9 and out == "ran\n"  # effects done, success lost: what idempotency is tested by
    long_cmd = ("/bin/sh", "-c", "sleep 30; echo never")
    code, out, took = _run(ChaosRun(parse_chaos("kill=1")).wrap(_spec(long_cmd, timeout=0.5), "kill").argv)
    assert code == -9 and out == "" and took < 5
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run(ChaosRun(parse_chaos("hang=1")).wrap(_spec(cmd, 1.0), "hang").argv, timeout=0.5)


@settings(max_examples=50, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(0, 2**31))
def test_item_decisions_do_not_depend_on_the_order_items_start_in(rnd: object, seed: int) -> None:
    """Items are attempts too (issue 17): whatever order a scheduler at any -j starts items and
    their retries in (each item's attempts in order), each (item, attempt) gets the same fault,
    and ``max`` holds per item."""
    import random

    assert isinstance(rnd, random.Random)
    cfg = parse_chaos(f"fail=0.4,kill=0.2,delay=1ms@0.2,max=2,seed={seed}")
    tries = [(f"k{i}", n) for i in range(12) for n in range(1, 5)]

    def decide(order: list[tuple[str, int]]) -> set[tuple[str, int, str]]:
        run = ChaosRun(cfg)
        return {(key, n, f) for key, n in order if (f := run.decide("each", n, key))}

    shuffled = sorted(tries, key=lambda t: (rnd.random() + t[1], t[1]))  # interleaved, each item's in order
    got = decide(tries)
    assert decide(shuffled) == got
    assert all(sum(1 for k, _, f in got if k == key and f == fault) <= 2 for key in {k for k, _ in tries}
               for fault in ("fail", "kill", "delay"))

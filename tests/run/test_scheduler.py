"""The scheduler with the local executor and real processes (tests/bin/sleepit.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from flowctl.run import procs
from flowctl.run.events import (
    AttemptFinished,
    AttemptKind,
    AttemptOutcome,
    AttemptStarted,
    RetryScheduled,
    RunFinished,
    RunStatus,
    StepFinished,
    StepStatus,
)
from flowctl.run.scheduler import Reuse, new_run_id

S = '"$PY" "$SLEEPIT"'


def _intervals(path: Path) -> dict[str, tuple[float, float]]:
    out = {}
    for line in path.read_text().splitlines():
        name, start, end = line.split()
        out[name] = (float(start), float(end))
    return out


def test_independent_steps_overlap_at_concurrency_2(run_pipeline, tmp_path):
    ran = run_pipeline(
        f"""
        version: 1
        name: par
        steps:
          a: {{run: '{S} interval {tmp_path}/iv a 0.3'}}
          b: {{run: '{S} interval {tmp_path}/iv b 0.3'}}
        """,
        concurrency=2,
    )
    assert ran.result.status is RunStatus.SUCCEEDED
    iv = _intervals(tmp_path / "iv")
    assert iv["a"][0] < iv["b"][1] and iv["b"][0] < iv["a"][1], iv


def test_concurrency_limit_is_never_exceeded(run_pipeline, tmp_path):
    steps = "\n".join(f"  s{i}: {{run: '{S} interval {tmp_path}/iv s{i} 0.1'}}" for i in range(6))
    ran = run_pipeline(f"version: 1\nname: lim\nsteps:\n{steps}\n", concurrency=2)
    assert ran.result.status is RunStatus.SUCCEEDED
    iv = list(_intervals(tmp_path / "iv").values())
    most = max(sum(1 for s, e in iv if s <= t < e) for t, _ in iv)
    assert most == 2
    # and the scheduler never had more than 2 attempts out at once
    out = peak = 0
    for ev in ran.events:
        if isinstance(ev, AttemptStarted):
            out += 1
            peak = max(peak, out)
        elif isinstance(ev, AttemptFinished):
            out -= 1
    assert peak == 2


def test_ready_steps_start_critical_path_first(run_pipeline):
    ran = run_pipeline(
        """
        version: 1
        name: order
        steps:
          x: {run: 'true'}
          a: {run: 'true'}
          b: {run: 'true', needs: [a]}
          c: {run: 'true', needs: [b]}
        """,
        concurrency=1,
    )
    started = [ev.step for ev in ran.events if isinstance(ev, AttemptStarted)]
    # a (chain of 3) first; then b (chain of 2) beats x; then x (file order) beats c
    assert started == ["a", "b", "x", "c"]


def test_retry_then_success(run_pipeline, tmp_path):
    ran = run_pipeline(
        f"""
        version: 1
        name: retry
        steps:
          flaky:
            run: '{S} fail-until {tmp_path}/count 3 4'
            retries: 3
            retry_delay: 0.01
        """
    )
    assert ran.status("flaky") is StepStatus.SUCCEEDED
    assert ran.finished("flaky").attempts == 3
    retries = [ev for ev in ran.events if isinstance(ev, RetryScheduled)]
    assert [r.next_attempt for r in retries] == [2, 3]
    assert all(r.delay <= 0.02 for r in retries)
    assert "call 3" in ran.log("flaky", "3")


def test_retry_exhaustion_fails_with_the_last_exit_code(run_pipeline, tmp_path):
    ran = run_pipeline(
        f"""
        version: 1
        name: retry
        steps:
          bad: {{run: '{S} fail-until {tmp_path}/count 99 3', retries: 2, retry_delay: 0.01}}
        """
    )
    fin = ran.finished("bad")
    assert fin.status is StepStatus.FAILED and fin.attempts == 3 and fin.exit_code == 3
    assert ran.result.status is RunStatus.FAILED and ran.result.root_failure == "bad"
    assert (tmp_path / "count").read_text() == "3"


def test_retry_on_exit_codes_limits_retries(run_pipeline, tmp_path):
    ran = run_pipeline(
        f"""
        version: 1
        name: codes
        defaults: {{retries: 3, retry_delay: 0.01, retry_on_exit_codes: [75]}}
        steps:
          other: {{run: '{S} fail-until {tmp_path}/c1 99 3'}}
          temp: {{run: '{S} fail-until {tmp_path}/c2 2 75'}}
        """
    )
    assert ran.finished("other").attempts == 1 and ran.status("other") is StepStatus.FAILED
    assert ran.finished("temp").attempts == 2 and ran.status("temp") is StepStatus.SUCCEEDED


def test_backoff_is_exponential_with_jitter_and_capped(run_pipeline, tmp_path):
    ran = run_pipeline(
        """
        version: 1
        name: backoff
        steps:
          bad: {run: 'exit 1', retries: 4, retry_delay: 0.02, retry_max_delay: 0.05}
        """
    )
    delays = [ev.delay for ev in ran.events if isinstance(ev, RetryScheduled)]
    bounds = [0.02, 0.04, 0.05, 0.05]  # 0.02 * 2**n, capped at 0.05
    assert len(delays) == 4
    for delay, top in zip(delays, bounds, strict=False):
        assert top / 2 <= delay <= top


def _pids(path: Path) -> list[int]:
    deadline = time.monotonic() + 5
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return [int(p) for p in path.read_text().split()]


def test_timeout_kills_child_and_setsid_grandchild(run_pipeline, tmp_path):
    started = time.monotonic()
    ran = run_pipeline(
        f"""
        version: 1
        name: timeout
        steps:
          hang: {{run: '{S} family {tmp_path}/pids', timeout: 1.5}}
        """,
        grace=0.3,
    )
    assert time.monotonic() - started < 8
    fin = ran.finished("hang")
    assert fin.status is StepStatus.FAILED and fin.reason == "timed out"
    outcomes = [ev.outcome for ev in ran.events if isinstance(ev, AttemptFinished)]
    assert outcomes == [AttemptOutcome.TIMEOUT]
    pids = _pids(tmp_path / "pids")
    assert len(pids) == 2
    assert not any(procs.is_alive(p) for p in pids), pids


def test_timeout_escalates_to_sigkill(run_pipeline):
    started = time.monotonic()
    ran = run_pipeline(
        """
        version: 1
        name: stubborn
        steps:
          deaf: {run: ['${{ env.PY }}', '${{ env.SLEEPIT }}', ignore-term, '30'], timeout: 1.5}
        """,
        grace=0.2,
    )
    assert ran.status("deaf") is StepStatus.FAILED
    assert "ignoring SIGTERM" in ran.log("deaf")  # SIGTERM was ignored: only SIGKILL ended it
    assert time.monotonic() - started < 8


def test_a_daemonized_grandchild_does_not_outlive_its_step(run_pipeline, tmp_path):
    ran = run_pipeline(
        f"""
        version: 1
        name: daemon
        steps:
          leave: {{run: '{S} orphan {tmp_path}/pid'}}
          after: {{run: 'sleep 0.1', needs: [leave]}}
        """,
        grace=0.2,
    )
    assert ran.result.status is RunStatus.SUCCEEDED
    (pid,) = _pids(tmp_path / "pid")
    assert not procs.is_alive(pid)


def test_an_orphan_that_ignores_sigterm_is_killed_during_the_run(run_pipeline, tmp_path):
    ran = run_pipeline(
        f"""
        version: 1
        name: deaf
        steps:
          leave: {{run: '{S} deaf-orphan {tmp_path}/pid'}}
          check: {{run: 'sleep 1; test ! -e /proc/$(cat {tmp_path}/pid)', needs: [leave]}}
        """,
        grace=0.2,
    )
    assert ran.status("check") is StepStatus.SUCCEEDED, ran.log("check")


def test_failure_skips_downstream_and_keeps_going(run_pipeline):
    ran = run_pipeline(
        """
        version: 1
        name: skip
        steps:
          a: {run: 'echo broken; exit 4'}
          b: {run: 'true', needs: [a]}
          c: {run: 'true', needs: [b]}
          d: {run: 'sleep 0.1'}
        """
    )
    assert ran.status("a") is StepStatus.FAILED
    assert ran.status("b") is StepStatus.SKIPPED and ran.status("c") is StepStatus.SKIPPED
    assert ran.finished("c").reason == "upstream a failed"
    assert ran.status("d") is StepStatus.SUCCEEDED
    done = ran.events[-1]
    assert isinstance(done, RunFinished) and done.root_failure == "a" and done.status is RunStatus.FAILED
    failed = [ev for ev in ran.events if isinstance(ev, AttemptFinished) and ev.step == "a"]
    assert failed[0].exit_code == 4 and failed[0].tail == ("broken",)


def test_fail_fast_cancels_running_steps(run_pipeline):
    started = time.monotonic()
    ran = run_pipeline(
        """
        version: 1
        name: ff
        steps:
          a: {run: 'sleep 0.1; exit 1'}
          slow: {run: 'sleep 30'}
          later: {run: 'true', needs: [slow]}
        """,
        fail_fast=True,
    )
    assert time.monotonic() - started < 5
    assert ran.status("a") is StepStatus.FAILED
    assert ran.status("slow") is StepStatus.CANCELLED
    assert ran.status("later") is StepStatus.CANCELLED
    assert ran.result.status is RunStatus.FAILED


def test_fail_fast_reasons_say_what_each_step_was_doing(run_pipeline, tmp_path):
    """The three cancel reasons share one rule: the stop's cause after the words for what the
    step was doing (running, waiting to retry, not started)."""
    flag = tmp_path / "flaky-failed"
    ran = run_pipeline(
        f"""
        version: 1
        name: ff
        steps:
          a: {{run: 'while [ ! -f {flag} ]; do sleep 0.01; done; sleep 0.3; exit 1'}}
          flaky: {{run: 'touch {flag}; exit 1', retries: 2, retry_delay: 60}}
          slow: {{run: 'sleep 30'}}
          later: {{run: 'true', needs: [slow]}}
        """,
        fail_fast=True, concurrency=3,
    )
    why = "--fail-fast after a failed"
    assert ran.finished("slow").reason == f"cancelled while it ran: {why}"
    assert ran.finished("flaky").reason == f"cancelled while waiting to retry: {why} (after 1 attempt(s))"
    assert ran.finished("later").reason == f"not started: {why}"


def test_continue_on_error_lets_dependents_run(run_pipeline):
    ran = run_pipeline(
        """
        version: 1
        name: coe
        steps:
          lint: {run: 'exit 2', continue_on_error: true}
          build: {run: 'true', needs: [lint]}
        """
    )
    assert ran.status("lint") is StepStatus.FAILED_ALLOWED
    assert ran.status("build") is StepStatus.SUCCEEDED
    assert ran.result.status is RunStatus.SUCCEEDED


def test_remediation_then_one_final_attempt(run_pipeline, tmp_path):
    ran = run_pipeline(
        f"""
        version: 1
        name: fix
        steps:
          load:
            run: 'test -f {tmp_path}/fixed || exit 3'
            retries: 1
            retry_delay: 0.01
            remediate: {{run: 'echo fixing; touch {tmp_path}/fixed'}}
        """
    )
    kinds = [(ev.attempt, ev.kind) for ev in ran.events if isinstance(ev, AttemptStarted)]
    assert kinds == [(1, AttemptKind.ATTEMPT), (2, AttemptKind.ATTEMPT), (3, AttemptKind.REMEDIATE), (4, AttemptKind.FINAL)]
    assert ran.status("load") is StepStatus.SUCCEEDED and ran.finished("load").attempts == 4
    assert ran.log("load", "remediate") == "fixing\n"
    # The final attempt printed nothing, so it has no log file, and its event says so.
    assert not (ran.logs_dir / "load" / "4.log").exists()
    final = [ev for ev in ran.events if isinstance(ev, AttemptFinished) and ev.attempt == 4]
    assert final and final[0].log_path == ""


def test_argv_form_is_not_parsed_by_a_shell(run_pipeline):
    ran = run_pipeline(
        """
        version: 1
        name: argv
        steps:
          say: {run: ['${{ env.PY }}', '${{ env.SLEEPIT }}', echo, 'a  b', '$HOME', '; ls']}
        """
    )
    assert ran.status("say") is StepStatus.SUCCEEDED
    assert ran.log("say") == "a  b\n$HOME\n; ls\n"


def test_param_with_shell_syntax_is_passed_literally(run_pipeline, tmp_path):
    victim = tmp_path / "x"
    victim.mkdir()
    ran = run_pipeline(
        """
        version: 1
        name: inject
        params:
          msg: {type: string, default: hi}
        steps:
          say: {run: 'echo ${{ params.msg }}', cwd: .}
        """,
        overrides={"msg": "hello; rm -rf x"},
    )
    assert ran.status("say") is StepStatus.SUCCEEDED
    assert ran.log("say") == "hello; rm -rf x\n"
    assert victim.is_dir()


def test_step_environment_and_cwd(run_pipeline, tmp_path):
    (tmp_path / "sub").mkdir()
    ran = run_pipeline(
        """
        version: 1
        name: env
        env: {A: pipeline, B: pipeline}
        steps:
          show:
            run: 'echo "$A $B $FLOWCTL_STEP $FLOWCTL_ATTEMPT $(basename "$PWD")"'
            env: {B: step}
            cwd: sub
        """
    )
    assert ran.log("show") == "pipeline step show 1 sub\n"


def test_reused_steps_do_not_run(run_pipeline, tmp_path):
    ran = run_pipeline(
        f"""
        version: 1
        name: reuse
        steps:
          a: {{run: 'touch {tmp_path}/a-ran'}}
          b: {{run: 'true', needs: [a]}}
        """,
        reuse={"a": Reuse(StepStatus.REUSED, "succeeded in run X, fingerprint unchanged", "f00")},
    )
    assert not (tmp_path / "a-ran").exists()
    assert ran.status("a") is StepStatus.REUSED and ran.finished("a").reason.startswith("succeeded in run X")
    assert ran.status("b") is StepStatus.SUCCEEDED
    assert ran.result.status is RunStatus.SUCCEEDED


def test_a_reused_chain_given_in_plan_order_runs_nothing(run_pipeline, tmp_path):
    """A reused step whose reused upstream is finished first must not be taken for ready."""
    ran = run_pipeline(
        f"""
        version: 1
        name: chain
        steps:
          a: {{run: 'touch {tmp_path}/a-ran'}}
          b: {{run: 'touch {tmp_path}/b-ran', needs: [a]}}
          c: {{run: 'touch {tmp_path}/c-ran', needs: [b]}}
        """,
        reuse={
            "a": Reuse(StepStatus.REUSED, "unchanged", "fa"),
            "b": Reuse(StepStatus.UP_TO_DATE, "outputs match", "fb"),
        },
    )
    assert not (tmp_path / "a-ran").exists() and not (tmp_path / "b-ran").exists()
    assert (tmp_path / "c-ran").exists()
    assert [ran.status(s) for s in "abc"] == [StepStatus.REUSED, StepStatus.UP_TO_DATE, StepStatus.SUCCEEDED]


def test_missing_command_is_an_error_outcome(run_pipeline):
    ran = run_pipeline(
        """
        version: 1
        name: missing
        steps:
          nope: {run: [definitely-not-a-command-3fa1]}
        """
    )
    fin = next(ev for ev in ran.events if isinstance(ev, AttemptFinished))
    assert fin.outcome is AttemptOutcome.ERROR and "definitely-not-a-command-3fa1" in (fin.error or "")
    assert ran.status("nope") is StepStatus.FAILED


def test_secrets_are_masked_even_split_across_writes(run_pipeline):
    ran = run_pipeline(
        f"""
        version: 1
        name: secret
        env: {{TOKEN: s3cr3t-value}}
        secret_env: [TOKEN]
        steps:
          leak: {{run: '{S} split s3cr 3t-value; echo "$TOKEN"'}}
        """,
        stream=True,
    )
    log = ran.log("leak")
    assert "s3cr3t" not in log and log == "***\n***\n"
    assert ran.output == [("leak", "***"), ("leak", "***")]
    started = next(ev for ev in ran.events if isinstance(ev, AttemptStarted))
    assert "s3cr3t" not in started.command


def test_interrupt_cancels_running_steps(run_pipeline):
    def arm(scheduler):
        threading.Timer(0.3, scheduler.interrupt).start()

    started = time.monotonic()
    ran = run_pipeline(
        """
        version: 1
        name: intr
        steps:
          long: {run: 'sleep 30'}
          next: {run: 'true', needs: [long]}
        """,
        on_start=arm,
    )
    assert time.monotonic() - started < 5
    assert ran.result.status is RunStatus.INTERRUPTED
    assert ran.status("long") is StepStatus.CANCELLED and ran.status("next") is StepStatus.CANCELLED


def test_store_records_before_sinks_see_step_finished(tmp_path):
    from flowctl.run.memory import MemoryRunStore
    from tests.run.conftest import run_text

    store = MemoryRunStore()
    seen = []

    def check(event):
        if isinstance(event, StepFinished):
            seen.append(store.steps[event.step].finished is event and store.flushes > 0)

    text = "version: 1\nname: s\nsteps:\n  a: {run: 'true'}\n  b: {run: 'true', needs: [a]}\n"
    run_text(tmp_path, text, emit=check, store=store)
    assert seen == [True, True]


def test_run_ids_sort_by_start_time():
    a = new_run_id(1_700_000_000)
    b = new_run_id(1_700_000_001)
    assert a < b and len(a) == len("20231114T221320-3fa1") and a.startswith("20231114T221320-")

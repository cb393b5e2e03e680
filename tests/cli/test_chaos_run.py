"""``flowctl run --chaos`` end to end (issue 17): the same seed injects the same faults twice and
at any concurrency, the runner kills itself exactly where asked and the resume finishes, injected
faults are recorded as such and left out of the real error rate, and the settings are checked."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import run_flowctl


def pipeline(folder: Path, steps: int = 30, retries: int = 3, extra: str = "") -> Path:
    lines = ["version: 1", "name: chaotic", extra, "steps:"]
    for i in range(steps):
        needs = f", needs: [s{i // 2 - 1}]" if i >= 2 else ""
        lines.append(f"  s{i}: {{run: \"echo $FLOWCTL_CHAOS-{i} >> seen.txt\", retries: {retries}, retry_delay: 0{needs}}}")
    path = folder / "pipeline.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def injected(folder: Path) -> list[tuple[str, int, str]]:
    with sqlite3.connect(folder / ".flowctl" / "state.db") as conn:
        return [tuple(r) for r in conn.execute(  # type: ignore[misc]
            "SELECT step, attempt, injected FROM attempts WHERE injected != '' ORDER BY step, attempt")]


def run(folder: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    got = run_flowctl("run", "pipeline.yaml", "--no-progress", *args, cwd=folder, env=env, timeout=120)
    return got.returncode, got.stdout, got.stderr


SPEC = "fail=0.2,kill=0.1,delay=10ms@0.2,seed=1234"


def test_same_seed_twice_injects_byte_identical_faults_at_any_concurrency(tmp_path: Path) -> None:
    lists = []
    for name, jobs in (("one", "1"), ("two", "1"), ("wide", "8")):
        folder = tmp_path / name
        folder.mkdir()
        pipeline(folder)
        code, out, err = run(folder, "--chaos", SPEC, "-j", jobs)
        assert code == 0, out + err
        lists.append(injected(folder))
    assert lists[0], "the seed injected nothing: the test would prove nothing"
    assert {f for _, _, f in lists[0]} >= {"fail", "kill"}
    assert json.dumps(lists[0]).encode() == json.dumps(lists[1]).encode()
    assert set(lists[0]) == set(lists[2])


def test_kill_runner_once_kills_the_runner_exactly_once_and_the_resume_finishes(tmp_path: Path) -> None:
    pipeline(tmp_path, steps=6)
    code, _, _ = run(tmp_path, "--chaos", "kill-runner=1,max=1", "-j", "1")
    assert code == -9  # kill -9 of itself, right after committing s0's start
    assert injected(tmp_path) == [("s0", 1, "kill-runner")]
    code, out, err = run(tmp_path, "--resume", "-j", "1")  # the settings and the spent kill carry over
    assert code == 0, out + err
    assert injected(tmp_path) == [("s0", 1, "kill-runner")]
    shown = run_flowctl("show", "latest", "--json", cwd=tmp_path)
    detail = json.loads(shown.stdout)
    assert detail["run"]["chaos"] == "kill-runner=1,max=1,seed=0"
    assert detail["run"]["resumed_from"]


def test_a_runner_killing_itself_shows_what_led_there_and_how_to_go_on(tmp_path: Path) -> None:
    """Trial 17: with stdout a pipe or a file (cron, CI), a kill-runner run printed nothing at
    all: its lines were still in the turn's buffer when it died."""
    pipeline(tmp_path, steps=6)
    code, out, err = run(tmp_path, "--chaos", "kill-runner=1,max=1,steps=s2", "-j", "1")
    assert code == -9
    lines = out.splitlines()
    assert " RUN chaotic: 6 steps" in lines[0], out
    assert any(" OK s1 " in line for line in lines), out  # the turn before the kill is out too
    assert lines[-1].endswith(" START s2 (attempt 1/4, chaos: kill-runner)"), out
    assert "chaos kill-runner: the runner kills itself now" in err
    assert "continue with: flowctl run pipeline.yaml --resume" in err
    assert injected(tmp_path) == [("s2", 1, "kill-runner")]


def test_injected_failures_are_recorded_and_not_real_errors(tmp_path: Path) -> None:
    pipeline(tmp_path, steps=4, retries=5)
    code, out, err = run(tmp_path, "--chaos", "fail=1:rc=9,max=2,seed=3", "--metrics-file", "m.prom")
    assert code == 0, out + err
    assert "chaos: fail" in out  # the START line says so
    got = injected(tmp_path)
    assert [(s, n) for s, n, _ in got] == [(f"s{i}", n) for i in range(4) for n in (1, 2)]
    detail = json.loads(run_flowctl("show", "latest", "--json", cwd=tmp_path).stdout)
    attempts = [a for s in detail["steps"] for a in s["attempt_records"]]
    assert {(a["exit_code"], a["injected"]) for a in attempts} == {(9, "fail"), (0, "")}
    metrics = detail["metrics"]
    assert metrics["injected_faults"] == 8 and metrics["retries"] == 8  # they count toward retries
    assert metrics["failed_attempts"] == 0 and metrics["error_rate"] == 0.0  # but are no real error
    prom = (tmp_path / "m.prom").read_text()
    assert 'flowctl_last_run_failed_attempts{chaos="1",pipeline="chaotic"} 0.0' in prom
    assert 'flowctl_last_run_injected_faults{chaos="1",pipeline="chaotic"} 8.0' in prom


def test_the_pipeline_block_is_active_only_when_asked_and_the_variable_never_reaches_steps(tmp_path: Path) -> None:
    pipeline(tmp_path, steps=3, retries=4, extra='chaos: "fail=1,max=1,seed=5"')
    code, out, err = run(tmp_path)
    assert code == 0 and injected(tmp_path) == []  # a committed block never reaches a plain run
    code, out, err = run(tmp_path, "--chaos")
    assert code == 0, out + err
    assert len(injected(tmp_path)) == 3
    code, out, err = run(tmp_path, env={"FLOWCTL_CHAOS": "1"})
    assert code == 0 and len(injected(tmp_path)) == 6
    code, out, err = run(tmp_path, "--chaos", "kill=0", env={"FLOWCTL_CHAOS": "fail=1"})  # the flag wins
    assert code == 0 and len(injected(tmp_path)) == 6
    assert "fail=1" not in (tmp_path / "seen.txt").read_text()  # FLOWCTL_CHAOS is not passed on
    assert set((tmp_path / "seen.txt").read_text().split()) >= {"-0", "-1", "-2"}


@pytest.mark.parametrize(
    ("args", "extra", "words"),
    [
        (["--chaos", "fial=0.1"], "", "did you mean 'fail'?"),
        (["--chaos", "hang=0.1"], "", "have no timeout"),
        (["--chaos", "kill-worker=0.5"], "", "--executor dask"),
        (["--chaos"], "", "has none"),
        ([], 'chaos: "kil=0.1"', "did you mean 'kill'?"),
        (["--chaos", "fail=0.5,steps=s9*"], "", "steps=s9* matches no step of this run"),  # trial 17
        (["--chaos", "fail=0.5,steps=s00"], "", "did you mean steps=s0?"),
    ],
)
def test_bad_chaos_is_a_usage_error_before_anything_runs(tmp_path: Path, args: list[str], extra: str, words: str) -> None:
    pipeline(tmp_path, steps=2, extra=extra)
    code, out, err = run(tmp_path, *args)
    assert code == 2, out + err
    assert words in err
    assert not (tmp_path / "seen.txt").exists()
    if extra:
        assert "pipeline.yaml:3:8" in err  # the chaos: value's position


@pytest.mark.parametrize(
    ("env", "args", "words"),
    [
        ({"FLOWCTL_CHAOS": "fial=0.1"}, [], "flowctl: error: FLOWCTL_CHAOS: unknown key 'fial'"),
        ({"FLOWCTL_CHAOS": "hang=0.1"}, [], "FLOWCTL_CHAOS: hang=0.1 needs a timeout on every step it may hang, "
                                            "and steps s0, s1 have no timeout"),
        ({"FLOWCTL_CHAOS": "fail=0.1"}, ["--chaos", "fial=1"], "flowctl: error: --chaos: unknown key 'fial'"),
    ],
)
def test_errors_name_where_the_chaos_came_from(tmp_path: Path, env: dict[str, str], args: list[str], words: str) -> None:
    """Trial of main: a bad FLOWCTL_CHAOS was reported as "--chaos"."""
    pipeline(tmp_path, steps=2)
    code, out, err = run(tmp_path, *args, env=env)
    assert code == 2, out + err
    assert words in err
    assert "add `timeout: 5m`" in err if "hang" in words else True

"""``flowctl bench`` end to end: real ``flowctl bench`` processes running real ``flowctl run``s.

The load test's pipeline has 20 steps that contend for one shared resource (a ``flock`` on a file
outside the working copies, as steps of concurrent runs would contend for one database): under
``--parallel 4`` every step waits for the lock behind the other executions' steps, so each run's
``-j 2`` slots stay busy about four times as long and its queued steps wait about four times as
long. The difference is structural, not timing luck on a busy machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, flowctl_env, run_flowctl

CONTENDED = "version: 1\nname: contended\nparams:\n  shared: {type: string}\nenv:\n  SHARED: ${{ params.shared }}\nsteps:\n" + "".join(
    f"  s{n:02d}: {{run: 'flock \"$SHARED/lock\" sh -c \"pwd >> $SHARED/ledger; sleep 0.02\"'}}\n" for n in range(1, 21)
)

NAP = textwrap.dedent(
    """
    version: 1
    name: nap
    params:
      t: {type: number, default: 0.01}
    steps:
      a: {run: 'sleep ${{ params.t }}'}
      b: {run: 'sleep ${{ params.t }}'}
      c:
        needs: [a, b]
        run: 'mkdir -p out && echo c > out/c.txt && sleep ${{ params.t }}'
        outputs: [out/c.txt]
    """
).lstrip()


def bench(*args: str, cwd: Path, timeout: float = 240, tmp: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``flowctl bench ARGS``; ``tmp``: its TMPDIR, where the working copies go."""
    env = {"TMPDIR": str(tmp)} if tmp is not None else None
    return run_flowctl("bench", *args, "--no-progress", cwd=cwd, timeout=timeout, env=env)


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    points = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals], key=lambda p: (p[0], p[1]))
    depth = best = 0
    for _, delta in points:
        depth += delta
        best = max(best, depth)
    return best


def test_parallel_executions_are_bounded_isolated_and_queue_longer(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "contended.yaml").write_text(CONTENDED)
    shared = tmp_path / "shared"
    shared.mkdir()
    export = tmp_path / "load.json"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    loaded = bench(
        "contended.yaml", "--runs", "8", "--parallel", "4", "-j", "2", "-p", f"shared={shared}",
        "--keep-state", "--export-json", str(export), cwd=project, tmp=scratch,
    )
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    result = json.loads(export.read_text())
    runs = result["runs"]
    assert len(runs) == 8 and [r["index"] for r in runs] == list(range(1, 9))
    assert all(r["status"] == "succeeded" and r["steps_completed"] == 20 for r in runs)
    # at most 4 at once, by the runs' recorded start and end (and by the processes' lifetimes)
    recorded = [(r["run_started_at"], r["run_finished_at"]) for r in runs]
    assert 2 <= most_at_once(recorded) <= 4
    assert most_at_once([(r["started_at"], r["finished_at"]) for r in runs]) <= 4
    # none sharing state: each kept state folder records its one run, and only that one
    from flowctl.state.views import recent_runs

    folders = [r["state_dir"] for r in runs]
    assert len(set(folders)) == 8 and all(f.startswith(result["kept_state"]) for f in folders)
    assert [[x.run_id for x in recent_runs(f)] for f in folders] == [[r["run_id"]] for r in runs]
    assert result["kept_state"] in loaded.stdout  # it says where
    assert not (project / ".flowctl" / "state.db").exists()  # the project's own history is untouched
    # ... nor a working copy: every execution's 20 steps ran in a folder of their own
    cwds = (shared / "ledger").read_text().split()
    assert len(cwds) == 160 and sorted({cwds.count(c) for c in set(cwds)}) == [20] and len(set(cwds)) == 8
    assert all(c.startswith(str(scratch)) for c in cwds)
    assert list(scratch.iterdir()) == []  # and the copies are gone
    # the same load one execution at a time queues far less
    alone = tmp_path / "alone.json"
    serial = bench(
        "contended.yaml", "--runs", "2", "--parallel", "1", "-j", "2", "-p", f"shared={shared}",
        "--export-json", str(alone), cwd=project,
    )
    assert serial.returncode == 0, serial.stdout + serial.stderr
    p99_loaded = result["aggregate"]["queue_wait"]["p99"]
    p99_alone = json.loads(alone.read_text())["aggregate"]["queue_wait"]["p99"]
    assert p99_loaded > 1.5 * p99_alone, (p99_loaded, p99_alone)


def test_a_threshold_that_does_not_hold_exits_1_and_the_export_validates(tmp_path: Path) -> None:
    from jsonschema import Draft202012Validator

    (tmp_path / "nap.yaml").write_text(NAP)
    export = tmp_path / "nap.json"
    failed = bench("nap.yaml", "--runs", "2", "--threshold", "p99<1ms", "--threshold", "error_rate < 1%",
                   "--export-json", str(export), cwd=tmp_path)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "FAIL  p99<1ms" in failed.stdout and "PASS  error_rate < 1%" in failed.stdout
    document = json.loads(export.read_text())
    schema = json.loads((REPO / "schemas" / "bench-result.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    assert list(Draft202012Validator(schema).iter_errors(document)) == []
    assert document["passed"] is False and [t["passed"] for t in document["thresholds"]] == [False, True]
    # every step ran in every execution: a fresh state each time, so nothing was up to date
    assert [r["steps_completed"] for r in document["runs"]] == [3, 3]
    assert not (tmp_path / "out").exists()  # the outputs landed in the working copies
    held = bench("nap.yaml", "--runs", "1", "--threshold", "step.p99 < 1m", "--format", "json", cwd=tmp_path)
    assert held.returncode == 0, held.stderr
    assert json.loads(held.stdout)["thresholds"][0]["passed"] is True


def test_chaos_is_passed_to_every_execution_and_its_faults_counted_apart_from_errors(tmp_path: Path) -> None:
    from jsonschema import Draft202012Validator

    retried = NAP.replace("a: {run:", "a: {retries: 3, retry_delay: 0, run:").replace("b: {run:", "b: {retries: 3, retry_delay: 0, run:")
    (tmp_path / "nap.yaml").write_text(retried)
    export = tmp_path / "chaos.json"
    got = bench("nap.yaml", "--runs", "3", "--chaos", "fail=1,max=2,steps=[ab]", "--export-json", str(export), cwd=tmp_path)
    assert got.returncode == 0, got.stdout + got.stderr
    assert "12 injected faults (not errors)" in got.stdout  # a and b fail twice in each of 3 executions
    document = json.loads(export.read_text())
    schema = json.loads((REPO / "schemas" / "bench-result.schema.json").read_text())
    assert list(Draft202012Validator(schema).iter_errors(document)) == []
    aggregate = document["aggregate"]
    assert aggregate["injected_faults"] == 12 and aggregate["retries"] == 12
    assert aggregate["failed_attempts"] == 0 and aggregate["error_rate"] == 0.0
    assert document["settings"]["chaos"] == "fail=1,max=2,steps=[ab]"


def test_the_shipped_schema_is_the_repository_one_and_has_titles() -> None:
    shipped = REPO / "flowctl" / "schemas" / "bench-result.schema.json"
    repo = REPO / "schemas" / "bench-result.schema.json"
    assert shipped.read_bytes() == repo.read_bytes(), "copy one over the other"
    schema = json.loads(repo.read_text())
    assert schema["$id"] == "https://flowctl.dev/schemas/bench-result.schema.json"
    assert schema["title"] and schema["description"]
    assert all("description" in v or "$ref" in v for v in schema["properties"].values())


def test_compare_marks_a_regression_and_calls_a_rerun_no_change(tmp_path: Path) -> None:
    (tmp_path / "nap.yaml").write_text(NAP)
    base = tmp_path / "base.json"
    first = bench("nap.yaml", "--runs", "4", "-p", "t=0.05", "--export-json", str(base), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    slower = bench("nap.yaml", "--runs", "4", "-p", "t=0.5", "--compare", str(base), "--format", "json", cwd=tmp_path)
    assert slower.returncode == 0, slower.stderr
    comparison = json.loads(slower.stdout)["comparison"]
    deltas = {d["figure"]: d for d in comparison["deltas"]}
    # each step sleeps 10x longer: its latency is a regression whatever start-up noise does to
    # the wall time on a busy machine (which still grew)
    assert deltas["latency_p50"]["verdict"] == deltas["latency_p99"]["verdict"] == "regression"
    assert deltas["wall"]["change"] > 0 and deltas["wall"]["verdict"] != "improvement"
    assert comparison["verdict"] in ("regression", "mixed")
    assert "parameters differ: t=0.05 then, t=0.5 now" in comparison["notes"]
    # a threshold relative to the baseline: 10x slower steps are over 2x the baseline's p99
    relative = bench("nap.yaml", "--runs", "2", "-p", "t=0.5", "--compare", str(base), "--threshold", "p99 < 2x baseline", cwd=tmp_path)
    assert relative.returncode == 1 and "FAIL  p99 < 2x baseline" in relative.stdout


def test_an_identical_rerun_is_no_change(tmp_path: Path) -> None:
    """Two identical benchmarks are "no change". They run side by side, so both see the same
    machine: run one after the other on a shared 2-core machine, the wall time of Python's
    start-up follows whatever else runs at that moment (1.10 s ± 0.14 then 0.82 s ± 0.04 in one
    trial), and the comparison rightly reports that the machine changed. The comparison itself
    is the one ``--compare`` prints (``compare`` on the two exports, ``render`` its lines)."""
    from flowctl.benchmark.compare import compare, load_baseline
    from flowctl.benchmark.render import comparison_lines

    (tmp_path / "nap.yaml").write_text(NAP)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "flowctl", "bench", "nap.yaml", "--runs", "5", "-p", "t=0.05",
             "--export-json", name, "--no-progress"],
            cwd=tmp_path, env=flowctl_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        for name in ("first.json", "second.json")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    first, second = load_baseline(str(tmp_path / "first.json")), load_baseline(str(tmp_path / "second.json"))
    same = compare(first, second.per_run, pipeline="nap", settings=dict(first.settings), environment=dict(first.environment))
    lines = comparison_lines(same)
    assert same.verdict == "no change", "\n".join(lines)
    assert lines[-1] == "  overall: ~ no change" and same.notes == ()


@pytest.mark.parametrize(
    ("args", "message", "hint"),
    [
        (["--threshold", "p999 < 1s"], "--threshold 'p999 < 1s': unknown threshold subject 'p999'", "did you mean 'p99'?"),
        (["--threshold", "step.c.duraton < 1s"], "'step.c.duraton' is not a step subject", "step.<id>.duration"),
        (["--threshold", "step.cc.duration < 1s"], "unknown step 'cc' in threshold", "did you mean 'c'?"),
        (["--threshold", "p99 < 2x baseline"], "'x baseline' needs a baseline", "--compare FILE"),
        (["-p", "tt=1"], "tt", "did you mean 't'"),
        (["--compare", "missing.json"], "--compare missing.json: no such file", "--export-json"),
        (["--format", "yaml"], "--format 'yaml' is not one of: text, json, markdown", None),
        (["--chaos", "fial=0.1"], "unknown key 'fial'", "did you mean 'fail'?"),
        (["--chaos", "kill-runner=0.1"], "kill-runner would stop an execution", "chaos soak"),
    ],
)
def test_usage_errors_exit_2_before_anything_runs(tmp_path: Path, args: list[str], message: str, hint: str | None) -> None:
    (tmp_path / "nap.yaml").write_text(NAP)
    got = bench("nap.yaml", *args, cwd=tmp_path, timeout=60)
    assert got.returncode == 2, got.stdout + got.stderr
    assert message in got.stderr and "Traceback" not in got.stderr
    if hint is not None:
        assert hint in got.stderr
    assert got.stdout == "" and not (tmp_path / ".flowctl").exists()


def test_a_file_that_is_no_export_cannot_be_a_baseline(tmp_path: Path) -> None:
    (tmp_path / "nap.yaml").write_text(NAP)
    (tmp_path / "other.json").write_text('{"runs": []}')
    got = bench("nap.yaml", "--compare", "other.json", cwd=tmp_path, timeout=60)
    assert got.returncode == 2 and "not a flowctl bench export" in got.stderr


def test_markdown_and_failed_runs(tmp_path: Path) -> None:
    (tmp_path / "flaky.yaml").write_text(
        "version: 1\nname: flaky\nsteps:\n  ok: {run: 'true'}\n  bad: {run: 'exit 3', retries: 1, retry_delay: 10ms}\n"
    )
    got = bench("flaky.yaml", "--runs", "2", "--format", "markdown", "--threshold", "error_rate < 1%", cwd=tmp_path)
    assert got.returncode == 1, got.stderr
    out = got.stdout
    assert out.startswith("## Benchmark of `flaky`")
    assert "| wall time |" in out and "| step latency |" in out and "### Runs" in out
    assert "| FAIL | `error_rate < 1%` | 66.7% |" in out  # 4 of 6 attempts failed
    assert "2/2 runs failed; 2 retries" in out
    assert got.stderr.count("DONE  run") == 2 and "exit 1" in got.stderr  # plain progress on stderr


def test_interrupting_the_benchmark_stops_every_execution(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    (tmp_path / "hang.yaml").write_text(
        "version: 1\nname: hang\nparams:\n  marks: {type: string}\nenv:\n  MARKS: ${{ params.marks }}\n"
        "steps:\n  wait: {run: 'echo $$ > \"$MARKS/$(mktemp -u XXXXXX)\"; exec sleep 60'}\n"
    )
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "flowctl", "bench", "hang.yaml", "--runs", "4", "--parallel", "2", "-p", f"marks={marks}", "--no-progress"],
        cwd=tmp_path, env=flowctl_env({"TMPDIR": str(scratch)}), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while len(list(marks.iterdir())) < 2:  # both executions' steps are running
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert len(list(marks.iterdir())) == 2  # no execution started after the signal
    for mark in marks.iterdir():
        pid = int(mark.read_text())
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert "Traceback" not in err
    assert "flowctl: error: bench interrupted after 0 of 4 run(s)" in err  # trial 17: it said nothing
    assert list(scratch.iterdir()) == []  # working copies and scratch state removed

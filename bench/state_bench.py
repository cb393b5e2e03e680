"""Benchmark the state store (issue 5, "Speed").

1. Recording cost: a 1,000-step run (W1: 1,000 independent ``true`` steps at concurrency 2;
   W2: a chain of 1,000) with the SQLite state on (lock, fingerprints, decisions, every event
   checkpointed) versus the same run with a no-op store. Both run the real scheduler, local
   executor and plain output (to /dev/null) in a fresh process per repetition; the time is from
   the prepared run to the end of the run. Bar: ratio <= 1.15.
   Also the store alone: recording the events of a 1,000-step run (one flush per step, as the
   scheduler flushes once per turn) in this process, per step.
2. Resume of a finished 1,000-step run (nothing to do): wall time of ``flowctl run --resume``
   as a real process, minus start-up (``flowctl --version``). Bar: < 0.5 s beyond start-up.

Usage: python bench/state_bench.py [--reps 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
ENV = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}


def write_pipeline(path: Path, kind: str) -> None:
    lines = ["version: 1", f"name: {kind.lower()}", "steps:"]
    for i in range(1000):
        need = f", needs: [s{i - 1}]" if kind == "W2" and i else ""
        lines.append(f"  s{i}: {{run: 'true'{need}}}")
    path.write_text("\n".join(lines) + "\n")


def child(mode: str, pipeline: str, state_dir: str) -> None:
    """One run in this process; prints the seconds from the prepared run to its end."""
    sys.path.insert(0, str(REPO))
    from flowctl.cli._run_state import run_options
    from flowctl.observe.plain import PlainSink
    from flowctl.run.executors.local import LocalExecutor
    from flowctl.run.prepare import prepare_run
    from flowctl.run.scheduler import RunOptions, Scheduler, new_run_id
    from flowctl.state.session import open_session
    from flowctl.state.store import NullRunStore

    prepared = prepare_run(pipeline)
    sink = PlainSink(open(os.devnull, "w"))  # noqa: SIM115 - open for the whole benchmark
    start, cpu = time.perf_counter(), time.process_time()
    run_id = new_run_id()
    logs = os.path.join(state_dir, "runs", run_id)
    session = open_session(state_dir, prepared, run_id, environ=os.environ) if mode == "sqlite" else None
    store = session.store if session is not None else NullRunStore()
    executor = LocalExecutor()
    try:
        Scheduler(
            prepared.plan, prepared.invocations, executor, store, sink,
            RunOptions(logs_dir=logs, concurrency=2, environ=os.environ, **run_options(session)),
            remediations=prepared.remediations, run_id=run_id,
        ).run()
    finally:
        executor.close()
        if session is not None:
            session.close()
    print(f"{time.perf_counter() - start:.4f} {time.process_time() - cpu:.4f}")


def store_alone(reps: int) -> float:
    """Median seconds to record a 1,000-step run's events with a flush per step."""
    sys.path.insert(0, str(REPO))
    from flowctl.run.events import (
        AttemptFinished,
        AttemptOutcome,
        AttemptStarted,
        RunFinished,
        RunId,
        RunStarted,
        RunStatus,
        StepFinished,
        StepReady,
        StepStatus,
    )
    from flowctl.state.store import SqliteRunStore

    rid = RunId("bench")
    steps = tuple(f"s{i}" for i in range(1000))
    times = []
    for _ in range(reps):
        with tempfile.TemporaryDirectory() as state:
            store = SqliteRunStore(state)
            start = time.perf_counter()
            store.record(RunStarted(rid, "bench", time.time(), steps))
            store.flush()
            for sid in steps:
                now = time.time()
                store.record(StepReady(rid, sid, now))
                store.record(AttemptStarted(rid, sid, 1, now, fingerprint="f" * 32, log_path=f"/l/{sid}/1.log"))
                store.record(AttemptFinished(rid, sid, 1, now, AttemptOutcome.OK, exit_code=0, duration=0.001))
                store.record(StepFinished(rid, sid, StepStatus.SUCCEEDED, now, attempts=1, duration=0.001))
                store.flush()
            store.record(RunFinished(rid, time.time(), RunStatus.SUCCEEDED))
            store.close()
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def timed_child(mode: str, pipeline: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of flowctl's own process) of one run."""
    with tempfile.TemporaryDirectory() as state:
        out = subprocess.run(
            [PY, __file__, "--child", mode, str(pipeline), state], env=ENV, capture_output=True, text=True, check=True
        )
    wall_s, cpu_s = out.stdout.strip().splitlines()[-1].split()
    return float(wall_s), float(cpu_s)


def wall(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run([PY, "-m", "flowctl", *args], cwd=cwd, env=ENV, capture_output=True, check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--child", nargs=3, metavar=("MODE", "PIPELINE", "STATE"))
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    rows = []
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for kind in ("W1", "W2"):
            path = folder / f"{kind}.yaml"
            write_pipeline(path, kind)
            times: dict[str, list[tuple[float, float]]] = {"null": [], "sqlite": []}
            for _ in range(args.reps):  # alternate, so drift hits both alike
                for mode in ("null", "sqlite"):
                    times[mode].append(timed_child(mode, path))
            null = statistics.median(w for w, _ in times["null"])
            sql = statistics.median(w for w, _ in times["sqlite"])
            null_cpu = statistics.median(c for _, c in times["null"])
            sql_cpu = statistics.median(c for _, c in times["sqlite"])
            ratio = sql / null
            ok &= ratio <= 1.15
            rows.append((f"{kind} 1,000 steps: no-op store", f"{null:.3f}s", f"flowctl CPU {null_cpu:.3f}s"))
            rows.append((f"{kind} 1,000 steps: SQLite state", f"{sql:.3f}s",
                         f"ratio {ratio:.3f} (bar 1.15); flowctl CPU {sql_cpu:.3f}s, ratio {sql_cpu / null_cpu:.3f}"))
        alone = store_alone(args.reps)
        rows.append(("store alone: record a 1,000-step run, a flush per step", f"{alone:.3f}s",
                     f"{alone * 1000:.0f}us per step"))
        path = folder / "W1.yaml"
        subprocess.run([PY, "-m", "flowctl", "run", str(path), "-j", "2"], cwd=folder, env=ENV,
                       capture_output=True, check=True)
        startup = statistics.median(wall(["--version"], folder) for _ in range(args.reps))
        resume = statistics.median(wall(["run", str(path), "--resume"], folder) for _ in range(args.reps))
        dry = statistics.median(wall(["run", str(path), "--dry-run"], folder) for _ in range(args.reps))
        beyond = resume - startup
        ok &= beyond < 0.5
        rows.append(("start-up (flowctl --version)", f"{startup:.3f}s", ""))
        rows.append(("load + plan (run --dry-run), for reference", f"{dry:.3f}s", ""))
        rows.append(("resume of a finished 1,000-step run", f"{resume:.3f}s",
                     f"{beyond:.3f}s beyond start-up (bar 0.5s); {resume - dry:.3f}s beyond load + plan"))
    width = max(len(r[0]) for r in rows)
    print(f"{'measurement':<{width}}  {'median':>8}  note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>8}  {note}")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

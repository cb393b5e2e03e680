"""Benchmark ``flowctl run --executor dask`` on a 2-worker LocalCluster (issue 16, "Bench").

D1: 1,000 independent ``true`` steps, on 2 workers x 1 thread vs ``--executor local -j 2`` (two
slots each). The per-attempt overhead is the extra wall time per attempt of the run itself:
``(dask - local) / 1000``, in ms (target < 5 ms). "slot time" is that overhead times the two slots:
how much longer each attempt holds a slot. "bare Dask" is the simplest honest Dask runner on the
same kind of cluster (each task runs ``subprocess.run(["true"])``, as many in flight as flowctl
keeps: two per thread), to tell Dask's own cost per task from flowctl's on top of it.
D2: 200 x ``sleep 0.5`` on 2 workers x 4 threads: the run's wall time against the ideal 12.5 s
(200 x 0.5 s / 8 slots); target within 1.2x.
D3, a 10,000-item foreach (batched), waits for the foreach feature (issue 15).

Times are the run's own (``runs.duration`` in the state database: the run's first event to its
last), so the cluster's start and stop, a fixed cost of a few seconds per command that a shared
scheduler does not have, are reported apart ("cluster start+stop": the command's wall time minus
the run's). Executors take turns within each repetition, so a busy machine slows them alike;
medians of ``--reps``. Usage: python bench/dask_bench.py [--reps 3] [--only D1,D2]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def write(path: Path, name: str, steps: int, command: str) -> Path:
    lines = ["version: 1", f"name: {name}", "steps:"]
    lines += [f"  s{i}: {{run: '{command}'}}" for i in range(steps)]
    path.write_text("\n".join(lines) + "\n")
    return path


def run(pipeline: Path, *args: str) -> tuple[float, float]:
    """(the command's wall time, the run's own duration from the state database)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO)
    env.pop("FLOWCTL_STATE_DIR", None)
    with open(pipeline.parent / "out.txt", "wb") as out:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "flowctl", "run", str(pipeline), "--force", *args], check=False,
                              cwd=pipeline.parent, stdout=out, stderr=subprocess.STDOUT, env=env)
        wall = time.perf_counter() - start
    if done.returncode != 0:
        tail = (pipeline.parent / "out.txt").read_text(errors="replace").splitlines()[-40:]
        raise SystemExit(f"flowctl run {' '.join(args)} failed ({done.returncode}):\n" + "\n".join(tail))
    with sqlite3.connect(pipeline.parent / ".flowctl" / "state.db") as conn:
        (duration,) = conn.execute("SELECT duration FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()
    return wall, float(duration)


def _true(_: int) -> int:
    return subprocess.run(["true"], check=False).returncode


def bare_dask(tasks: int, workers: int, threads: int) -> float:
    """Seconds for ``tasks`` tasks that each run ``true``, in flight two per thread (no flowctl)."""
    import logging

    from distributed import Client, LocalCluster, as_completed

    with LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True, host="127.0.0.1",
                      dashboard_address=":0", memory_limit=0, silence_logs=logging.CRITICAL,
                      scheduler_kwargs={"allowed_failures": 0}) as cluster, Client(cluster) as client:
        start = time.perf_counter()
        window = as_completed()
        sent = 0
        for _ in range(min(tasks, 2 * workers * threads)):
            window.add(client.submit(_true, sent, pure=False))
            sent += 1
        for future in window:
            future.result()
            if sent < tasks:
                window.add(client.submit(_true, sent, pure=False))
                sent += 1
        return time.perf_counter() - start


def bare(tasks: int, workers: int, threads: int) -> float:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run([sys.executable, __file__, "--bare-dask", f"{tasks},{workers},{threads}"], env=env,
                          capture_output=True, text=True, check=True)
    return float(done.stdout.split()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", default="D1,D2")
    parser.add_argument("--bare-dask", metavar="TASKS,WORKERS,THREADS", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.bare_dask:
        print(bare_dask(*(int(x) for x in opts.bare_dask.split(","))))
        return 0
    chosen = set(opts.only.split(","))
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if "D1" in chosen:
            folder = root / "d1"
            folder.mkdir()
            path = write(folder / "d1.yaml", "d1", 1000, "true")
            local: list[tuple[float, float]] = []
            dask: list[tuple[float, float]] = []
            plain: list[float] = []
            for _ in range(opts.reps):
                local.append(run(path, "--executor", "local", "-j", "2"))
                dask.append(run(path, "--executor", "dask", "--dask-workers", "2", "--dask-threads", "1"))
                plain.append(bare(1000, 2, 1))
            loc = statistics.median(d for _, d in local)
            dsk = statistics.median(d for _, d in dask)
            bar = statistics.median(plain)
            fixed = statistics.median(w - d for w, d in dask)
            per = (dsk - loc) / 1000 * 1000
            rows.append(f"D1  1,000 x true, 2 slots   local {loc:6.2f}s  dask {dsk:6.2f}s  ({dsk / loc:.2f}x)  "
                        f"overhead {per:.2f} ms/attempt (target < 5), slot time {2 * per:.2f} ms  "
                        f"[cluster start+stop {fixed:.1f}s]  {'ok' if per < 5 else 'OVER'}")
            rows.append(f"    bare Dask, same cluster   {bar:6.2f}s  ({(bar - loc) / 1000 * 1000:.2f} ms/task over local: "
                        f"Dask's own share; flowctl on top of it {(dsk - bar) / 1000 * 1000:.2f} ms/attempt, "
                        f"{dsk / bar:.2f}x bare Dask)")
        if "D2" in chosen:
            folder = root / "d2"
            folder.mkdir()
            path = write(folder / "d2.yaml", "d2", 200, "sleep 0.5")
            dask = [run(path, "--executor", "dask", "--dask-workers", "2", "--dask-threads", "4") for _ in range(opts.reps)]
            dsk = statistics.median(d for _, d in dask)
            wall = statistics.median(w for w, _ in dask)
            ideal = 200 * 0.5 / 8
            rows.append(f"D2  200 x sleep 0.5, 2x4     dask {dsk:6.2f}s  ideal {ideal:.2f}s  ({dsk / ideal:.2f}x, target 1.2x)  "
                        f"[whole command {wall:.1f}s: {wall / ideal:.2f}x]  {'ok' if dsk / ideal <= 1.2 else 'OVER'}")
    load = os.getloadavg()[0]
    print(f"flowctl run --executor dask, medians of {opts.reps}, {os.cpu_count()} CPUs, load average {load:.1f}")
    for row in rows:
        print(row)
    print("D3  10,000-item foreach (batched): waits for the foreach feature (issue 15)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

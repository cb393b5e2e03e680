"""Where ``flowctl run``'s time goes, per step, beside the reference runner (issue 14).

Runs W1 (1,000 independent ``true`` steps at concurrency 2; ``--steps`` to change) inside this
process, once with the reference runner (``bench/refrunner.py``) and once with ``flowctl run``
exactly as the command runs it (state and logs on, no TTY), and counts, per step, the CPU time
of the runner's own thread (``time.thread_time``: what a busy machine does to the wall clock
does not count, a child's time does not count) spent in each part of the run path, by wrapping
the functions that make up a step's life. It also times start-up (``W0``: one step, a fresh
process, ``os.wait4``'s CPU time) for both, and the imports ``flowctl run`` needs.

The parts nest (``submit`` includes ``spawn``): read the table as a tree. Usage:
    python bench/run_budget.py [--steps 1000] [--reps 3]
Figures go to docs/run-overhead.md by hand.
"""

from __future__ import annotations

import argparse
import compileall
import functools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
PY = sys.executable

# (label, module, attribute path): wrapped in this order; the label's indentation is the tree
PARTS = [
    ("before the loop: read, validate, plan, resolve", "flowctl.run.prepare", "prepare_run"),
    ("the scheduler's loop, all of it", "flowctl.run.scheduler", "Scheduler.run"),
    ("  scheduler: start a step (event, spec)", "flowctl.run.scheduler", "Scheduler._start"),
    ("  scheduler: a result (events, what it unblocks)", "flowctl.run.scheduler", "Scheduler._on_result"),
    ("  store: record events", "flowctl.state.store", "SqliteRunStore.record"),
    ("  store: flush (one transaction per turn)", "flowctl.state.store", "SqliteRunStore.flush"),
    ("  sinks: summary, plain lines, records", "flowctl.observe.fanout", "FanOut.__call__"),
    ("  executor: submit", "flowctl.run.executors.local", "LocalExecutor.submit"),
    ("    environment (base + additions)", "flowctl.run.executors.launch", "Launcher.environment"),
    ("    launcher: folder check, cd prefix", "flowctl.run.executors.launch", "Launcher.spawn"),
    ("      posix_spawn", "flowctl.run.procs", "spawn"),
    ("    pidfd_open", "flowctl.run.procs", "pidfd"),
    ("  executor: wait (epoll, reap, result)", "flowctl.run.executors.local", "LocalExecutor.wait"),
    ("    reap + result + sweep bookkeeping", "flowctl.run.executors.local", "LocalExecutor._finish"),
    ("after the loop: the run's metrics", "flowctl.observe.observer", "compute_run_metrics"),
]


class Meter:
    """Thread CPU time and calls per wrapped function."""

    def __init__(self) -> None:
        self.cpu: dict[str, int] = {}
        self.calls: dict[str, int] = {}

    def wrap(self, label: str, owner: object, name: str) -> None:
        original = getattr(owner, name)
        clock = time.thread_time_ns
        cpu, calls = self.cpu, self.calls
        cpu[label] = calls[label] = 0

        @functools.wraps(original)
        def timed(*args: object, **kwargs: object) -> object:
            t0 = clock()
            try:
                return original(*args, **kwargs)
            finally:
                cpu[label] += clock() - t0
                calls[label] += 1

        setattr(owner, name, timed)


def install(meter: Meter) -> None:
    import importlib

    for label, module, path in PARTS:
        owner: object = importlib.import_module(module)
        *outer, name = path.split(".")
        for part in outer:
            owner = getattr(owner, part)
        meter.wrap(label, owner, name)


def write_w1(folder: Path, steps: int) -> Path:
    path = folder / "p.yaml"
    lines = ["version: 1", "name: w1", "steps:"] + [f"  s{i}: {{run: 'true'}}" for i in range(steps)]
    path.write_text("\n".join(lines) + "\n")
    return path


def in_process_flowctl(path: Path, state: Path, meter: Meter | None) -> tuple[float, float]:
    """(thread CPU, wall) of one ``flowctl run`` in this process."""
    from flowctl.cli.app import main

    if meter is not None:
        install(meter)
    out = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(1)
    os.dup2(out, 1)
    t0, w0 = time.thread_time(), time.perf_counter()
    try:
        main(["run", str(path), "--concurrency", "2", "--no-progress", "--state-dir", str(state)])
    except SystemExit as exc:
        if exc.code:
            raise
    finally:
        cpu, wall = time.thread_time() - t0, time.perf_counter() - w0
        os.dup2(saved, 1)
        os.close(out)
        os.close(saved)
    return cpu, wall


def in_process_reference(path: Path) -> tuple[float, float]:
    from refrunner import run

    t0, w0 = time.thread_time(), time.perf_counter()
    failed = run(str(path), 2)
    assert failed == 0
    return time.thread_time() - t0, time.perf_counter() - w0


def startup_cpu(argv: list[str], cwd: Path) -> float:
    """CPU seconds (user + system) of a fresh process and what it waited for."""
    with open(os.devnull, "wb") as null:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=null, stderr=null)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, argv
    return usage.ru_utime + usage.ru_stime


def child(mode: str, path: str, state: str, steps: int) -> None:
    """One measurement in a fresh interpreter (imports and caches as a real run has them)."""
    meter = Meter() if mode == "flowctl-metered" else None
    if mode == "reference":
        cpu, wall = in_process_reference(Path(path))
    else:
        import gc

        gc.disable()  # as flowctl/__main__.py does
        cpu, wall = in_process_flowctl(Path(path), Path(state), meter)
    print(f"total {cpu * 1e6 / steps:.1f} {wall * 1e6 / steps:.1f}")
    if meter is not None:
        for label, _, _ in PARTS:
            n = meter.calls[label]
            print(f"part {meter.cpu[label] / 1e3 / steps:.1f} {n / steps:.2f} {label}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child, args.steps)
        return 0
    compileall.compile_dir(str(REPO / "flowctl"), quiet=1)
    compileall.compile_dir(str(REPO / "bench"), quiet=1)
    with tempfile.TemporaryDirectory(prefix="flowctl-budget-") as tmp:
        folder = Path(tmp)
        path = write_w1(folder, args.steps)
        w0 = folder / "w0"
        w0.mkdir()
        write_w1(w0, 1)
        seq = iter(range(10**6))

        def measure(mode: str) -> list[str]:
            out = subprocess.run([PY, __file__, "--steps", str(args.steps), "--child", mode, str(path),
                                  str(folder / f"state-{next(seq)}")], capture_output=True, text=True, check=True)
            return out.stdout.splitlines()

        totals: dict[str, list[tuple[float, float]]] = {"reference": [], "flowctl": []}
        parts: dict[str, list[float]] = {}
        calls: dict[str, float] = {}
        starts: dict[str, list[float]] = {"reference": [], "flowctl": []}

        def run_ref() -> list[str]:
            return [PY, str(REPO / "bench" / "refrunner.py"), "p.yaml", "1"]

        def run_flowctl() -> list[str]:
            return [PY, "-m", "flowctl", "run", "p.yaml", "--no-progress", "--state-dir", str(w0 / f"state-{next(seq)}")]

        for _ in range(args.reps):
            for mode in ("reference", "flowctl"):
                total = measure(mode)[0].split()
                totals[mode].append((float(total[1]), float(total[2])))
            for line in measure("flowctl-metered")[1:]:
                _, us, per, label = line.split(" ", 3)
                parts.setdefault(label, []).append(float(us))
                calls[label] = float(per)
            starts["reference"].append(startup_cpu(run_ref(), w0))
            starts["flowctl"].append(startup_cpu(run_flowctl(), w0))
    print(f"{args.steps} steps (W1), {args.reps} runs, load {os.getloadavg()[0]:.1f}; microseconds of the "
          "runner's own CPU per step (median, range)")
    for mode, rows in totals.items():
        cpu = [c for c, _ in rows]
        wall = [w for _, w in rows]
        print(f"{mode + ', the whole command in-process':<48}{statistics.median(cpu):>8.1f}  ({min(cpu):.0f}-{max(cpu):.0f})"
              f"   wall {statistics.median(wall):.0f} ({min(wall):.0f}-{max(wall):.0f})")
    for label, values in parts.items():
        print(f"{label:<48}{statistics.median(values):>8.1f}  ({min(values):.0f}-{max(values):.0f})"
              f"   {calls[label]:.2f} calls/step")
    for mode, values in starts.items():
        print(f"{'start-up and one step, ' + mode + ', ms CPU':<48}{statistics.median(values) * 1e3:>8.1f}"
              f"  ({min(values) * 1e3:.0f}-{max(values) * 1e3:.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark ``flowctl run`` against the simplest honest spawner (and make/ninja if installed).

Issue 4, "Speed": on generated pipelines of ``true`` steps — W1: 1,000 independent steps at
concurrency 2; W2: a chain of 1,000; W3: 20 layers of 50, each step needing the whole previous
layer (47,500 edges) — ``flowctl run`` with everything it records switched on (per-step logs,
the run store; no TTY) must take at most 1.5x the reference runner's wall time; W4 (``sleep
0.05`` x200 at concurrency 8) at most 1.15x. The reference (issue 14) is ``bench/refrunner.py``:
CSafeLoader, ``Popen(cmd, shell=True)`` per ready step, ``os.wait()``, nothing else. Prints one
table: every tool's median wall time, its ratio to the reference runner, and the range of the
ratio over the repetitions (each repetition's flowctl time over the same repetition's
reference time: the machine's mood moves both).

flowctl is measured as users have it, byte-compiled: ``compileall`` runs over the checkout(s)
first. Where ``PYTHONDONTWRITEBYTECODE`` is set (development and CI machines) an editable
install would otherwise compile every module from source at each start (about 0.1 s); with the
bytecode in place the variable changes nothing, so the environment is passed on as it is.

W0 (one step) shows the fixed start-up cost alone. Tools take turns within each repetition so
a busy machine slows them alike. ``--baseline DIR`` also times the flowctl of another checkout
(e.g. ``git worktree add /tmp/main main``) in the same turns, so what a change costs is a ratio
measured in one session (issue 12: saving results before starting what they unblock).
Usage: python bench/run_bench.py [--reps 5] [--only W1,W4] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import compileall
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
_seq = itertools.count()
REFERENCE = "reference (Popen+wait)"

# name -> (steps as (id, command, needs), concurrency, limit on the ratio)
Workload = tuple[list[tuple[str, str, list[str]]], int, float]


def workloads() -> dict[str, Workload]:
    w1 = [(f"s{i}", "true", []) for i in range(1000)]
    w2 = [(f"s{i}", "true", [f"s{i - 1}"] if i else []) for i in range(1000)]
    w3 = []
    for layer in range(20):
        prev = [f"l{layer - 1}_{j}" for j in range(50)] if layer else []
        w3 += [(f"l{layer}_{j}", "true", prev) for j in range(50)]
    w4 = [(f"s{i}", "sleep 0.05", []) for i in range(200)]
    w0 = [("only", "true", [])]  # start-up cost alone (no limit: informational)
    return {"W0": (w0, 1, 0.0), "W1": (w1, 2, 1.5), "W2": (w2, 2, 1.5), "W3": (w3, 2, 1.5), "W4": (w4, 8, 1.15)}


def write_yaml(path: Path, steps: list[tuple[str, str, list[str]]]) -> None:
    lines = ["version: 1", f"name: {path.stem.lower()}", "steps:"]
    for sid, cmd, needs in steps:
        need = f", needs: [{', '.join(needs)}]" if needs else ""
        lines.append(f"  {sid}: {{run: '{cmd}'{need}}}")
    path.write_text("\n".join(lines) + "\n")


def write_make(path: Path, steps: list[tuple[str, str, list[str]]]) -> None:
    lines = [".PHONY: all " + " ".join(s for s, _, _ in steps), "all: " + " ".join(s for s, _, _ in steps)]
    for sid, cmd, needs in steps:
        lines.append(f"{sid}: {' '.join(needs)}\n\t@{cmd}")
    path.write_text("\n".join(lines) + "\n")


def write_ninja(path: Path, steps: list[tuple[str, str, list[str]]]) -> None:
    lines = ["rule r", "  command = $cmd"]
    for sid, cmd, needs in steps:
        dep = f" | {' '.join(needs)}" if needs else ""
        lines.append(f"build {sid}: r{dep}\n  cmd = {cmd}")
    path.write_text("\n".join(lines) + "\n")


def timed(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    with open(cwd / "out.txt", "wb") as out:  # not a TTY, as under cron
        start = time.perf_counter()
        res = subprocess.run(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
        took = time.perf_counter() - start
    if res.returncode != 0:
        raise SystemExit(f"{argv[:4]} failed ({res.returncode}); see {cwd / 'out.txt'}")
    return took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--only", default="W0,W1,W2,W3,W4")
    ap.add_argument("--state-root", default=None, metavar="DIR",
                    help="Put flowctl's state folders (logs, SQLite) under DIR, e.g. /dev/shm, to see how much "
                    "of the time is the file system's (default: beside the workload)")
    ap.add_argument("--baseline", default=None, metavar="DIR",
                    help="Also time `flowctl run` from this checkout of flowctl, in the same turns")
    args = ap.parse_args()
    chosen = args.only.split(",")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("FLOWCTL_STATE_DIR", None)
    # An installed flowctl runs from bytecode (pip compiles at install time): compile this
    # checkout (and the baseline's) the same way, so no run measures the compiler.
    for tree in [REPO / "flowctl", REPO / "bench", *([Path(args.baseline) / "flowctl"] if args.baseline else [])]:
        compileall.compile_dir(str(tree), quiet=1)
    tools: dict[str, Callable[[Path, int], list[str]]] = {
        REFERENCE: lambda d, n: [PY, str(REPO / "bench" / "refrunner.py"), "p.yaml", str(n)],
        # A fresh state folder per run (state-<k>), deleted only at the end: deleting 1,000 log
        # folders between runs makes the disk busy (discards) just when the next run starts.
        "flowctl run": lambda d, n: [PY, "-m", "flowctl", "run", "p.yaml", "--concurrency", str(n),
                                     "--no-progress", "--state-dir", str(state_root(d) / f"state-{next(_seq)}")],
    }
    envs: dict[str, dict[str, str]] = {}
    if args.baseline:
        base = str(Path(args.baseline).resolve())
        tools["flowctl (baseline)"] = tools["flowctl run"]
        envs["flowctl (baseline)"] = {**env, "PYTHONPATH": os.pathsep.join([base, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    if shutil.which("make"):
        tools["make -jN"] = lambda d, n: ["make", "-s", f"-j{n}", "-f", "Makefile", "all"]
    if shutil.which("ninja"):
        tools["ninja -jN"] = lambda d, n: ["ninja", "-f", "build.ninja", f"-j{n}", "--quiet"]
    roots: list[Path] = []

    def state_root(d: Path) -> Path:
        if args.state_root is None:
            return d
        root = Path(args.state_root) / f"flowctl-bench-{os.getpid()}" / d.name
        if root not in roots:
            root.mkdir(parents=True, exist_ok=True)
            roots.append(root)
        return root

    results: dict[str, dict[str, float]] = {t: {} for t in tools}
    spread: dict[str, dict[str, tuple[float, float]]] = {t: {} for t in tools}  # ratio range
    limits: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="flowctl-bench-") as tmp:
        for name, (steps, conc, limit) in workloads().items():
            if name not in chosen:
                continue
            limits[name] = limit
            folder = Path(tmp) / name
            folder.mkdir()
            write_yaml(folder / "p.yaml", steps)
            write_make(folder / "Makefile", steps)
            write_ninja(folder / "build.ninja", steps)
            times: dict[str, list[float]] = {t: [] for t in tools}
            for tool, argv in tools.items():  # warm-up: bytecode, page cache
                timed(argv(folder, conc), folder, envs.get(tool, env))
            for _ in range(args.reps):  # tools take turns, so they share the machine's mood
                for tool, argv in tools.items():
                    if tool.startswith("ninja"):
                        for f in (".ninja_log", ".ninja_deps"):
                            (folder / f).unlink(missing_ok=True)
                    times[tool].append(timed(argv(folder, conc), folder, envs.get(tool, env)))
            for tool in tools:
                results[tool][name] = statistics.median(times[tool])
                ratios = [t / r for t, r in zip(times[tool], times[REFERENCE], strict=False)]
                spread[tool][name] = (min(ratios), max(ratios))
                print(f"  {name} {tool}: {results[tool][name]:.3f}s", file=sys.stderr)
    for root in roots:
        shutil.rmtree(root.parent, ignore_errors=True)
    names = list(limits)
    ref = results[REFERENCE]
    head = f"{'tool':<22}" + "".join(f"{n:>28}" for n in names)
    where = args.state_root or "beside the workload"
    print(f"Medians of {args.reps} runs, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} at the end "
          f"(seconds; ratio of medians, range of per-turn ratios); flowctl state under {where}")
    print(head)
    print("-" * len(head))
    for tool, row in results.items():
        cells = "".join(
            f"{row[n]:>8.3f} ({row[n] / ref[n]:.2f}x, {spread[tool][n][0]:.2f}-{spread[tool][n][1]:.2f})" for n in names
        )
        print(f"{tool:<22}{cells}")
    print(f"{'limit for flowctl':<22}" + "".join(f"{limits[n]:>27.2f}x" if limits[n] else f"{'-':>28}" for n in names))
    if args.baseline:
        ours, theirs = results["flowctl run"], results["flowctl (baseline)"]
        print(f"{'this / baseline':<22}" + "".join(f"{ours[n] / theirs[n]:>27.2f}x" for n in names))
    over = [n for n in names if limits[n] and results["flowctl run"][n] / ref[n] > limits[n]]
    print("flowctl within limits" if not over else f"flowctl OVER the limit on: {', '.join(over)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Every command is linear in the pipeline's size (issue 12): time and peak memory of each
command that reads a whole pipeline or a whole run, against ``flowctl validate`` on the same file.

Usage: python bench/commands_bench.py [--sizes 10000,100000] [--runs 3] [--keep DIR]

With ``--keep DIR`` the pipelines and their state stay in DIR, and a later run with the same
DIR measures the run recorded there instead of running the pipeline again.

For each size N it generates a pipeline of N steps with about 5N ``needs`` edges
(``validate_bench.generate_pipeline(..., runnable=True)``: params, env, retries, timeouts and
substitutions, every command a ``true``), then runs it for real once (``flowctl run``, plain
output; its time is printed for information) so that ``show`` has a run of N steps to read and
``--resume`` a finished run to continue. Then it measures, as whole processes, interleaved
(every command once per round, so a load spike on a shared machine hits all alike), after one
warm-up round, the median wall time, the median CPU time (user + system of the child) and the
highest peak resident memory (``ru_maxrss`` of the child) of:

  validate FILE · plan FILE · plan FILE --explain · run FILE --dry-run · show RUN ·
  show RUN --json · run FILE --resume (the run finished: nothing to do)

Targets: each within 3x of ``validate`` on the same file (wall time), peak memory under 1 GB
at 100,000 steps, ``show --json`` within 2x of ``show`` on the same run. Prints one table per
size and exits 1 when a target is missed (2 when a command failed: its time means nothing).
Targets are checked here and never in timed unit tests (a loaded CI machine would make them flaky).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from validate_bench import REPO, Sample, generate_pipeline, run_once

VS_VALIDATE = 3.0
JSON_VS_SHOW = 2.0
PEAK_MB = 1024.0
PEAK_AT = 100_000  # the memory target is for pipelines of this size and more


@dataclass(frozen=True)
class Row:
    name: str
    wall: float  # median seconds
    cpu: float  # median CPU seconds of the child
    peak_mb: float  # highest of the rounds
    returncode: int  # the worst of the rounds


def commands(py: str, pipeline: Path, state: Path, run_id: str) -> dict[str, list[str]]:
    flowctl = [py, "-m", "flowctl"]
    st = ["--state-dir", str(state)]
    return {
        "validate": [*flowctl, "validate", str(pipeline)],
        "plan": [*flowctl, "plan", str(pipeline)],
        "plan --explain": [*flowctl, "plan", str(pipeline), "--explain", *st],
        "run --dry-run": [*flowctl, "run", str(pipeline), "--dry-run", *st],
        "show": [*flowctl, "show", run_id, *st],
        "show --json": [*flowctl, "show", run_id, "--json", *st],
        "run --resume (no-op)": [*flowctl, "run", str(pipeline), "--resume", "--no-progress", *st],
    }


def record_run(py: str, pipeline: Path, state: Path, env: dict[str, str]) -> tuple[str, float]:
    """Run the pipeline for real (plain output); its run id and wall time."""
    start = time.perf_counter()
    proc = subprocess.run(
        [py, "-m", "flowctl", "run", str(pipeline), "--no-progress", "--state-dir", str(state)],
        env=env, capture_output=True, text=True, check=False,
    )
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"the recorded run failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    run_id = (state / "runs").iterdir().__next__().name
    return run_id, took


def measure(named: dict[str, list[str]], env: dict[str, str], runs: int) -> list[Row]:
    for argv in named.values():  # warm-up: bytecode, page cache
        run_once(argv, env)
    samples: dict[str, list[Sample]] = {name: [] for name in named}
    for _ in range(runs):
        for name, argv in named.items():
            samples[name].append(run_once(argv, env))
    return [
        Row(
            name,
            statistics.median(s.seconds for s in got),
            statistics.median(s.cpu_seconds for s in got),
            max(s.peak_mb for s in got),
            max((s.returncode for s in got), key=abs),
        )
        for name, got in samples.items()
    ]


def report(size: int, rows: list[Row]) -> tuple[bool, bool]:
    """Print the table of one size; (every target met, every command succeeded)."""
    by = {r.name: r for r in rows}
    base = by["validate"]
    ok = True
    print(f"{'command':<22} {'wall s':>8} {'cpu s':>8} {'peak MB':>8} {'x validate':>11}  target       result")
    print("-" * 80)
    for r in rows:
        ratio = r.wall / base.wall
        target, verdict = "", ""
        if r.name != "validate":
            target = f"<= {VS_VALIDATE:g}x"
            good = ratio <= VS_VALIDATE
            ok &= good
            verdict = "ok" if good else "MISSED"
        print(f"{r.name:<22} {r.wall:>8.2f} {r.cpu:>8.2f} {r.peak_mb:>8.1f} {ratio:>10.2f}x  {target:<12} {verdict}")
    json_ratio = by["show --json"].wall / by["show"].wall
    good = json_ratio <= JSON_VS_SHOW
    ok &= good
    print(f"{'show --json / show':<22} {'':>8} {'':>8} {'':>8} {json_ratio:>10.2f}x  "
          f"{'<= ' + format(JSON_VS_SHOW, 'g') + 'x':<12} {'ok' if good else 'MISSED'}")
    peak = max(r.peak_mb for r in rows)
    if size >= PEAK_AT:
        good = peak < PEAK_MB
        ok &= good
        print(f"{'highest peak memory':<22} {'':>8} {'':>8} {peak:>8.1f} {'':>11}  "
              f"{'< ' + format(PEAK_MB, 'g') + ' MB':<12} {'ok' if good else 'MISSED'}")
    return ok, all(r.returncode == 0 for r in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated step counts")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="generate and run under DIR and keep it (else a temporary folder)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    env["NO_COLOR"] = "1"
    env.pop("FLOWCTL_STATE_DIR", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure flowctl, not the bytecode compiler
    py = sys.executable
    all_ok, all_ran = True, True
    with tempfile.TemporaryDirectory(prefix="flowctl-commands-bench-") as tmp:
        root = args.keep or Path(tmp)
        for size in sizes:
            folder = root / f"n{size}"
            folder.mkdir(parents=True, exist_ok=True)
            pipeline = folder / "pipeline.yaml"
            text = generate_pipeline(size, 5 * size, runnable=True)
            edges = sum(line.count(",") + 1 for line in text.splitlines() if line.startswith("    needs: ["))
            state = folder / "state"
            recorded = sorted((state / "runs").iterdir()) if (state / "runs").is_dir() else []
            if pipeline.is_file() and pipeline.read_text(encoding="utf-8") == text and len(recorded) == 1:
                run_id, how = recorded[0].name, f"a real run of the pipeline, recorded earlier in {folder}"
            else:
                pipeline.write_text(text, encoding="utf-8")
                if state.exists():
                    shutil.rmtree(state)
                run_id, took = record_run(py, pipeline, state, env)
                how = f"a real run of the pipeline ({took:.1f} s, {os.cpu_count()} CPUs)"
            print(f"\n{size:,} steps, {edges:,} needs ({pipeline.stat().st_size / 1e6:.1f} MB); state: {how}; "
                  f"medians of {args.runs} rounds\n")
            rows = measure(commands(py, pipeline, state, run_id), env, args.runs)
            ok, ran = report(size, rows)
            all_ok &= ok
            all_ran &= ran
    if not all_ran:
        print("\nerror: a measured command failed; its timing is meaningless", file=sys.stderr)
        return 2
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())

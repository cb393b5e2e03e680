"""What a ``foreach`` item costs (issue 15): N items of ``true``, unbatched and in batches, at
concurrency 8, against N plain steps doing the same and against a shell loop doing the same.

Usage: python bench/foreach_bench.py [--items 10000] [--batch 100] [-j 8] [--runs 1] [--keep DIR]

Each case is one whole process (``flowctl run`` with its own state folder, plain output), timed
with its peak resident memory (``wait4``; the largest of the process and the children it reaped):

  foreach unbatched     one ``sh -c /bin/true`` per item, each an attempt with its own state row
  foreach batch=B       one process per B items, looping ``/bin/true`` over its batch file
  N plain steps         a pipeline of N independent steps, each ``/bin/true``
  shell loop            ``sh`` running ``/bin/true`` once per line of the items file

Per-item overhead is (wall - shell loop's wall) / N. Targets: unbatched within 1.5x of the N
plain steps, batched within 1.3x of the shell loop, peak memory under 300 MB. Prints the table;
exits 1 when a target is missed (2 when a case failed). Targets are checked here, never in timed
unit tests.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from validate_bench import REPO, Sample, run_once

UNBATCHED_VS_STEPS = 1.5
BATCHED_VS_LOOP = 1.3
PEAK_MB = 300.0


def write_cases(folder: Path, items: int, batch: int) -> dict[str, Path]:
    """The items file and the three pipelines, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "items.jsonl").write_text("".join(json.dumps({"i": i}) + "\n" for i in range(items)))
    head = "version: 1\nname: {name}\nsteps:\n"
    unbatched = head.format(name="each") + (
        "  each:\n    foreach: {items_from: {file: items.jsonl}, key: '${{ item.i }}'}\n    run: /bin/true\n")
    batched = head.format(name="batched") + (
        f"  each:\n    foreach: {{items_from: {{file: items.jsonl}}, batch: {{size: {batch}}}}}\n"
        "    run: while read -r line; do /bin/true; done < \"${{ batch.file }}\"\n")
    steps = head.format(name="steps") + "".join(f"  s{i}:\n    run: /bin/true\n" for i in range(items))
    paths = {}
    for name, text in (("unbatched", unbatched), ("batched", batched), ("steps", steps)):
        paths[name] = folder / f"{name}.yaml"
        paths[name].write_text(text)
    return paths


def cases(py: str, folder: Path, paths: dict[str, Path], jobs: int, batch: int, items: int) -> dict[str, list[str]]:
    def run(name: str) -> list[str]:
        return [py, "-m", "flowctl", "run", str(paths[name]), "-j", str(jobs), "--state-dir", str(folder / f"state-{name}")]

    return {
        "foreach unbatched": run("unbatched"),
        f"foreach batch={batch}": run("batched"),
        f"{items} plain steps": run("steps"),
        "shell loop": ["/bin/sh", "-c", f"while read -r line; do /bin/true; done < {folder / 'items.jsonl'}"],
    }


def measure(argvs: dict[str, list[str]], env: dict[str, str], folder: Path, runs: int) -> dict[str, Sample]:
    """The median wall time (and the highest peak) of each case over ``runs`` rounds, each run
    from a fresh state folder so that nothing is up to date."""
    out: dict[str, list[Sample]] = {name: [] for name in argvs}
    for _ in range(runs):
        for name, argv in argvs.items():
            if "--state-dir" in argv:  # this case's own state only: the others' stay for a look
                shutil.rmtree(argv[argv.index("--state-dir") + 1], ignore_errors=True)
            out[name].append(run_once(argv, env))
    return {name: Sample(statistics.median(s.seconds for s in samples), max(s.peak_mb for s in samples),
                         max(s.returncode for s in samples)) for name, samples in out.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("-j", "--jobs", type=int, default=8)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--keep", metavar="DIR", help="Keep the pipelines and state in DIR.")
    args = parser.parse_args(argv)
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="foreach-bench-"))
    env = dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1")
    try:
        paths = write_cases(folder, args.items, args.batch)
        found = measure(cases(sys.executable, folder, paths, args.jobs, args.batch, args.items), env, folder, args.runs)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    names = list(found)
    unbatched, batched, steps, loop = (found[n] for n in names)
    n = args.items
    print(f"{n} items of /bin/true at -j{args.jobs} (median of {args.runs} run(s))")
    print(f"{'case':<22} {'wall s':>8} {'per item ms':>12} {'overhead ms':>12} {'peak MB':>8}")
    for name in names:
        s = found[name]
        print(f"{name:<22} {s.seconds:8.2f} {s.seconds / n * 1000:12.3f} {(s.seconds - loop.seconds) / n * 1000:12.3f}"
              f" {s.peak_mb:8.1f}")
    checks = [
        (f"unbatched / plain steps <= {UNBATCHED_VS_STEPS}", unbatched.seconds / steps.seconds, UNBATCHED_VS_STEPS),
        (f"batched / shell loop <= {BATCHED_VS_LOOP}", batched.seconds / loop.seconds, BATCHED_VS_LOOP),
        (f"peak MB <= {PEAK_MB:.0f}", max(unbatched.peak_mb, batched.peak_mb), PEAK_MB),
    ]
    missed = False
    for label, value, limit in checks:
        ok = value <= limit
        missed = missed or not ok
        print(f"{'ok  ' if ok else 'MISS'} {label}: {value:.2f}")
    if any(s.returncode != 0 for s in found.values()):
        return 2
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())

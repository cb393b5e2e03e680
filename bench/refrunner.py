"""The reference runner of the benchmark (issue 14): the simplest honest spawner.

Reads the YAML with ``CSafeLoader``, starts each step whose needs have succeeded with
``subprocess.Popen(cmd, shell=True)``, at most N at once, and blocks in ``os.wait()``. Nothing
else: no logs, no state, no retries, no environment of its own, no signal handling. It is the
floor a runner written in Python stands on; ``bench/run_bench.py`` holds ``flowctl run`` (with
its state and logs on) to a ratio of it. Usage: python bench/refrunner.py PIPELINE.yaml N
"""

from __future__ import annotations

import os
import subprocess
import sys

import yaml


def run(path: str, concurrency: int) -> int:
    """Run the pipeline at ``path``; the number of steps that failed."""
    with open(path, "rb") as fh:
        steps = yaml.load(fh, Loader=yaml.CSafeLoader)["steps"]
    waiting = {sid: len(step.get("needs", ())) for sid, step in steps.items()}
    dependents: dict[str, list[str]] = {sid: [] for sid in steps}
    for sid, step in steps.items():
        for need in step.get("needs", ()):
            dependents[need].append(sid)
    ready = [sid for sid, n in reversed(waiting.items()) if n == 0]
    # The Popen objects stay referenced until reaped: a dropped one would be polled by
    # subprocess's own clean-up, which would steal its exit status from os.wait().
    running: dict[int, tuple[str, subprocess.Popen[bytes]]] = {}
    failed = 0
    while ready or running:
        while ready and len(running) < concurrency:
            sid = ready.pop()
            proc = subprocess.Popen(steps[sid]["run"], shell=True)
            running[proc.pid] = (sid, proc)
        pid, status = os.wait()
        if pid not in running:
            continue
        sid, proc = running.pop(pid)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            failed += 1
            continue
        for dep in dependents[sid]:
            waiting[dep] -= 1
            if waiting[dep] == 0:
                ready.append(dep)
    return failed


if __name__ == "__main__":
    sys.exit(1 if run(sys.argv[1], int(sys.argv[2])) else 0)

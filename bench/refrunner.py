"""A minimal reference runner for the benchmark (issue 4, "Speed"): the bar flowctl is held to.

Loads the same YAML file, starts each step through the shell once everything it needs has
succeeded, at most N at once, and waits for children with ``os.wait``. No logs, no retries,
no state. Usage: python bench/refrunner.py PIPELINE.yaml CONCURRENCY
"""

from __future__ import annotations

import os
import subprocess
import sys

import yaml


def main() -> int:
    path, concurrency = sys.argv[1], int(sys.argv[2])
    with open(path, "rb") as fh:
        doc = yaml.load(fh, Loader=yaml.CSafeLoader)
    steps = doc["steps"]
    needs = {sid: list(step.get("needs", [])) for sid, step in steps.items()}
    waiting = {sid: len(n) for sid, n in needs.items()}
    dependents: dict[str, list[str]] = {sid: [] for sid in steps}
    for sid, ns in needs.items():
        for n in ns:
            dependents[n].append(sid)
    ready = [sid for sid, n in waiting.items() if n == 0]
    ready.reverse()
    running: dict[int, tuple[str, subprocess.Popen[bytes]]] = {}  # keep Popen alive: see below
    failed = 0
    while ready or running:
        while ready and len(running) < concurrency:
            sid = ready.pop()
            proc = subprocess.Popen(steps[sid]["run"], shell=True)
            running[proc.pid] = (sid, proc)
        pid, status = os.wait()
        entry = running.pop(pid, None)
        if entry is None:
            continue
        # A dropped Popen would be polled by subprocess's own cleanup and steal the status.
        sid, proc = entry
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            failed += 1
            continue
        for dep in dependents[sid]:
            waiting[dep] -= 1
            if waiting[dep] == 0:
                ready.append(dep)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""A small program for runner tests: sleeps, fails, spawns children, ignores signals.

Usage: sleepit.py MODE ARGS... (see the functions below; each mode is one test situation).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = os.path.abspath(__file__)


def sleep(secs: str) -> int:
    time.sleep(float(secs))
    return 0


def interval(path: str, name: str, secs: str) -> int:
    """Append 'NAME START END' (monotonic clock of this machine) to PATH after sleeping."""
    start = time.time()
    time.sleep(float(secs))
    end = time.time()
    with open(path, "a") as fh:
        fh.write(f"{name} {start} {end}\n")
    return 0


def fail_until(counter: str, succeed_on: str, code: str) -> int:
    """Exit CODE until this is call number SUCCEED_ON (counted in the COUNTER file)."""
    n = int(Path(counter).read_text()) + 1 if os.path.exists(counter) else 1
    with open(counter, "w") as fh:
        fh.write(str(n))
    print(f"call {n}")
    return 0 if n >= int(succeed_on) else int(code)


def family(pidfile: str) -> int:
    """Spawn a child which spawns a grandchild in its own session; write their pids; sleep."""
    child = subprocess.Popen([sys.executable, HERE, "child", pidfile])
    del child
    time.sleep(60)
    return 0


def _setsid_sleeper(pidfile: str, *pids: int, mode: str = "sleep") -> None:
    """Start a 60 s sleeper in its own session; write ``pids`` and its pid to PIDFILE."""
    sleeper = subprocess.Popen([sys.executable, HERE, mode, "60"], start_new_session=True)
    with open(pidfile + ".tmp", "w") as fh:
        fh.write(" ".join(str(p) for p in (*pids, sleeper.pid)) + "\n")
    os.replace(pidfile + ".tmp", pidfile)


def child(pidfile: str) -> int:
    _setsid_sleeper(pidfile, os.getpid())
    time.sleep(60)
    return 0


def orphan(pidfile: str) -> int:
    """Leave a setsid'd grandchild behind and exit at once (a step that 'daemonizes')."""
    _setsid_sleeper(pidfile)
    return 0


def deaf_orphan(pidfile: str) -> int:
    """Like ``orphan``, but the grandchild ignores SIGTERM (only SIGKILL ends it)."""
    _setsid_sleeper(pidfile, mode="ignore-term")
    time.sleep(0.3)  # let it install its handler
    return 0


def ignore_term(secs: str) -> int:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("ignoring SIGTERM", flush=True)
    time.sleep(float(secs))
    return 0


def _write_pid(pidfile: str, pid: int) -> None:
    with open(pidfile + ".tmp", "w") as fh:
        fh.write(f"{pid}\n")
    os.replace(pidfile + ".tmp", pidfile)  # readers never see a half-written file


def ready(pidfile: str, *flags: str) -> int:
    """A leaf that outlives its step: write our pid to PIDFILE once ready, then sleep 60 s.
    With ``deaf``: note each SIGTERM (append our pid to PIDFILE.term) and carry on; it is
    installed before the pid is written, so a test that read the pid may signal at once."""
    if "deaf" in flags:
        def note(signum: int, frame: object) -> None:
            with open(pidfile + ".term", "a") as fh:
                fh.write(f"{os.getpid()}\n")

        signal.signal(signal.SIGTERM, note)
    _write_pid(pidfile, os.getpid())
    time.sleep(60)  # a handled SIGTERM resumes the sleep (PEP 475)
    return 0


def leave(how: str, pidfile: str, *flags: str) -> int:
    """Leave a ``ready`` child behind the way HOW says, wait until it is ready, then exit 0
    (with ``linger``: keep running instead). HOW: ``setsid`` (its own session), ``nohup``
    (nohup, same group), ``stay`` (same group, still running when the step ends) or
    ``double-fork`` (the daemon recipe: fork, setsid, fork, the middle process exits).
    Other flags (``deaf``) go to the child."""
    child = [sys.executable, HERE, "ready", pidfile, *(f for f in flags if f != "linger")]
    if how == "setsid":
        subprocess.Popen(child, start_new_session=True)
    elif how == "nohup":
        subprocess.Popen(["nohup", *child], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elif how == "stay":
        subprocess.Popen(child)
    elif how == "double-fork":
        middle = os.fork()
        if middle == 0:
            os.setsid()
            if os.fork() == 0:
                os.execv(sys.executable, child)
            os._exit(0)
        os.waitpid(middle, 0)
    else:
        raise SystemExit(f"unknown way to leave a child: {how}")
    deadline = time.monotonic() + 30
    while not os.path.exists(pidfile):  # readiness, not a fixed pause
        if time.monotonic() > deadline:
            return 1
        time.sleep(0.002)
    if "linger" in flags:
        time.sleep(60)
    return 0


def split(first: str, second: str) -> int:
    """Write FIRST, flush, pause, then SECOND: a secret arriving in two writes."""
    os.write(1, first.encode())
    time.sleep(0.05)
    os.write(1, second.encode() + b"\n")
    return 0


def guard(folder: str, name: str) -> int:
    """One copy of step NAME that notices any other copy alive beside it.

    Appends its pid to FOLDER/NAME.pids and 'NAME PID OTHER' to FOLDER/overlaps whenever another
    listed copy is alive (checked at start and every 20 ms). Runs until FOLDER/release-G exists,
    G being the content of FOLDER/generation when it started (so copies started later can be let
    go while older ones keep running), or 60 s. Writes FOLDER/NAME.started-PID once listed.
    """
    me = os.getpid()
    generation = Path(folder, "generation").read_text().strip()
    with open(os.path.join(folder, f"{name}.pids"), "a") as fh:
        fh.write(f"{me}\n")
    open(os.path.join(folder, f"{name}.started-{me}"), "w").close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _note_overlaps(folder, name, me)
        if os.path.exists(os.path.join(folder, f"release-{generation}")):
            return 0
        time.sleep(0.02)
    return 0


def _note_overlaps(folder: str, name: str, me: int) -> None:
    with open(os.path.join(folder, f"{name}.pids")) as fh:
        others = [int(p) for p in fh.read().split() if int(p) != me]
    for pid in others:
        if guard_alive(pid):
            with open(os.path.join(folder, "overlaps"), "a") as fh:
                fh.write(f"{name} {me} {pid}\n")


def guard_alive(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) copy of ``guard`` (not a reused pid)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[-1].split()[0]
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmdline = fh.read().split(b"\0")
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X") and b"guard" in cmdline


def echo(*words: str) -> int:
    print("\n".join(words), flush=True)
    return 0


def main() -> int:
    mode, *args = sys.argv[1:]
    return globals()[mode.replace("-", "_")](*args)


if __name__ == "__main__":
    sys.exit(main())

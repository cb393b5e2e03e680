"""``flowctl run`` on a real terminal (tmux): the retry countdown, one line per retried attempt,
the root failure last, and an ETA from earlier runs (issue 13).

Each test runs its own tmux server (``-L`` with a socket of its own, no config) and reads the
screen with ``capture-pane``; it waits for what it expects to appear on the screen (polling the
pane), never for a fixed time.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import flowctl_env, tool_missing

_ids = itertools.count()


class Tmux:
    """One detached tmux session running one command, on a server of its own."""

    def __init__(self, folder: Path) -> None:
        self.socket = f"flowctl-test-{os.getpid()}-{next(_ids)}"
        self.folder = folder
        self.done = folder / f"exit-{self.socket}"

    def _tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args],
                              capture_output=True, text=True, timeout=30, env=flowctl_env({"COLUMNS": "120"}), check=False)

    def start(self, argv: list[str]) -> None:
        # The exit code goes to a file; the session stays open so the screen can still be read.
        script = f"{shlex.join(argv)}; echo $? > {shlex.quote(str(self.done))}; exec sleep 600"
        proc = self._tmux("new-session", "-d", "-s", "t", "-x", "120", "-y", "50", "-c", str(self.folder), script)
        assert proc.returncode == 0, proc.stderr

    def screen(self) -> str:
        """The pane with its scroll-back, wrapped lines joined."""
        return self._tmux("capture-pane", "-p", "-J", "-t", "t", "-S", "-2000").stdout

    def wait_for(self, pattern: str, timeout: float = 30.0) -> str:
        """The screen once ``pattern`` (a regex) is on it."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if re.search(pattern, text, re.MULTILINE):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} never appeared; the screen:\n{text}")
            time.sleep(0.05)  # polling the screen, not waiting for the run

    def exit_code(self, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while not (self.done.exists() and self.done.read_text().strip()):
            if time.monotonic() > deadline:
                raise AssertionError(f"the run did not end; the screen:\n{self.screen()}")
            time.sleep(0.05)
        return int(self.done.read_text())

    def close(self) -> None:
        self._tmux("kill-server")


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Callable[[], Tmux]]:
    if shutil.which("tmux") is None:
        tool_missing("tmux is not installed")
    made: list[Tmux] = []

    def make() -> Tmux:
        made.append(Tmux(tmp_path))
        return made[-1]

    yield make
    for t in made:
        t.close()


def _run(pipeline: Path) -> list[str]:
    return [sys.executable, "-m", "flowctl", "run", str(pipeline)]


def test_a_retry_counts_down_and_only_the_final_failure_is_a_block(tmux, write_pipeline) -> None:
    path = write_pipeline(
        """
        version: 1
        name: flaky
        steps:
          extract:
            run: 'echo "reading rows"; echo "bad row 17" >&2; exit 3'
            retries: 1
            retry_delay: 5s
          other: {run: 'true'}
        """
    )
    term = tmux()
    term.start(_run(path))
    # During the back-off (2.5 to 5 s) the step is on screen with its countdown, not "0 running".
    waiting = term.wait_for(r"↻ extract\s+attempt 2/2 in \d")
    assert re.search(r"0 running · 1 waiting to retry", waiting)
    assert "✗ extract attempt 1: exit 3 · attempt 2/2 in " in waiting  # the retried attempt: one line
    assert term.exit_code() == 1
    screen = term.screen()
    lines = [line.rstrip() for line in screen.splitlines() if line.strip()]
    assert sum(1 for line in lines if line.startswith("✗ extract")) == 2
    block = lines.index(next(line for line in lines if line.startswith("✗ extract attempt 2: exit 3")))
    assert lines[block + 1:block + 3] == ["    reading rows", "    bad row 17"]
    # the root failure and its log tail are the last thing on the screen
    root = max(i for i, line in enumerate(lines) if line.startswith("Root failure: extract (exit 3, after 2 attempts)"))
    assert lines[root + 1].lstrip().startswith("log: ") and lines[root + 2:] == ["  | reading rows", "  | bad row 17"]
    assert "throughput" not in screen  # a 2-step run: no metrics block


def test_the_eta_comes_from_the_previous_run_and_is_marked_when_guessed(tmux, write_pipeline, flowctl) -> None:
    path = write_pipeline(
        """
        version: 1
        name: eta
        steps:
          prepare: {run: 'sleep 0.3'}
          crunch: {run: 'sleep 3', needs: [prepare]}
        """
    )
    first = tmux()
    first.start(_run(path))
    first.wait_for(r"ETA ~")  # no history: this run's own steps are all it has to go on
    assert first.exit_code() == 0
    second = tmux()
    second.start(_run(path))
    # now both steps have a duration from the first run: an estimate (about 3.3 s at the
    # start, counting down), not a guess
    second.wait_for(r"/2 done · 1 running · 0 failed · \S+ · ETA ([0-3](\.\d)?s|\d+ms)$")
    assert second.exit_code() == 0


def test_a_runner_killing_itself_gives_the_cursor_back_and_says_how_to_go_on(tmux, write_pipeline) -> None:
    """Trial 17: ``--chaos kill-runner`` now shows the live view's last turn before the runner
    dies; it must not leave the terminal with the cursor the live view hid."""
    path = write_pipeline(
        """
        version: 1
        name: chaotic
        steps:
          a: {run: 'true'}
          b: {run: 'true', needs: [a]}
        """
    )
    term = tmux()
    term.start([*_run(path), "--chaos", "kill-runner=1,max=1,steps=b"])
    assert term.exit_code() == 137
    assert "continue with: flowctl run" in term.screen()
    shown = term._tmux("display", "-p", "-t", "t", "#{cursor_flag}").stdout.strip()
    assert shown == "1", term.screen()

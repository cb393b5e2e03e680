"""The progress of ``flowctl bench`` while it runs: a rich progress bar on a terminal, plain
timestamped lines otherwise. Both on stderr, so stdout carries only the report (text, Markdown
or JSON) and stays fit for a pipe.

``rich.progress`` is imported only when a terminal shows it.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from flowctl.cli._common import no_color

if TYPE_CHECKING:
    from flowctl.benchmark.executions import BenchEvent


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


@contextlib.contextmanager
def progress_view(*, plain: bool) -> Iterator[Callable[[BenchEvent], None]]:
    """An ``emit`` for ``run_bench`` that shows progress on stderr (``plain``: lines even on a
    terminal)."""
    if plain or not _stderr_is_tty():
        yield _plain
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
    )

    console = Console(stderr=True, no_color=no_color(), highlight=False)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    ) as bar:
        tasks: dict[bool, TaskID] = {}
        running: dict[bool, int] = {}

        def emit(event: BenchEvent) -> None:
            from flowctl.benchmark.executions import ExecutionFinished
            from flowctl.benchmark.render import progress_line

            phase = event.warmup
            if phase not in tasks:
                tasks[phase] = bar.add_task("", total=event.total)
                running[phase] = 0
            if isinstance(event, ExecutionFinished):
                running[phase] -= 1
                bar.advance(tasks[phase])
                if event.exit_code != 0:
                    bar.console.print(progress_line(event), markup=False)
            else:
                running[phase] += 1
            name = "warm-up" if phase else "runs"
            bar.update(tasks[phase], description=f"{name} ({running[phase]} running)")

        yield emit


def _plain(event: BenchEvent) -> None:
    from flowctl.benchmark.render import progress_line

    try:
        sys.stderr.write(progress_line(event) + "\n")
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):
        pass  # progress is a courtesy: a closed stderr must not stop the benchmark


__all__ = ["progress_view"]

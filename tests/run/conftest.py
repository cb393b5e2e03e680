"""Helpers for runner tests: run a pipeline text through the real loader, scheduler and local
executor, in this process, and return what happened."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from flowctl.run.events import Event, StepFinished, StepStatus
from flowctl.run.executors.local import LocalExecutor
from flowctl.run.memory import MemoryRunStore
from flowctl.run.prepare import prepare_run
from flowctl.run.scheduler import Reuse, RunOptions, RunResult, Scheduler, new_run_id

SLEEPIT = str(Path(__file__).resolve().parent.parent / "bin" / "sleepit.py")
TEST_ENV = {"PY": sys.executable, "SLEEPIT": SLEEPIT}


@dataclass
class Ran:
    result: RunResult
    store: MemoryRunStore
    events: list[Event]
    logs_dir: Path
    output: list[tuple[str, str]] = field(default_factory=list)

    def status(self, step: str) -> StepStatus:
        return self.result.steps[step]

    def finished(self, step: str) -> StepFinished:
        record = self.store.steps[step].finished
        assert record is not None
        return record

    def log(self, step: str, name: str = "1") -> str:
        return (self.logs_dir / step / f"{name}.log").read_text()


def run_text(
    tmp_path: Path,
    text: str,
    *,
    concurrency: int = 2,
    fail_fast: bool = False,
    only: Sequence[str] = (),
    from_: Sequence[str] = (),
    overrides: Mapping[str, str] | None = None,
    grace: float = 1.0,
    reuse: Mapping[str, Reuse] | None = None,
    stream: bool = False,
    environ: Mapping[str, str] | None = None,
    on_start: Callable[[Scheduler], None] | None = None,
    emit: Callable[[Event], None] | None = None,
    store: MemoryRunStore | None = None,
) -> Ran:
    path = tmp_path / "pipeline.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    env = {**os.environ, **TEST_ENV, **(environ or {})}
    prepared = prepare_run(path, overrides=overrides or {}, only=only, from_=from_, environ=env)
    store = store if store is not None else MemoryRunStore()
    events: list[Event] = []
    output: list[tuple[str, str]] = []
    run_id = new_run_id()
    logs = tmp_path / ".flowctl" / "runs" / run_id

    def sink(event: Event) -> None:
        events.append(event)
        if emit is not None:
            emit(event)

    with LocalExecutor(grace=grace, on_output=lambda key, line: output.append((key.step, line)), environ=env) as ex:
        scheduler = Scheduler(
            prepared.plan, prepared.invocations, ex, store, sink,
            RunOptions(
                logs_dir=str(logs), concurrency=concurrency, fail_fast=fail_fast, stream=stream,
                reuse=reuse or {}, handle_signals=False,
            ),
            remediations=prepared.remediations, run_id=run_id,
        )
        if on_start is not None:
            on_start(scheduler)
        result = scheduler.run()
    return Ran(result, store, events, logs, output)


@pytest.fixture
def run_pipeline(tmp_path: Path) -> Callable[..., Ran]:
    def go(text: str, **kwargs: object) -> Ran:
        return run_text(tmp_path, text, **kwargs)  # type: ignore[arg-type]

    return go

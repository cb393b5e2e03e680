"""``flowctl report``: one self-contained HTML page per run, and a history page per pipeline.

Its own stage at the end of the line: reads state records (``gather``), lays the figures out
(``layout``), renders HTML with Jinja2 (``render``); never steers a run. The CLI
(``cli/report.py``) and ``flowctl run --report`` call ``run_report_html`` / ``history_html``
and ``write_html``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from flowctl.errors import UsageError
from flowctl.report.baseline import BaselineSpec, parse_baseline
from flowctl.report.gather import build_history_report, build_run_report
from flowctl.report.model import HistoryReport, RunReport

if TYPE_CHECKING:
    from collections.abc import Mapping

    from flowctl.spec.model import Pipeline


def run_report_html(
    state_dir: str | os.PathLike[str],
    run_id: str,
    *,
    baseline: BaselineSpec | None = None,
    pipeline: Pipeline | None = None,
    generated_at: float | None = None,
    of_pipeline: str | None = None,
) -> tuple[RunReport, str]:
    """The report of run ``run_id`` (``latest``, ``latest~N``, of pipeline ``of_pipeline`` when
    given) and its HTML. Raises ``StateError`` / ``UsageError`` (unknown run, bad baseline)."""
    from flowctl.report.render import render_run

    report = build_run_report(
        state_dir, run_id, baseline=baseline or parse_baseline(None), pipeline=pipeline, generated_at=generated_at,
        of_pipeline=of_pipeline,
    )
    return report, render_run(report)


def history_html(
    state_dir: str | os.PathLike[str],
    pipeline: str,
    *,
    last: int = 50,
    needs: Mapping[str, tuple[str, ...]] | None = None,
    generated_at: float | None = None,
) -> tuple[HistoryReport, str]:
    """The history page of ``pipeline``'s last ``last`` runs and its HTML."""
    from flowctl.report.render import render_history

    history = build_history_report(state_dir, pipeline, last=last, needs=needs, generated_at=generated_at)
    return history, render_history(history)


def write_html(path: str | os.PathLike[str], text: str, *, option: str = "-o") -> int:
    """Write ``text`` to ``path`` atomically (a reader never sees half a page); the bytes
    written. Raises ``UsageError`` naming ``option`` when it cannot."""
    from flowctl.outfiles import write_atomic

    data = text.encode("utf-8")
    try:
        write_atomic(Path(path), text, exclusive=False)
    except OSError as exc:
        raise UsageError(f"{option} {os.fspath(path)}: cannot write it: {exc.strerror or exc}") from exc
    return len(data)


__all__ = [
    "BaselineSpec",
    "HistoryReport",
    "RunReport",
    "build_history_report",
    "build_run_report",
    "history_html",
    "parse_baseline",
    "run_report_html",
    "write_html",
]

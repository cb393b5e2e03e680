"""``flowctl bench``: run a pipeline many times, at once or in turn, and measure it (issue 17).

A stage after ``run``/``state``/``observe``: it runs pipelines (as real ``flowctl run``
processes) and reads their recorded runs back through ``observe.stored_metrics`` and
``observe.metrics``, so the figures are those ``flowctl show`` reports. ``request`` checks the
options (``prepare_bench``) → ``workspace`` decides each execution's working copy →
``executions`` runs the processes → ``figures`` aggregates → ``thresholds`` (the alerts' grammar)
and ``compare`` (against an earlier export) judge → ``result`` ties it together (``run_bench``);
``document`` is the JSON export and its schema, ``render`` the text and Markdown forms. Nothing
here prints.
"""

from __future__ import annotations

from flowctl.benchmark.request import BenchPlan, BenchRequest, prepare_bench
from flowctl.benchmark.result import BenchResult, run_bench

__all__ = ["BenchPlan", "BenchRequest", "BenchResult", "prepare_bench", "run_bench"]

"""The JSON form of a benchmark (``--format json``, ``--export-json FILE``) and its schema.

The document follows ``bench-result.schema.json``, shipped in the package (``flowctl/schemas/``,
the repository's ``schemas/`` holds the same file) so other tools can validate exports and a
later ``--compare`` can trust what it reads. Times of day are epoch seconds (the environment's
start is ISO 8601 UTC), durations seconds, rates fractions. ``write_export`` replaces the file
atomically: a benchmark interrupted while writing never leaves half a baseline behind.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from flowctl.benchmark.figures import run_figures
from flowctl.errors import StorageError

if TYPE_CHECKING:
    from flowctl.benchmark.figures import RunSample
    from flowctl.benchmark.result import BenchResult

SCHEMA_FILE = "bench-result.schema.json"
SCHEMA_ID = "https://flowctl.dev/schemas/bench-result.schema.json"
FORMAT_VERSION = 1


def _run(sample: RunSample) -> dict[str, object]:
    m = sample.metrics
    return {
        "index": sample.index,
        "run_id": m.run_id,
        "status": m.status.value,
        "exit_code": sample.exit_code,
        "started_at": sample.started_at,
        "finished_at": sample.finished_at,
        "wall_seconds": sample.wall_seconds,
        "run_started_at": m.started_at,
        "run_finished_at": m.finished_at,
        "steps_completed": m.steps_completed,
        "steps_failed": m.steps_failed,
        "attempts": m.attempts,
        "failed_attempts": m.failed_attempts,
        "critical_path_seconds": m.critical_path_seconds,
        "figures": run_figures(sample),
        "state_dir": sample.state_dir,
    }


def result_document(result: BenchResult) -> dict[str, object]:
    """The benchmark as a JSON-ready mapping that validates against the shipped schema."""
    plan = result.plan
    pipe = plan.prepared.pipeline
    return {
        "$schema": SCHEMA_ID,
        "format": FORMAT_VERSION,
        "pipeline": {"name": pipe.name, "file": os.path.abspath(pipe.path), "steps": len(plan.prepared.plan.selected)},
        "settings": plan.settings(),
        "environment": plan.environment.to_dict(),
        "workspace": plan.workspace.to_dict(),
        "runs": [_run(s) for s in result.samples],
        "aggregate": result.aggregate.to_dict(),
        "thresholds": [t.to_dict() for t in result.thresholds],
        "comparison": result.comparison.to_dict() if result.comparison is not None else None,
        "kept_state": result.kept,
        "passed": result.passed,
    }


def dumps(document: dict[str, object]) -> str:
    return json.dumps(document, indent=2) + "\n"


def write_export(path: str, document: dict[str, object]) -> None:
    """Write ``document`` to ``path`` atomically. Raises ``StorageError``."""
    from flowctl.outfiles import write_atomic

    try:
        write_atomic(Path(path), dumps(document), exclusive=False)
    except OSError as exc:
        raise StorageError(f"--export-json {path}: cannot write it: {exc}", hint="check the folder exists and has room") from None


def schema_text() -> str:
    """The benchmark result JSON Schema as shipped in the package."""
    from flowctl.spec.schema import schema_text as shipped

    return shipped(SCHEMA_FILE)


@cache
def _validator() -> object:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads(schema_text()))


def schema_errors(data: object) -> list[str]:
    """Why ``data`` is not a valid benchmark result (empty when it is), each naming where."""
    from jsonschema import Draft202012Validator

    validator = _validator()
    assert isinstance(validator, Draft202012Validator)
    errors = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{'.'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}" for e in errors]


__all__ = ["FORMAT_VERSION", "SCHEMA_FILE", "SCHEMA_ID", "dumps", "result_document", "schema_errors", "schema_text", "write_export"]

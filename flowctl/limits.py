"""The bounds of every number a user gives flowctl, in a pipeline file or on the command line.

One table, so an option and the pipeline key it overrides agree (``-j`` and ``concurrency:``),
and so no number reaches SQLite, a thread pool or a loop unbounded (issue 13: ``runs -n
99999999999999999999`` said "datatype mismatch" and suggested ``doctor --repair``, ``run -j``
of it crashed, ``schedule next --count`` of it never ended). Options take them as typer's
``min=``/``max=`` (a usage error, exit 2); ``schemas/pipeline.schema.json`` repeats the
pipeline's (a test keeps them equal).
"""

from __future__ import annotations

#: ``concurrency:`` (the schema's maximum), ``run -j``, ``--dask-threads``, ``bench -j``/``--parallel``.
MAX_CONCURRENCY = 1024
#: ``logs --attempt``: a step's attempts, its retries' and its remediations' together, stay below it.
MAX_ATTEMPT = 10_000
#: How many recorded runs an option reaches back over: ``runs -n``, ``stats --last``, ``report
#: --last``, ``gc --keep``, ``report --baseline median:N``.
MAX_RUNS_LISTED = 1_000_000
#: ``bench --runs`` and ``--warmup``: executions of one benchmark.
MAX_BENCH_RUNS = 10_000
#: ``schedule next --count``: fire times listed (a thousand is about three years of a daily job).
MAX_FIRE_TIMES = 1000
#: ``--dask-workers``: workers of the local cluster flowctl starts.
MAX_WORKERS = 1024
#: ``chaos soak --seed-from``: seeds are hashed as text, but a run records them as SQLite integers.
MAX_SEED = 2**63 - 1
#: ``dlq replay --max-replays``: replays of one item (AWS Step Functions allows 1,000 redrives).
MAX_REPLAYS = 1000
#: Duration options (``run --wait``, ``gc --older-than``, ``stats --since``, ``--dask-lease``): ten years.
MAX_OPTION_SECONDS = 10 * 365 * 86400.0

__all__ = [
    "MAX_ATTEMPT", "MAX_BENCH_RUNS", "MAX_CONCURRENCY", "MAX_FIRE_TIMES", "MAX_OPTION_SECONDS", "MAX_REPLAYS",
    "MAX_RUNS_LISTED", "MAX_SEED", "MAX_WORKERS",
]

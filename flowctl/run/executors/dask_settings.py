"""How a run uses Dask (``--executor dask`` options), readable without Dask installed.

``DaskSettings`` is what ``executors/dask.py`` is built from; the CLI fills it from the options
and the pipeline's ``executor:`` block before anything starts, so a bad ``--dask-workers`` is an
exit 2 even on a machine without the ``flowctl[dask]`` extra. ``have_dask`` says whether the
extra is installed, without importing it (``flowctl --help`` stays fast).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field

from flowctl.errors import UsageError
from flowctl.limits import MAX_WORKERS

INSTALL_HINT = "pip install 'flowctl[dask]' (on this machine and on every worker)"


@dataclass(frozen=True, slots=True)
class DaskSettings:
    """Where and how attempts run on Dask."""

    address: str | None = None  # a scheduler to connect to; None: a LocalCluster for the run
    workers: int = 2  # LocalCluster: its workers (its minimum, when max_workers is set)
    max_workers: int | None = None  # LocalCluster: adaptive between workers and max_workers
    threads: int = 1  # LocalCluster: threads (attempts at once) per worker
    resources: Mapping[str, float] = field(default_factory=dict)  # LocalCluster: each worker's
    lease: float = 30.0  # a supervisor stops its attempt when no renewal came for this long
    grace: float = 3.0  # between SIGTERM and SIGKILL

    @property
    def adaptive(self) -> bool:
        return self.address is None and self.max_workers is not None


def parse_workers(text: str) -> tuple[int, int | None]:
    """``--dask-workers``: ``N`` (fixed) or ``MIN:MAX`` (adaptive). Raises UsageError."""
    low, sep, high = text.partition(":")
    try:
        minimum = int(low)
        maximum = int(high) if sep else None
    except ValueError:
        minimum, maximum = -1, None
    if minimum < 0 or (not sep and minimum == 0) or (maximum is not None and (maximum < 1 or maximum < minimum)):
        raise UsageError(
            f"--dask-workers {text!r}: expected a number of workers (2) or a range MIN:MAX (0:8)",
            hint="a range makes the cluster adaptive: workers are added while ready steps wait",
        )
    if max(minimum, maximum or 0) > MAX_WORKERS:
        raise UsageError(f"--dask-workers {text!r}: at most {MAX_WORKERS} workers on this machine",
                         hint="for more, start a cluster and give its address: --dask-scheduler tcp://HOST:8786")
    return minimum, maximum


def have_dask() -> bool:
    """Whether ``dask.distributed`` can be imported here (checked without importing it)."""
    try:
        return importlib.util.find_spec("distributed") is not None and importlib.util.find_spec("dask") is not None
    except (ImportError, ValueError):
        return False


__all__ = ["INSTALL_HINT", "DaskSettings", "have_dask", "parse_workers"]

"""The Dask cluster a run uses: started for it, or connected to; what its workers have.

``RunCluster`` owns the ``distributed.Client`` and, when flowctl starts one, the ``LocalCluster``
of worker processes (fixed, or adaptive between ``--dask-workers MIN:MAX`` and driven by
flowctl's queue: ``QueueAdaptive``). It registers the worker plugin (``dask_worker``),
subscribes the executor to the run's events and to workers joining and leaving, keeps the table
of connected workers (threads, resources), and calls functions on the workers (``Client.run``:
cancel, renew the lease, list attempts). What the attempts are and what their results mean is
``executors/dask.py``'s.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import dask
from distributed import Client, LocalCluster
from distributed.deploy.adaptive import Adaptive

from flowctl.run.executors.dask_settings import DaskSettings
from flowctl.run.executors.dask_worker import (
    PLUGIN,
    AttemptsPlugin,
    Running,
    list_attempts,
)

EventHandler = Callable[[tuple[float, object]], None]


class Demand(Protocol):
    """What drives an adaptive cluster (the executor)."""

    def demand(self) -> int:
        """Attempts running plus ready ones waiting for a slot."""

    def busy_workers(self) -> set[str]:
        """Workers running attempts of the run (never retired)."""


@dataclass(frozen=True, slots=True)
class Worker:
    """A connected worker as the scheduler describes it."""

    address: str
    name: str
    threads: int
    resources: Mapping[str, float]


class RunCluster:
    """The cluster of one run (see the module docstring); ``close`` leaves nothing of ours."""

    def __init__(self, settings: DaskSettings) -> None:
        self.settings = settings
        self._client: Client | None = None
        self._local: LocalCluster | None = None
        self._topics: list[str] = []
        self.workers: Mapping[str, Worker] = {}

    def open(self, topics: Mapping[str, EventHandler], demand: Demand) -> None:
        """Start the LocalCluster (or connect), subscribe ``topics``, register the worker plugin.

        Raises OSError/TimeoutError when the scheduler cannot be reached."""
        settings = self.settings
        if settings.address is None:
            self._local = self._start_local()
            self._client = Client(self._local, set_as_default=False)
        else:
            self._client = Client(settings.address, set_as_default=False, timeout="10s")
        for topic, handler in topics.items():
            self._client.subscribe_topic(topic, handler)
            self._topics.append(topic)
        self._client.register_plugin(AttemptsPlugin(ignore_interrupt=self._local is not None), name=PLUGIN)
        self.refresh_workers()
        if self._local is not None and settings.max_workers is not None:
            self._local.adapt(
                Adaptive=QueueAdaptive, minimum=settings.workers, maximum=settings.max_workers,
                interval="250ms", wait_count=8, demand=demand, threads=settings.threads,
            )

    def _start_local(self) -> LocalCluster:
        s = self.settings
        # A Ctrl-C in the terminal reaches every process of its group, the workers too: once the
        # worker plugin is registered they ignore it (``AttemptsPlugin(ignore_interrupt=True)``),
        # as it is flowctl's to turn into a clean cancel. Before that, a Ctrl-C stops flowctl
        # while it starts the cluster, which it then closes.
        with dask.config.set({"distributed.worker.profile.enabled": False}):  # its sampling costs CPU
            return LocalCluster(
                n_workers=s.workers, threads_per_worker=s.threads, processes=True, host="127.0.0.1",
                dashboard_address=":0", worker_dashboard_address=None, memory_limit=0,
                resources=dict(s.resources) or None, silence_logs=logging.CRITICAL,
                scheduler_kwargs={"allowed_failures": 0},  # a lost worker fails the task at once
            )

    @property
    def client(self) -> Client:
        if self._client is None:
            raise RuntimeError("the Dask cluster is not open")
        return self._client

    @property
    def is_open(self) -> bool:
        return self._client is not None

    @property
    def owned(self) -> bool:
        """flowctl started it (a LocalCluster for this run)."""
        return self._local is not None

    @property
    def address(self) -> str:
        """The scheduler's address (the LocalCluster's when flowctl started it)."""
        if self._local is not None:
            return str(self._local.scheduler_address)
        return self.settings.address or ""

    def refresh_workers(self) -> Mapping[str, Worker]:
        """Ask the scheduler which workers are connected now."""
        info = self.client.scheduler_info(n_workers=-1)
        self.workers = {
            address: Worker(address, str(w.get("name", address)), int(w.get("nthreads", 1)),
                            {k: float(v) for k, v in (w.get("resources") or {}).items()})
            for address, w in info.get("workers", {}).items()
        }
        return self.workers

    def offers(self) -> list[Mapping[str, float]]:
        """What each worker has, to check steps' ``resources`` against before the run starts: the
        connected workers, or the declared resources of a LocalCluster that may grow later."""
        if self._local is not None and (self.settings.adaptive or not self.workers):
            return [dict(self.settings.resources)]
        return [w.resources for w in self.workers.values()]

    @property
    def threads(self) -> int:
        return sum(w.threads for w in self.workers.values())

    # -- calls on the workers ----------------------------------------------------------------

    def on_workers(
        self, function: Callable[..., object], *args: object, workers: Sequence[str] | None = None
    ) -> Mapping[str, object]:
        """``function(*args)`` on ``workers`` (all when None), each worker's answer; a worker
        that left or failed is left out (its attempts are lost, and reported so)."""
        client = self._client
        if client is None:
            return {}
        try:
            answers: Mapping[str, object] = client.run(
                function, *args, workers=list(workers) if workers is not None else None, on_error="ignore"
            )
        except Exception:
            return {}
        return answers

    def attempts(self) -> list[Running]:
        """The attempts running on every worker now (any run, any client)."""
        return [a for entries in self.on_workers(list_attempts).values() if isinstance(entries, list) for a in entries]

    # -- closing -----------------------------------------------------------------------------

    def close(self, claims: Sequence[str] = ()) -> None:
        """Release the run's claims, unsubscribe, disconnect; stop the LocalCluster if ours."""
        client, local = self._client, self._local
        self._client = self._local = None
        if client is not None:
            try:
                if claims:
                    _release_claims(client, claims)
                for topic in self._topics:  # before closing: the scheduler would tell us we left
                    client.unsubscribe_topic(topic)
                client.close()
            except Exception:
                pass
        if local is not None:
            try:
                local.close()
            except Exception:
                pass


def _release_claims(client: Client, claims: Sequence[str]) -> None:
    scheduler = client.scheduler
    assert scheduler is not None

    async def release() -> None:
        await asyncio.gather(*(scheduler.multi_lock_release(id=c) for c in claims), return_exceptions=True)

    client.sync(release)


class QueueAdaptive(Adaptive):
    """Dask's ``Adaptive``, driven by flowctl's queue: as many workers as the attempts running
    plus the ready ones waiting need, retiring only workers with none of ours running."""

    def __init__(
        self, cluster: LocalCluster, *, demand: Demand, threads: int, minimum: int, maximum: int, interval: str,
        wait_count: int,
    ) -> None:
        self._demand = demand
        self._threads = max(1, threads)
        super().__init__(cluster, interval=interval, minimum=minimum, maximum=maximum, wait_count=wait_count)

    async def target(self) -> int:
        return math.ceil(self._demand.demand() / self._threads)

    async def workers_to_close(self, target: int) -> list[str]:
        names = await super().workers_to_close(target)
        busy = self._demand.busy_workers()
        by_name = {str(w.get("name")): a for a, w in self.cluster.scheduler_info.get("workers", {}).items()}
        return [n for n in names if by_name.get(str(n)) not in busy]


__all__ = ["Demand", "QueueAdaptive", "RunCluster", "Worker"]

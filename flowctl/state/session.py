"""A stateful run's set-up and tear-down: lock, store, dead runs, decisions, provenance.

``open_session`` is what ``flowctl run`` calls once the run is prepared (pipeline loaded,
params resolved, plan compiled): it creates the state folder (0700) when needed, takes the
pipeline's overlap lock (waiting if asked), opens the SQLite store, records runs the lock proves
dead as interrupted, loads (or makes) the fingerprint key, fingerprints the plan and decides what
runs (resume, up to date, force), and gathers the provenance. The session's ``plan()`` is what
the scheduler needs of it, typed (``run.options.SessionPlan``: reuse, fingerprints,
resumed-from, provenance); the session must be closed (``with``) to release the lock. Raises ``LockedError`` (75), ``StateError``,
``UsageError``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flowctl.run.events import RunId, StepStatus
from flowctl.run.itemstream import STDOUT
from flowctl.spec.model import ItemsKind
from flowctl.state import keys
from flowctl.state import lock as locks
from flowctl.state.assess import Assessment, assess, outputs_of
from flowctl.state.decide import Verdict, nothing_to_run
from flowctl.state.provenance import provenance
from flowctl.state.run_records import RunRecord
from flowctl.state.store import SqliteRunStore
from flowctl.state.views import pipeline_key

if TYPE_CHECKING:
    from pathlib import Path

    from flowctl.fingerprint import Fingerprint, FingerprintKey
    from flowctl.run.options import Carried, Reuse, SessionPlan
    from flowctl.run.prepare import PreparedRun
    from flowctl.spec.model import Pipeline


@dataclass
class RunSession:
    """An open run: its id, the lock it holds and the store it records to."""

    run_id: RunId
    lock: locks.PipelineLock
    store: SqliteRunStore
    assessment: Assessment
    resumed: RunRecord | None
    pipeline_path: str = ""
    file_sha256: str = ""
    interrupted: tuple[str, ...] = ()  # earlier runs found dead and recorded as interrupted
    at_start: StartFingerprints | None = None
    pipeline: Pipeline | None = None
    replay: tuple[str, tuple[str, ...]] | None = None  # `dlq replay`: a step and the keys it sends again

    def provenance(self) -> Mapping[str, object]:
        """The pipeline file's hash, the git commit and whether the tree was dirty."""
        return provenance(self.pipeline_path, self.file_sha256)

    def start_recording(self) -> None:
        """Before the run starts: keep what its fingerprints are made of (for --explain) and
        their scheme and key. Left out when nothing runs, so a resume with nothing to do stays
        quick."""
        self.store.save_fingerprints(self.assessment.fingerprints.values())

    def plan(self) -> SessionPlan:
        """What the run's scheduler takes from this session; starts recording the fingerprints'
        parts (``start_recording``), so call it once, when the run is about to start."""
        from flowctl.run.options import SessionPlan

        self.start_recording()
        done = self.items_done()
        carried: dict[str, dict[str, Carried]] = {}
        replayed: dict[str, dict[str, Carried]] = {}
        attempts: dict[str, int] = {}
        if self.replay is not None and self.resumed is not None:  # `dlq replay`: in the run itself
            step, run_id = self.replay[0], self.resumed.run_id
            attempts = self.store.continue_in_place(run_id)
            kept, sent = self.store.replay_plan(run_id, step, self.replay[1])
            # every foreach step keeps the rows of the items it finished: none becomes "reused"
            carried = {s: dict(found) for s, found in done.items() if s != step}
            carried[step], replayed[step], done = kept, sent, {}
        return SessionPlan(
            reuse=self.reuse(), fingerprints=self.fingerprints(),
            resumed_from=RunId(self.resumed.run_id) if self.resumed is not None else None,
            provenance=dict(self.provenance()),
            fingerprint_at_start=self.at_start.fingerprint if self.at_start is not None else None,
            items_done=done, results_paths=self.results_paths(), stdout_paths=self.stdout_paths(),
            items_carried=carried, items_replayed=replayed, attempts_before=attempts,
        )

    @property
    def nothing_to_do(self) -> bool:
        return nothing_to_run(self.assessment.decisions)

    def reuse(self) -> dict[str, Reuse]:
        """The steps the scheduler must not run, in plan order, with the status and reason they end with."""
        from flowctl.run.options import Reuse

        out: dict[str, Reuse] = {}
        for sid, d in self.assessment.decisions.items():
            if d.verdict is not Verdict.RUN:
                status = StepStatus.REUSED if d.verdict is Verdict.REUSED else StepStatus.UP_TO_DATE
                out[sid] = Reuse(status, d.reason, self.assessment.fingerprints[sid].digest)
        return out

    def items_done(self) -> dict[str, dict[str, Carried]]:
        """Per foreach step that runs, the items that need not run again (issue 15): those the
        resumed run finished, or for a new run of a step that declares outputs those the last
        run finished, each under the step's current fingerprint."""
        pipeline = self.pipeline
        if pipeline is None:
            return {}
        decisions, prints = self.assessment.decisions, self.assessment.fingerprints
        fingerprints = {sid: prints[sid].digest for sid, d in decisions.items()
                        if d.verdict is Verdict.RUN and pipeline.steps[sid].foreach is not None
                        and (self.resumed is not None or pipeline.steps[sid].outputs)}
        if not fingerprints:
            return {}
        run_id = self.resumed.run_id if self.resumed is not None else None
        return self.store.items_done(run_id, pipeline.name, fingerprints)

    def results_paths(self) -> dict[str, str]:
        """The ``results.jsonl`` of each foreach step this run reuses (``${{ needs.S.results }}``)."""
        pipeline = self.pipeline
        if pipeline is None:
            return {}
        reused = [sid for sid, d in self.assessment.decisions.items()
                  if d.verdict is not Verdict.RUN and pipeline.steps[sid].foreach is not None]
        return self.store.latest_results(pipeline.name, reused) if reused else {}

    def stdout_paths(self) -> dict[str, str]:
        """The recorded ``stdout.jsonl`` of each step whose output gives a foreach step its items
        and that this run does not run (reused, up to date, or outside the selection)."""
        pipeline = self.pipeline
        if pipeline is None:
            return {}
        decisions = self.assessment.decisions
        producers = sorted({s.foreach.source.path for s in pipeline.steps.values()
                            if s.foreach is not None and s.foreach.source.kind is ItemsKind.STEP})
        idle = [sid for sid in producers if sid not in decisions or decisions[sid].verdict is not Verdict.RUN]
        return self.store.latest_results(pipeline.name, idle, STDOUT) if idle else {}

    def fingerprints(self) -> dict[str, str]:
        return {sid: fp.digest for sid, fp in self.assessment.fingerprints.items()}

    def close(self) -> None:
        try:
            self.store.close()
        finally:
            self.lock.release()

    def __enter__(self) -> RunSession:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is not None:  # the run stops on an error: never leave it recorded as running
            self.store.abandon(f"flowctl stopped: {getattr(exc, 'message', None) or type(exc).__name__}")
        self.close()


def open_session(
    state_dir: str | os.PathLike[str],
    prepared: PreparedRun,
    run_id: RunId,
    *,
    environ: Mapping[str, str],
    resume: RunRecord | None = None,
    force: bool = False,
    force_steps: Sequence[str] = (),
    wait: float | None = 0.0,
    after_lock: Callable[[locks.PipelineLock], None] | None = None,
    on_wait: Callable[[locks.Holder, Path], None] | None = None,
    replay: tuple[str, tuple[str, ...]] | None = None,
) -> RunSession:
    """Lock, open, decide (see the module docstring). ``wait``: seconds, None for ever.
    ``after_lock`` runs once the lock is held and the store open, before anything is decided
    (the CLI ends what dead runs left running there: ``state.leftovers``); ``on_wait`` is told
    the holder when waiting for the lock starts."""
    pipeline = prepared.pipeline
    keys.ensure_state_dir(state_dir)  # before the lock file and the database appear in it
    held = locks.acquire(state_dir, pipeline.name, run_id=run_id, wait=wait, on_wait=on_wait)
    store: SqliteRunStore | None = None
    try:
        invocations = prepared.invocations
        store = SqliteRunStore(
            state_dir,
            outputs_of=lambda sid: outputs_of(invocations[sid]) if invocations[sid].outputs else {},
            pipeline_path=pipeline_key(pipeline.path),
        )
        store.watch(held.identity)  # a deleted or replaced lock excludes nobody: stop (exit 74)
        if after_lock is not None:
            after_lock(held)
        interrupted = store.mark_interrupted(pipeline.name)  # we hold the lock: they are dead
        key = keys.load_key(state_dir, create=True)
        found = assess(
            state_dir, prepared.plan, prepared.params, invocations, environ,
            key=key, resume=resume, force=force, force_steps=force_steps,
        )
        store.set_fingerprints({sid: fp.digest for sid, fp in found.fingerprints.items()})
        store.set_carried_outputs({sid: d.outputs for sid, d in found.decisions.items() if d.outputs})
    except BaseException:
        if store is not None:
            store.close()
        held.release()
        raise
    at_start = StartFingerprints(found.fingerprints, prepared, key, store)
    return RunSession(run_id, held, store, found, resume, pipeline.path, pipeline.source_sha256, interrupted,
                      at_start, pipeline, replay)


class StartFingerprints:
    """A step's fingerprint taken again as it first starts, when a step it needs started in this
    run: the inputs as the step sees them (its upstream may have just rewritten them) and its
    upstream's digests taken the same way, so the fingerprint recorded with its success is the
    one the next run computes from the same files (a chain is up to date after one run, like
    make). Steps whose needs did not run keep the fingerprint taken when the run started (their
    inputs were hashed then and no declared upstream touched them since)."""

    def __init__(self, planned: Mapping[str, Fingerprint], prepared: PreparedRun, key: FingerprintKey,
                 store: SqliteRunStore) -> None:
        self._digests = {sid: fp.digest for sid, fp in planned.items()}
        self._prepared = prepared
        self._key = key
        self._store = store
        self._started: set[str] = set()
        self._memo: dict[tuple[str, ...], str] = {}

    def fingerprint(self, step: str) -> str:
        """The digest to record for ``step`` (first start: recomputed when a need started in this
        run, its parts saved with the checkpoint that records the start)."""
        from flowctl.fingerprint import fingerprint_step

        needs = self._prepared.pipeline.steps[step].needs
        if step not in self._started and any(n in self._started for n in needs):
            fp = fingerprint_step(
                step, self._prepared.invocations[step], params=self._prepared.params, key=self._key,
                upstream={n: self._digests.get(n, "") for n in needs}, memo=self._memo,
            )
            self._digests[step] = fp.digest
            self._store.add_fingerprint(step, fp)
        self._started.add(step)
        return self._digests.get(step, "")


__all__ = ["RunSession", "StartFingerprints", "open_session"]

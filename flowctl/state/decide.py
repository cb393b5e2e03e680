"""Which steps must run: the resume and up-to-date decision, with the reason for each step.

A pure function of the plan (order and needs), the current fingerprints, and what history
recorded (the run being resumed, each step's last success, the recorded fingerprints with their
scheme and key), plus a callable that hashes a step's declared outputs now. Used by
``flowctl run`` (``--resume``, up-to-date skipping, ``--force``/``--force-step``) and
``flowctl plan --explain``.

For each selected step, in plan order, the first rule that applies decides:

1. ``--force`` or ``--force-step`` given now (that step, or one it needs transitively) → run;
2. a step it needs will run → run ("upstream X will run");
3. resuming, and the step succeeded (or was reused / up to date) in that run with the same
   fingerprint → reused;
4. resuming, and the step did not succeed in that run (failed, cancelled, interrupted while it
   ran, never started) → run, even when an older success with the same fingerprint exists: it
   was to run in that run and its outputs may be half-written (issue 12). So is a step that run
   does not record when that run was made with ``--force`` / ``--force-step`` covering it (a
   resume keeps the forcing of the run it continues);
5. the step declares ``outputs``, its last success in a run of a pipeline file in the same
   folder (never a ``run --ref`` worktree's) has the same fingerprint, and every output exists
   with the hash recorded then → up to date;
6. otherwise → run, saying why (which fingerprint parts changed, which output is missing or
   changed, never succeeded).

Two fingerprints are "the same" only when their digests are equal and the recorded one was
made with the current scheme and key; a record of another scheme or key is never compared part
by part: its reason says the scheme (or key) changed.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from flowctl.fingerprint import MISSING, Fingerprint, PartChange, diff_parts
from flowctl.state.run_records import LastSuccess, RunRecord, StoredFingerprint


class _Outcome(Protocol):
    """What deciding reads of a step of the resumed run (``StepOutcome``, ``StepRecord``)."""

    @property
    def run_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def outputs(self) -> Mapping[str, str]: ...
    @property
    def succeeded(self) -> bool: ...


class Resumed(Protocol):
    """The run being resumed: ``run_records.ResumedRun`` (what ``assess`` reads) or a ``RunDetail``."""

    @property
    def run(self) -> RunRecord: ...
    def step(self, step_id: str) -> _Outcome | None: ...


class Verdict(enum.Enum):
    RUN = "run"
    REUSED = "reused"
    UP_TO_DATE = "up to date"


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether a step runs, is reused from the run being resumed, or is up to date."""

    step: str
    verdict: Verdict
    reason: str
    changes: tuple[PartChange, ...] = ()  # fingerprint parts that differ from the record compared
    since_run: str | None = None  # the run whose record was compared
    outputs: Mapping[str, str] = field(default_factory=dict)  # carried forward when not run


def decide(
    order: Sequence[str],
    needs: Mapping[str, Sequence[str]],
    fingerprints: Mapping[str, Fingerprint],
    *,
    outputs: Mapping[str, Sequence[str]],
    output_hashes: Callable[[str], Mapping[str, str]],
    resume: Resumed | None = None,
    successes: Mapping[str, LastSuccess] | None = None,
    recorded: Mapping[str, StoredFingerprint] | None = None,
    force: bool = False,
    force_steps: Collection[str] = (),
    elsewhere: Mapping[str, LastSuccess] | None = None,
) -> dict[str, Decision]:
    """Decide every step of ``order``; see the module docstring for the rules. ``recorded``:
    the stored fingerprints by digest (for the changed parts, and their scheme and key).
    ``successes`` are those of runs in this folder; ``elsewhere``, a step's last success in
    another folder (a ``run --ref`` worktree), only says why it never succeeded here."""
    successes = successes or {}
    elsewhere = elsewhere or {}
    recorded = recorded or {}
    decided: dict[str, Decision] = {}
    forced_by: dict[str, str] = {}
    will_run: set[str] = set()  # the steps decided RUN so far (issue 12: no scan of `decided` per need)
    resume_forced = _forced_in(resume, order, needs)
    resumed_step = resume.step if resume is not None else None

    def one(step: str) -> Decision:
        fp = fingerprints[step]
        deps = needs.get(step, ())
        if force:
            return Decision(step, Verdict.RUN, "forced (--force)")
        forcing = next((n for n in deps if n in forced_by), None) if forced_by else None
        if forcing is not None or step in force_steps:
            forced_by[step] = step if step in force_steps else forced_by[forcing or step]
            why = "forced (--force-step)" if step in force_steps else f"--force-step {forced_by[step]} runs upstream"
            return Decision(step, Verdict.RUN, why)
        if will_run:
            running = [n for n in deps if n in will_run]
            if running:
                return Decision(step, Verdict.RUN, f"upstream {', '.join(running)} will run")
        resume_reason, resume_changes = "", tuple[PartChange, ...]()
        if resume is not None and resumed_step is not None:
            record = resumed_step(step)
            if record is not None and record.succeeded and _same(record.fingerprint, fp, recorded):
                return Decision(
                    step,
                    Verdict.REUSED,
                    f"succeeded in run {record.run_id}, fingerprint unchanged",
                    since_run=record.run_id,
                    outputs=record.outputs,
                )
            run_id = resume.run.run_id
            if record is not None and not record.succeeded:
                return Decision(step, Verdict.RUN, f"{_status_words(record.status)} in run {run_id}", since_run=run_id)
            if record is not None:  # it succeeded there, and its fingerprint changed since
                resume_changes = _changes(record.fingerprint, fp, recorded)
                resume_reason = f"{_describe(resume_changes)} since run {record.run_id}"
            elif step in resume_forced:
                resume_reason = f"{resume_forced[step]} in run {run_id}"
            elif step not in resume.run.steps and not (resume.run.selection.get("only") or resume.run.selection.get("from")):
                resume_reason = f"a new step: not in the pipeline of run {run_id}"  # added or renamed since
            else:
                resume_reason = f"not selected in run {run_id}"
            if step in resume_forced:  # that run was asked to run it afresh: no up-to-date check
                return Decision(step, Verdict.RUN, resume_reason, resume_changes, run_id)
        decision = _up_to_date(step, fp, outputs.get(step, ()), successes.get(step), recorded, output_hashes,
                               elsewhere.get(step))
        if decision.verdict is Verdict.RUN and resume is not None:
            decision = Decision(step, Verdict.RUN, resume_reason, resume_changes, resume.run.run_id)
        return decision

    for step in order:
        decision = decided[step] = one(step)
        if decision.verdict is Verdict.RUN:
            will_run.add(step)
    return decided


def _forced_in(resume: Resumed | None, order: Sequence[str], needs: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """The steps the resumed run was asked to run afresh (its recorded ``--force`` /
    ``--force-step``, and what needs a forced step), with the words for it."""
    if resume is None:
        return {}
    selection = resume.run.selection
    if selection.get("force"):
        return {step: "forced (--force)" for step in order}
    named = {str(s) for s in selection.get("force_steps") or ()}
    if not named:
        return {}
    root: dict[str, str] = {}
    for step in order:
        up = next((n for n in needs.get(step, ()) if n in root), None)
        if step in named or up is not None:
            root[step] = step if step in named else root[up or step]
    return {
        step: "forced (--force-step)" if first == step else f"--force-step {first} ran upstream"
        for step, first in root.items()
    }


def _up_to_date(
    step: str,
    fp: Fingerprint,
    declared: Sequence[str],
    last: LastSuccess | None,
    recorded: Mapping[str, StoredFingerprint],
    output_hashes: Callable[[str], Mapping[str, str]],
    other: LastSuccess | None = None,
) -> Decision:
    if not declared:
        return Decision(step, Verdict.RUN, "declares no outputs, so it always runs")
    if last is None and other is not None:
        return Decision(step, Verdict.RUN, f"never succeeded in this folder (run {other.run_id} ran in another "
                        "folder, e.g. a `run --ref` worktree)")
    if last is None:
        return Decision(step, Verdict.RUN, "never succeeded before")
    if not _same(last.fingerprint, fp, recorded):
        changes = _changes(last.fingerprint, fp, recorded)
        return Decision(step, Verdict.RUN, f"{_describe(changes)} since run {last.run_id}", changes, last.run_id)
    now = output_hashes(step)
    missing = sorted(path for path, digest in now.items() if digest == MISSING)
    if missing:
        return Decision(step, Verdict.RUN, f"output {', '.join(missing)} missing", since_run=last.run_id)
    changed = sorted(p for p, d in last.outputs.items() if now.get(p, MISSING) != d)
    if changed:
        return Decision(
            step, Verdict.RUN, f"output {', '.join(changed)} changed since run {last.run_id}", since_run=last.run_id
        )
    return Decision(
        step,
        Verdict.UP_TO_DATE,
        f"fingerprint and outputs match the success in run {last.run_id}",
        since_run=last.run_id,
        outputs=dict(now),
    )


def _same(old_digest: str, fp: Fingerprint, recorded: Mapping[str, StoredFingerprint]) -> bool:
    """The recorded digest is the current one, made with the same scheme and key."""
    return old_digest == fp.digest and _incomparable(recorded.get(old_digest), fp) is None


def _incomparable(old: StoredFingerprint | None, fp: Fingerprint) -> PartChange | None:
    """Why a recorded fingerprint cannot be compared with ``fp`` (another scheme or key)."""
    if old is None:  # no record of its parts: the digests alone decide (they differ by scheme)
        return None
    if old.scheme != fp.scheme:
        return PartChange("scheme", "changed")
    if old.key_id != fp.key_id:
        return PartChange("key", "changed")
    return None


def _changes(old_digest: str, fp: Fingerprint, recorded: Mapping[str, StoredFingerprint]) -> tuple[PartChange, ...]:
    old = recorded.get(old_digest)
    if old is None:
        return (PartChange("fingerprint", "changed"),)
    reason = _incomparable(old, fp)
    if reason is not None:
        return (reason,)
    return diff_parts(old.parts, fp.parts) or (PartChange("fingerprint", "changed"),)


def _describe(changes: Sequence[PartChange]) -> str:
    words = [c.describe() for c in changes[:4]]
    if len(changes) > 4:
        words.append(f"{len(changes) - 4} more changes")
    return "; ".join(words)


def _status_words(status: str) -> str:
    return {
        "running": "was running",
        "pending": "never started",
        "ready": "never started",
        "skipped": "skipped",
        "not selected": "not selected",
    }.get(status, status)


def nothing_to_run(decisions: Mapping[str, Decision]) -> bool:
    """True when no step would run."""
    return all(d.verdict is not Verdict.RUN for d in decisions.values())


__all__ = ["Decision", "Resumed", "Verdict", "decide", "nothing_to_run"]

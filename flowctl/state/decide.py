"""Which steps must run: the resume and up-to-date decision, with the reason for each step.

A pure function of the plan (order and needs), the current fingerprints, and what history
recorded (the run being resumed, each step's last success, the parts of recorded fingerprints),
plus a callable that hashes a step's declared outputs now. Used by ``flowctl run`` (``--resume``,
up-to-date skipping, ``--force``/``--force-step``) and ``flowctl plan --explain``.

For each selected step, in plan order, the first rule that applies decides:

1. ``--force`` or ``--force-step`` (that step, or one it needs transitively) → run;
2. a step it needs will run → run ("upstream X will run");
3. resuming, and the step succeeded (or was reused / up to date) in that run with the same
   fingerprint → reused;
4. the step declares ``outputs``, its last success anywhere has the same fingerprint, and every
   output exists with the hash recorded then → up to date;
5. otherwise → run, saying why (failed/cancelled/interrupted/never started in the resumed run,
   which fingerprint parts changed, which output is missing or changed, never succeeded).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from flowctl.fingerprint import MISSING, Fingerprint, PartChange, diff_parts
from flowctl.state.records import LastSuccess, RunDetail


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
    resume: RunDetail | None = None,
    successes: Mapping[str, LastSuccess] | None = None,
    recorded_parts: Mapping[str, Mapping[str, str]] | None = None,
    force: bool = False,
    force_steps: Collection[str] = (),
) -> dict[str, Decision]:
    """Decide every step of ``order``; see the module docstring for the rules."""
    successes = successes or {}
    recorded_parts = recorded_parts or {}
    decided: dict[str, Decision] = {}
    forced_by: dict[str, str] = {}
    for step in order:
        fp = fingerprints[step]
        forcing = next((n for n in needs.get(step, ()) if n in forced_by), None)
        if force:
            decided[step] = Decision(step, Verdict.RUN, "forced (--force)")
            continue
        if step in force_steps or forcing is not None:
            forced_by[step] = step if step in force_steps else forced_by[forcing or step]
            why = "forced (--force-step)" if step in force_steps else f"--force-step {forced_by[step]} runs upstream"
            decided[step] = Decision(step, Verdict.RUN, why)
            continue
        running = [n for n in needs.get(step, ()) if n in decided and decided[n].verdict is Verdict.RUN]
        if running:
            decided[step] = Decision(step, Verdict.RUN, f"upstream {', '.join(running)} will run")
            continue
        resume_reason, resume_changes = "", tuple[PartChange, ...]()
        if resume is not None:
            record = resume.step(step)
            if record is not None and record.succeeded and record.fingerprint == fp.digest:
                decided[step] = Decision(
                    step,
                    Verdict.REUSED,
                    f"succeeded in run {record.run_id}, fingerprint unchanged",
                    since_run=record.run_id,
                    outputs=record.outputs,
                )
                continue
            if record is not None and record.succeeded:
                resume_changes = _changes(record.fingerprint, fp, recorded_parts)
                resume_reason = f"{_describe(resume_changes)} since run {record.run_id}"
            else:
                status = record.status if record is not None else "not selected"
                resume_reason = f"{_status_words(status)} in run {resume.run.run_id}"
        decision = _up_to_date(step, fp, outputs.get(step, ()), successes.get(step), recorded_parts, output_hashes)
        if decision.verdict is Verdict.RUN and resume is not None:
            decision = Decision(step, Verdict.RUN, resume_reason, resume_changes, resume.run.run_id)
        decided[step] = decision
    return decided


def _up_to_date(
    step: str,
    fp: Fingerprint,
    declared: Sequence[str],
    last: LastSuccess | None,
    recorded_parts: Mapping[str, Mapping[str, str]],
    output_hashes: Callable[[str], Mapping[str, str]],
) -> Decision:
    if not declared:
        return Decision(step, Verdict.RUN, "declares no outputs, so it always runs")
    if last is None:
        return Decision(step, Verdict.RUN, "never succeeded before")
    if last.fingerprint != fp.digest:
        changes = _changes(last.fingerprint, fp, recorded_parts)
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


def _changes(old_digest: str, fp: Fingerprint, recorded: Mapping[str, Mapping[str, str]]) -> tuple[PartChange, ...]:
    old = recorded.get(old_digest)
    if old is None:
        return (PartChange("fingerprint", "changed"),)
    return diff_parts(old, fp.parts) or (PartChange("fingerprint", "changed"),)


def _describe(changes: Sequence[PartChange]) -> str:
    words = [c.describe() for c in changes[:4]]
    if len(changes) > 4:
        words.append(f"{len(changes) - 4} more changes")
    return "; ".join(words)


def _status_words(status: str) -> str:
    return {
        "pending": "never started",
        "ready": "never started",
        "skipped": "skipped",
        "not selected": "not selected",
    }.get(status, status)


def nothing_to_run(decisions: Mapping[str, Decision]) -> bool:
    """True when no step would run."""
    return all(d.verdict is not Verdict.RUN for d in decisions.values())


__all__ = ["Decision", "Verdict", "decide", "nothing_to_run"]

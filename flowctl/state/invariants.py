"""``flowctl chaos check``'s invariants over a run's recorded history (issue 17), Jepsen-style.

A run and the runs it resumes (its resume chain, oldest first) are read from the state database,
with each run's effect ledger (``<state>/runs/<run-id>/ledger.jsonl``: the file each attempt
gets as ``FLOWCTL_LEDGER``, one JSON line ``{"effect": "..."}`` per side effect). Checked:

* ``finished``: the last run of the chain ended (a runner that killed itself needs a resume);
* ``converged``: every step succeeded, or failed only through injected faults (every failed
  attempt of it injected), or was skipped behind such a step;
* ``order``: no attempt (nor a foreach step's first item) started before every step it needs
  (within the run) had succeeded, or, on a streaming edge (``items_from: {step: S, stream:
  true}``, given as ``streams``), before S had started;
* ``no-rerun``: no step that had succeeded ran again in a later run of the chain;
* ``duplicates``: each runner death left at most its concurrency of attempts in flight;
* ``retries``: no step ran more regular attempts than it allows;
* ``no-leftovers``: no process of the chain is still alive;
* ``effects``: no effect is recorded twice.

Returns a ``CheckReport``; never prints (``cli/chaos.py`` renders). ``needs`` come from the
caller (the pipeline file as recorded), since state keeps no graph.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from flowctl.run import procs
from flowctl.run.chaos import FAILING, LEDGER
from flowctl.run.events import StepStatus
from flowctl.state import item_checks, queries
from flowctl.state.item_checks import Violation
from flowctl.state.items import ItemRecord, items_of
from flowctl.state.run_records import RunDetail
from flowctl.state.views import opened, run_details, run_log_dir

CHECKS = ("finished", "converged", "order", "no-rerun", "duplicates", "retries", "no-leftovers", "effects")
_FAILED = frozenset({"failed", "timeout", "error", "worker-lost"})
_DONE = (StepStatus.SUCCEEDED.value, StepStatus.REUSED.value, StepStatus.UP_TO_DATE.value)


@dataclass(frozen=True, slots=True)
class CheckReport:
    """What ``check_run`` found over one resume chain."""

    run_id: str
    pipeline: str
    pipeline_path: str
    chaos: str
    chain: tuple[str, ...]  # oldest first
    violations: tuple[Violation, ...]
    injected: Mapping[str, int] = field(default_factory=dict)  # fault -> count
    runner_kills: int = 0
    effects: int = 0
    skipped: tuple[str, ...] = ()  # checks that could not be made, and why

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict[str, object]:
        return {
            "run_id": self.run_id, "pipeline": self.pipeline, "pipeline_path": self.pipeline_path,
            "chaos": self.chaos, "chain": list(self.chain), "ok": self.ok, "checks": list(CHECKS),
            "violations": [v.to_dict() for v in self.violations], "injected": dict(self.injected),
            "runner_kills": self.runner_kills, "effects": self.effects, "skipped": list(self.skipped),
        }


def check_run(
    state_dir: str | os.PathLike[str],
    run_id: str,
    needs: Mapping[str, Sequence[str]] | None,
    *,
    streams: Mapping[str, str] | None = None,
    allowed: Mapping[str, int] | None = None,
    alive: Callable[[], Sequence[procs.Tagged]] = procs.tagged_processes,
) -> CheckReport:
    """Check the invariants over ``run_id``'s resume chain (``streams``: foreach step -> the
    step whose output it streams; ``allowed``: attempts each step allows, from the pipeline
    file, for its items' retries). Raises ``UsageError`` for an unknown run, ``StateError`` for
    a bad database."""
    last = run_details(state_dir, run_id, command=("chaos", "check"))
    with opened(state_dir) as conn:
        chain = tuple(reversed(queries.resume_chain(conn, last.run.run_id)))
        details = [queries.run_detail(conn, rid) for rid in chain[:-1]] + [last]
        first_items = {rid: _first_items(conn, rid) for rid in chain}
        items = [(rid, items_of(conn, rid)) for rid in chain]  # foreach items: attempts too
    out: list[Violation] = []
    _finished(last, out)
    _converged(last, out)
    fans = {s.step: s.reason for s in last.steps if s.status == "failed" and not s.attempt_records}  # foreach steps
    failed = {s.step for s in last.steps if s.status == "failed"}
    # a streamed step fails (rather than being skipped) when its producer fails: that failure is
    # judged at the producer, as a skip is (trial 17: a soak failed on a fault chaos explained)
    behind = frozenset(step for step, producer in (streams or {}).items() if producer in failed)
    out.extend(item_checks.converged_items(last.run.run_id, fans, items[-1][1], behind))
    skipped: list[str] = []
    if needs is None:
        skipped.append("order: the pipeline file it ran is gone or invalid, so its needs are unknown")
    else:
        for d in details:
            _order(d, needs, out, first_items[d.run.run_id], streams or {})
    _reruns(details, out)
    out.extend(item_checks.rerun_items(items))
    kills = _duplicates(details, dict(items), out)
    for d in details:
        _retries(d, out)
    for rid, records in items:
        out.extend(item_checks.retried_items(rid, records, allowed or {}))
    ids = set(chain)
    for p in alive():
        if p.run_id in ids:
            out.append(Violation("no-leftovers", f"process {p.pid} of step {p.step or '?'} is still alive", p.run_id, p.step))
    effects = _effects(state_dir, chain, out)
    injected = Counter(a.injected for d in details for s in d.steps for a in s.attempt_records if a.injected)
    for _, records in items:
        injected.update(item_checks.item_fault_counts(records))
    run = last.run
    return CheckReport(
        run_id=run.run_id, pipeline=run.pipeline, pipeline_path=run.pipeline_path, chaos=run.chaos,
        chain=chain, violations=tuple(out), injected=dict(sorted(injected.items())), runner_kills=kills,
        effects=effects, skipped=tuple(skipped),
    )


def _finished(last: RunDetail, out: list[Violation]) -> None:
    if last.run.status in ("running", "interrupted"):
        out.append(Violation("finished", f"run {last.run.run_id} is {last.run.status}: resume it until it ends",
                             last.run.run_id))


def _converged(last: RunDetail, out: list[Violation]) -> None:
    rid = last.run.run_id
    for s in last.steps:
        if s.status in _DONE or s.status in ("skipped", "failed (allowed)"):
            continue  # a skip is reported at the step that failed
        if s.status == "failed":
            real = [a for a in s.attempt_records if a.outcome in _FAILED and a.injected not in FAILING]
            if real:
                a = real[-1]
                why = f"exit {a.exit_code}" if a.outcome == "failed" else a.outcome
                out.append(Violation("converged", f"step {s.step} failed for real: attempt {a.attempt} ({why}) was not injected",
                                     rid, s.step))
            continue
        if last.run.status not in ("running", "interrupted"):  # an unfinished run is reported once
            out.append(Violation("converged", f"step {s.step} ended {s.status}", rid, s.step))


def _order(d: RunDetail, needs: Mapping[str, Sequence[str]], out: list[Violation],
           first_items: Mapping[str, float] | None = None, streams: Mapping[str, str] | None = None) -> None:
    rid = d.run.run_id
    done_at: dict[str, float] = {}
    began: dict[str, float] = {}  # a producer streaming its output: when its first attempt started
    for s in d.steps:
        if s.status in (StepStatus.REUSED.value, StepStatus.UP_TO_DATE.value):
            done_at[s.step] = began[s.step] = float("-inf")
        ok = [a.finished_at for a in s.attempt_records if a.outcome == "ok" and a.finished_at is not None]
        if ok:
            done_at[s.step] = min(ok)
        elif s.status == StepStatus.SUCCEEDED.value and s.finished_at is not None:
            done_at[s.step] = s.finished_at  # a foreach step: its items, not its attempts, succeeded
        starts = [a.started_at for a in s.attempt_records if a.started_at is not None]
        if starts:
            began[s.step] = min(starts)
    selected = {s.step for s in d.steps}
    for s in d.steps:
        times = [(f"attempt {a.attempt}", a.started_at) for a in s.attempt_records if a.started_at is not None]
        if first_items and s.step in first_items:
            times.append(("item", first_items[s.step]))
        for what, started in times:
            for need in needs.get(s.step, ()):
                if need not in selected:
                    continue  # outside the run's selection: it counts as done
                streamed = streams is not None and streams.get(s.step) == need
                at = (began if streamed else done_at).get(need)
                if at is None or at > started + 1e-6:
                    out.append(Violation("order", f"step {s.step} {what} started before {need}, which it needs, "
                                         f"had {'started (it streams its output)' if streamed else 'succeeded'}",
                                         rid, s.step))


def _first_items(conn: sqlite3.Connection, run_id: str) -> dict[str, float]:
    """When each foreach step of ``run_id`` first started an item (reused items never started)."""
    rows = conn.execute("SELECT step, min(started_at) FROM items WHERE run_id = ? AND attempts > 0 "
                        "AND started_at IS NOT NULL GROUP BY step", (run_id,))
    return {str(step): float(at) for step, at in rows}


def _reruns(details: Sequence[RunDetail], out: list[Violation]) -> None:
    succeeded: dict[str, str] = {}
    for d in details:
        for s in d.steps:
            if s.attempt_records and s.step in succeeded:
                out.append(Violation("no-rerun", f"step {s.step} ran again in {d.run.run_id} although it had "
                                     f"succeeded in {succeeded[s.step]}", d.run.run_id, s.step))
        for s in d.steps:
            if s.status == StepStatus.SUCCEEDED.value:
                succeeded.setdefault(s.step, d.run.run_id)


def _duplicates(details: Sequence[RunDetail], items: Mapping[str, Sequence[ItemRecord]], out: list[Violation]) -> int:
    kills = 0
    for d in details[:-1]:
        if d.run.status != "interrupted":
            continue
        kills += 1
        in_flight = [s.step for s in d.steps for a in s.attempt_records if a.outcome in (None, "interrupted")]
        in_flight += item_checks.in_flight_items(items.get(d.run.run_id, ()))
        limit = d.run.concurrency or 1
        if len(in_flight) > limit:
            out.append(Violation("duplicates", f"{len(in_flight)} attempts were in flight when its runner died "
                                 f"(concurrency {limit}): {', '.join(in_flight[:5])}", d.run.run_id))
    return kills


def _retries(d: RunDetail, out: list[Violation]) -> None:
    for s in d.steps:
        regular = [a for a in s.attempt_records if a.kind == "attempt"]
        allowed = max((a.max_attempts for a in regular), default=0)
        if len(regular) > allowed:
            out.append(Violation("retries", f"step {s.step} ran {len(regular)} attempts; it allows {allowed}",
                                 d.run.run_id, s.step))


def _effects(state_dir: str | os.PathLike[str], chain: Sequence[str], out: list[Violation]) -> int:
    seen: dict[str, list[str]] = {}
    for rid in chain:
        path = run_log_dir(state_dir, rid) / LEDGER
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            continue
        for line in text.splitlines():
            if line.strip():
                seen.setdefault(_effect(line), []).append(rid)
    for effect, runs in seen.items():
        if len(runs) > 1:
            where = ", ".join(dict.fromkeys(runs))
            out.append(Violation("effects", f"effect {effect!r} recorded {len(runs)} times (runs {where})", runs[-1]))
    return sum(len(r) for r in seen.values())


def _effect(line: str) -> str:
    """The effect a ledger line names: its ``effect`` field, else the line itself."""
    try:
        value = json.loads(line)
    except ValueError:
        return line.strip()
    if isinstance(value, dict) and "effect" in value:
        return str(value["effect"])
    return line.strip()


__all__ = ["CHECKS", "LEDGER", "CheckReport", "Violation", "check_run"]

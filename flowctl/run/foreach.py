"""The items of one ``foreach`` step within a run: expansion, batches, each unit's command,
tolerated failures and the exported results (issue 15).

The scheduler owns time and slots: it asks a ``FanOut`` for the next unit (one item, or one
batch) when the step may start one, gives it back each result, and finishes the step when
``done``. A ``FanOut`` reads the step's items once, before any starts (a faulty item fails the
step naming its source and line), skips those a resumed run already finished, counts failures
per item (a failed batch counts all its items) against ``tolerated_failure``, and at the end
writes ``results.jsonl`` and ``dead-letter.jsonl`` into the step's folder of the run. It never
starts processes (the executor does), never touches SQLite (``state/items.py``).
"""

from __future__ import annotations

import collections
import glob
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import quote

from flowctl.masking import mask_text
from flowctl.run.events import ItemFinished, ItemStarted, ItemStatus, RunId
from flowctl.run.itemstream import LineTail, output_name, parse_line
from flowctl.run.options import Carried, InvocationLike
from flowctl.spec import expr
from flowctl.spec.foreach import ItemFault, canonical, check_items, checked_key, item_refs, item_text, item_values
from flowctl.spec.model import Batch, Foreach, ItemsKind, Step

RESULTS = "results.jsonl"
_FAILED = (ItemStatus.DEAD.value, ItemStatus.POISONED.value)
DEAD_LETTER = "dead-letter.jsonl"


class Unit:
    """One item, or one batch of items, as the scheduler runs it."""

    __slots__ = ("attempts", "base", "batch", "due", "duration", "error", "exit_code", "first_failure", "keys",
                 "last_failure", "log_path", "remedy", "seq", "status", "tail", "values")

    def __init__(self, keys: tuple[str, ...], values: tuple[object, ...], batch: int) -> None:
        self.keys = keys
        self.values = values
        self.batch = batch  # 1-based; 0: a single item
        self.attempts = 0  # in this run of the command (what retries count)
        self.base = 0  # `dlq replay`: attempts the item made before, so numbers (and logs) go on
        self.seq = 0
        self.status = ItemStatus.RUNNING
        self.exit_code: int | None = None
        self.duration = 0.0
        self.error: str | None = None
        self.tail: tuple[str, ...] = ()
        self.log_path = ""
        self.first_failure: float | None = None
        self.last_failure: float | None = None
        self.due = 0.0  # when a retry may start (monotonic)
        self.remedy = ""  # remediation: "" -> "next" (it starts next) -> "running" -> "done" (final attempt)


def escape_key(key: str) -> str:
    """A key as one folder name: ``/`` and other unsafe characters %-escaped; a long key
    shortened with a hash of it, so two keys never share a folder."""
    safe = quote(key, safe="-_.=@,+") or "%"
    if safe in (".", ".."):
        safe = safe.replace(".", "%2E")
    if len(safe) > 120:
        import hashlib

        safe = safe[:100] + "-" + hashlib.sha256(key.encode()).hexdigest()[:16]
    return safe


def read_items(foreach: Foreach, cwd: str, producer_output: str | None = None) -> list[object]:
    """The items of ``foreach`` read from their source. Raises ItemFault naming the source, the
    line and what is wrong."""
    src = foreach.source
    if src.kind is ItemsKind.LITERAL:
        return [json.loads(text) for text in src.literal]
    if src.kind is ItemsKind.GLOB:
        pattern = os.path.join(cwd, src.path)
        return [os.path.relpath(p, cwd) for p in sorted(glob.glob(pattern, recursive=True))]
    path = os.path.join(cwd, src.path) if src.kind is ItemsKind.FILE else producer_output
    name = f"items file {src.path}" if src.kind is ItemsKind.FILE else output_name(src.path)
    if path is None:  # it ran before flowctl kept a producer's output
        raise ItemFault(f"{name} was not recorded: run step {src.path} again (--force-step {src.path})", 0)
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        raise ItemFault(f"{name}: no such file ({path})", 0) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ItemFault(f"{name}: cannot read it: {exc}", 0) from None
    if src.lines:
        return [line for line in lines if line]
    return [parse_line(name, number, line) for number, line in enumerate(lines, 1) if line.strip()]


def source_name(foreach: Foreach) -> str:
    """Where a step's items come from, as messages name it."""
    src = foreach.source
    if src.kind is ItemsKind.FILE:
        return f"items file {src.path}"
    if src.kind is ItemsKind.GLOB:
        return f"items of glob {src.path}"
    return f"the output of step {src.path}" if src.kind is ItemsKind.STEP else "items"


class FanOut:
    """The items of one foreach step in one run (see the module docstring)."""

    def __init__(self, run_id: RunId, step: Step, inv: InvocationLike, logs_dir: str, *,
                 concurrency: int, done: Mapping[str, Carried] | None = None, producer_output: str | None = None,
                 carried: Mapping[str, Carried] | None = None, replayed: Mapping[str, Carried] | None = None,
                 stream: bool = False) -> None:
        assert step.foreach is not None
        self.run_id = run_id
        self.step = step
        self.foreach: Foreach = step.foreach
        self.inv = inv
        self.folder = os.path.join(logs_dir, step.id)
        self.limit = max(1, min(self.foreach.max_concurrent or concurrency, concurrency))
        self.done_before: Mapping[str, Carried] = done or {}
        self.carried_before: Mapping[str, Carried] = carried or {}  # `dlq replay`: items not sent again
        self.replayed: Mapping[str, Carried] = replayed or {}  # `dlq replay`: items sent again
        self.producer_output = producer_output
        self.pending: collections.deque[Unit] = collections.deque()
        self.running: dict[int, Unit] = {}
        self.retrying: list[Unit] = []  # waiting for their back-off to pass
        self.units: list[Unit] = []
        self.total = 0
        self.failed = 0  # items (not batches) dead-lettered
        self.stopped = ""  # why no new unit starts ("exceeded-tolerated-failures", a stop)
        self.queued = False  # the step waits in the scheduler's ready queue for a slot
        # stream: true, while the producer runs: its output as it grows (``feed``); ``closed``
        # once it succeeded and every line was read; ``fault``: why the step fails whatever
        # its items do (the producer failed, an item mid-stream cannot run)
        self.tail = LineTail(producer_output) if stream and producer_output else None
        self.closed = self.tail is None
        self.fault = ""
        self.cut = False  # a stream stopped before its producer ended: not every item was seen
        self._lines: dict[str, int] = {}  # streamed: key -> its line
        self._held: list[tuple[str, object]] = []  # streamed: items waiting to fill a batch
        self._seq = 0
        self._reused: list[tuple[str, object, Carried]] = []
        self._carried: list[tuple[str, object, Carried]] = []
        self._refs = _command_refs(step.run, step.env)
        if step.remediate is not None:  # its item expressions get their variables too
            self._refs += _command_refs(step.remediate.run, step.remediate.env)
        self._secrets = tuple(inv.secrets)

    # -- expansion ----------------------------------------------------------------------------

    def expand(self, at: float) -> list[ItemFinished]:
        """Read the items and make the units; returns the events of items a resumed run
        already finished. Raises ItemFault (the step fails before any item starts). A stream
        is fed as the producer prints (``feed``)."""
        if self.tail is not None:
            return []  # the scheduler feeds it (run/streamrun.py)
        values = read_items(self.foreach, self.inv.cwd, self.producer_output)
        try:
            keys = check_items(self.foreach, values, self._refs)
        except ItemFault as exc:  # which file, glob or step the bad item came from
            raise ItemFault(f"{source_name(self.foreach)}: {exc}", exc.index) from None
        self.total = len(values)
        events = self._admit(list(zip(keys, values, strict=True)), at)
        if self.failed and self.exceeded:
            self.stopped = "exceeded-tolerated-failures"
        return events

    def feed(self, at: float) -> list[ItemFinished]:
        """A stream: admit the items of the lines the producer printed since the last call (with
        ``closed``, its unfinished last line too). Raises OutputFault (a line that is not JSON:
        the producer's fault) or ItemFault (an item that cannot run, a key seen before, more
        than ``max_items``: this step's), naming the line."""
        assert self.tail is not None
        name = output_name(self.foreach.source.path)
        limit = self.foreach.max_items
        pairs: list[tuple[str, object]] = []
        try:
            for number, text in self.tail.read(final=self.closed):
                if not text.strip():
                    continue
                value = parse_line(name, number, text)
                if self.total >= limit:
                    raise ItemFault(f"{name}, line {number}: more than max_items ({limit}) items", number - 1)
                try:
                    key = checked_key(self.foreach, value, self._refs)
                except LookupError as exc:
                    raise ItemFault(f"{name}, line {number}: {exc.args[0]}", number - 1) from None
                if key in self._lines:
                    raise ItemFault(f"{name}, lines {self._lines[key]} and {number} have the same key {key!r}",
                                    number - 1)
                self._lines[key] = number
                self.total += 1
                pairs.append((key, value))
        except ItemFault:
            self._admit(pairs, at)  # the lines before it are items (the scheduler cancels them)
            raise
        events = self._admit(pairs, at)
        if self.closed and self.failed and self.exceeded:  # the percentage, judged at the end
            self.stopped = self.stopped or "exceeded-tolerated-failures"
        return events

    def _admit(self, pairs: list[tuple[str, object]], at: float) -> list[ItemFinished]:
        """Make units of the items that must run; the events of those carried or reused."""
        before, carried = self.done_before, self.carried_before
        todo: list[tuple[str, object]] = []
        new_carried: list[tuple[str, object, Carried]] = []
        new_reused: list[tuple[str, object, Carried]] = []
        for k, v in pairs:  # an item runs again when its value changed under the same key
            c = carried.get(k)
            if c is not None and c.item == mask_text(canonical(v), self._secrets):
                new_carried.append((k, v, c))
                self.failed += c.status in _FAILED
            elif k in before and before[k].item == canonical(v):
                new_reused.append((k, v, before[k]))
            else:
                todo.append((k, v))
        self._carried += new_carried
        self._reused += new_reused
        batch = self.foreach.batch
        if batch is None:
            units = [Unit((k,), (v,), 0) for k, v in todo]
            for u in units:  # a replayed item's attempts go on from where they were
                earlier = self.replayed.get(u.keys[0])
                u.base = earlier.attempts if earlier is not None else 0
        else:  # numbered after the run's earlier batches: their files and logs stay
            self._held += todo
            units = self._batch_held(batch)
            if units and not self.closed and len(units[-1].keys) < batch.size:  # more items may fill it
                last = units.pop()
                self._held = list(zip(last.keys, last.values, strict=True))
        self.units += units
        self.pending.extend(units)
        # Items settled before are told to the observers with their record; a replay's own
        # (``kept``) leave their rows as they are, a resume's become this run's ``reused`` rows.
        events = [_settled(self.run_id, self.step.id, k, _carried_status(c.status), at, c, kept=True)
                  for k, _, c in new_carried]
        events += [_settled(self.run_id, self.step.id, k, ItemStatus.REUSED, at, c) for k, _, c in new_reused]
        return events

    # -- one unit -----------------------------------------------------------------------------

    def remediate(self, unit: Unit, inv: InvocationLike) -> tuple[tuple[str, ...], dict[str, str]]:
        """Mark ``unit`` running its remediation (``inv``, the step's ``remediate``, once after
        its last failed attempt, then one final attempt): its argv and the variables it adds.
        Not an attempt of the item: no event, its log ``remediate.log`` beside the attempts'."""
        self._seq += 1
        unit.seq = self._seq
        unit.remedy = "running"
        self.running[unit.seq] = unit
        where = f"batches/{unit.batch}" if unit.batch else f"items/{escape_key(unit.keys[0])}"
        unit.log_path = f"{self.folder}/{where}/remediate.log"
        assert self.step.remediate is not None
        return self._command(unit, inv, shell=isinstance(self.step.remediate.run, str))

    def start(self, unit: Unit, at: float) -> tuple[ItemStarted, tuple[str, ...], dict[str, str]]:
        """Mark ``unit`` running: its event, argv and the variables it adds to the step's."""
        unit.attempts += 1
        number = unit.base + unit.attempts
        self._seq += 1
        unit.seq = self._seq
        unit.status = ItemStatus.RUNNING
        self.running[unit.seq] = unit
        where = f"batches/{unit.batch}" if unit.batch else f"items/{escape_key(unit.keys[0])}"
        unit.log_path = f"{self.folder}/{where}/{number}.log"
        argv, env = self._command(unit, self.inv, shell=isinstance(self.step.run, str))
        event = ItemStarted(self.run_id, self.step.id, unit.keys, self._recorded(unit), number, unit.seq, at,
                            batch=unit.batch, log_path=unit.log_path,
                            replays=max(self._replays(k) for k in unit.keys), waiting=len(self.pending))
        return event, argv, env

    def _command(self, unit: Unit, inv: InvocationLike, *, shell: bool) -> tuple[tuple[str, ...], dict[str, str]]:
        """``inv``'s argv for ``unit`` and the variables the unit adds (its item, or batch file)."""
        env: dict[str, str] = {}
        argv = tuple(inv.argv)
        if unit.batch:
            path = f"{self.folder}/batches/{unit.batch}.jsonl"
            _write_jsonl(path, (canonical(v) for v in unit.values))
            env[expr.BATCH_VAR_PREFIX + "FILE"] = path
            env[expr.BATCH_VAR_PREFIX + "SIZE"] = str(len(unit.values))
        else:
            value = unit.values[0]
            env.update(item_values(self._refs, value))
            env[expr.ITEM_VAR] = item_text(value)
            env[expr.ITEM_VAR + "_KEY"] = unit.keys[0]
            values = {("item", r.name): item_text(_field(value, r)) for r in self._refs}
            if not shell:
                argv = tuple(_fill(a, values) for a in argv)
            for name, text in inv.env.items():
                if "${{" in text:
                    env[name] = _fill(text, values)
        return argv, env

    def ended(self, unit: Unit, status: ItemStatus, at: float, *, exit_code: int | None = None, duration: float = 0.0,
              error: str | None = None, tail: tuple[str, ...] = (), logged: bool = True) -> ItemFinished:
        """Record how an attempt of ``unit`` ended (or that it will never start: CANCELLED)."""
        self.running.pop(unit.seq, None)
        if status is ItemStatus.DEAD and not error:  # the queue says why, not just "null"
            error = last_words(exit_code, tail)
        unit.status, unit.exit_code, unit.duration = status, exit_code, duration
        unit.error, unit.tail = error, tail
        if status in (ItemStatus.RETRYING, ItemStatus.DEAD):
            unit.first_failure = unit.first_failure or at
            unit.last_failure = at
        if status is ItemStatus.DEAD:
            self.failed += len(unit.keys)
            if not self.stopped and self.exceeded:
                self.stopped = "exceeded-tolerated-failures"  # the scheduler drops what waits
        return ItemFinished(self.run_id, self.step.id, unit.keys, status, at, attempt=unit.base + unit.attempts
                            if logged or status is not ItemStatus.CANCELLED else 0, seq=unit.seq, exit_code=exit_code,
                            duration=duration, error=error, tail=tail, log_path=unit.log_path if logged else "",
                            items=self._recorded(unit))  # a unit cancelled before it started has no row yet

    def _recorded(self, unit: Unit) -> tuple[str, ...]:
        """``unit``'s items as their rows keep them: canonical JSON, secrets masked."""
        return tuple(mask_text(canonical(v), self._secrets) for v in unit.values)

    def _replays(self, key: str) -> int:
        earlier = self.replayed.get(key)
        return earlier.replays if earlier is not None else 0

    def splits(self, unit: Unit) -> bool:
        """Whether ``unit``, a batch that failed its last attempt, is split into its items."""
        batch = self.foreach.batch
        return bool(unit.batch) and len(unit.keys) > 1 and batch is not None and batch.split_on_failure

    def split(self, unit: Unit) -> None:
        """Replace the batch ``unit`` by one batch per item, next to start (each with its retries):
        still batches, so the command gets the ``${{ batch.file }}`` it was written for."""
        top = max(u.batch for u in self.units)
        singles = [Unit((k,), (v,), top + n) for n, (k, v) in enumerate(zip(unit.keys, unit.values, strict=True), 1)]
        self.units = [u for u in self.units if u is not unit] + singles
        self.pending.extendleft(reversed(singles))

    def _batch_held(self, batch: Batch) -> list[Unit]:
        """The items held so far in batches numbered after every earlier one of the run."""
        earlier_batches = [c.batch for c in (*self.carried_before.values(), *self.replayed.values())]
        first = max(earlier_batches + [u.batch for u in self.units], default=0)
        units = list(_batches(self._held, batch.size, batch.max_bytes, first))
        self._held = []
        return units

    def stop(self, why: str) -> list[Unit]:
        """Start no new unit; returns those that will now never start (to be settled CANCELLED)."""
        self.stopped = self.stopped or why
        # a stream's items held for a batch that never filled are cancelled too, not lost (trial 15)
        held = self._batch_held(self.foreach.batch) if self._held and self.foreach.batch is not None else []
        self.units += held
        dropped = list(self.pending) + self.retrying + held
        self.pending.clear()
        self.retrying = []
        self.cut = self.cut or not self.closed
        self.closed = True  # a stream: read no more of it
        return dropped

    @property
    def done(self) -> bool:
        return not self.pending and not self.running and self.closed

    @property
    def exceeded(self) -> bool:
        """Over a tolerated limit (while a stream runs, only the count is judged)."""
        return self.foreach.exceeded(self.failed, self.total, partial=not self.closed)

    def summary(self) -> str:
        """The step's reason: ``997 of 1000 items succeeded, 3 dead-lettered``."""
        ok = sum(len(u.keys) for u in self.units if u.status is ItemStatus.SUCCEEDED) + len(self._reused)
        ok += sum(1 for _, _, c in self._carried if c.status not in _FAILED and c.status != ItemStatus.DROPPED.value)
        parts = [f"{ok} of {self.total} items succeeded"]
        if self.failed:
            parts.append(f"{self.failed} dead-lettered")
        cancelled = sum(len(u.keys) for u in self.units if u.status is ItemStatus.CANCELLED)
        if cancelled:
            parts.append(f"{cancelled} cancelled")
        if self._reused:
            parts.append(f"{len(self._reused)} reused")
        return ", ".join(parts)

    # -- export -------------------------------------------------------------------------------

    def export(self) -> None:
        """Write ``results.jsonl`` (succeeded and reused items) and ``dead-letter.jsonl``."""
        secrets = self._secrets
        results = [_line(k, v, "reused", c, secrets) for k, v, c in self._reused]
        dead: list[str] = []
        for k, v, c in self._carried:
            if c.status in _FAILED:
                dead.append(_line(k, v, c.status, c, secrets, failed=True))
            elif c.status != ItemStatus.DROPPED.value:
                results.append(_line(k, v, c.status, c, secrets))
        for u in self.units:
            for key, value in zip(u.keys, u.values, strict=True):
                c = Carried("", u.status.value, self._replays(key), u.base + u.attempts, u.exit_code, u.duration,
                            u.error, u.tail, u.log_path, u.first_failure, u.last_failure, u.batch)
                if u.status is ItemStatus.SUCCEEDED:
                    results.append(_line(key, value, u.status.value, c, secrets))
                elif u.status is ItemStatus.DEAD:
                    dead.append(_line(key, value, u.status.value, c, secrets, failed=True))
        _write_jsonl(f"{self.folder}/{RESULTS}", results)
        _write_jsonl(f"{self.folder}/{DEAD_LETTER}", dead)


def _line(key: str, value: object, status: str, c: Carried, secrets: tuple[str, ...], *, failed: bool = False) -> str:
    """One line of ``results.jsonl`` (``failed``: of ``dead-letter.jsonl``), the same fields
    whether the item ran now or its record was carried from before."""
    record: dict[str, object] = {"key": key, "item": _masked(value, secrets), "status": status,
                                 "attempts": c.attempts, "exit_code": c.exit_code,
                                 "duration": None if c.duration is None else round(c.duration, 6)}
    if c.replays:
        record["replays"] = c.replays
    if failed:
        record.update(error=c.error or last_words(c.exit_code, c.tail), log_tail=list(c.tail), first_failure=c.first_failure,
                      last_failure=c.last_failure)
    return json.dumps(record, ensure_ascii=False)


def last_words(exit_code: int | None, tail: Sequence[str]) -> str:
    """A dead item's error when its attempt gave none (it exited non-zero): its exit code and
    the last line of its log (its stderr's tail)."""
    said = f"exited with code {exit_code}" if exit_code is not None else "failed"
    last = next((line for line in reversed(tail) if line.strip()), "")
    return f"{said}: {last.strip()}" if last else said


def _settled(run_id: RunId, step: str, key: str, status: ItemStatus, at: float, c: Carried, *,
             kept: bool = False) -> ItemFinished:
    return ItemFinished(run_id, step, (key,), status, at, attempt=c.attempts, exit_code=c.exit_code,
                        duration=c.duration or 0.0, error=c.error, tail=c.tail, items=(c.item,),
                        log_path=c.log_path, replays=c.replays, kept=kept)


def _carried_status(status: str) -> ItemStatus:
    """What a carried item is in the new run: its status, a success counting as reused."""
    value = ItemStatus(status)
    return ItemStatus.REUSED if value is ItemStatus.SUCCEEDED else value


def _batches(todo: Sequence[tuple[str, object]], size: int, max_bytes: int | None, number: int = 0) -> Iterable[Unit]:
    """``todo`` in batches numbered from ``number + 1``."""
    keys: list[str] = []
    values: list[object] = []
    used = 0
    for key, value in todo:
        length = len(canonical(value).encode()) + 1
        if keys and (len(keys) >= size or (max_bytes is not None and used + length > max_bytes)):
            number += 1
            yield Unit(tuple(keys), tuple(values), number)
            keys, values, used = [], [], 0
        keys.append(key)
        values.append(value)
        used += length
    if keys:
        yield Unit(tuple(keys), tuple(values), number + 1)


def _command_refs(run: str | Sequence[str], env: Mapping[str, str]) -> list[expr.Ref]:
    texts = [run] if isinstance(run, str) else list(run)
    return item_refs(texts, shell=isinstance(run, str)) + item_refs(env.values())


def _field(value: object, ref: expr.Ref) -> object:
    from flowctl.spec.foreach import field_of

    return field_of(value, ref.path)


def _fill(text: str, values: Mapping[tuple[str, str], str]) -> str:
    refs = [r for r in expr.find_refs(text) if r.source == "item"]
    return expr.fill_plain(text, refs, values) if refs else text


def _masked(value: object, secrets: tuple[str, ...]) -> object:
    if not secrets:
        return value
    text = mask_text(canonical(value), secrets)
    try:
        return json.loads(text)
    except ValueError:  # a secret that spanned JSON syntax: keep the masked text
        return text


def _write_jsonl(path: str, lines: Iterable[str]) -> None:
    """Write ``path`` whole or not at all (a reader never sees half a file)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(line + "\n")
    os.replace(tmp, path)


__all__ = ["DEAD_LETTER", "RESULTS", "FanOut", "Unit", "escape_key", "read_items"]

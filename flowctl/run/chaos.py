"""Deterministic fault injection for one run (issue 17): which attempt gets which fault.

Every decision, and every random value a fault needs (the moment a ``kill`` lands), is
``draw(seed, step, item, attempt, name)``: a SHA-256 of those five mapped to [0, 1). There is no
shared random stream, so the same seed injects the same faults at any concurrency and in any
scheduling order. ``item`` is a foreach item's key ("" for a plain step): items are attempts too.

Faults are applied by wrapping the attempt's command (``/bin/sh`` runs in the attempt's own
process group on whatever executor runs it, so nothing here depends on the executor's
internals): ``fail`` exits N without running the command, ``delay`` sleeps before exec, ``hang``
never exits (a step timeout ends it), ``kill`` SIGKILLs the attempt's process group at a point
drawn in [0, 1) of a window (the step's timeout, else ``KILL_WINDOW``), or as the command ends if
that comes first (the command's effects done, its success lost), ``kill-worker`` SIGKILLs the
process that started the command (the Dask worker). ``kill-runner`` is not a wrapping: the
scheduler kills its own runner right after the attempt's start is committed (``kill_runner``,
the test-only failpoint's ``kill`` from the CLI's wiring).

``ChaosRun`` keeps the faults spent so far (those of the runs a resume continues included), so
``max`` holds across resumes and a resumed run never kills itself again for the same attempt.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from flowctl.errors import UsageError
from flowctl.run.events import FAILING_FAULTS as FAILING
from flowctl.run.ports import AttemptSpec
from flowctl.spec.chaos import ChaosSettings
from flowctl.spec.model import Step

#: Each attempt's ``FLOWCTL_LEDGER``: ``<logs>/ledger.jsonl``, one JSON line per side effect
#: (``{"effect": "loaded 2026-12-01"}``); ``chaos check`` reports an effect recorded twice.
LEDGER_ENV = "FLOWCTL_LEDGER"
LEDGER = "ledger.jsonl"
#: Where a ``kill`` lands, for a step without a timeout: within this many seconds of its start.
KILL_WINDOW = 2.0
#: The order in which faults are considered for an attempt: at most one fault per attempt.
ORDER = ("kill-runner", "kill-worker", "fail", "hang", "kill", "delay")
_RUNNER = "kill-runner"


def draw(seed: int, step: str, item: str, attempt: int, name: str) -> float:
    """A value in [0, 1) fixed by its five arguments (never a shared random stream)."""
    key = f"{seed}\0{step}\0{item}\0{attempt}\0{name}".encode()
    (n,) = struct.unpack(">Q", hashlib.sha256(key).digest()[:8])
    return float(n / 2.0**64)


@dataclass(frozen=True, slots=True)
class Injected:
    """A fault injected into one attempt: what the checker and ``show`` read back."""

    step: str
    item: str
    attempt: int
    fault: str


class ChaosRun:
    """The chaos of one run: settings, the faults spent (this run's and the ones it resumes),
    and how the runner kills itself. Single-threaded, like the scheduler that owns it."""

    def __init__(
        self,
        settings: ChaosSettings,
        *,
        spent: Iterable[Injected] = (),
        kill_runner: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self._kill_runner = kill_runner
        self._counts: dict[tuple[str, str, str], int] = {}
        self._runner_kills = 0
        self._runner_spent: set[tuple[str, str, int]] = set()
        self.injected: list[Injected] = []
        self.kill_due = False  # an attempt chosen for kill-runner: the runner dies once it is committed
        for fault in spent:
            self._count(fault)

    def _count(self, fault: Injected) -> None:
        if fault.fault == _RUNNER:
            self._runner_kills += 1
            self._runner_spent.add((fault.step, fault.item, fault.attempt))
        key = (fault.step, fault.item, fault.fault)
        self._counts[key] = self._counts.get(key, 0) + 1

    def decide(self, step: str, attempt: int, item: str = "", *, timeout: float | None = None) -> str:
        """The fault for this attempt ("" for none), counted as spent. ``timeout``: the step's
        (``hang`` is only chosen for a step that has one; the CLI refuses it otherwise)."""
        cfg = self.settings
        if not cfg.applies_to(step):
            return ""
        cap = cfg.max
        for fault in ORDER:
            p = cfg.probability(fault)
            if not p or draw(cfg.seed, step, item, attempt, fault) >= p:
                continue
            if fault == _RUNNER:
                if (step, item, attempt) in self._runner_spent or (cap is not None and self._runner_kills >= cap):
                    continue
            elif cap is not None and self._counts.get((step, item, fault), 0) >= cap:
                continue
            if fault == "hang" and timeout is None:
                continue
            found = Injected(step, item, attempt, fault)
            self._count(found)
            self.injected.append(found)
            self.kill_due = self.kill_due or fault == _RUNNER
            return fault
        return ""

    def wrap(self, spec: AttemptSpec, fault: str, item: str = "", attempt: int | None = None) -> AttemptSpec:
        """``spec`` with its command wrapped to inject ``fault`` (unchanged for ``kill-runner``).
        ``item`` and ``attempt``: a foreach item's key and its own attempt number (the executor
        knows the attempt by a sequence number that depends on start order)."""
        argv = _wrapped(self.settings, spec, fault, item, spec.key.attempt if attempt is None else attempt)
        return spec if argv is None else replace(spec, argv=argv)

    def kill_runner(self) -> None:
        """Kill this runner (``kill -9``); the caller has committed the chosen attempt's start."""
        if self._kill_runner is not None:
            self._kill_runner()


def _wrapped(cfg: ChaosSettings, spec: AttemptSpec, fault: str, item: str, attempt: int) -> tuple[str, ...] | None:
    if fault == "fail":
        return ("/bin/sh", "-c", f"exit {cfg.fail_rc}")
    if fault == "hang":
        return ("/bin/sh", "-c", "exec sleep 2147483647")
    if fault == "delay":
        return ("/bin/sh", "-c", 'sleep "$0" && exec "$@"', f"{cfg.delay_seconds:.3f}", *spec.argv)
    if fault == "kill":
        window = spec.timeout if spec.timeout is not None else KILL_WINDOW
        at = draw(cfg.seed, spec.key.step, item, attempt, "kill.at") * min(window, KILL_WINDOW)
        # The command runs in the background of this shell, in the same process group; the
        # group is killed at ``at`` seconds, or as the command ends when that comes first.
        script = '"$@" & c=$!; { sleep "$0"; kill -KILL 0; } & wait "$c"; kill -KILL 0'
        return ("/bin/sh", "-c", script, f"{at:.3f}", *spec.argv)
    if fault == "kill-worker":
        # Under Dask the command's parent is its supervisor, forked from the worker's supervisor
        # server (``run/supervise.py``): the first ancestor that is neither is the worker. Its
        # death closes the supervisor's socket, which then kills this group; the client sees
        # the attempt's worker lost.
        script = ('p=$PPID; while tr "\\0" " " < /proc/$p/cmdline | grep -q flowctl.run.supervise; '
                  'do p=$(cut -d" " -f4 /proc/$p/stat); done; '
                  '[ "$p" -gt 1 ] && kill -KILL "$p"; exec sleep 600')
        return ("/bin/sh", "-c", script)
    return None


def injected_only(attempts: int, injected: Iterable[tuple[int, str]]) -> bool:
    """Whether every one of attempts 1..``attempts`` failed through an injected fault
    (``injected``: (attempt, fault) pairs): an item dead-lettered by chaos, not for real."""
    failing = {n for n, fault in injected if fault in FAILING}
    return attempts > 0 and all(n in failing for n in range(1, attempts + 1))


def check_chaos(settings: ChaosSettings, steps: Mapping[str, Step], executor: str, source: str = "--chaos") -> None:
    """Refuse settings that cannot work on these steps: ``steps=GLOB`` matching none of them,
    ``hang`` on a step with no timeout (it would never end), ``kill-worker`` without Dask workers. ``source`` names where the
    settings came from (``--chaos``, ``FLOWCTL_CHAOS``, ...). Raises ``UsageError`` (exit 2)."""
    if settings.hang:
        endless = [sid for sid, step in steps.items() if settings.applies_to(sid) and step.timeout is None]
        if endless:
            shown = ", ".join(endless[:5]) + (f" and {len(endless) - 5} more" if len(endless) > 5 else "")
            with_timeout = [sid for sid, step in steps.items() if step.timeout is not None]
            scope = (f"or keep hang to steps that have one with steps=GLOB (e.g. steps={with_timeout[0]})"
                     if with_timeout else "or drop hang=P")
            raise UsageError(
                f"{source}: hang={settings.hang:g} needs a timeout on every step it may hang, and "
                f"{'step' if len(endless) == 1 else 'steps'} {shown} {'has' if len(endless) == 1 else 'have'} "
                "no timeout (a hung attempt would never end)",
                hint=f"add `timeout: 5m` to {'it' if len(endless) == 1 else 'each of them'} "
                f"(e.g. `{endless[0]}: {{run: ..., timeout: 5m}}`), {scope}",
            )
    if not any(settings.applies_to(sid) for sid in steps):  # trial 17: it proved nothing, silently
        from flowctl.spec.schema import suggest

        near = suggest(settings.steps, steps)
        listed = ", ".join(list(steps)[:8]) + (", ..." if len(steps) > 8 else "")
        raise UsageError(f"{source}: steps={settings.steps} matches no step of this run, so no fault would be injected",
                         hint=(f"did you mean steps={near}? " if near else "") + f"steps: {listed}")
    if settings.kill_worker and executor != "dask":
        raise UsageError(f"{source}: kill-worker needs Dask workers to kill",
                         hint="run with --executor dask, or use kill=P to kill the attempt's processes")


__all__ = ["FAILING", "KILL_WINDOW", "LEDGER", "LEDGER_ENV", "ORDER", "ChaosRun", "Injected", "check_chaos", "draw",
           "injected_only"]

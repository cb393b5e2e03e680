"""How long a run has left, for the live view: from the steps' durations in earlier runs.

``EtaModel`` is built when the run starts from what the CLI read from the state store before
the run (each step's typical duration: ``state.views.typical_durations``) and the steps' needs.
It keeps the remaining work up to date in O(1) per event; ``estimate`` (a few times a second)
looks only at the steps running or waiting to retry. The estimate is the larger of:

- the work left spread over the concurrency: the typical durations of the steps that have not
  started, plus what is left of the running ones, divided by the concurrency;
- the longest chain left: for each running step, what is left of it plus the longest chain of
  typical durations among the steps downstream of it, and for each step not started yet, its
  own chain (a chain runs one step after the other, however many slots are free). The longest
  chain among the steps not started is found by walking down a list sorted once, skipping the
  steps that have started since: O(1) amortised per estimate.

A step with no earlier duration counts as the median of the known ones or, with no history at
all, the mean duration of the steps finished so far in this run; a running step past its
typical duration counts as finishing now. Any of these makes the estimate a guess
(``Eta.guessed``: shown with "~"). With no history and nothing finished yet there is no estimate.
Pure: no I/O, no clock (the caller passes the elapsed times).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from flowctl.spec.durations import format_duration


@dataclass(frozen=True, slots=True)
class Eta:
    """Seconds left, and whether any part of it is a guess rather than an earlier duration."""

    seconds: float
    guessed: bool

    def text(self) -> str:
        """``3.2s``, or ``~3.2s`` for a guess."""
        return ("~" if self.guessed else "") + format_duration(max(0.0, self.seconds))


class EtaModel:
    """The remaining work of one run (see the module docstring)."""

    def __init__(
        self,
        steps: Sequence[str],
        typical: Mapping[str, float],
        needs: Mapping[str, Sequence[str]],
        concurrency: int,
    ) -> None:
        self._typical = {s: typical[s] for s in steps if s in typical}
        known = list(self._typical.values())
        self._median = statistics.median(known) if known else None  # for steps never run before
        self._concurrency = max(1, concurrency)
        self._pending = set(steps)  # neither started nor finished
        self._known_work = sum(known)  # over the pending steps with a typical duration
        self._unknown = len(self._pending) - len(self._typical)
        self._finished_sum = 0.0  # this run's executed steps, for a guess without history
        self._finished = 0
        self._after = _longest_after(steps, needs, self._typical, self._median or 0.0)
        default = self._median or 0.0
        self._chains = sorted(((self._typical.get(s, default) + self._after[s], s) for s in steps), reverse=True)
        self._top = 0  # self._chains[self._top:] may still hold pending steps

    def leave(self, step: str) -> None:
        """``step`` started, or ended without starting (skipped, reused, cancelled)."""
        if step not in self._pending:
            return
        self._pending.discard(step)
        duration = self._typical.get(step)
        if duration is None:
            self._unknown -= 1
        else:
            self._known_work -= duration
        if not self._pending:
            self._known_work = 0.0  # not the rounding left by a hundred thousand subtractions

    def finished(self, step: str, duration: float, *, executed: bool) -> None:
        """``step`` ended; ``executed``: it ran at least one attempt (its duration is real)."""
        self.leave(step)
        if executed:
            self._finished_sum += duration
            self._finished += 1

    def estimate(self, active: Iterable[tuple[str, float]]) -> Eta | None:
        """The time left, given the steps running or waiting to retry as (step, seconds since
        its attempt started; negative while it waits to retry); None when nothing is known."""
        fallback = self._median
        if fallback is None and self._finished:
            fallback = self._finished_sum / self._finished
        guessed = self._unknown > 0
        if self._unknown and fallback is None:
            return None
        work = self._known_work + self._unknown * (fallback or 0.0)
        chain = 0.0
        for step, elapsed in active:
            expected = self._typical.get(step)
            if expected is None:
                if fallback is None:
                    return None
                expected, guessed = fallback, True
            left = expected - elapsed
            if left < 0:  # past its usual time: it may end any moment, or not
                # (a millisecond over is the clock's rounding, not a step running long)
                left, guessed = 0.0, guessed or left < -1e-3
            work += left
            chain = max(chain, left + self._after.get(step, 0.0))
        chains, pending = self._chains, self._pending
        while self._top < len(chains) and chains[self._top][1] not in pending:
            self._top += 1
        if self._top < len(chains):
            chain = max(chain, chains[self._top][0])
        return Eta(max(work / self._concurrency, chain), guessed)


def _longest_after(
    steps: Sequence[str], needs: Mapping[str, Sequence[str]], typical: Mapping[str, float], default: float
) -> dict[str, float]:
    """For each step, the longest chain of durations among the steps that need it, directly or
    not (0 for a step nothing needs). Linear in steps + needs; ``steps`` in any order."""
    inside = set(steps)
    users: dict[str, list[str]] = {s: [] for s in steps}
    waiting = dict.fromkeys(steps, 0)  # users not yet settled
    for s in steps:
        for n in needs.get(s, ()):
            if n in inside:
                users[n].append(s)
                waiting[n] += 1
    after: dict[str, float] = {}
    ready = [s for s in steps if waiting[s] == 0]
    while ready:  # from the last steps back to the first
        step = ready.pop()
        after[step] = max((typical.get(u, default) + after[u] for u in users[step]), default=0.0)
        for n in needs.get(step, ()):
            if n in inside:
                waiting[n] -= 1
                if waiting[n] == 0:
                    ready.append(n)
    return after


__all__ = ["Eta", "EtaModel"]

"""The fan-out that feeds one run's events to every sink.

A sink that raises is switched off for the rest of the run and its error kept in ``errors``
(the CLI reports it at the end, by the sink's ``label``, and says nothing when the sink's reader
went away: ``reader_gone``): observing a run must never stop it (STYLE, "Events"). A sink
with a ``flush`` method may buffer; ``flush`` is passed on after each batch of events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from flowctl.run.events import Event

Sink = Callable[[Event], None]


class FanOut:
    """Call every sink with each event; drop a sink the first time it fails."""

    def __init__(self, sinks: Iterable[Sink]) -> None:
        self._sinks: tuple[Sink, ...] = tuple(sinks)
        self.errors: list[tuple[Sink, BaseException]] = []

    def add(self, sink: Sink) -> None:
        self._sinks = (*self._sinks, sink)

    def __call__(self, event: Event) -> None:
        for sink in self._sinks:
            try:
                sink(event)
            except Exception as exc:
                self._drop(sink, exc)

    def flush(self) -> None:
        """Let every sink that buffers write out what it holds (end of a scheduler turn)."""
        for sink in self._sinks:
            flush = getattr(sink, "flush", None)
            if flush is None:
                continue
            try:
                flush()
            except Exception as exc:
                self._drop(sink, exc)

    def _drop(self, sink: Sink, exc: BaseException) -> None:
        self.errors.append((sink, exc))
        self._sinks = tuple(s for s in self._sinks if s is not sink)


def sink_name(sink: Sink) -> str:
    """What a user would call the sink, for the end-of-run warning: its ``label`` (or its
    owner's, for a bound method); never an internal class name (issue 13)."""
    label = getattr(sink, "label", None) or getattr(getattr(sink, "__self__", None), "label", None)
    return label if isinstance(label, str) and label else "an output of the run"


def reader_gone(exc: BaseException) -> bool:
    """The sink failed because whoever read its stream went away (``flowctl run … | head``):
    nothing to warn about; its output is dropped and the run goes on."""
    return isinstance(exc, BrokenPipeError)


__all__ = ["FanOut", "Sink", "reader_gone", "sink_name"]

"""The JSON log sink: one JSON object per run event, one event per line.

Every line carries ``ts`` (ISO-8601 UTC with milliseconds), ``time`` (epoch seconds),
``event``, ``run_id`` (the correlation id), ``pipeline``, ``step`` and ``attempt`` (null where
they do not apply), then the event's own fields (exit code, duration, outcome, ...). Each line
is written with one ``write`` and flushed, so a reader can ``tail -f`` the file and a killed run
leaves only whole lines. Values that could hold a secret (commands, errors, output lines) arrive
already masked by the runner. Selecting the format (``--log-format json`` /
``FLOWCTL_LOG_FORMAT=json``) is done by ``log_format``; opening the file by ``open_log``.

Events: ``run_started``, ``step_ready``, ``attempt_started``, ``attempt_finished``,
``retry_scheduled``, ``remediation_started``, ``remediation_finished``, ``step_finished``,
``output`` (with ``--stream``), ``run_finished``; after the run ``run_metrics``,
``alert_fired``, ``notify_sent``, ``notify_failed`` and ``warning`` records.
"""

from __future__ import annotations

import datetime as _dt
import enum
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import fields
from typing import IO

from flowctl.errors import UsageError
from flowctl.run.events import (
    AttemptFinished,
    AttemptKind,
    AttemptPlaced,
    AttemptStarted,
    Event,
    ItemFinished,
    ItemStarted,
    OutputLine,
    RetryScheduled,
    RunFinished,
    RunStarted,
    StepFinished,
    StepReady,
)

LOG_FORMATS = ("text", "json")
ENV_VAR = "FLOWCTL_LOG_FORMAT"

_NAMES: Mapping[type, str] = {
    RunStarted: "run_started",
    StepReady: "step_ready",
    AttemptStarted: "attempt_started",
    AttemptFinished: "attempt_finished",
    AttemptPlaced: "attempt_placed",
    RetryScheduled: "retry_scheduled",
    StepFinished: "step_finished",
    OutputLine: "output",
    RunFinished: "run_finished",
    ItemStarted: "item_started",
    ItemFinished: "item_finished",
}
_HEADER = ("run_id", "step", "attempt", "at")


def log_format(option: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The log format from ``--log-format`` or else ``FLOWCTL_LOG_FORMAT``; raises UsageError."""
    env = os.environ if environ is None else environ
    value = (option or env.get(ENV_VAR) or "text").strip().lower()
    if value not in LOG_FORMATS:
        source = "--log-format" if option else ENV_VAR
        raise UsageError(f"{source}: unknown log format '{value}'", hint="use text or json")
    return value


def iso_time(at: float) -> str:
    """Epoch seconds as ``2026-11-25T02:00:01.123Z``."""
    moment = _dt.datetime.fromtimestamp(at, tz=_dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _plain(value: object) -> object:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list, frozenset, set)):
        return [_plain(v) for v in value]
    return value


def event_record(event: Event, pipeline: str = "") -> dict[str, object]:
    """The JSON object for one event (correlation fields first)."""
    name = _NAMES.get(type(event), type(event).__name__)
    if getattr(event, "kind", None) is AttemptKind.REMEDIATE:
        name = name.replace("attempt_", "remediation_")
    at = float(getattr(event, "at", 0.0))
    record: dict[str, object] = {
        "ts": iso_time(at),
        "time": at,
        "event": name,
        "run_id": str(event.run_id),
        "pipeline": getattr(event, "pipeline", pipeline) or pipeline,
        "step": getattr(event, "step", None),
        "attempt": getattr(event, "attempt", getattr(event, "next_attempt", None)),
    }
    for f in fields(event):
        if f.name in _HEADER or f.name in record:
            continue
        record[f.name] = _plain(getattr(event, f.name))
    return record


class JsonLogSink:
    """An event sink writing JSON lines to a text stream (stderr or a file)."""

    def __init__(self, stream: IO[str] | None = None, *, pipeline: str = "", close: bool = False) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._pipeline = pipeline
        self._close = close
        name = getattr(self._stream, "name", "")
        #: How warnings name this sink (never a class name).
        self.label = "the JSON log on stderr" if self._stream is sys.stderr or not isinstance(name, str) \
            else f"the JSON log ({name})"

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._pipeline = event.pipeline
        line = json.dumps(event_record(event, self._pipeline), separators=(",", ":"), default=str)
        self._stream.write(line + "\n")
        self._stream.flush()

    def note(self, name: str, run_id: str, fields: Mapping[str, object], *, at: float | None = None) -> None:
        """A record that is not a scheduler event (``alert_fired``, ``notify_failed``...)."""
        import time

        when = time.time() if at is None else at
        record: dict[str, object] = {
            "ts": iso_time(when),
            "time": when,
            "event": name,
            "run_id": run_id,
            "pipeline": self._pipeline,
            "step": None,
            "attempt": None,
        }
        record.update({k: _plain(v) for k, v in fields.items() if k not in record})
        self._stream.write(json.dumps(record, separators=(",", ":"), default=str) + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._close:
            try:
                self._stream.close()
            except OSError:  # the write that failed (a full disk) was reported when it failed
                pass


def open_log(path: str | os.PathLike[str] | None, *, pipeline: str = "") -> JsonLogSink:
    """A sink on ``path`` (appended to, folders created) or on stderr when ``path`` is None."""
    if path is None:
        return JsonLogSink(sys.stderr, pipeline=pipeline)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        stream = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by the sink
    except OSError as exc:
        raise UsageError(f"--log-file: cannot open {os.fspath(path)}: {exc.strerror}") from exc
    return JsonLogSink(stream, pipeline=pipeline, close=True)


__all__ = ["ENV_VAR", "LOG_FORMATS", "JsonLogSink", "event_record", "iso_time", "log_format", "open_log"]

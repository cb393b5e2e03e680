"""The JSON log: one object per event, parsed back line by line."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from flowctl.errors import UsageError
from flowctl.observe.jsonlog import JsonLogSink, iso_time, log_format, open_log
from flowctl.run.events import (
    AttemptFinished,
    AttemptKind,
    AttemptOutcome,
    AttemptStarted,
    OutputLine,
    RetryScheduled,
    RunFinished,
    RunId,
    RunStarted,
    RunStatus,
    StepFinished,
    StepReady,
    StepStatus,
)

RID = RunId("20261125T020000-3fa1")
EVENTS = [
    RunStarted(RID, "etl", 1764036000.0, ("load",), params={"day": "2026-11-25"}),
    StepReady(RID, "load", 1764036000.5, queue_depth=1),
    AttemptStarted(RID, "load", 1, 1764036001.0, max_attempts=2, command="./load.sh ***"),
    AttemptFinished(RID, "load", 1, 1764036002.25, AttemptOutcome.FAILED, 3, 1.25, tail=("boom",)),
    RetryScheduled(RID, "load", 2, 0.5, 1764036002.3),
    AttemptStarted(RID, "load", 2, 1764036002.8, max_attempts=2),
    OutputLine(RID, "load", 2, "loaded 10 rows", 1764036003.0),
    AttemptFinished(RID, "load", 2, 1764036003.5, AttemptOutcome.OK, 0, 0.7),
    StepFinished(RID, "load", StepStatus.SUCCEEDED, 1764036003.5, attempts=2, duration=2.5),
    RunFinished(RID, 1764036003.6, RunStatus.SUCCEEDED, 3.6, counts={"succeeded": 1}),
]


def test_every_line_is_one_event_with_the_correlation_fields(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "run.jsonl"
    sink = open_log(path)
    for event in EVENTS:
        sink(event)
    sink.close()
    lines = path.read_text().splitlines()
    assert len(lines) == len(EVENTS)
    records = [json.loads(line) for line in lines]
    assert [r["event"] for r in records] == [
        "run_started", "step_ready", "attempt_started", "attempt_finished", "retry_scheduled",
        "attempt_started", "output", "attempt_finished", "step_finished", "run_finished",
    ]
    for r in records:
        assert r["run_id"] == RID and r["pipeline"] == "etl"
        assert r["ts"].endswith("Z") and isinstance(r["time"], float)
        assert set(r) >= {"step", "attempt"}
    failed = records[3]
    assert (failed["step"], failed["attempt"], failed["exit_code"], failed["duration"], failed["outcome"]) == (
        "load", 1, 3, 1.25, "failed"
    )
    assert failed["tail"] == ["boom"] and failed["ts"] == "2025-11-25T02:00:02.250Z"
    assert records[4]["attempt"] == 2 and records[4]["delay"] == 0.5
    assert records[0]["step"] is None and records[0]["params"] == {"day": "2026-11-25"}
    assert records[-1]["status"] == "succeeded" and records[-1]["counts"] == {"succeeded": 1}


def test_a_second_run_appends(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    for _ in range(2):
        sink = open_log(path)
        sink(EVENTS[0])
        sink.close()
    assert len(path.read_text().splitlines()) == 2


def test_stream_sink_flushes_each_line() -> None:
    stream = io.StringIO()
    sink = JsonLogSink(stream, pipeline="etl")
    sink(EVENTS[1])
    assert json.loads(stream.getvalue())["pipeline"] == "etl"


def test_format_from_option_or_environment() -> None:
    assert log_format(None, {}) == "text"
    assert log_format(None, {"FLOWCTL_LOG_FORMAT": "JSON"}) == "json"
    assert log_format("text", {"FLOWCTL_LOG_FORMAT": "json"}) == "text"
    with pytest.raises(UsageError, match="FLOWCTL_LOG_FORMAT: unknown log format 'xml'"):
        log_format(None, {"FLOWCTL_LOG_FORMAT": "xml"})


def test_unwritable_log_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="--log-file"):
        open_log(tmp_path / "file" / "run.jsonl")


def test_iso_time() -> None:
    assert iso_time(0.0) == "1970-01-01T00:00:00.000Z"


def test_remediation_is_named_as_such() -> None:
    stream = io.StringIO()
    sink = JsonLogSink(stream, pipeline="etl")
    sink(AttemptStarted(RID, "load", 3, 1.0, kind=AttemptKind.REMEDIATE))
    sink(AttemptFinished(RID, "load", 3, 2.0, AttemptOutcome.OK, 0, 1.0, kind=AttemptKind.REMEDIATE))
    names = [json.loads(line)["event"] for line in stream.getvalue().splitlines()]
    assert names == ["remediation_started", "remediation_finished"]

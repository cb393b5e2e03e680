"""Durations against a baseline: ``--baseline last-success|RUN_ID|median:N``, flagged with the
threshold ``flowctl stats`` uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowctl.errors import UsageError
from flowctl.observe.trends import SLOWER_FACTOR
from flowctl.report import build_run_report, parse_baseline
from flowctl.report.baseline import BaselineSpec
from flowctl.run.events import RunStatus, StepStatus
from tests.conftest import run_flowctl
from tests.report.helpers import (
    FAILED,
    OK,
    RunScript,
    StepScript,
    Try,
    parse_strict,
    record,
)

PIPELINE = "version: 1\nname: shop\nsteps:\n  extract: {run: 'true'}\n  load: {needs: [extract], run: 'true'}\n"


def _run(n: int, load: float, *, extract: float = 2.0, failed: bool = False) -> RunScript:
    """Run number ``n`` (an hour apart): extract, then load."""
    load_try = Try(extract, extract + load, FAILED if failed else OK, 1 if failed else 0)
    steps = (
        StepScript("extract", StepStatus.SUCCEEDED, extract, 0.0, (Try(0.0, extract, OK, 0),)),
        StepScript("load", StepStatus.FAILED if failed else StepStatus.SUCCEEDED, extract + load, extract, (load_try,)),
    )
    status = RunStatus.FAILED if failed else RunStatus.SUCCEEDED
    return RunScript(f"20251125T{n:02d}0000-000{n % 10}", n * 3600.0, extract + load, status, steps)


@pytest.fixture
def history(tmp_path: Path) -> Path:
    """An old slow run, then five successful runs with load at 1 s (a failed one among them,
    which does not count), then the run under report with load at 3 s."""
    pipeline = tmp_path / "shop.yaml"
    pipeline.write_text(PIPELINE, encoding="utf-8")
    state = tmp_path / ".flowctl"
    record(state, pipeline, _run(1, 100.0), _run(2, 1.0), _run(3, 0.9), _run(4, 7.0, failed=True),
           _run(5, 1.0), _run(6, 1.1), _run(7, 1.0), _run(8, 3.0))
    return state


def test_three_times_the_median_of_the_last_5_is_slower_plus_200(history: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    res = run_flowctl("report", "latest", "--baseline", "median:5", "--state-dir", str(history), "-o", str(out))
    assert res.returncode == 0, res.stderr
    root = parse_strict(out.read_text(encoding="utf-8"))
    rows = {tr.attrs["data-step"]: tr for tr in root.find_all("tr") if "data-step" in tr.attrs}
    load = rows["load"]
    assert "slower" in load.classes()
    [delta] = [td for td in load.children if "delta" in td.classes()]
    assert delta.all_text() == "+200% slower"
    assert "slower" not in rows["extract"].classes()
    assert next(td for td in rows["extract"].children if "delta" in td.classes()).all_text() == "+0%"
    assert "the median of each step's last 5 successful runs" in root.all_text()


def test_the_default_is_the_median_of_the_last_10_and_the_old_slow_run_counts_then(history: Path) -> None:
    report = build_run_report(history, "latest", baseline=parse_baseline(None))
    load = report.step("load")
    assert load is not None
    assert load.baseline == pytest.approx(1.0)  # median of 100, 1, 0.9, 1, 1.1, 1: the failed run left out
    assert load.slower and load.delta == pytest.approx(2.0)


def test_last_success_and_a_run_id(history: Path) -> None:
    last = build_run_report(history, "latest", baseline=parse_baseline("last-success")).step("load")
    assert last is not None and last.baseline == pytest.approx(1.0) and last.slower  # run 7
    mine = build_run_report(history, "latest", baseline=parse_baseline("20251125T010000")).step("load")
    assert mine is not None and mine.baseline == pytest.approx(100.0)  # a unique prefix of run 1
    assert not mine.slower and mine.delta == pytest.approx(-0.97)


def test_just_under_the_threshold_is_not_flagged(tmp_path: Path) -> None:
    pipeline = tmp_path / "shop.yaml"
    pipeline.write_text(PIPELINE, encoding="utf-8")
    state = tmp_path / ".flowctl"
    record(state, pipeline, _run(1, 2.0), _run(2, 2.0 * SLOWER_FACTOR))
    load = build_run_report(state, "latest", baseline=parse_baseline("median:1")).step("load")
    assert load is not None and load.delta == pytest.approx(SLOWER_FACTOR - 1) and not load.slower


def test_a_run_without_earlier_successes_has_no_baseline(tmp_path: Path) -> None:
    pipeline = tmp_path / "shop.yaml"
    pipeline.write_text(PIPELINE, encoding="utf-8")
    state = tmp_path / ".flowctl"
    record(state, pipeline, _run(1, 2.0))
    report = build_run_report(state, "latest", baseline=parse_baseline(None))
    assert all(s.baseline is None and not s.slower for s in report.steps)
    assert "none before this run" in report.baseline


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        (None, BaselineSpec("median", 10)),
        ("median", BaselineSpec("median", 10)),
        ("median:5", BaselineSpec("median", 5)),
        (" last-success ", BaselineSpec("last-success")),
        ("20251125T010000-0001", BaselineSpec("run", run_id="20251125T010000-0001")),
    ],
)
def test_parse_baseline(text: str | None, spec: BaselineSpec) -> None:
    assert parse_baseline(text) == spec


@pytest.mark.parametrize("text", ["median:0", "median:x", "median:-2", "mean:5", "medain:5"])
def test_bad_baselines_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_baseline(text)
    assert err.value.hint and "median:N" in err.value.hint


def test_bad_baseline_on_the_command_line_exits_2(history: Path, tmp_path: Path) -> None:
    res = run_flowctl("report", "--baseline", "median:0", "--state-dir", str(history), "-o", str(tmp_path / "r.html"))
    assert res.returncode == 2 and "--baseline 'median:0'" in res.stderr and "Traceback" not in res.stderr
    res = run_flowctl("report", "--baseline", "nosuchrun", "--state-dir", str(history), "-o", str(tmp_path / "r.html"))
    assert res.returncode == 2 and "no run with id 'nosuchrun'" in res.stderr
    assert not (tmp_path / "r.html").exists()


def test_an_old_run_finds_its_baseline_behind_many_newer_runs(tmp_path: Path) -> None:
    """The run list is read in pages: 100 newer runs (more than the first page) do not hide the
    five successful runs before the reported one, and do not count."""
    pipeline = tmp_path / "shop.yaml"
    pipeline.write_text(PIPELINE, encoding="utf-8")
    state = tmp_path / ".flowctl"
    older = [_run(n, 1.0) for n in range(1, 6)]
    reported = _run(6, 3.0)
    newer = [
        RunScript(f"20251126T{n:06d}-{n:04x}", 100_000.0 + n * 60, 2.5, RunStatus.SUCCEEDED, _run(n, 0.5).steps)
        for n in range(100)
    ]
    record(state, pipeline, *older, reported, *newer)
    load = build_run_report(state, reported.run_id, baseline=parse_baseline("median:5")).step("load")
    assert load is not None and load.baseline == pytest.approx(1.0) and load.delta == pytest.approx(2.0)


def test_median_baseline_leaves_chaos_runs_out() -> None:
    """Issue 17: a report's ``median:N`` never compares with runs slowed by injected faults."""
    import dataclasses

    from flowctl.observe.metrics import compute_run_metrics
    from flowctl.report.baseline import median_baseline
    from tests.observe.helpers import simple_run

    real = [compute_run_metrics(simple_run(f"ok{i}", 10.0 * i, {"load": 30.0})) for i in range(3)]
    chaotic = [dataclasses.replace(compute_run_metrics(simple_run("c", 100.0, {"load": 900.0})), chaos=True)] * 3
    assert median_baseline("load", [*chaotic, *real], 3) == 30.0
    assert median_baseline("load", chaotic, 3) is None

"""The same run gives the same bytes: a run recorded with a fake clock, reported by two
processes from two state folders, equals the golden page (``pytest --update-golden`` rewrites it)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import REPO, run_flowctl
from tests.report.helpers import FAILED_ID, shop

GOLDEN = REPO / "tests" / "golden" / "report_run.html"


def _report(folder: Path) -> bytes:
    _, state = shop(folder)
    out = folder / "out" / "report.html"
    res = run_flowctl("report", FAILED_ID, "--state-dir", str(state), "-o", str(out))
    assert res.returncode == 0, res.stderr
    return out.read_bytes()


def test_the_report_of_a_recorded_run_is_byte_identical_to_the_golden_file(tmp_path: Path, update_golden: bool) -> None:
    first, second = _report(tmp_path / "a"), _report(tmp_path / "b")
    assert first == second
    if update_golden:
        GOLDEN.write_bytes(first)
    assert first == GOLDEN.read_bytes(), "run pytest --update-golden after an intended change of the page"


def test_timestamp_is_the_only_difference(tmp_path: Path) -> None:
    _, state = shop(tmp_path)
    plain = run_flowctl("report", FAILED_ID, "--state-dir", str(state), "-o", "-")
    stamped = run_flowctl("report", FAILED_ID, "--state-dir", str(state), "-o", "-", "--timestamp")
    assert plain.returncode == stamped.returncode == 0
    extra = [line for line in stamped.stdout.splitlines() if line not in plain.stdout.splitlines()]
    assert len(extra) == 2 and all(" at 20" in line or "generated_at" in line for line in extra), extra

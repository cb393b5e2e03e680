"""The command-scaling benchmark runs end to end on a small pipeline and prints its table (its
timings are only printed by ``bench/commands_bench.py``, never asserted)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.bench.helpers import load_bench


def _bench() -> Any:
    return load_bench("commands_bench")


def test_every_command_is_measured_on_a_real_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = _bench().main(["--sizes", "40", "--runs", "1", "--keep", str(tmp_path)])
    out = capsys.readouterr().out
    assert code in (0, 1), out  # 2 would mean a measured command failed
    assert "40 steps, 200 needs" in out and "state: a real run of the pipeline" in out
    rows = {line.split("  ")[0] for line in out.splitlines()}
    assert rows >= {"validate", "plan", "plan --explain", "run --dry-run", "show", "show --json",
                    "run --resume (no-op)", "show --json / show"}
    runs = list((tmp_path / "n40" / "state" / "runs").iterdir())
    assert len(runs) == 1  # the no-op resumes recorded no run of their own

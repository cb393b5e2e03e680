"""The foreach benchmark runs its four cases end to end on a few items and prints its table
(its timings are only printed by ``bench/foreach_bench.py``, never asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench.helpers import load_bench


def test_every_case_runs_for_real(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = load_bench("foreach_bench").main(["--items", "30", "--batch", "10", "--keep", str(tmp_path)])
    out = capsys.readouterr().out
    assert code in (0, 1), out  # 2 would mean a case failed
    rows = {line[:22].strip() for line in out.splitlines()}
    assert rows >= {"foreach unbatched", "foreach batch=10", "30 plain steps", "shell loop"}
    assert "per item ms" in out and "unbatched / plain steps" in out
    # the last round's state is kept: the unbatched run recorded every item
    runs = list((tmp_path / "state-unbatched" / "runs").iterdir())
    results = (runs[0] / "each" / "results.jsonl").read_text().splitlines()
    assert sorted(json.loads(r)["key"] for r in results) == sorted(str(i) for i in range(30))

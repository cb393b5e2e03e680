"""The benchmark's generator makes what the benchmark claims: a valid, acyclic pipeline of the
asked size (timings themselves are only printed by ``bench/validate_bench.py``, never asserted)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.bench.helpers import REPO, load_bench


def _bench() -> Any:
    return load_bench("validate_bench")


def test_generated_pipeline_has_the_asked_shape_and_validates(
    tmp_path: Path, flowctl: Callable[..., Any]
) -> None:
    text = _bench().generate_pipeline(300, 1500)
    data = yaml.load(text, Loader=yaml.CSafeLoader)
    steps = data["steps"]
    assert len(steps) == 300
    edges = sum(len(s.get("needs", [])) for s in steps.values())
    assert 1400 <= edges <= 1500
    order = {sid: i for i, sid in enumerate(steps)}
    assert all(order[n] < order[sid] for sid, s in steps.items() for n in s.get("needs", []))

    path = tmp_path / "large.yaml"
    path.write_text(text, encoding="utf-8")
    proc = flowctl("validate", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_generation_is_deterministic() -> None:
    bench = _bench()
    assert bench.generate_pipeline(50, 200) == bench.generate_pipeline(50, 200)


def test_typer_baseline_has_two_commands() -> None:
    import subprocess

    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "typer_baseline.py"), "--help"],
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "validate" in proc.stdout and "plan" in proc.stdout

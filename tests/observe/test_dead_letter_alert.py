"""The dead-letter queue in alerts and the Prometheus textfile (issue 15): ``dead_letter > 0``
fires at the end of the run and in ``alerts check``; the textfile has the queue's depth and
the foreach step's ready-item queue depth, and ``promtool`` accepts it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_flowctl

PIPELINE = """version: 1
name: fan
concurrency: 2
alerts:
  - when: dead_letter > 0
    description: items wait in the dead-letter queue
  - when: dead_letter > 5
steps:
  each:
    foreach: {items: [1, 2, 3, 4, 5, 6, 7, 8], tolerated_failure: {count: 2}}
    run: test "${{ item }}" -lt 7
"""


def test_dead_letter_alert_fires_and_the_textfile_has_the_queues(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(PIPELINE, encoding="utf-8")
    prom = tmp_path / "fan.prom"
    done = run_flowctl("run", "p.yaml", "--no-progress", "--metrics-file", str(prom), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FIRING  dead_letter > 0 - items wait in the dead-letter queue (value 2" in done.stdout, done.stdout
    assert "dead_letter > 5" not in done.stdout.split("FIRING", 1)[1].splitlines()[0]
    checked = run_flowctl("alerts", "check", "p.yaml", "--json", cwd=tmp_path)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    results = {r["alert"]: r for r in json.loads(checked.stdout)["alerts"]}
    assert results["dead_letter > 0"]["fired"] and results["dead_letter > 0"]["value"] == 2.0
    assert not results["dead_letter > 5"]["fired"]
    text = prom.read_text()
    assert 'flowctl_dead_letter_items{pipeline="fan",step="each"} 2.0' in text
    # 8 items, 2 slots: when the first started, 7 waited (2 when unbatched and -j 2 start at once: 6)
    depth = [line for line in text.splitlines() if line.startswith("flowctl_last_run_item_queue_depth_max{")]
    assert depth and 5.0 <= float(depth[0].rsplit(" ", 1)[1]) <= 7.0, depth
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install -y --no-install-recommends prometheus)")
    with prom.open("rb") as fh:
        result = subprocess.run([promtool, "check", "metrics"], stdin=fh, capture_output=True, text=True,
                                timeout=30, check=False)
    assert result.returncode == 0, result.stdout + result.stderr

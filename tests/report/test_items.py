"""Foreach steps on the run page (issue 15): one Gantt row per step with its items grouped
(counts per status, the slowest and the failed items), the dead-letter section, masked keys, and
a 10,000-item run that stays small. Real runs of real pipelines."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import run_flowctl
from tests.report.helpers import SECRET, Element, foreach_run, parse_strict, svg_groups

FAILING = ("7", "30")
SECRET_KEY = f"key-{SECRET}"  # dead-lettered too: the page shows it as key-***
SHOWN = (*FAILING, "key-***")


def _report(state: Path, folder: Path, *args: str) -> tuple[str, Element]:
    out = folder / "report.html"
    res = run_flowctl("report", "latest", "--state-dir", str(state), "-o", str(out), *args, env={"TOKEN": SECRET})
    assert res.returncode == 0, res.stderr
    html = out.read_text(encoding="utf-8")
    return html, parse_strict(html)


@pytest.fixture(scope="module")
def fan(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Element, Path]:
    folder = tmp_path_factory.mktemp("fan")
    ids = [str(i) for i in range(40)] + [SECRET_KEY]
    _, state = foreach_run(folder, ids, (*FAILING, SECRET_KEY))
    html, root = _report(state, folder)
    return html, root, state


def _rects(group: Element, kind: str) -> list[Element]:
    return [e for e in group.iter() if e.tag == "rect" and kind in e.classes()]


def _title(e: Element) -> str:
    return next(c.all_text() for c in e.children if c.tag == "title")


def test_a_foreach_step_is_one_gantt_row_with_counts_and_the_failed_and_slowest_items(fan: tuple[str, Element, Path]) -> None:
    _, root, _ = fan
    groups = svg_groups(root, "gantt")
    assert set(groups) == {"list", "each", "after"} and all(len(g) == 1 for g in groups.values())
    [each] = groups["each"]
    [span] = _rects(each, "span")
    assert _title(span).startswith("41 items: 38 succeeded, 3 dead-lettered; error rate")
    counts = {_title(r) for r in _rects(each, "count")}
    assert counts == {"38 succeeded (93% of the items)", "3 dead-lettered (7% of the items)"}
    items = _rects(each, "item")
    assert len(items) <= 10, "one bar per item shown, not per item of the step"
    failed = {r.attrs["data-item"]: _title(r) for r in items if "oc-failed" in r.classes()}
    assert failed == {k: f"item {k}: dead-lettered, exit 3, 2 attempts, " + failed[k].rsplit(", ", 1)[1] for k in SHOWN}
    assert sum("oc-ok" in r.classes() for r in items) == 5  # the five slowest
    assert not _rects(each, "attempt")


def test_the_dead_letter_section_lists_each_item_and_the_replay_command(fan: tuple[str, Element, Path]) -> None:
    html, root, state = fan
    [section] = [e for e in root.find_all("section") if e.attrs.get("id") == "dead-letters"]
    rows = [e for e in section.find_all("tr") if "data-item" in e.attrs]
    assert sorted(r.attrs["data-item"] for r in rows) == sorted(SHOWN)
    cells = [c.all_text() for c in rows[0].children]
    assert cells[1:4] == ["each", "2", "3"] and cells[4].endswith(" UTC") and cells[5].endswith(" UTC")
    tails = [e.all_text() for e in section.find_all("pre") if "replay" not in e.classes()]
    assert tails == ["bad item ***"] * 3
    [command] = [e.all_text() for e in section.find_all("pre") if "replay" in e.classes()]
    run_id = json.loads(re.search(r'id="flowctl-data">(.*?)</script>', html, re.S).group(1))["header"]["run_id"]  # type: ignore[union-attr]
    assert command == f"flowctl dlq replay --run {run_id} --step each --all"
    # The command is one a user can type: it lists the same queue.
    res = run_flowctl("dlq", "list", "--run", run_id, "--state-dir", str(state), "--json")
    assert res.returncode == 0, res.stderr
    assert sorted(i["key"] for i in json.loads(res.stdout)["items"]) == sorted((*FAILING, SECRET_KEY))


def test_item_keys_are_masked(fan: tuple[str, Element, Path]) -> None:
    html, _, _ = fan
    assert SECRET not in html
    assert 'data-item="key-***"' in html


def test_without_dead_letters_there_is_no_section(tmp_path: Path) -> None:
    _, state = foreach_run(tmp_path, ["a", "b"], ())
    html, root = _report(state, tmp_path)
    assert "dead-letters" not in html
    assert _rects(svg_groups(root, "gantt")["each"][0], "count")


def test_a_10000_item_run_gives_a_small_page_holding_aggregates(tmp_path: Path) -> None:
    _, state = foreach_run(tmp_path, [str(i) for i in range(10_000)], (), batch=500)
    html, root = _report(state, tmp_path)
    assert len(html.encode()) < 5_000_000
    [each] = svg_groups(root, "gantt")["each"]
    assert len(_rects(each, "item")) <= 10
    data = json.loads(re.search(r'id="flowctl-data">(.*?)</script>', html, re.S).group(1))  # type: ignore[union-attr]
    [step] = [s for s in data["steps"] if s["step"] == "each"]
    assert step["items"]["counts"] == {"succeeded": 10_000}
    assert len(step["items"]["slowest"]) <= 5 and "failed" not in step["items"]
    # No per-item detail beyond the items the page shows.
    keys = set(re.findall(r'"key":"(\d+)"', html))
    assert len(keys) <= 10, len(keys)
    assert len(html.encode()) < 100_000, "aggregates only: the page does not grow with the items"

"""``flowctl report`` and ``flowctl run --report`` end to end, as real processes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.conftest import run_flowctl
from tests.report.helpers import (
    FAILED_ID,
    attempts_in_db,
    dedent,
    failed_run,
    good_run,
    parse_strict,
    record,
    shop,
    svg_groups,
)

FLAKY = """
version: 1
name: flaky
secret_env: [TOKEN]
steps:
  prepare: {run: "echo preparing"}
  flaky:
    needs: [prepare]
    run: "test -f marker || { touch marker; echo first try fails; exit 3; }"
    retries: 1
    retry_delay: 100ms
  leak:
    needs: [prepare]
    description: Prints a secret and fails
    run: 'echo "token is $TOKEN"; exit 4'
  after: {needs: [leak], run: "true"}
"""


def _pipeline(tmp_path: Path, text: str = FLAKY) -> Path:
    path = tmp_path / "flaky.yaml"
    path.write_text(dedent(text), encoding="utf-8")
    return path


def _run_id(stdout: str) -> str:
    match = re.search(r"\b(\d{8}T\d{6}-[0-9a-f]+) RUN ", stdout)
    assert match, stdout
    return match.group(1)


def test_run_report_is_written_after_a_failure_and_matches_flowctl_report(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path)
    out = tmp_path / "reports" / "run.html"
    res = run_flowctl("run", str(pipeline), "--report", str(out), cwd=tmp_path, env={"TOKEN": "s3cr3t-value-42"})
    assert res.returncode == 1, res.stdout + res.stderr  # the report does not change it
    assert res.stdout.rstrip().endswith(f"Report: {out}")
    run_id = _run_id(res.stdout)
    html = out.read_text(encoding="utf-8")
    again = run_flowctl("report", run_id, "--state-dir", str(tmp_path / ".flowctl"), "-o", "-")
    assert again.returncode == 0, again.stderr
    assert again.stdout == html  # the same run gives the same bytes, whoever writes it
    root = parse_strict(html)
    recorded = attempts_in_db(tmp_path / ".flowctl", run_id)
    assert recorded == {"prepare": 1, "flaky": 2, "leak": 1}
    for step, [group] in svg_groups(root, "gantt").items():
        bars = [e for e in group.iter() if e.tag == "rect" and "attempt" in e.classes()]
        assert len(bars) == recorded.get(step, 0), step
    assert "st-failed" in svg_groups(root, "dag")["leak"][0].classes()
    assert "st-skipped" in svg_groups(root, "dag")["after"][0].classes()
    # Secrets: the state holds masked output only, so the page cannot show the value.
    assert "s3cr3t-value-42" not in html
    [tail] = [e for e in root.iter() if e.tag == "pre"]
    assert tail.all_text() == "token is ***"


def test_a_report_that_cannot_be_written_is_a_warning_only(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder", encoding="utf-8")
    target = str(tmp_path / "a-file" / "report.html")
    ok = _pipeline(tmp_path, "version: 1\nname: ok\nsteps:\n  one: {run: 'true'}\n")
    res = run_flowctl("run", str(ok), "--report", target, cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "flowctl: warning: no report written: --report" in res.stderr and "Traceback" not in res.stderr
    failing = _pipeline(tmp_path, "version: 1\nname: bad\nsteps:\n  one: {run: 'exit 5'}\n")
    res = run_flowctl("run", str(failing), "--report", target, cwd=tmp_path)
    assert res.returncode == 1 and "no report written" in res.stderr


def test_latest_picks_the_newest_run(tmp_path: Path) -> None:
    _, state = shop(tmp_path)
    res = run_flowctl("report", "--state-dir", str(state), "-o", str(tmp_path / "r.html"), "--json")
    assert res.returncode == 0, res.stderr
    said = json.loads(res.stdout)
    assert said["run_id"] == FAILED_ID and said["pipeline"] == "shop"
    assert said["bytes"] == (tmp_path / "r.html").stat().st_size
    older = run_flowctl("report", "20251125T0900", "--state-dir", str(state), "-o", "-")
    assert older.returncode == 0 and "20251125T090000-aaaa" in older.stdout


def test_no_state_or_unknown_run_is_a_clear_error(tmp_path: Path) -> None:
    res = run_flowctl("report", "latest", "--state-dir", str(tmp_path / "none"), "-o", str(tmp_path / "r.html"))
    assert res.returncode == 2 and "no runs recorded" in res.stderr and "Traceback" not in res.stderr
    _, state = shop(tmp_path)
    res = run_flowctl("report", "nope", "--state-dir", str(state), "-o", str(tmp_path / "r.html"))
    assert res.returncode == 2 and "no run with id 'nope'" in res.stderr
    assert not (tmp_path / "r.html").exists()


def test_history_page(tmp_path: Path) -> None:
    pipeline, state = shop(tmp_path)
    flakier = failed_run("20251125T120000-0ccc", 10_800.0)
    record(state, pipeline, flakier, good_run("20251125T130000-0ddd", 14_400.0, scale=0.9))
    out = tmp_path / "history.html"
    res = run_flowctl("report", "--history", str(pipeline), "-o", str(out))
    assert res.returncode == 0, res.stderr
    assert "the last 5 runs" in res.stdout
    root = parse_strict(out.read_text(encoding="utf-8"))
    bars = [e for e in root.iter() if e.tag == "rect" and "data-run" in e.attrs]
    assert [b.attrs["data-run"] for b in bars] == [
        "20251125T090000-aaaa", "20251125T100000-bbbb", FAILED_ID, "20251125T120000-0ccc", "20251125T130000-0ddd"
    ]
    assert [sorted(b.classes()) for b in bars][2] == ["st-failed"]
    [flaky] = [e for e in root.find_all("section") if e.attrs.get("id") == "flaky"]
    rows = [[td.all_text() for td in tr.children] for tr in flaky.iter() if tr.tag == "tr" and "data-step" in tr.attrs]
    # validate, build and docs each retried once in both failed runs (a remediation is no retry)
    assert rows == [["build", "2", "2 of 5", "2"], ["docs", "2", "2 of 5", "2"], ["validate", "2", "2 of 5", "0"]]
    [steps] = [e for e in root.find_all("section") if e.attrs.get("id") == "steps"]
    trends = [e for e in steps.iter() if e.tag == "svg" and "trend" in e.classes()]
    assert len(trends) == 7 and all(any(p.tag == "polyline" for p in t.iter()) for t in trends)
    last2 = run_flowctl("report", "--history", "shop", "--state-dir", str(state), "--last", "2", "-o", "-")
    assert last2.returncode == 0 and last2.stdout.count("data-run=") == 2


def test_history_usage_errors(tmp_path: Path) -> None:
    pipeline, state = shop(tmp_path)
    res = run_flowctl("report", FAILED_ID, "--history", str(pipeline), "-o", str(tmp_path / "h.html"))
    assert res.returncode == 2 and "--history" in res.stderr
    res = run_flowctl("report", "--history", "other", "--state-dir", str(state), "-o", str(tmp_path / "h.html"))
    assert res.returncode == 2 and "no runs of 'other'" in res.stderr
    res = run_flowctl("report", "--last", "3", "--state-dir", str(state), "-o", str(tmp_path / "h.html"))
    assert res.returncode == 2 and "--history" in res.stderr
    assert not (tmp_path / "h.html").exists()


def test_latest_and_latest_n_narrowed_to_one_pipeline(tmp_path: Path) -> None:
    """``latest`` works in ``report`` as in ``show``: the newest run of the project, or of the
    pipeline ``--pipeline`` names (a file or a name); ``latest~N`` counts back from it."""
    from tests.report.helpers import SHOP_YAML

    pipeline, state = shop(tmp_path)
    other = tmp_path / "other.yaml"
    other.write_text(SHOP_YAML.format(description='"other"').replace("name: shop", "name: other"), encoding="utf-8")
    record(state, other, good_run("20251125T150000-eeee", 21_600.0))

    def reported(*args: str) -> str:
        res = run_flowctl("report", *args, "--state-dir", str(state), "-o", str(tmp_path / "r.html"), "--json")
        assert res.returncode == 0, res.stderr
        return str(json.loads(res.stdout)["run_id"])

    assert reported("latest") == "20251125T150000-eeee"
    assert reported("latest", "--pipeline", "shop") == FAILED_ID
    assert reported("latest~1", "--pipeline", str(pipeline)) == "20251125T100000-bbbb"
    assert reported("latest~1") == FAILED_ID
    res = run_flowctl("report", "--history", "shop", "--pipeline", "shop", "--state-dir", str(state), "-o", "-")
    assert res.returncode == 2 and "--pipeline" in res.stderr

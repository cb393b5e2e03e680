"""The report in a real browser (Debian's chromium, headless; ``.ci/run`` installs it): it
renders, the status colours are where the steps are, hover details are in the DOM, it is
readable with scripts disabled, and hostile text stays text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_flowctl
from tests.report.helpers import (
    FAILED_ID,
    PAYLOAD,
    TITLE_PAYLOAD,
    Element,
    chromium,
    colour_counts,
    find_chromium,
    foreach_run,
    grey_variance,
    parse_strict,
    read_png,
    shop,
    svg_groups,
    without_scripts,
)

WINDOW = "--window-size=1200,2400"
COLOURS = {"succeeded": "#1a7f37", "failed": "#cf222e", "failed (allowed)": "#bc4c00", "skipped": "#d0d7de"}
# Appended to a copy of the page: where each DAG node is drawn, for reading the screenshot.
_BOXES = """<script>
document.documentElement.setAttribute("data-boxes", JSON.stringify(Array.prototype.map.call(
  document.querySelectorAll("svg.dag g[data-step] > rect"), function (r) {
    var b = r.getBoundingClientRect();
    return [r.parentNode.getAttribute("data-step"), b.left, b.top, b.width, b.height];
  })));
</script>"""


@pytest.fixture(scope="module")
def browser() -> str:
    return find_chromium()


def _page(folder: Path, **hostile: str) -> Path:
    _, state = shop(folder, **hostile)
    out = folder / "report.html"
    res = run_flowctl("report", FAILED_ID, "--state-dir", str(state), "-o", str(out))
    assert res.returncode == 0, res.stderr
    return out


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _page(tmp_path_factory.mktemp("page"))


def _dump(browser: str, page: Path, profile: Path) -> Element:
    return parse_strict(chromium(browser, page, profile, WINDOW, "--dump-dom").stdout, page=False)


def _shot(browser: str, page: Path, profile: Path) -> tuple[int, int, list[bytes]]:
    png = page.with_suffix(".png")
    chromium(browser, page, profile, WINDOW, f"--screenshot={png}")
    return read_png(png)


def test_the_screenshot_shows_each_status_colour_at_its_step_box(browser: str, page: Path, tmp_path: Path) -> None:
    width, height, rows = _shot(browser, page, tmp_path / "profile")
    assert (width, height) == (1200, 2400)
    assert grey_variance(rows) > 200, "the screenshot is (nearly) blank"
    measuring = page.with_name("boxes.html")
    measuring.write_text(page.read_text(encoding="utf-8").replace("</body>", _BOXES + "</body>"), encoding="utf-8")
    dom = _dump(browser, measuring, tmp_path / "profile")
    [html] = [e for e in dom.iter() if e.tag == "html"]
    boxes = {step: (x, y, w, h) for step, x, y, w, h in json.loads(html.attrs["data-boxes"])}
    assert set(boxes) == {"fetch", "lint", "validate", "build", "docs", "publish", "notify"}
    expected = {"fetch": "succeeded", "build": "failed", "docs": "failed (allowed)", "publish": "skipped"}
    for step, status in expected.items():
        x, y, w, h = boxes[step]
        assert y + h < height, f"{step} is below the screenshot"
        px, py = int(x + w - 8), int(y + h / 2)  # right of the text, inside the border
        pixel = "#" + rows[py][px * 3 : px * 3 + 3].hex()
        assert pixel == COLOURS[status], (step, pixel)
    counts = colour_counts(rows, COLOURS.values())
    assert all(n > 500 for n in counts.values()), counts


def test_hover_details_are_in_the_dom_and_the_script_ran(browser: str, page: Path, tmp_path: Path) -> None:
    dom = _dump(browser, page, tmp_path / "profile")
    [gantt_build] = svg_groups(dom, "gantt")["build"]
    bars = [e for e in gantt_build.iter() if e.tag == "rect" and "attempt" in e.classes()]
    titles = [c.all_text() for b in bars for c in b.children if c.tag == "title"]
    assert titles == ["try 1: timeout, 10.0s", "try 2: failed, exit 2, 800ms"]
    # The script added the filter and the hover panel: it runs under the page's own policy.
    assert [e for e in dom.iter() if "filter" in e.classes()]
    assert [e for e in dom.iter() if e.attrs.get("id") == "hover"]


def test_with_scripts_disabled_the_gantt_and_dag_still_render(browser: str, page: Path, tmp_path: Path) -> None:
    bare = without_scripts(page)
    dom = _dump(browser, bare, tmp_path / "profile")
    assert not [e for e in dom.iter() if "filter" in e.classes() or e.attrs.get("id") == "hover"], "a script ran"
    steps = {"fetch", "lint", "validate", "build", "docs", "publish", "notify"}
    assert set(svg_groups(dom, "gantt")) == steps and set(svg_groups(dom, "dag")) == steps
    _, _, rows = _shot(browser, bare, tmp_path / "profile")
    assert grey_variance(rows) > 200
    counts = colour_counts(rows, COLOURS.values())
    assert all(n > 500 for n in counts.values()), counts


def test_hostile_text_is_shown_as_text_and_nothing_executes(browser: str, tmp_path: Path) -> None:
    """The payload in a step's description, a parameter value and a log tail; then in the keys
    of a foreach step's items (a real run: dead-lettered, so they are in the Gantt and the
    dead-letter section)."""
    page = _page(tmp_path, description=PAYLOAD, param=TITLE_PAYLOAD, tail=PAYLOAD + "\n" + TITLE_PAYLOAD)
    dom = _dump(browser, page, tmp_path / "profile")
    assert not dom.find_all("img"), "an injected element was created"
    [title] = dom.find_all("title")[:1]
    assert title.all_text() == f"shop run {FAILED_ID}: failed", "an injected handler ran"
    assert [e for e in dom.iter() if "filter" in e.classes()], "the page's own script did not run"
    [tail] = [e for e in dom.iter() if e.tag == "pre"][:1]
    assert PAYLOAD in tail.all_text() and TITLE_PAYLOAD in tail.all_text()
    facts = {dt.all_text(): dd.all_text() for dl in dom.find_all("dl") for dt, dd in zip(dl.children[::2], dl.children[1::2], strict=False)}
    assert facts["Parameters"] == f"day={TITLE_PAYLOAD}"
    descriptions = [e.all_text() for e in dom.iter() if "desc" in e.classes()]
    assert PAYLOAD in descriptions
    scripts = dom.find_all("script")
    assert len(scripts) == 2  # the data and the page's own script, nothing injected

    _, state = foreach_run(tmp_path / "fan", ["ok", PAYLOAD, TITLE_PAYLOAD], [PAYLOAD, TITLE_PAYLOAD])
    fan = tmp_path / "fan" / "report.html"
    res = run_flowctl("report", "latest", "--state-dir", str(state), "-o", str(fan))
    assert res.returncode == 0, res.stderr
    dom = _dump(browser, fan, tmp_path / "profile")
    assert not dom.find_all("img"), "an injected element was created"
    [title] = dom.find_all("title")[:1]
    assert title.all_text().startswith("fan run "), "an injected handler ran"
    assert len(dom.find_all("script")) == 2
    [each] = svg_groups(dom, "gantt")["each"]
    bars = {e.attrs["data-item"] for e in each.iter() if "item" in e.classes() and "oc-failed" in e.classes()}
    assert bars == {PAYLOAD, TITLE_PAYLOAD}
    keys = {e.all_text() for e in dom.iter() if e.tag == "code" and e.parent is not None and e.parent.tag == "td"}
    assert keys == {PAYLOAD, TITLE_PAYLOAD}


# Appended to a copy of the page: point at build's second try, then type into the filter.
_DRIVE = """<script>
var bar = document.querySelectorAll('svg.gantt g[data-step="build"] rect.attempt')[1];
bar.dispatchEvent(new MouseEvent("mouseover", {bubbles: true}));
var box = document.querySelector(".filter input[type=search]");
box.value = "VAL";
box.dispatchEvent(new Event("input", {bubbles: true}));
</script>"""


def test_the_script_highlights_on_hover_and_filters(browser: str, page: Path, tmp_path: Path) -> None:
    driven = page.with_name("driven.html")
    driven.write_text(page.read_text(encoding="utf-8").replace("</body>", _DRIVE + "</body>"), encoding="utf-8")
    dom = _dump(browser, driven, tmp_path / "profile")
    [panel] = [e for e in dom.iter() if e.attrs.get("id") == "hover"]
    assert "hidden" not in panel.attrs and panel.all_text() == "build\ntry 2: failed, exit 2, 800ms"
    lit = {e.attrs["data-step"] for e in dom.iter() if "lit" in e.classes()}
    assert lit == {"build"}
    marked = [e for e in dom.iter() if "data-step" in e.attrs]
    dimmed = {e.attrs["data-step"] for e in marked if "dim" in e.classes()}
    assert {e.attrs["data-step"] for e in marked} - dimmed == {"validate"}

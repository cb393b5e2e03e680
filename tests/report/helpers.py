"""Recorded runs for report tests: a scripted event stream with a fake clock, written through the
real SQLite run store (the store ``flowctl run`` writes through), log files where the runner puts
them, and the pipeline file the run recorded. Also: a strict HTML check, a PNG reader, and
headless chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import textwrap
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from flowctl.run.events import (
    AttemptFinished,
    AttemptKind,
    AttemptOutcome,
    AttemptStarted,
    Event,
    RetryScheduled,
    RunFinished,
    RunId,
    RunStarted,
    RunStatus,
    StepFinished,
    StepReady,
    StepStatus,
)
from tests.conftest import tool_missing

T0 = 1_764_064_800.0  # 2025-11-25 10:00:00 UTC: the fake clock's zero
PAYLOAD = "</script><img src=x onerror=alert(1)>"
TITLE_PAYLOAD = "</script><img src=x onerror=\"document.title='pwned'\">"


@dataclass(frozen=True)
class Try:
    """One attempt, in seconds after the run's start."""

    start: float
    end: float
    outcome: AttemptOutcome
    exit_code: int | None = None
    kind: AttemptKind = AttemptKind.ATTEMPT
    log: str = ""  # what it printed ("" = nothing: no log file)
    retry_delay: float | None = None  # back-off scheduled after it
    error: str | None = None


@dataclass(frozen=True)
class StepScript:
    step: str
    status: StepStatus
    finished: float
    ready: float | None = None
    tries: tuple[Try, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class RunScript:
    run_id: str
    start: float  # seconds after T0
    end: float  # seconds after its start
    status: RunStatus
    steps: tuple[StepScript, ...]
    root_failure: str | None = None
    params: Mapping[str, object] = field(default_factory=dict)
    provenance: Mapping[str, object] = field(default_factory=dict)


def events(script: RunScript, state_dir: Path, pipeline_path: str) -> list[Event]:
    """The events a scheduler emits for ``script``, writing each attempt's log file as it goes."""
    rid = RunId(script.run_id)
    at = T0 + script.start
    name = re.search(r"^name: (\S+)$", Path(pipeline_path).read_text(encoding="utf-8"), re.MULTILINE)
    out: list[Event] = [
        RunStarted(rid, name.group(1) if name else "shop", at, tuple(s.step for s in script.steps), params=dict(script.params),
                   concurrency=1, pipeline_path=pipeline_path, provenance=dict(script.provenance))
    ]
    counts: dict[str, int] = {}
    for s in script.steps:
        if s.ready is not None:
            out.append(StepReady(rid, s.step, at + s.ready, queue_depth=1))
        for n, t in enumerate(s.tries, 1):
            name = "remediate" if t.kind is AttemptKind.REMEDIATE else str(n)
            log = state_dir / "runs" / script.run_id / s.step / f"{name}.log"
            out.append(AttemptStarted(rid, s.step, n, at + t.start, max_attempts=3, kind=t.kind,
                                      command=f"run {s.step}", log_path=str(log)))
            if t.log:
                log.parent.mkdir(parents=True, exist_ok=True)
                log.write_text(t.log, encoding="utf-8")
            out.append(AttemptFinished(rid, s.step, n, at + t.end, t.outcome, t.exit_code, t.end - t.start,
                                       t.kind, str(log) if t.log else "", t.error))
            if t.retry_delay is not None:
                out.append(RetryScheduled(rid, s.step, n + 1, t.retry_delay, at + t.end))
        last = s.tries[-1] if s.tries else None
        took = (s.tries[-1].end - s.tries[0].start) if s.tries else 0.0
        out.append(StepFinished(rid, s.step, s.status, at + s.finished, len(s.tries), took, s.reason,
                                exit_code=last.exit_code if last else None))
        counts[s.status.value] = counts.get(s.status.value, 0) + 1
    out.append(RunFinished(rid, at + script.end, script.status, script.end, counts, script.root_failure))
    return out


def record(state_dir: Path, pipeline: Path, *scripts: RunScript) -> None:
    """Write ``scripts`` into the state folder through the real store."""
    from flowctl.state.store import SqliteRunStore

    with SqliteRunStore(state_dir, pipeline_path=str(pipeline)) as store:
        for script in scripts:
            for event in events(script, state_dir, str(pipeline)):
                store.record(event)


SHOP_YAML = """\
version: 1
name: shop
description: The nightly shop build
params:
  day: {{type: string, default: "2026-11-24"}}
steps:
  fetch:
    description: {description}
    run: "true"
  lint: {{run: "true"}}
  validate: {{needs: [fetch], run: "true", retries: 2}}
  build: {{needs: [validate, lint], run: "true", retries: 1, timeout: 10s}}
  docs:
    needs: [validate]
    run: "true"
    continue_on_error: true
    remediate: {{run: "true"}}
  publish: {{needs: [build], run: "true"}}
  notify: {{needs: [docs], run: "true"}}
"""

OK, FAILED, TIMEOUT = AttemptOutcome.OK, AttemptOutcome.FAILED, AttemptOutcome.TIMEOUT
SUCCEEDED = StepStatus.SUCCEEDED


def good_run(run_id: str, start: float, scale: float = 1.0) -> RunScript:
    """A successful run of shop: every step once, one after another."""
    t, steps = 0.0, []
    for step, seconds in (("fetch", 7.5), ("lint", 2.0), ("validate", 3.0), ("build", 9.0), ("docs", 1.0),
                          ("publish", 1.0), ("notify", 1.0)):
        took = seconds * scale
        steps.append(StepScript(step, SUCCEEDED, t + took, t, (Try(t, t + took, OK, 0),)))
        t += took
    return RunScript(run_id, start, t, RunStatus.SUCCEEDED, tuple(steps), params={"day": "2026-11-23"})


def failed_run(run_id: str, start: float, *, param: str = "2026-11-24", tail: str = "", provenance: Mapping[str, object] | None = None) -> RunScript:
    """The run a report is about: a queue, retries with back-off, a timeout, a remediation, a
    failure (``build``, exit 2) with a log tail, a skipped step."""
    build_log = "compiling 12 modules\nlinking shop\n" + (tail + "\n" if tail else "") + "error: undefined symbol: checkout\n"
    steps = (
        StepScript("fetch", SUCCEEDED, 8.0, 0.0, (Try(0.2, 8.0, OK, 0, log="fetched 120 orders\n"),)),
        StepScript("lint", SUCCEEDED, 10.0, 0.0, (Try(8.1, 10.0, OK, 0),)),
        StepScript("validate", SUCCEEDED, 17.0, 8.0, (
            Try(10.1, 12.0, FAILED, 3, log="row 17: bad total\n", retry_delay=2.0),
            Try(14.1, 17.0, OK, 0),
        )),
        StepScript("build", StepStatus.FAILED, 29.0, 17.0, (
            Try(17.1, 27.1, TIMEOUT, None, log="compiling 12 modules\n", retry_delay=1.0),
            Try(28.2, 29.0, FAILED, 2, log=build_log),
        ), reason="exit 2"),
        StepScript("docs", StepStatus.FAILED_ALLOWED, 31.0, 17.0, (
            Try(29.1, 30.0, FAILED, 1, log="docs: broken link\n"),
            Try(30.0, 30.5, OK, 0, kind=AttemptKind.REMEDIATE),
            Try(30.5, 31.0, FAILED, 1, kind=AttemptKind.FINAL, log="docs: broken link\n"),
        ), reason="exit 1"),
        StepScript("publish", StepStatus.SKIPPED, 29.0, reason="upstream build failed"),
        StepScript("notify", SUCCEEDED, 32.0, 31.0, (Try(31.1, 32.0, OK, 0),)),
    )
    prov = {"git_ref": "v1.4.0", "git_commit": "3f9a0c1d2e4b5a697887f0e1d2c3b4a596871234", "git_dirty": False,
            "pipeline_sha256": "ab" * 32}
    return RunScript(run_id, start, 32.1, RunStatus.FAILED, steps, root_failure="build",
                     params={"day": param}, provenance=provenance if provenance is not None else prov)


FAILED_ID = "20251125T110000-f00d"


def shop(folder: Path, *, description: str = "Download the day's orders", param: str = "2026-11-24",
         tail: str = "", provenance: Mapping[str, object] | None = None) -> tuple[Path, Path]:
    """A pipeline file and a state folder holding two good runs and then the failed one."""
    folder.mkdir(parents=True, exist_ok=True)
    pipeline = folder / "shop.yaml"
    pipeline.write_text(SHOP_YAML.format(description=json.dumps(description)), encoding="utf-8")
    state = folder / ".flowctl"
    record(state, pipeline,
           good_run("20251125T090000-aaaa", 0.0),
           good_run("20251125T100000-bbbb", 3600.0, scale=1.2),
           failed_run(FAILED_ID, 7200.0, param=param, tail=tail, provenance=provenance))
    return pipeline, state


def attempts_in_db(state: Path, run_id: str) -> dict[str, int]:
    """Attempts per step, counted in the state database itself."""
    import sqlite3

    with sqlite3.connect(state / "state.db") as conn:
        rows = conn.execute("SELECT step, count(*) FROM attempts WHERE run_id = ? GROUP BY step", (run_id,))
        return dict(rows.fetchall())


# -- a strict HTML check ---------------------------------------------------------------------

VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"})
URL_ATTRS = frozenset({"src", "href", "xlink:href", "action", "formaction", "srcset", "poster", "data", "background",
                       "ping", "manifest", "codebase", "cite", "longdesc", "usemap", "lowsrc", "dynsrc"})


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    parent: Element | None
    content: list[Element | str] = field(default_factory=list)  # in document order

    @property
    def children(self) -> list[Element]:
        return [c for c in self.content if isinstance(c, Element)]

    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def iter(self) -> Iterable[Element]:
        yield self
        for child in self.children:
            yield from child.iter()

    def find_all(self, tag: str, **attrs: str) -> list[Element]:
        return [e for e in self.iter() if e.tag == tag and all(e.attrs.get(k) == v for k, v in attrs.items())]

    def all_text(self) -> str:
        return "".join(c if isinstance(c, str) else c.all_text() for c in self.content)


class StrictParser(HTMLParser):
    """Parses a page into ``Element``s and fails on what a browser would silently repair: an end
    tag that closes nothing open, elements left open, duplicate attributes, a second ``id``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {}, None)
        self.stack = [self.root]
        self.errors: list[str] = []
        self.ids: set[str] = set()

    def _open(self, tag: str, attrs: list[tuple[str, str | None]], closed: bool) -> None:
        names = [k for k, _ in attrs]
        if len(names) != len(set(names)):
            self.errors.append(f"duplicate attribute in <{tag}>: {names}")
        values = {k: v or "" for k, v in attrs}
        if "id" in values:
            if values["id"] in self.ids:
                self.errors.append(f"duplicate id {values['id']!r}")
            self.ids.add(values["id"])
        element = Element(tag, values, self.stack[-1])
        self.stack[-1].content.append(element)
        if not closed and tag not in VOID:
            self.stack.append(element)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open(tag, attrs, False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open(tag, attrs, True)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if self.stack[-1].tag != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1].tag}>")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].content.append(data)


def parse_strict(html: str, *, page: bool = True) -> Element:
    """Parse ``html`` strictly; ``page=False`` for chromium's DOM dump (no doctype)."""
    parser = StrictParser()
    parser.feed(html)
    parser.close()
    assert not parser.errors, parser.errors[:5]
    assert [e.tag for e in parser.stack] == ["#document"], f"left open: {[e.tag for e in parser.stack]}"
    if page:
        assert html.startswith("<!DOCTYPE html>\n")
    return parser.root


def outside_references(root: Element) -> list[str]:
    """Every ``src``/``href``-like attribute and CSS ``url()``/``@import`` that is not a
    fragment of the page itself."""
    found = []
    for e in root.iter():
        for name, value in e.attrs.items():
            if name in URL_ATTRS and not value.startswith("#"):
                found.append(f"<{e.tag} {name}={value!r}>")
            if name == "style" and ("url(" in value or "@import" in value):
                found.append(f"<{e.tag} style={value!r}>")
        if e.tag == "style":
            css = e.all_text()
            if "url(" in css or "@import" in css:
                found.append("<style> with url() or @import")
    return found


def svg_groups(root: Element, svg_class: str) -> dict[str, list[Element]]:
    """The ``g[data-step]`` groups of the page's ``svg.<svg_class>``, by step."""
    [svg] = [e for e in root.find_all("svg") if svg_class in e.classes()]
    groups: dict[str, list[Element]] = {}
    for e in svg.iter():
        if e.tag == "g" and "data-step" in e.attrs:
            groups.setdefault(e.attrs["data-step"], []).append(e)
    return groups


# -- PNG and chromium ------------------------------------------------------------------------


def read_png(path: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB rows of an 8-bit, non-interlaced RGB or RGBA PNG (what chromium writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", 0
    height = depth = colour = interlace = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = previous[i]
            c = previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        previous = line
        rows.append(bytes(line[j] for i in range(0, stride, bpp) for j in (i, i + 1, i + 2)))
    return width, height, rows


def colour_counts(rows: Sequence[bytes], colours: Iterable[str]) -> dict[str, int]:
    """How many pixels have exactly each ``#rrggbb`` colour."""
    wanted = {bytes.fromhex(c.lstrip("#")): c for c in colours}
    counts = dict.fromkeys(wanted.values(), 0)
    for row in rows:
        for i in range(0, len(row), 3):
            hit = wanted.get(row[i : i + 3])
            if hit is not None:
                counts[hit] += 1
    return counts


def grey_variance(rows: Sequence[bytes]) -> float:
    values = [(row[i] + row[i + 1] + row[i + 2]) / 3 for row in rows[::4] for i in range(0, len(row), 12)]
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / len(values)


def find_chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    tool_missing("chromium is not installed (apt-get install chromium)")


def chromium(binary: str, page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless chromium on ``page`` with nothing reaching the network."""
    proc = subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--force-color-profile=srgb", "--force-device-scale-factor=1",
         "--hide-scrollbars", f"--user-data-dir={profile}", *args, page.as_uri()],
        capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(profile)}, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def without_scripts(page: Path) -> Path:
    """A copy of ``page`` whose policy allows no script at all (headless chromium cannot dump or
    screenshot with ``--blink-settings=scriptEnabled=false``; a CSP disables them as well)."""
    from flowctl.report.render import CSP

    text = page.read_text(encoding="utf-8")
    assert CSP in text
    copy = page.with_name("noscript-" + page.name)
    copy.write_text(text.replace(CSP, CSP.replace("script-src 'unsafe-inline'", "script-src 'none'")), encoding="utf-8")
    return copy


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


# -- a real foreach run (issue 15) ------------------------------------------------------------

SECRET = "s3cr3t-token-value"


def foreach_run(folder: Path, ids: Sequence[str], failing: Sequence[str], *, batch: int = 0) -> tuple[Path, Path]:
    """Run (for real) a pipeline whose foreach step ``each`` has one item per id, keyed by it;
    the ``failing`` ids exit 3 on both attempts and are dead-lettered. ``TOKEN`` is a secret;
    an id holding its value is masked on the page. With ``batch``, items of ``true`` in batches."""
    from tests.conftest import run_flowctl

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "items.jsonl").write_text("".join(json.dumps({"id": i}) + "\n" for i in ids), encoding="utf-8")
    (folder / "failing.txt").write_text("".join(f"{i}\n" for i in failing), encoding="utf-8")
    if batch:
        body = f"      batch: {{size: {batch}}}\n    run: \"true\"\n"
    else:
        body = ("    retries: 1\n"
                "    run: if grep -qxF -- \"${{ item.id }}\" failing.txt; then echo \"bad item $TOKEN\" >&2; exit 3; fi\n")
    pipeline = folder / "fan.yaml"
    pipeline.write_text(
        "version: 1\nname: fan\nconcurrency: 4\nsecret_env: [TOKEN]\nsteps:\n"
        "  list:\n    run: echo listing\n"
        "  each:\n    needs: [list]\n    foreach:\n      items_from: {file: items.jsonl}\n      key: ${{ item.id }}\n"
        "      tolerated_failure: {percent: 100}\n" + body
        + "  after:\n    needs: [each]\n    run: echo done\n", encoding="utf-8")
    res = run_flowctl("run", str(pipeline), "--state-dir", str(folder / ".flowctl"), cwd=folder, env={"TOKEN": SECRET},
                      timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    return pipeline, folder / ".flowctl"

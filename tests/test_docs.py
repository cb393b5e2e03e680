"""The README stays a short user guide, and README.md and docs/*.md never point at nothing.

Issue 13 ("A README that a newcomer reads to the end"): at most ~300 lines with a table of
contents, the two labelled set-up commands, the exit-code table exactly once (and the same codes
as ``flowctl.errors``), everything else under docs/, and no link that leaves the repository
except to a web page. Every full pipeline shown in the guides must validate.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flowctl.errors import ExitCode
from tests.conftest import REPO, run_flowctl

README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
GUIDES = [README, *DOCS]

MAX_README_LINES = 320
SET_UP = {
    "Use flowctl": "python3 -m venv .venv && .venv/bin/pip install -c constraints.txt . "
    "&& .venv/bin/flowctl run pipelines/etl.yaml",
    "Work on flowctl": "python3 -m venv .venv && .venv/bin/pip install -c constraints.txt -e '.[test]' "
    "&& .venv/bin/python -m pytest",
}

_FENCE = re.compile(r"^```.*?^```[ \t]*$", re.MULTILINE | re.DOTALL)
_LINK = re.compile(r"(?<!\\)\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)


def _prose(text: str) -> str:
    """``text`` without its fenced code blocks (a ``# comment`` there is no heading)."""
    return _FENCE.sub("", text)


def _slug(title: str) -> str:
    """The anchor GitHub makes for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", title.replace("`", "").strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    """Every anchor of ``path``'s headings (``-1``, ``-2`` … for repeats, as GitHub does)."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    for _, title in _HEADING.findall(_prose(path.read_text(encoding="utf-8"))):
        slug = _slug(title)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        out.add(slug if count == 0 else f"{slug}-{count}")
    return out


def _links(path: Path) -> list[str]:
    return _LINK.findall(_prose(path.read_text(encoding="utf-8")))


def _lines_of_section(text: str, title: str) -> list[str]:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None].splitlines()


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, (
        f"README.md has {len(lines)} lines; keep it a user guide (<= {MAX_README_LINES}) and move "
        "details under docs/"
    )


def test_table_of_contents_lists_every_section_and_each_anchor_exists() -> None:
    text = README.read_text(encoding="utf-8")
    toc = [line for line in _lines_of_section(text, "Contents") if line.startswith("- [")]
    targets = [m for line in toc for m in _LINK.findall(line)]
    assert targets and all(t.startswith("#") for t in targets), toc
    anchors = _anchors(README)
    missing = [t for t in targets if t[1:] not in anchors]
    assert not missing, f"table of contents points at no heading: {missing}"
    sections = [title for level, title in _HEADING.findall(_prose(text)) if level == "##"]
    listed = {t[1:] for t in targets}
    unlisted = [s for s in sections if s != "Contents" and _slug(s) not in listed]
    assert not unlisted, f"sections missing from the table of contents: {unlisted}"


def test_set_up_comes_first_with_the_two_labelled_commands() -> None:
    text = README.read_text(encoding="utf-8")
    sections = [title for level, title in _HEADING.findall(_prose(text)) if level == "##"]
    assert sections[:2] == ["Contents", "Set up"], sections
    set_up = "\n".join(_lines_of_section(text, "Set up"))
    for label, command in SET_UP.items():
        assert f"**{label}**" in set_up, f"no {label!r} label in Set up"
        assert f"```sh\n{command}\n```" in set_up, f"the {label!r} command changed or moved"
        assert set_up.index(f"**{label}**") < set_up.index(command)
    assert "activate" in set_up and "pipx install ." in set_up, "say how to put flowctl on PATH"


def test_exit_code_table_appears_once_and_matches_flowctl() -> None:
    header = re.compile(r"^\| *code *\| *meaning *\|$", re.MULTILINE)
    tables = {path: header.findall(path.read_text(encoding="utf-8")) for path in GUIDES}
    assert len(tables[README]) == 1, "README.md must have the exit-code table exactly once"
    elsewhere = [path.name for path in DOCS if tables[path]]
    assert not elsewhere, f"a second exit-code table in {elsewhere}: link to the README's instead"
    section = _lines_of_section(README.read_text(encoding="utf-8"), "Exit codes")
    codes = [int(m.group(1)) for line in section if (m := re.match(r"^\| *(\d+) *\|", line))]
    assert codes == sorted(int(code) for code in ExitCode)


@pytest.mark.parametrize("path", GUIDES, ids=[p.name for p in GUIDES])
def test_every_relative_link_points_at_a_file_in_the_repository(path: Path) -> None:
    broken = []
    for target in _links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: … : a page, not a file
            assert target.startswith("https://"), f"{path.name}: {target} is not a public web page"
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.is_relative_to(REPO):
            broken.append(f"{target} (outside the repository)")
        elif not resolved.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{path.relative_to(REPO)}: broken links: {broken}"


def _pipelines_shown(path: Path) -> list[str]:
    blocks = re.findall(r"^```yaml\n(.*?)^```", path.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)
    return [b for b in blocks if re.search(r"^version: 1\b", b, re.MULTILINE) and "\nsteps:" in b]


SHOWN = [(p, i, block) for p in GUIDES for i, block in enumerate(_pipelines_shown(p))]


def test_the_guides_show_a_full_pipeline() -> None:
    assert {p.name for p, _, _ in SHOWN} >= {"README.md", "format.md"}


@pytest.mark.parametrize(("path", "index", "block"), SHOWN, ids=[f"{p.name}-{i}" for p, i, _ in SHOWN])
def test_every_pipeline_shown_validates(path: Path, index: int, block: str, tmp_path: Path) -> None:
    pipeline = tmp_path / "pipelines" / "shown.yaml"
    pipeline.parent.mkdir()
    pipeline.write_text(block, encoding="utf-8")
    # A shown `cwd:` is a folder of the reader's project; validate checks that it exists.
    for folder in re.findall(r"^\s*cwd:\s*([\w./-]+)", block, re.MULTILINE):
        (pipeline.parent / folder).mkdir(parents=True, exist_ok=True)
    proc = run_flowctl("validate", str(pipeline), cwd=tmp_path)
    assert proc.returncode == 0, f"{path.name} example {index}:\n{proc.stdout}{proc.stderr}"


_CHANGE_KINDS = ("Added", "Changed", "Deprecated", "Removed", "Fixed", "Security")


def test_changelog_releases_list_each_kind_of_change_once_in_keep_a_changelog_order() -> None:
    """Keep a Changelog: under each release, one ``### Added``, one ``### Fixed``... in that order.

    Merged branches each bring their own subsections; a reader scanning for what was fixed must
    find it in one place."""
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    releases = re.split(r"^## ", text, flags=re.MULTILINE)[1:]
    assert releases, "CHANGELOG.md has no release section"
    for release in releases:
        name = release.splitlines()[0]
        kinds = re.findall(r"^### (.+?)\s*$", release, flags=re.MULTILINE)
        assert all(k in _CHANGE_KINDS for k in kinds), (name, kinds)
        assert len(kinds) == len(set(kinds)), f"{name}: a kind of change appears twice: {kinds}"
        assert kinds == sorted(kinds, key=_CHANGE_KINDS.index), f"{name}: out of order: {kinds}"

"""Golden files for what ``flowctl validate`` prints over the invalid corpus, in every format.

``tests/corpus/invalid/*.expected`` pin the located lines and hints of each file; these pin the
whole output, byte for byte: the source line and the carets under it (text), the annotations
(github), the SARIF log and the JSON report. One ``flowctl validate --format F`` over every
file of the corpus per format. Refresh with ``pytest tests/cli/test_validate_golden.py
--update-golden`` and read the diff: a caret that moved is a bug, not a new golden.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from subprocess import CompletedProcess

import pytest

from flowctl import __version__
from tests.conftest import REPO

Flowctl = Callable[..., CompletedProcess[str]]

INVALID = REPO / "tests" / "corpus" / "invalid"
GOLDEN = REPO / "tests" / "golden" / "validate"
FORMATS = {"text": "txt", "github": "txt", "sarif": "json", "json": "json"}


def _normalised(fmt: str, output: str) -> str:
    """The output with the one part that changes on its own, SARIF's tool version, fixed."""
    if fmt == "sarif":
        output = output.replace(f'"version": "{__version__}"', '"version": "VERSION"')
    return output


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_validate_output_over_the_invalid_corpus_matches_the_golden_file(
    flowctl: Flowctl, fmt: str, update_golden: bool
) -> None:
    files = sorted(p.name for p in INVALID.glob("*.yaml"))
    assert len(files) >= 30, "the corpus went missing: the comparison would check nothing"
    proc = flowctl("validate", "--format", fmt, *files, cwd=INVALID, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # every file is invalid
    assert "Traceback" not in proc.stdout + proc.stderr
    output = _normalised(fmt, proc.stdout)
    golden = GOLDEN / f"{fmt}.{FORMATS[fmt]}"
    if update_golden:
        golden.write_text(output, encoding="utf-8")
    assert output == golden.read_text(encoding="utf-8"), (
        f"flowctl validate --format {fmt} differs from {golden.relative_to(REPO)}; if the change is "
        "intended, run pytest tests/cli/test_validate_golden.py --update-golden and review the diff"
    )


def test_the_text_golden_shows_source_lines_and_carets() -> None:
    """The golden file holds what it is for: a source line with carets under the located column."""
    lines = (GOLDEN / "text.txt").read_text(encoding="utf-8").splitlines()
    pairs = [(a, b) for a, b in itertools.pairwise(lines) if a.startswith("  ") and "| " in a and b.strip().startswith("|")]
    assert len(pairs) >= 30
    for _source, carets in pairs:
        assert set(carets.split("|", 1)[1].strip()) == {"^"}, carets

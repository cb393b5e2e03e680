"""The corpus: every malformed pipeline gives a clear located message, exit 1, no traceback.

``tests/corpus/invalid/NAME.yaml`` holds one bad input each; ``NAME.expected`` holds the lines
of ``flowctl validate NAME.yaml`` that name a location (``NAME.yaml:LINE:COL: ...``) and the
hints under them. Refresh them with ``pytest tests/cli/test_validate_corpus.py --update-golden``
and review the diff by eye: a wrong line number is a bug, not a new golden.
``tests/corpus/valid/*.yaml`` must validate with exit 0, and with ``--strict`` too (no warning
on a good pipeline). ``tests/corpus/warning/NAME.yaml`` holds one file per warning rule case:
exit 0 with the lines of ``NAME.expected``, and exit 1 with the same lines as errors under
``--strict``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest

Flowctl = Callable[..., CompletedProcess[str]]

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
INVALID = sorted((CORPUS / "invalid").glob("*.yaml"))
VALID = sorted((CORPUS / "valid").glob("*.yaml"))
WARNING = sorted((CORPUS / "warning").glob("*.yaml"))

#: Signs that an error escaped the boundary instead of being reported.
CRASH_MARKERS = ("Traceback (most recent call last)", "internal error", "crash report")


def _validate(flowctl: Flowctl, path: Path, *options: str) -> tuple[int, str]:
    """``flowctl validate [OPTIONS] NAME.yaml`` in the file's folder: exit code and output."""
    proc = flowctl("validate", *options, path.name, cwd=path.parent, timeout=60)
    output = proc.stdout + proc.stderr
    for marker in CRASH_MARKERS:
        assert marker not in output, f"{path.name} crashed flowctl:\n{output}"
    return proc.returncode, output


def _check_golden(path: Path, located: list[str], output: str, update_golden: bool) -> None:
    expected_file = path.with_suffix(".expected")
    if update_golden:
        expected_file.write_text("\n".join(located) + "\n", encoding="utf-8")
    expected = expected_file.read_text(encoding="utf-8").splitlines()
    assert located == expected, f"{path.name}: output differs from {expected_file.name}:\n{output}"


def _located_lines(name: str, output: str) -> list[str]:
    """The diagnostic lines of ``output`` (``NAME:LINE:COL: ...``) and their hints."""
    keep = []
    for line in output.splitlines():
        if line.startswith(f"{name}:") or line.lstrip().startswith("hint:"):
            keep.append(line.rstrip())
    return keep


def test_corpus_is_big_enough(update_golden: bool) -> None:
    assert len(INVALID) >= 30, "the foundation issue asks for at least 30 malformed pipelines"
    assert len(VALID) >= 5
    missing = [p.name for p in INVALID if not p.with_suffix(".expected").exists()]
    assert update_golden or not missing, f"no .expected file for {missing}"


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_pipeline_is_reported_with_its_line(
    path: Path, flowctl: Flowctl, update_golden: bool
) -> None:
    code, output = _validate(flowctl, path)
    assert code == 1, f"{path.name}: exit {code}, expected 1\n{output}"
    assert re.search(rf"^{re.escape(path.name)}:\d+:\d+: ", output, re.MULTILINE), (
        f"{path.name}: no FILE:LINE:COL location in the message:\n{output}"
    )
    _check_golden(path, _located_lines(path.name, output), output, update_golden)


@pytest.mark.parametrize("path", VALID, ids=[p.stem for p in VALID])
def test_valid_pipeline_passes(path: Path, flowctl: Flowctl) -> None:
    proc = flowctl("validate", path.name, cwd=path.parent, timeout=60)
    assert proc.returncode == 0, f"{path.name}: exit {proc.returncode}\n{proc.stdout}{proc.stderr}"
    assert "Traceback" not in proc.stdout + proc.stderr
    # The variables the files read are set here, as they would be where they run.
    strict = flowctl("validate", "--strict", path.name, cwd=path.parent, timeout=60, env={"API_TOKEN": "t0ken"})
    assert strict.returncode == 0, f"{path.name} warns:\n{strict.stdout}{strict.stderr}"


def test_warning_corpus_covers_every_rule() -> None:
    from flowctl.spec.rules import RULES, Severity, Stage

    warned = {name for name, rule in RULES.items() if rule.severities.get(Stage.CHECK) is Severity.WARNING}
    text = "".join(p.with_suffix(".expected").read_text(encoding="utf-8") for p in WARNING
                   if p.with_suffix(".expected").exists())
    assert {name for name in warned if f"warning[{name}]" in text} == warned


@pytest.mark.parametrize("path", WARNING, ids=[p.stem for p in WARNING])
def test_warning_is_reported_with_its_rule_and_fails_only_under_strict(
    path: Path, flowctl: Flowctl, update_golden: bool
) -> None:
    code, output = _validate(flowctl, path)
    assert code == 0, f"{path.name}: warnings alone must exit 0, got {code}\n{output}"
    located = _located_lines(path.name, output)
    assert located and all(": warning[" in line for line in located if line.startswith(path.name)), output
    _check_golden(path, located, output, update_golden)
    code, strict = _validate(flowctl, path, "--strict")
    assert code == 1, strict
    as_errors = [line.replace(": warning[", ": error[", 1) for line in located]
    assert _located_lines(path.name, strict) == as_errors


#: Files whose first diagnostic must point inside a multi-line value, at the culprit itself.
EXACT_LOCATIONS = {
    "undefined_param_in_block_scalar": "undefined_param_in_block_scalar.yaml:8:12: ",
    "expression_in_single_quotes_block": "expression_in_single_quotes_block.yaml:9:21: ",
}


@pytest.mark.parametrize("name", list(EXACT_LOCATIONS))
def test_first_diagnostic_points_at_the_culprit(name: str, flowctl: Flowctl) -> None:
    proc = flowctl("validate", f"{name}.yaml", cwd=CORPUS / "invalid")
    located = _located_lines(f"{name}.yaml", proc.stdout + proc.stderr)
    assert located and located[0].startswith(EXACT_LOCATIONS[name]), located

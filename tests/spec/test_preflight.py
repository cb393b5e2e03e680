"""The checks against this machine (spec/preflight.py), pinned as (line, col, code, severity) per
command stage, with the environment and the files given explicitly."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from flowctl.errors import Severity
from flowctl.spec import load_source
from flowctl.spec.preflight import preflight
from flowctl.spec.rules import RULES, Stage
from flowctl.spec.validation import default_params

W, E = Severity.WARNING, Severity.ERROR


def check(tmp_path: Path, body: str, *, stage: Stage = Stage.CHECK, environ: dict[str, str] | None = None,
          selected: list[str] | None = None, params: dict[str, str] | None = None) -> list[tuple[int, int, str, Severity]]:
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\nname: p\n" + textwrap.dedent(body), encoding="utf-8")
    source = load_source(path)
    values = {**default_params(source.pipeline), **(params or {})}
    found = preflight(source.pipeline, source.document, stage=stage, params=values, environ=environ or {},
                      selected=selected)
    return [(d.span.line, d.span.col, d.code, d.severity) for d in found if d.span]


ENV_BODY = """
env: {TOKEN: "${{ env.RAW_TOKEN }}", REGION: "${{ env.REGION }}"}
secret_env: [TOKEN]
steps:
  a:
    run: echo "${{ env.REGION }}" "${{ env.OTHER }}"
"""


@pytest.mark.parametrize(
    ("stage", "expected"),
    [
        (Stage.CHECK, [(4, 15, "unset-secret", W), (4, 47, "unset-env", W), (8, 36, "unset-env", W)]),
        (Stage.RUN, [(4, 15, "unset-secret", E), (4, 47, "unset-env", W), (8, 36, "unset-env", W)]),
        (Stage.INSTALL, [(4, 15, "unset-secret", E), (4, 47, "unset-env", W), (8, 36, "unset-env", W)]),
    ],
)
def test_unset_variables_by_stage(tmp_path: Path, stage: Stage, expected: list[tuple[int, int, str, Severity]]) -> None:
    assert check(tmp_path, ENV_BODY, stage=stage) == expected
    assert check(tmp_path, ENV_BODY, stage=stage, environ={"RAW_TOKEN": "", "REGION": "eu", "OTHER": "x"}) == []


def test_each_unset_variable_is_reported_once_with_its_count(tmp_path: Path) -> None:
    steps = "".join(f"  s{i}: {{run: 'echo ${{{{ env.NOPE }}}}'}}\n" for i in range(5))
    path = tmp_path / "p.yaml"
    assert check(tmp_path, "steps:\n" + steps) == [(4, 19, "unset-env", W)]
    source = load_source(path)
    [diag] = preflight(source.pipeline, source.document, stage=Stage.CHECK, params={}, environ={})
    assert "(and 4 more place(s))" in diag.message


def test_a_secret_name_nothing_declares_must_be_in_the_environment(tmp_path: Path) -> None:
    body = "secret_env: [PASSWORD]\nsteps:\n  a: {run: 'true', secret_env: [KEY]}\n  b: {run: 'true'}\n"
    assert check(tmp_path, body, stage=Stage.RUN) == [(3, 14, "unset-secret", E), (5, 33, "unset-secret", E)]
    assert check(tmp_path, body, stage=Stage.RUN, environ={"PASSWORD": "p", "KEY": "k"}) == []
    assert check(tmp_path, body, stage=Stage.RUN, selected=["b"]) == [(3, 14, "unset-secret", E)]
    # A pipeline-wide secret that one step declares is that step's; the others do not expect it.
    shared = "secret_env: [TOKEN]\nsteps:\n  a: {run: 'true', env: {TOKEN: literal}}\n  b: {run: 'true'}\n"
    assert check(tmp_path, shared, stage=Stage.RUN) == []


def test_missing_cwd_unless_a_step_declares_it(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    body = """
    steps:
      make: {run: mkdir -p out/site, outputs: [out/site/index.html, "dist/*.tar"]}
      a: {run: ls, cwd: out/site}
      b: {run: ls, cwd: out}
      c: {run: ls, cwd: dist}
      d: {run: ls, cwd: nowhere}
      e: {run: ls, cwd: afile}
      f: {run: ls, cwd: "${{ params.where }}"}
    params: {where: {type: string}}
    """
    assert check(tmp_path, body) == [(9, 21, "missing-cwd", E), (10, 21, "missing-cwd", E)]
    assert check(tmp_path, body, params={"where": "gone"}) == [
        (9, 21, "missing-cwd", E), (10, 21, "missing-cwd", E), (11, 21, "missing-cwd", E)]


def test_missing_input_unless_it_exists_or_a_step_declares_it(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "in.csv").write_text("x")
    body = """
    steps:
      extract: {run: x, outputs: [out/raw/orders.json, build/]}
      a: {run: x, inputs: [data/in.csv, "data/*.csv", out/raw/orders.json, out/raw, "out/raw/*.json", build/app.js]}
      b: {run: x, inputs: [data/none.csv, "data/*.json", "elsewhere/**/*.py"]}
    """
    expected_b = [(7, 24, "missing-input"), (7, 39, "missing-input"), (7, 54, "missing-input")]
    assert check(tmp_path, body) == [(*p, W) for p in expected_b]
    assert check(tmp_path, body, stage=Stage.RUN) == [(*p, E) for p in expected_b]
    assert check(tmp_path, body, stage=Stage.RUN, selected=["extract", "a"]) == []
    assert check(tmp_path, body, stage=Stage.INSTALL) == []  # cron runs later: only variables are checked


def test_every_rule_and_code_is_documented() -> None:
    repo = Path(__file__).resolve().parents[2]
    docs = (repo / "docs" / "validation-rules.md").read_text(encoding="utf-8")
    assert [name for name in RULES if f"## `{name}`" not in docs] == []
    codes = {m for path in (repo / "flowctl").rglob("*.py")
             for m in re.findall(r'code="([a-z.-]+)"', path.read_text(encoding="utf-8"))}
    assert len(codes) > 15
    assert sorted(c for c in codes if f"`{c}`" not in docs) == []

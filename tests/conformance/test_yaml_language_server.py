"""yaml-language-server (behind the YAML extensions of VS Code and Neovim) understands our schema.

Driven over stdio LSP by ``node/lsp_check.mjs``, offline: the schema is found only through the
``# yaml-language-server: $schema=...`` modeline (a path relative to the file, or a file:// URI),
with the schema store switched off.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.conformance

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "schemas" / "pipeline.schema.json"
STEP_KEYS = {
    "run",
    "needs",
    "env",
    "retries",
    "timeout",
    "retry_delay",
    "cwd",
    "continue_on_error",
    "remediate",
}

BAD_PIPELINE = """\
# yaml-language-server: $schema={schema}
version: 1
name: demo
steps:
  extract:
    run: echo extract
  load:
    needs: [extract]
    retires: 3
    run: echo load
  report:
    run: echo report
\x20\x20\x20\x20
"""
MISSPELT_LINE = 8  # 0-based, as LSP counts: the `retires:` line
RUN_LINE = 11  # `    run: echo report`
EMPTY_LINE = 12  # the indented blank line inside `report` (four escaped spaces: no trailing blanks)


@pytest.fixture
def lsp(require_tool: Callable[[str], str], node_script: Callable[..., Any]) -> Callable[..., dict[str, Any]]:
    require_tool("yaml-language-server")

    def check(path: Path, *positions: tuple[int, int]) -> dict[str, Any]:
        proc = node_script(
            "lsp_check.mjs", [str(path), *(f"{line}:{col}" for line, col in positions)], cwd=path.parent
        )
        assert proc.returncode == 0, f"LSP exchange failed:\n{proc.stdout}\n{proc.stderr}"
        return json.loads(proc.stdout)

    return check


def project(tmp_path: Path) -> Path:
    """A project folder with the schema in schemas/, as `flowctl init` lays it out."""
    (tmp_path / "schemas").mkdir()
    shutil.copy(SCHEMA, tmp_path / "schemas" / "pipeline.schema.json")
    (tmp_path / "pipelines").mkdir()
    return tmp_path


@pytest.mark.parametrize("modeline", ["relative", "file-uri"])
def test_misspelt_step_key_is_flagged_on_its_line(
    lsp: Callable[..., dict[str, Any]], tmp_path: Path, modeline: str
) -> None:
    root = project(tmp_path)
    schema = root / "schemas" / "pipeline.schema.json"
    ref = "../schemas/pipeline.schema.json" if modeline == "relative" else schema.as_uri()
    path = root / "pipelines" / "demo.yaml"
    path.write_text(BAD_PIPELINE.format(schema=ref), encoding="utf-8")

    result = lsp(path)

    schema_diags = [d for d in result["diagnostics"] if "yaml-schema" in (d["source"] or "")]
    assert schema_diags, f"the schema was not applied: {result}"
    assert [(d["line"], d["col"]) for d in schema_diags] == [(MISSPELT_LINE, 4)], result["diagnostics"]
    assert "retires" in schema_diags[0]["message"]
    assert not any("Unable to load schema" in d["message"] for d in result["diagnostics"])


def test_completion_inside_a_step_offers_the_step_keys(
    lsp: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    root = project(tmp_path)
    path = root / "pipelines" / "demo.yaml"
    path.write_text(BAD_PIPELINE.format(schema="../schemas/pipeline.schema.json"), encoding="utf-8")

    result = lsp(path, (RUN_LINE, 4), (EMPTY_LINE, 4))

    on_run_key = set(result["completions"][f"{RUN_LINE}:4"])
    on_blank = set(result["completions"][f"{EMPTY_LINE}:4"])
    assert "run" in on_run_key, on_run_key
    assert STEP_KEYS - {"run"} <= on_blank, f"missing step keys: {STEP_KEYS - {'run'} - on_blank}"
    assert "version" not in on_blank, "top-level keys offered inside a step: the schema nesting is wrong"


def test_flowctl_init_writes_a_pipeline_the_editor_accepts(
    lsp: Callable[..., dict[str, Any]], flowctl: Callable[..., Any], tmp_path: Path
) -> None:
    proc = flowctl("init", "demo", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    path = tmp_path / "pipelines" / "demo.yaml"
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# yaml-language-server: $schema="), first
    assert (tmp_path / "schemas" / "pipeline.schema.json").is_file()

    result = lsp(path)
    assert result["diagnostics"] == []


def test_example_pipelines_have_no_editor_diagnostics(lsp: Callable[..., dict[str, Any]]) -> None:
    examples = sorted((REPO / "pipelines").glob("*.y*ml"))
    assert len(examples) >= 3, "the foundation issue asks for three example pipelines"
    for path in examples:
        head = path.read_text(encoding="utf-8").splitlines()[0]
        assert head.startswith("# yaml-language-server: $schema="), f"{path.name} has no schema modeline"
        result = lsp(path)
        assert result["diagnostics"] == [], f"{path.name}: {result['diagnostics']}"

"""Conformance fixtures: find the real clients (Graphviz, node tools, check-jsonschema).

The one rule lives in ``require_tool``: a missing tool skips the test with a message saying how
to get it on a developer's machine, but under ``CI=true`` it fails instead, because ``.ci/run``
installs every tool and a conformance gate that skips checks nothing.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import in_ci, tool_missing

HERE = Path(__file__).resolve().parent
NODE_DIR = HERE / "node"
SARIF_SCHEMA = HERE / "sarif-schema-2.1.0.json"

_NPM_HINT = "run `npm ci` in tests/conformance/node"

#: What a test may ask for, and how a developer gets it.
TOOLS: dict[str, str] = {
    "dot": "install Graphviz (`apt-get install graphviz`)",
    "node": "install node 20+",
    "yaml-language-server": _NPM_HINT,
    "mermaid": _NPM_HINT,
    "check-jsonschema": "pip install -e '.[test]'",
}


def _node_package(name: str) -> Path | None:
    if shutil.which("node") is None:
        return None
    manifest = NODE_DIR / "node_modules" / name / "package.json"
    return manifest if manifest.is_file() else None


def locate(name: str) -> str | None:
    """Where tool ``name`` is (an executable, or a node package folder), or None."""
    if name in ("dot", "node"):
        return shutil.which(name)
    if name in ("yaml-language-server", "mermaid"):
        needed = ["jsdom", name] if name == "mermaid" else [name]
        found = [_node_package(pkg) for pkg in needed]
        return str(found[-1].parent) if all(found) else None  # type: ignore[union-attr]
    if name == "check-jsonschema":
        return "check_jsonschema" if importlib.util.find_spec("check_jsonschema") else None
    raise KeyError(f"unknown conformance tool {name!r}; add it to TOOLS")


def require(name: str) -> str:
    """Return where ``name`` is; skip without it, or fail under ``CI=true``."""
    found = locate(name)
    if found is not None:
        return found
    tool_missing(f"{name} is not available: {TOOLS[name]} (.ci/run installs it)")


@pytest.fixture
def require_tool() -> Callable[[str], str]:
    """``require_tool("dot")``: the tool's location; skip (fail under CI=true) when missing."""
    return require


def _run_node_script(
    script: str, args: Sequence[str], *, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    node = require("node")
    return subprocess.run(
        [node, str(NODE_DIR / script), *args],
        cwd=cwd,
        capture_output=True,
        check=False,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def node_script() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``node_script("mermaid_parse.mjs", [file])``: run a harness in tests/conformance/node."""
    return _run_node_script


@pytest.fixture
def mermaid_parse(
    require_tool: Callable[[str], str], tmp_path: Path
) -> Callable[[str], list[dict[str, Any]]]:
    """Parse mermaid text (a bare diagram or markdown with ```mermaid blocks) with the real
    mermaid parser under jsdom; returns one record per diagram: ok, type, error."""
    require_tool("mermaid")

    def parse(text: str) -> list[dict[str, Any]]:
        source = tmp_path / f"diagram-{len(list(tmp_path.glob('diagram-*')))}.md"
        source.write_text(text, encoding="utf-8")
        proc = _run_node_script("mermaid_parse.mjs", [str(source)])
        assert proc.returncode in (0, 1), (
            f"mermaid harness failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}"
        )
        return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]

    return parse


@pytest.fixture
def sarif_schema() -> dict[str, Any]:
    """The official SARIF 2.1.0 schema (see SARIF_SCHEMA_SOURCE.md)."""
    return json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Under CI=true no conformance test may skip, whichever way it tried (belt and braces)."""
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"conformance test skipped under CI=true (not allowed): {report.longrepr}"

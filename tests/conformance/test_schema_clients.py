"""The published JSON Schema is accepted by other validators and matches what ships.

``schemas/pipeline.schema.json`` (for editors and other tools, in the repo) and
``flowctl/schemas/pipeline.schema.json`` (inside the installed package, printed by
``flowctl schema``) must be the same file, and check-jsonschema must accept it as a Draft 2020-12
schema and accept the valid pipelines against it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.conformance

REPO = Path(__file__).resolve().parents[2]
REPO_SCHEMA = REPO / "schemas" / "pipeline.schema.json"
PACKAGE_SCHEMA = REPO / "flowctl" / "schemas" / "pipeline.schema.json"
VALID = sorted((REPO / "tests" / "corpus" / "valid").glob("*.yaml")) + sorted(
    (REPO / "pipelines").glob("*.y*ml")
)


def check_jsonschema(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--no-cache", *args],
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
    )


def test_repo_and_package_schemas_are_identical() -> None:
    assert REPO_SCHEMA.read_bytes() == PACKAGE_SCHEMA.read_bytes(), (
        "schemas/pipeline.schema.json and flowctl/schemas/pipeline.schema.json differ: copy one over the other"
    )


def test_flowctl_schema_prints_the_shipped_schema(flowctl: Callable[..., Any]) -> None:
    proc = flowctl("schema")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == json.loads(PACKAGE_SCHEMA.read_text(encoding="utf-8"))


def test_schema_passes_check_jsonschema_metaschema(require_tool: Callable[[str], str]) -> None:
    require_tool("check-jsonschema")
    schema = json.loads(REPO_SCHEMA.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    proc = check_jsonschema("--check-metaschema", str(REPO_SCHEMA))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok -- validation done" in proc.stdout


def test_valid_pipelines_pass_check_jsonschema(require_tool: Callable[[str], str]) -> None:
    """Another validator (check-jsonschema, YAML read by ruamel) agrees the valid files are valid."""
    require_tool("check-jsonschema")
    assert len(VALID) >= 5
    proc = check_jsonschema("--schemafile", str(REPO_SCHEMA), *map(str, VALID))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _properties(node: Any, where: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        for name, sub in (node.get("properties") or {}).items():
            if isinstance(sub, dict):
                yield f"{where}/properties/{name}", sub
        for key, sub in node.items():
            yield from _properties(sub, f"{where}/{key}")
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            yield from _properties(sub, f"{where}/{i}")


def test_every_property_is_described() -> None:
    """Editors show these descriptions on hover and in completion lists."""
    schema = json.loads(REPO_SCHEMA.read_text(encoding="utf-8"))
    assert schema.get("$id") and schema.get("title") and schema.get("description")
    props = list(_properties(schema))
    assert len(props) > 20
    undescribed = [where for where, sub in props if "$ref" not in sub and not sub.get("description")]
    assert undescribed == []

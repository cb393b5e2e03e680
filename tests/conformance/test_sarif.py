"""``flowctl validate --format sarif`` writes SARIF 2.1.0 that the official schema accepts.

The schema is the OASIS file kept beside this test (see SARIF_SCHEMA_SOURCE.md), checked with
format assertions on (``uri``, ``uri-reference``, ``date-time``), since code-scanning uploads
reject a malformed artifact URI even when the structure is right.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

pytestmark = pytest.mark.conformance

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent / "corpus"
SCHEMA_SHA256 = "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e"


def sarif_errors(log: Any, schema: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(log)]


def test_the_schema_file_is_the_official_one() -> None:
    data = (HERE / "sarif-schema-2.1.0.json").read_bytes()
    assert hashlib.sha256(data).hexdigest() == SCHEMA_SHA256
    schema = json.loads(data)
    assert schema["id"].endswith("/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json")


def test_the_check_rejects_a_bad_log(sarif_schema: dict[str, Any]) -> None:
    """Guard the guard: a wrong version, a bad level and a URI with a space are all caught."""
    bad = {
        "version": "2.0.0",
        "runs": [
            {
                "tool": {"driver": {"name": "x"}},
                "results": [
                    {
                        "message": {"text": "m"},
                        "level": "fatal",
                        "locations": [{"physicalLocation": {"artifactLocation": {"uri": "a b.yaml"}}}],
                    }
                ],
            }
        ],
    }
    errors = sarif_errors(bad, sarif_schema)
    assert any(e.startswith("version") for e in errors)
    assert any("level" in e for e in errors)
    assert any("uri" in e for e in errors), errors


def test_sarif_for_every_invalid_corpus_file_validates(
    flowctl: Callable[..., Any], sarif_schema: dict[str, Any], tmp_path: Path
) -> None:
    # Copy the corpus under a folder with a space and non-ASCII letters: URIs must be encoded.
    folder = tmp_path / "my pipelines é"
    folder.mkdir()
    names = []
    for path in sorted((CORPUS / "invalid").glob("*.yaml")):
        (folder / path.name).write_bytes(path.read_bytes())
        names.append(path.name)

    proc = flowctl("validate", "--format", "sarif", *names, cwd=folder)

    assert proc.returncode == 1, proc.stderr
    log = json.loads(proc.stdout)
    assert sarif_errors(log, sarif_schema) == []
    results = log["runs"][0]["results"]
    assert {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results} == set(names)
    regions = [r["locations"][0]["physicalLocation"].get("region") for r in results]
    assert all(region and region["startLine"] >= 1 and region["startColumn"] >= 1 for region in regions)
    rule_ids = {rule["id"] for rule in log["runs"][0]["tool"]["driver"]["rules"]}
    assert {r["ruleId"] for r in results} <= rule_ids


def test_sarif_with_a_subfolder_path_and_no_findings(
    flowctl: Callable[..., Any], sarif_schema: dict[str, Any], tmp_path: Path
) -> None:
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "ok.yaml").write_bytes((CORPUS / "valid" / "minimal.yaml").read_bytes())
    (tmp_path / "pipelines" / "bad pipe.yaml").write_bytes(
        (CORPUS / "invalid" / "self_need.yaml").read_bytes()
    )

    proc = flowctl("validate", "--format", "sarif", "pipelines/ok.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    clean = json.loads(proc.stdout)
    assert sarif_errors(clean, sarif_schema) == []
    assert clean["runs"][0]["results"] == []

    proc = flowctl(
        "validate", "--format", "sarif", "pipelines/ok.yaml", "pipelines/bad pipe.yaml", cwd=tmp_path
    )
    assert proc.returncode == 1, proc.stderr
    log = json.loads(proc.stdout)
    assert sarif_errors(log, sarif_schema) == []
    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in log["runs"][0]["results"]
    }
    assert uris == {"pipelines/bad%20pipe.yaml"}

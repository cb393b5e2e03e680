"""The compiled validator (jsonschema-rs) and the reference (jsonschema) agree on every input.

``spec.schema`` lets jsonschema-rs decide valid/invalid on the happy path and asks jsonschema only
to explain an invalid document, so a document the fast path waves through that the reference
would reject is a silent hole. Checked on every corpus file and on systematic mutations of the
valid ones (every value replaced by hostile values, every mapping given an unknown key, every
key removed).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowctl.load.yamlsource import parse
from flowctl.spec.schema import is_valid_fast, is_valid_reference

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
FILES = sorted((CORPUS / "invalid").glob("*.yaml")) + sorted((CORPUS / "valid").glob("*.yaml"))

#: Values that probe types, ranges, formats and the edges of number handling.
HOSTILE: tuple[Any, ...] = (
    None,
    True,
    0,
    -1,
    1,
    101,
    1025,
    2**63,
    -(2**63) - 1,
    10**30,
    1.5,
    float("inf"),
    float("nan"),
    "",
    " ",
    "x",
    "5m",
    "1h30m",
    "5x",
    "-5m",
    "@daily",
    "0 2 * * *",
    "Europe/Berlin",
    "${{ params.date }}",
    "ok-id",
    "Bad Id!",
    "ü",
    "a" * 300,
    [],
    ["x"],
    [1],
    [[]],
    {},
    {"run": "echo"},
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _paths(value, (*prefix, i))


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def mutations(data: dict[str, Any]) -> Iterator[tuple[str, Any, Any]]:
    """(description, mutated copy, value put in or None) triples for a valid document."""
    for path in _paths(data):
        if not path:
            continue
        parent_path, last = path[:-1], path[-1]
        for value in HOSTILE:
            mutated = copy.deepcopy(data)
            _get(mutated, parent_path)[last] = value
            yield f"{'.'.join(map(str, path))}={value!r:.20}", mutated, value
        if isinstance(last, str):
            mutated = copy.deepcopy(data)
            del _get(mutated, parent_path)[last]
            yield f"del {'.'.join(map(str, path))}", mutated, None
        target = _get(data, path)
        if isinstance(target, dict):
            mutated = copy.deepcopy(data)
            _get(mutated, path)["retires"] = 3
            yield f"{'.'.join(map(str, path))}+unknown key", mutated, None


def agree(data: Any) -> tuple[bool | None, bool]:
    return is_valid_fast(data), is_valid_reference(data)


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.stem}" for p in FILES])
def test_fast_path_agrees_with_reference_on_corpus(path: Path) -> None:
    doc = parse(path.read_bytes(), path.name)
    if doc.diagnostics:
        # The YAML itself was rejected before any schema check: nothing for the validators to see.
        assert doc.data is None or doc.diagnostics
        return
    fast, reference = agree(doc.data)
    assert fast is None or fast == reference, (
        f"{path.name}: jsonschema-rs says {fast}, jsonschema says {reference}"
    )
    if path.parent.name == "valid":
        assert reference, f"{path.name} is in valid/ but the schema rejects it"


def test_fast_path_decides_most_corpus_files() -> None:
    """Guard the guard: agreement is vacuous if the fast path always declines (returns None)."""
    decided = 0
    for path in FILES:
        doc = parse(path.read_bytes(), path.name)
        if not doc.diagnostics and is_valid_fast(doc.data) is not None:
            decided += 1
    assert decided >= len(FILES) // 2


VALID = sorted((CORPUS / "valid").glob("*.yaml"))


@pytest.mark.parametrize("path", VALID, ids=[p.stem for p in VALID])
def test_fast_path_agrees_with_reference_on_mutations(path: Path) -> None:
    doc = parse(path.read_bytes(), path.name)
    assert not doc.diagnostics and isinstance(doc.data, dict)
    disagreements = []
    checked = 0
    for what, mutated, value in mutations(doc.data):
        fast, reference = agree(mutated)
        checked += 1
        if fast is None or fast == reference:
            continue
        # JSON has no inf/nan: jsonschema-rs rejects them where the schema allows a number and
        # jsonschema accepts them. Harmless: a False from the fast path only sends the document
        # to the reference, which decides. The other direction would let a bad file through.
        if fast is False and isinstance(value, float) and not math.isfinite(value):
            continue
        disagreements.append(f"{what}: jsonschema-rs={fast} jsonschema={reference}")
    assert checked > 50
    assert disagreements == []

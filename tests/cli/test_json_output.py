"""JSON output (``--json``): the fast writer gives exactly what ``json.dumps(..., indent=2)`` of
the plain values would, for any mix of records, mappings, sequences and scalars."""

from __future__ import annotations

import dataclasses
import json
import types

from hypothesis import given, settings
from hypothesis import strategies as st

from flowctl.cli._history import to_jsonable, write_json


@dataclasses.dataclass(frozen=True)
class _Record:
    first: object
    second: object
    _private: int = 0  # not written


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text())
_KEYS = st.one_of(st.text(), st.integers(), st.booleans(), st.none())
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(_KEYS, inner, max_size=5),
        st.dictionaries(st.text(), inner, max_size=3).map(types.MappingProxyType),
        st.builds(_Record, inner, inner),
    ),
    max_leaves=40,
)


@settings(max_examples=400)
@given(_VALUES)
def test_the_text_is_json_dumps_indent_2_of_the_plain_values(value: object) -> None:
    pieces: list[str] = []
    write_json(value, pieces.append)
    assert "".join(pieces) == json.dumps(to_jsonable(value), indent=2, default=str)

"""The one size grammar (``spec/sizes.py``): every size it prints it reads back, units agree
with the schema's pattern, and what is not a whole number of bytes is refused."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowctl.spec.schema import schema
from flowctl.spec.sizes import SCHEMA_PATTERN, UNITS, format_size, parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [("4GiB", 4 << 30), ("256KiB", 256 << 10), ("1.5GB", 1_500_000_000), ("512", 512), ("0", 0),
     (" 2 mib ", 2 << 20), ("4.1GB", 4_100_000_000), ("1.5KiB", 1536), ("3b", 3), ("1TB", 10**12)],
)
def test_sizes_read_as_bytes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["", "GiB", "4 parsecs", "-1", "1.1KiB", "0.1B", "1e3", "4 GiBs", True, -2, 1.5])
def test_what_is_not_a_size_is_refused_with_examples(bad: object) -> None:
    with pytest.raises(ValueError, match=r"size|whole number"):
        parse_size(bad)  # type: ignore[arg-type]


@given(st.integers(min_value=0, max_value=1 << 60))
def test_format_then_parse_is_the_identity(size: int) -> None:
    assert parse_size(format_size(size)) == size


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(sorted(UNITS)), st.booleans())
def test_the_schema_pattern_accepts_exactly_what_parses_whole(number: int, unit: str, upper: bool) -> None:
    text = f"{number}{unit.upper() if upper else unit}"
    assert re.match(SCHEMA_PATTERN, text)
    assert parse_size(text) == number * UNITS[unit]


def test_the_published_schema_uses_the_grammar_s_pattern() -> None:
    resources = schema()["$defs"]["resources"]["additionalProperties"]["anyOf"]
    assert [r.get("pattern") for r in resources if r["type"] == "string"] == [SCHEMA_PATTERN]
    assert json.dumps(SCHEMA_PATTERN)  # representable as JSON as it is

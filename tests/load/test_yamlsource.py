"""The YAML loader: spans, duplicate keys, hostile input."""

from __future__ import annotations

import pytest

from flowctl.load.yamlsource import MAX_EXPANDED_NODES, parse


def codes(raw: bytes) -> list[str]:
    return [d.code for d in parse(raw, "f.yaml").diagnostics]


def test_data_and_spans_come_from_one_parse() -> None:
    doc = parse(b"a: 1\nsteps:\n  x:\n    run: echo hi\n    needs: [y, z]\n", "f.yaml")
    assert doc.data == {"a": 1, "steps": {"x": {"run": "echo hi", "needs": ["y", "z"]}}}
    span = doc.span(["steps", "x", "needs", 1])
    assert (span.line, span.col) == (5, 16)
    key = doc.span(["steps", "x"], key=True)
    assert (key.line, key.col, key.end_col) == (3, 3, 4)


def test_missing_path_points_at_deepest_node() -> None:
    doc = parse(b"steps:\n  x: {run: a}\n", "f.yaml")
    span = doc.span(["steps", "x", "needs"])
    assert span.line == 2


def test_keys_stay_as_written() -> None:
    doc = parse(b"on: yes\n123: x\nnull: 1\n", "f.yaml")
    assert doc.data == {"on": True, "123": "x", "null": 1}


def test_duplicate_key_reports_both_lines() -> None:
    doc = parse(b"a: 1\nb: 2\na: 3\n", "f.yaml")
    [diag] = doc.diagnostics
    assert diag.code == "duplicate-key"
    assert diag.span is not None and diag.span.line == 3
    assert "line 1" in diag.message


def test_python_tags_are_never_constructed() -> None:
    doc = parse(b"a: !!python/object/apply:os.system ['touch /tmp/pwned']\n", "f.yaml")
    assert [d.code for d in doc.diagnostics] == ["tag"]


def test_billion_laughs_is_rejected_quickly() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    doc = parse("\n".join(lines).encode(), "bomb.yaml")
    assert [d.code for d in doc.diagnostics] == ["alias-bomb"]
    assert doc.data is None
    assert MAX_EXPANDED_NODES < 10**10


def test_small_aliases_and_merge_keys_work() -> None:
    doc = parse(b"base: &b {retries: 2, timeout: 5m}\nstep:\n  <<: *b\n  retries: 3\n", "f.yaml")
    assert doc.diagnostics == []
    assert doc.data["step"] == {"retries": 3, "timeout": "5m"}


def test_recursive_alias() -> None:
    assert codes(b"a: &a [1, *a]\n") == ["alias-recursive"]


@pytest.mark.parametrize(
    ("raw", "code", "line"),
    [
        (b"", "empty", 1),
        (b"# only a comment\n\n", "empty", 1),
        (b"\x00\x01\x02binary", "encoding", 1),
        (b"a: 1\nb: \xff\xfe\n", "encoding", 2),
        (b"a:\n\tb: 1\n", "yaml", 2),
        (b"a: [1, 2\n", "yaml", 1),  # reported where the unclosed bracket opens
        (b"a: 1\n---\nb: 2\n", "yaml", 2),
        (b"a: 1\nrun: \"printf x\\033y\"\n", "nul", 2),  # YAML's \0 escape: no command can hold it
    ],
)
def test_bad_input_is_a_positioned_diagnostic(raw: bytes, code: str, line: int) -> None:
    doc = parse(raw, "f.yaml")
    assert [d.code for d in doc.diagnostics] == [code]
    assert doc.diagnostics[0].span is not None and doc.diagnostics[0].span.line == line


def test_tab_indentation_gets_a_hint() -> None:
    [diag] = parse(b"a:\n\tb: 1\n", "f.yaml").diagnostics
    assert diag.hint and "tab" in diag.hint


def test_byte_order_marks() -> None:
    assert parse(b"\xef\xbb\xbfa: 1\n", "f.yaml").data == {"a": 1}
    assert parse("a: 1\n".encode("utf-16"), "f.yaml").data == {"a": 1}


def test_deep_nesting_is_a_diagnostic_not_a_crash() -> None:
    raw = b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n"
    doc = parse(raw, "f.yaml")
    assert doc.data is None or doc.diagnostics == []

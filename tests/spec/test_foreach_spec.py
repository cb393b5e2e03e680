"""``foreach:``: the format, its checks at the right line, and the pure item rules (issue 15)."""

from __future__ import annotations

import random
import textwrap

import pytest

from flowctl.spec import expr, load_pipeline
from flowctl.spec.foreach import ItemFault, canonical, check_items, field_of, item_refs, item_text, key_of
from flowctl.spec.model import Foreach, ItemsKind, ItemsSource
from flowctl.spec.resolve import resolve_step
from tests.spec.test_validation_positions import HEAD, problems


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # duplicate literal keys: at the second item
        ("steps:\n  a:\n    foreach: {items: [x, y, x]}\n    run: echo ${{ item }}\n", [(5, 29, "foreach-duplicate")]),
        ("steps:\n  a:\n    foreach: {items: [{p: 1}, {p: 1, q: 2}], key: '${{ item.p }}'}\n    run: 'true'\n",
         [(5, 31, "foreach-duplicate")]),
        # key / item.field on a literal non-object
        ("steps:\n  a:\n    foreach: {items: [{p: 1}, 7], key: '${{ item.p }}'}\n    run: 'true'\n",
         [(5, 31, "foreach-item-field")]),
        ("steps:\n  a:\n    foreach: {items: [a]}\n    run: echo ${{ item.name }}\n", [(5, 23, "foreach-item-field")]),
        ("steps:\n  a:\n    foreach: {items: [{name: a}, {nam: b}]}\n    run: echo ${{ item.name }}\n",
         [(5, 34, "foreach-item-field")]),
        # an empty foreach, and one with two sources
        ("steps:\n  a:\n    foreach: {}\n    run: 'true'\n", [(5, 5, "foreach-source")]),
        ("steps:\n  a:\n    foreach: {max_concurrent: 2}\n    run: 'true'\n", [(5, 5, "foreach-source")]),
        ("steps:\n  a:\n    foreach: {items: [a], items_from: {glob: '*'}}\n    run: 'true'\n", [(5, 27, "foreach-source")]),
        ("steps:\n  a:\n    foreach: {items_from: {glob: '*', file: f}}\n    run: 'true'\n", [(5, 27, "foreach-source")]),
        ("steps:\n  s: {run: 'true'}\n  a:\n    foreach: {items_from: {step: s}}\n    run: 'true'\n", [(6, 34, "foreach-source")]),
        # items from a step's output: stream only there; never from a foreach step's
        ("steps:\n  a:\n    foreach: {items_from: {file: f, stream: true}}\n    run: 'true'\n", [(5, 37, "foreach-source")]),
        ("steps:\n  s: {foreach: {items: [1]}, run: 'true'}\n  a:\n    needs: [s]\n    foreach: {items_from: {step: s}}\n"
         "    run: 'true'\n", [(7, 34, "foreach-source")]),
        # item.* with batch, batch.* without, item.* outside a foreach step
        ("steps:\n  a:\n    foreach: {items: [a], batch: {size: 2}}\n    run: echo ${{ item }}\n", [(6, 15, "foreach-batch")]),
        ("steps:\n  a:\n    foreach: {items: [a]}\n    run: cat ${{ batch.file }}\n", [(6, 14, "foreach-batch")]),
        ("steps:\n  a: {run: 'echo ${{ item }}'}\n", [(4, 18, "foreach-expression")]),
        ("steps:\n  a:\n    foreach: {items: [a]}\n    run: 'true'\n    outputs: ['${{ item }}.out']\n",
         [(7, 16, "foreach-expression")]),
        # the key and the schema
        ("steps:\n  a:\n    foreach: {items: [a], key: fixed}\n    run: 'true'\n", [(5, 32, "foreach-key")]),
        ("steps:\n  a:\n    foreach: {items: [a], batch: {size: 0}}\n    run: 'true'\n", [(5, 41, "schema.minimum")]),
        ("steps:\n  a:\n    foreach: {items: [a], batch: {size: 2, max_bytes: 1.5B}}\n    run: 'true'\n", [(5, 55, "size")]),
        ("steps:\n  a:\n    foreach: {items: [a], tolerated_failure: {percent: 101}}\n    run: 'true'\n",
         [(5, 56, "schema.maximum")]),
        ("steps:\n  a:\n    foreach: {items: [a], paralel: 3}\n    run: 'true'\n", [(5, 27, "schema.additionalProperties")]),
    ],
)
def test_foreach_errors_at_their_line(body: str, expected: list[tuple[int, int, str]]) -> None:
    assert problems(body) == expected


def test_a_valid_foreach_builds_its_model() -> None:
    text = HEAD + textwrap.dedent("""\
        steps:
          list: {run: 'true'}
          a:
            needs: [list]
            foreach:
              items_from: {file: files.jsonl}
              key: ${{ item.path }}
              max_concurrent: 8
              max_items: 500
              tolerated_failure: {percent: 1}
              fail_fast: true
            run: convert "${{ item.path }}" out/ ${{ item["odd name"] }}
          b:
            foreach: {items_from: {glob: "in/*.csv"}, batch: {size: 50, max_bytes: 256KiB}}
            run: wc -l ${{ batch.file }}
        """)
    p = load_pipeline("p.yaml", text=text.encode())
    fe = p.steps["a"].foreach
    assert fe is not None and fe.source.kind is ItemsKind.FILE and fe.source.path == "files.jsonl"
    assert (fe.key, fe.max_concurrent, fe.max_items, fe.fail_fast) == ("${{ item.path }}", 8, 500, True)
    assert fe.tolerated and fe.tolerated_percent == 1.0 and fe.tolerated_count is None
    b = p.steps["b"].foreach
    assert b is not None and b.batch is not None and (b.batch.size, b.batch.max_bytes) == (50, 256 * 1024)
    assert p.steps["list"].foreach is None
    # item values never reach the shell's parser: the command reads variables
    inv = resolve_step(p, p.steps["a"], {}, {})
    odd = expr.item_var(("odd name",))
    assert inv.argv[2] == f'convert "${{FLOWCTL_ITEM_FIELD_PATH}}" out/ "${{{odd}}}"'
    assert odd.startswith("FLOWCTL_ITEM_FIELD_ODD_NAME_") and odd.isidentifier()


def test_item_expressions_parse() -> None:
    refs = expr.find_refs('${{ item }} ${{ item.a.b }} ${{ item.my-field }} ${{ item["x.y"] }} ${{ batch.size }}')
    assert [(r.source, r.path) for r in refs] == [
        ("item", ()), ("item", ("a", "b")), ("item", ("my-field",)), ("item", ("x.y",)), ("batch", ()),
    ]
    assert [r.var for r in refs][:2] == ["FLOWCTL_ITEM", "FLOWCTL_ITEM_FIELD_A__B"]
    assert refs[4].var == "FLOWCTL_BATCH_SIZE"
    assert expr.item_var(("Path",)) != expr.item_var(("path",))
    with pytest.raises(expr.ExprError):
        expr.find_refs("${{ batch.other }}")


def _foreach(**kw: object) -> Foreach:
    return Foreach(source=ItemsSource(ItemsKind.LITERAL), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "failed", "total", "exceeded"),
    [
        ({}, 0, 10, False),
        ({}, 1, 10, True),  # no tolerated_failure: nothing tolerated
        ({"tolerated": True}, 10, 10, False),  # both limits omitted: unlimited
        ({"tolerated": True, "tolerated_percent": 1.0}, 3, 300, False),  # strictly over
        ({"tolerated": True, "tolerated_percent": 1.0}, 4, 300, True),
        ({"tolerated": True, "tolerated_percent": 1.0}, 3, 1000, False),
        ({"tolerated": True, "tolerated_percent": 0.1}, 3, 1000, True),
        ({"tolerated": True, "tolerated_percent": 0.1}, 1, 1000, False),
        ({"tolerated": True, "tolerated_count": 2}, 3, 10**6, True),
        ({"tolerated": True, "tolerated_count": 2, "tolerated_percent": 50.0}, 2, 3, True),
    ],
)
def test_tolerated_failure_is_strictly_over(kw: dict[str, object], failed: int, total: int, exceeded: bool) -> None:
    assert _foreach(**kw).exceeded(failed, total) is exceeded


def test_a_stream_judges_the_count_as_items_fail_and_the_percentage_at_the_end() -> None:
    both = _foreach(tolerated=True, tolerated_count=5, tolerated_percent=10.0)
    assert both.exceeded(2, 3, partial=True) is False  # 67% so far: more items may come
    assert both.exceeded(2, 3) is True
    assert both.exceeded(6, 1000, partial=True) is True  # the count is judged at once
    assert _foreach().exceeded(1, 1, partial=True) is True  # nothing tolerated


def test_item_rules() -> None:
    assert canonical({"b": 1, "a": "é"}) == '{"a":"é","b":1}'
    assert item_text("x y") == "x y" and item_text(3) == "3" and item_text({"a": [1]}) == '{"a":[1]}'
    assert field_of({"a": {"b": 2}}, ("a", "b")) == 2
    with pytest.raises(LookupError, match="not an object"):
        field_of([1], ("a",))
    fe = _foreach(key="${{ item.id }}-${{ item.v }}")
    assert key_of(fe, {"id": 1, "v": "x"}) == "1-x"
    refs = item_refs(['echo "${{ item.id }}"'], shell=True)
    assert check_items(fe, [{"id": 1, "v": 1}, {"id": 2, "v": 1}], refs) == ["1-1", "2-1"]
    with pytest.raises(ItemFault, match="items 1 and 3 have the same key") as info:
        check_items(fe, [{"id": 1, "v": 1}, {"id": 2, "v": 1}, {"id": 1, "v": 1}], refs)
    assert info.value.index == 2
    with pytest.raises(ItemFault, match="more than max_items"):
        check_items(_foreach(max_items=2), [1, 2, 3], [])


def test_default_keys_are_unique_exactly_when_items_differ() -> None:
    """The default key is the canonical JSON: over generated items, two items share a key only
    when they are equal as JSON values (key order never matters)."""
    rng = random.Random(15)

    def value(depth: int = 0) -> object:
        kind = rng.randrange(5 if depth < 2 else 3)
        if kind == 0:
            return rng.choice(["a", "b", "é", "1", ""])
        if kind == 1:
            return rng.choice([0, 1, 2.5, -3])
        if kind == 2:
            return rng.choice([True, False, None])
        if kind == 3:
            return [value(depth + 1) for _ in range(rng.randrange(3))]
        keys = rng.sample(["x", "y", "z"], rng.randrange(4))
        return {k: value(depth + 1) for k in keys}

    fe = _foreach()
    for _ in range(300):
        a, b = value(), value()
        assert (key_of(fe, a) == key_of(fe, b)) == (canonical(a) == canonical(b))
        if isinstance(a, dict):
            assert key_of(fe, dict(reversed(list(a.items())))) == key_of(fe, a)

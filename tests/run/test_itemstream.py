"""``LineTail`` and ``parse_line``: a producer's output read as it grows (issue 15)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from flowctl.run.itemstream import LineTail, OutputFault, parse_line


def test_lines_come_once_each_whole_and_numbered_however_the_output_is_cut(tmp_path: Path) -> None:
    text = "".join(f'{{"id": {i}}}\n' for i in range(200)) + "\n" + '"last, unfinished"'
    rng = random.Random(15)
    for _ in range(20):
        path = tmp_path / "out" / "stdout.jsonl"
        tail = LineTail(str(path))
        assert tail.read() == []  # not made yet: no lines
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"")
        seen: list[tuple[int, str]] = []
        at = 0
        while at < len(text):
            step = rng.randint(1, 40)
            with path.open("a", encoding="utf-8") as fh:
                fh.write(text[at:at + step])
            at += step
            seen += tail.read()
        assert seen == [(n, line) for n, line in enumerate(text.split("\n")[:-1], 1)]
        assert tail.read(final=True) == [(202, '"last, unfinished"')]
        assert tail.read(final=True) == []
        path.unlink()


def test_a_line_that_is_not_json_or_not_utf8_is_the_producer_s_fault(tmp_path: Path) -> None:
    with pytest.raises(OutputFault, match=r"^the output of step s, line 3: not JSON"):
        parse_line("the output of step s", 3, "{oops")
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "stdout.jsonl").write_bytes(b'"ok"\n\xff\xfe\n')
    with pytest.raises(OutputFault, match=r"^the output of step s, line 2: not UTF-8"):
        LineTail(str(folder / "stdout.jsonl")).read()

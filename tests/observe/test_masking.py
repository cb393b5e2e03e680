"""Secret masking in whole strings and in output that arrives in pieces."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

from flowctl.observe.masking import StreamMasker, mask_text

SECRETS = ("hunter2", "abc", "abcdef", "xyzxy")


def test_mask_text_prefers_the_longest_secret() -> None:
    assert mask_text("pw=abcdef and abc", SECRETS) == "pw=*** and ***"
    assert mask_text("nothing here", ()) == "nothing here"
    assert mask_text("a", ("",)) == "a"


def test_a_secret_split_across_writes_is_never_written() -> None:
    masker = StreamMasker(["s3cr3t-value"])
    out = masker.feed(b"token: s3cr") + masker.feed(b"3t-val") + masker.feed(b"ue\n") + masker.flush()
    assert out == b"token: ***\n"
    # what was already returned never holds a prefix that completes the secret later
    masker = StreamMasker(["s3cr3t-value"])
    assert masker.feed(b"token: s3cr") == b"token: "


def test_held_back_text_that_turns_out_harmless_is_released() -> None:
    masker = StreamMasker(["hunter2"])
    assert masker.feed(b"hunt") == b""
    assert masker.feed(b"ing season") == b"hunting season"
    assert masker.feed(b" hun") == b" "
    assert masker.flush() == b"hun"


def test_random_pieces_match_whole_string_masking() -> None:
    rng = random.Random(7)
    alphabet = "abcdefxyz hunter2\n"
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        text += rng.choice(SECRETS) + text[:5]
        masker = StreamMasker(SECRETS)
        data, out, pos = text.encode(), b"", 0
        while pos < len(data):
            size = rng.randint(1, 6)
            out += masker.feed(data[pos : pos + size])
            pos += size
            assert not any(s.encode() in out for s in SECRETS)
        out += masker.flush()
        assert out == mask_text(text, SECRETS).encode()


def test_killed_writer_leaves_no_secret_on_disk(tmp_path: Path) -> None:
    """A process masking its input into a file is SIGKILLed after half a secret: the file is clean."""
    log = tmp_path / "step.log"
    code = (
        "import os, sys\n"
        "from flowctl.observe.masking import StreamMasker\n"
        "m = StreamMasker([os.environ['SECRET']])\n"
        "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND)\n"
        "while True:\n"
        "    chunk = os.read(0, 5)\n"
        "    if not chunk: break\n"
        "    os.write(fd, m.feed(chunk))\n"
        "    print('fed', flush=True)\n"
    )
    env = dict(os.environ, SECRET="pa55word!", PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(log)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"key=pa55w")
    proc.stdin.flush()
    proc.stdout.readline()
    proc.stdout.readline()  # both 5-byte reads were masked and written
    proc.kill()
    proc.wait()
    assert log.read_bytes() == b"key="

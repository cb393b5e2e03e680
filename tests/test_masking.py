"""Secret masking of streamed output (issue 7: a secret split across two writes is masked)."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from flowctl.masking import MIN_LENGTH, Masker, is_short, mask_text


def _stream(secrets, chunks):
    m = Masker(secrets)
    return b"".join(m.feed(c) for c in chunks) + m.finish()


def test_mask_text_replaces_longest_first():
    assert mask_text("user=abc token=abcdef", ["abc", "abcdef"]) == "user=*** token=***"
    assert mask_text("nothing here", []) == "nothing here"


def test_secret_split_at_every_point_is_masked():
    data = b"before hunter2 middle hunter2 after\n"
    for cut in range(len(data) + 1):
        assert _stream(["hunter2"], [data[:cut], data[cut:]]) == b"before *** middle *** after\n"


def test_byte_by_byte_and_prefix_secrets():
    data = b"xx s3cr3t-long yy s3cr zz"
    out = _stream(["s3cr3t-long", "s3cr"], [bytes([b]) for b in data])
    assert out == b"xx *** yy *** zz"


def test_held_back_prefix_is_released_when_it_turns_out_harmless():
    m = Masker(["password"])
    assert m.feed(b"the pass") == b"the "
    assert m.feed(b"port is") == b"passport is"
    assert m.feed(b" pas") == b" "
    assert m.finish() == b"pas"


def test_no_secrets_is_a_passthrough():
    m = Masker([])
    assert m.feed(b"abc") == b"abc" and m.finish() == b""


# -- short secrets (issue 12): masked only as whole words --------------------------------------





def test_a_short_secret_is_masked_only_as_a_whole_word():
    text = "x marks the spot; box x-ray (x) x_y x9 x"
    assert mask_text(text, ["x"]) == "*** marks the spot; box ***-ray (***) x_y x9 ***"
    assert _stream(["x"], [text.encode()]) == mask_text(text, ["x"]).encode()
    assert mask_text("pin=123 port=1234 a123", ["123"]) == "pin=*** port=1234 a123"
    assert is_short("abc") and not is_short("abcd") and MIN_LENGTH == 4


def test_a_short_secret_at_the_end_waits_for_the_next_byte():
    m = Masker(["ab"])
    assert m.feed(b"key ab") == b"key "  # "ab" may go on as "abc"
    assert m.feed(b"c and ab") == b"abc and "
    assert m.finish() == b"***"  # the end of the output ends the word


def test_a_held_prefix_that_is_a_whole_secret_is_masked_at_the_end():
    """"s3cr" is a secret and the start of a longer one: held back, and at the end of the output
    it is that secret (it used to be released as it was)."""
    m = Masker(["s3cr3t-long", "s3cr"])
    assert m.feed(b"token s3cr") == b"token "
    assert m.finish() == b"***"


WORDS = st.sampled_from(["x", "ab", "abc", "abcd", "s3cr3t", "-", " ", "_", "\n", "é", "xx", "9", "(", ")"])


@settings(max_examples=300, deadline=None)
@given(
    secrets=st.lists(st.sampled_from(["x", "ab", "abc", "s3cr", "s3cr3t", "é"]), min_size=1, max_size=3),
    pieces=st.lists(WORDS, max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=6),
)
def test_streaming_in_any_chunks_masks_exactly_like_mask_text(secrets, pieces, cuts):
    """Whatever the chunking, the stream's output is ``mask_text`` of the whole output."""
    data = "".join(pieces).encode()
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    chunks = [data[a:b] for a, b in itertools.pairwise(bounds)]
    assert _stream(secrets, chunks) == mask_text("".join(pieces), secrets).encode()


# -- terminal control codes (trial of main) ----------------------------------------------------


def test_terminal_safe_shows_control_codes_and_keeps_text_tabs_and_newlines() -> None:
    from flowctl.masking import terminal_safe

    assert terminal_safe("a\x1b]0;owned\x07b\tc\n") == "a\\x1b]0;owned\\x07b\tc\n"
    assert terminal_safe("\x9b2J \x7f") == "\\x9b2J \\x7f"
    assert terminal_safe("plain text, ünïcode ✓") == "plain text, ünïcode ✓"


def test_logs_on_a_terminal_show_control_codes_and_a_pipe_gets_the_bytes(tmp_path) -> None:
    import os
    import pty
    import subprocess
    import sys

    from tests.conftest import flowctl_env, run_flowctl

    (tmp_path / "p.yaml").write_text("version: 1\nname: t\nsteps:\n  a:\n    run: 'printf \"x\\033]0;owned\\007y\"'\n")
    assert run_flowctl("run", "p.yaml", cwd=tmp_path).returncode == 0
    piped = run_flowctl("logs", "latest", "a", cwd=tmp_path)
    assert piped.stdout == "x\x1b]0;owned\x07y"
    main, child = pty.openpty()
    proc = subprocess.run([sys.executable, "-m", "flowctl", "logs", "latest", "a"], cwd=tmp_path,
                          env=flowctl_env(), stdout=child, stderr=subprocess.PIPE, timeout=60)
    os.close(child)
    out = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the other end is closed: all is read
            break
        if not chunk:
            break
        out += chunk
    os.close(main)
    assert proc.returncode == 0
    assert b"x\\x1b]0;owned\\x07y" in out and b"\x1b]0;" not in out


def test_run_output_on_a_terminal_shows_control_codes_and_a_pipe_keeps_them() -> None:
    import io

    from flowctl.observe.plain import PlainSink
    from flowctl.run.events import OutputLine, RunId

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    line = OutputLine(RunId("r"), "a", 1, "x\x1b]0;owned\x07y", 1764036003.0)
    tty, pipe = Terminal(), io.StringIO()
    PlainSink(tty)(line)
    PlainSink(pipe)(line)
    assert "a | x\\x1b]0;owned\\x07y" in tty.getvalue() and "\x1b" not in tty.getvalue()
    assert "a | x\x1b]0;owned\x07y" in pipe.getvalue()

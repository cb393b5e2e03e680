"""Secret masking of streamed output (issue 7: a secret split across two writes is masked)."""

from __future__ import annotations

from flowctl.run.masking import Masker, mask_text


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

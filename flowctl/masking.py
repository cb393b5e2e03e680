"""Masking secret values: in a byte stream before it reaches disk or the screen, and in text.

The one masker of flowctl (STYLE: one implementation per algorithm), shared by ``spec.resolve``
(the command shown by ``--dry-run`` and recorded with each attempt) and the runner (step
output); pure, so both stages may import it.

``Masker`` replaces every occurrence of a secret with ``***`` in output that arrives in
arbitrary chunks: it holds back the longest tail of the data seen so far that could still be
the start of a secret, so a secret split across two writes is masked too (issue 7). It never
holds back more than the longest secret minus one byte (plus, for a short secret at the very
end, the secret itself until the next byte says whether a word goes on). ``mask_text`` does the
same for a complete string.

A value shorter than ``MIN_LENGTH`` (4) characters cannot be masked inside running text: a
secret ``x`` would turn every ``x`` of the output into ``***`` and make the output useless,
while telling anyone who reads it what the secret is. Such a value is masked only where it
stands as a whole word, between characters that are not ASCII letters, digits or ``_`` (issue
12), and ``short_secret_names`` lets ``flowctl run`` warn about it once, by name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"
MIN_LENGTH = 4  # shorter secret values are masked only as whole words
_MASK_BYTES = MASK.encode()
# What continues a word around a short secret. ASCII only: any other character (a non-ASCII
# byte included) counts as a boundary, so a short secret is masked when in doubt.
_WORD = "A-Za-z0-9_"


def _usable(secrets: Iterable[str]) -> list[str]:
    # Longest first, so a secret containing another is replaced whole.
    return sorted({s for s in secrets if s}, key=len, reverse=True)


def is_short(secret: str) -> bool:
    """Whether ``secret`` is masked only as a whole word (see the module docstring)."""
    return len(secret) < MIN_LENGTH


def _alternatives(secrets: list[str]) -> list[str]:
    return [
        f"(?<![{_WORD}]){re.escape(s)}(?![{_WORD}])" if is_short(s) else re.escape(s) for s in secrets
    ]


def mask_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value replaced by ``***`` (short ones as whole words only)."""
    usable = _usable(secrets)
    if not usable:
        return text
    return re.sub("|".join(_alternatives(usable)), MASK, text)


class Masker:
    """Streaming masker: ``feed`` chunks, write what it returns, ``finish`` at the end."""

    __slots__ = ("_before", "_held", "_longest", "_pattern", "_prefixes", "_short")

    def __init__(self, secrets: Iterable[str]) -> None:
        usable = _usable(secrets)
        values = [s.encode() for s in usable]
        alternatives = [a.encode() for a in _alternatives(usable)]
        self._pattern = re.compile(b"|".join(alternatives)) if values else None
        self._short = frozenset(s.encode() for s in usable if is_short(s))
        # Every proper prefix of every secret, to know how much of a tail to hold back.
        self._prefixes = frozenset(v[:i] for v in values for i in range(1, len(v)))
        self._longest = max((len(v) for v in values), default=0)
        self._held = b""
        self._before = b""  # the last byte released: whether a short secret after it starts a word

    def feed(self, data: bytes) -> bytes:
        """Masked bytes that are safe to release now."""
        if self._pattern is None:
            return data
        before = self._before
        buf = before + self._held + data
        start = len(before)
        out: list[bytes] = []
        pos = start
        hold = -1
        for m in self._pattern.finditer(buf, start):
            at = m.start()
            # "s3cr" may be a secret and also the start of "s3cr3t-long": wait for more data.
            if len(buf) - at < self._longest and buf[at:] in self._prefixes:
                hold = at
                break
            # A short secret at the very end: the next byte may continue the word.
            if m.end() == len(buf) and m.group() in self._short:
                hold = at
                break
            out.append(buf[pos:at])
            out.append(_MASK_BYTES)
            pos = m.end()
        if hold < 0:
            hold = len(buf) - self._unfinished(buf, pos)
        out.append(buf[pos:hold])
        self._held = buf[hold:]
        self._before = buf[hold - 1 : hold] if hold > 0 else b""
        return b"".join(out)

    def _unfinished(self, buf: bytes, start: int) -> int:
        """Length of the longest tail of ``buf[start:]`` that could still become a secret."""
        for size in range(min(self._longest - 1, len(buf) - start), 0, -1):
            if buf[-size:] in self._prefixes:
                return size
        return 0

    def finish(self) -> bytes:
        """Release what was held back, masked as the end of the output (a secret that was
        waiting to see what follows it is complete now)."""
        held, self._held = self._held, b""
        if self._pattern is None or not held:
            return held
        before, self._before = self._before, b""
        buf = before + held
        out: list[bytes] = []
        pos = len(before)
        for m in self._pattern.finditer(buf, pos):
            out += [buf[pos : m.start()], _MASK_BYTES]
            pos = m.end()
        out.append(buf[pos:])
        return b"".join(out)


def short_secret_names(secrets: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    """The names, sorted, of the (name, value) secrets masked only as whole words."""
    return tuple(sorted({name for name, value in secrets if value and is_short(value)}))


#: Control characters a terminal acts on (ESC sequences retitle it or move the cursor, BEL rings):
#: every C0 character but tab and newline, DEL, and the C1 range.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_safe(text: str) -> str:
    """``text`` with the control characters a terminal would act on shown as ``\\xNN``: a step's
    output printed to a terminal can neither retitle it nor move its cursor (log files stay
    byte for byte what the step wrote)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text) if _CONTROL.search(text) else text


__all__ = ["MASK", "MIN_LENGTH", "Masker", "is_short", "mask_text", "short_secret_names", "terminal_safe"]

"""Masking secret values in a byte stream before it reaches disk or the screen.

``Masker`` replaces every occurrence of a secret with ``***`` in output that arrives in
arbitrary chunks: it holds back the longest tail of the data seen so far that could still be
the start of a secret, so a secret split across two writes is masked too (issue 7). It never
holds back more than the longest secret minus one byte. ``mask_text`` does the same for a
complete string (commands shown by ``--dry-run`` and in events).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"
_MASK_BYTES = MASK.encode()


def _usable(secrets: Iterable[str]) -> list[str]:
    # Longest first, so a secret containing another is replaced whole.
    return sorted({s for s in secrets if s}, key=len, reverse=True)


def mask_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value replaced by ``***``."""
    for secret in _usable(secrets):
        text = text.replace(secret, MASK)
    return text


class Masker:
    """Streaming masker: ``feed`` chunks, write what it returns, ``finish`` at the end."""

    __slots__ = ("_pattern", "_prefixes", "_held", "_longest")

    def __init__(self, secrets: Iterable[str]) -> None:
        values = [s.encode() for s in _usable(secrets)]
        self._pattern = re.compile(b"|".join(re.escape(v) for v in values)) if values else None
        # Every proper prefix of every secret, to know how much of a tail to hold back.
        self._prefixes = frozenset(v[:i] for v in values for i in range(1, len(v)))
        self._longest = max((len(v) for v in values), default=0)
        self._held = b""

    def feed(self, data: bytes) -> bytes:
        """Masked bytes that are safe to release now."""
        if self._pattern is None:
            return data
        buf = self._held + data
        out: list[bytes] = []
        pos = 0
        hold = -1
        for m in self._pattern.finditer(buf):
            start = m.start()
            # "s3cr" may be a secret and also the start of "s3cr3t-long": wait for more data.
            if len(buf) - start < self._longest and buf[start:] in self._prefixes:
                hold = start
                break
            out.append(buf[pos:start])
            out.append(_MASK_BYTES)
            pos = m.end()
        if hold < 0:
            hold = len(buf) - self._unfinished(buf, pos)
        out.append(buf[pos:hold])
        self._held = buf[hold:]
        return b"".join(out)

    def _unfinished(self, buf: bytes, start: int) -> int:
        """Length of the longest tail of ``buf[start:]`` that could still become a secret."""
        for size in range(min(self._longest - 1, len(buf) - start), 0, -1):
            if buf[-size:] in self._prefixes:
                return size
        return 0

    def finish(self) -> bytes:
        """Release what was held back (it cannot become a secret any more)."""
        held, self._held = self._held, b""
        return held


__all__ = ["MASK", "Masker", "mask_text"]

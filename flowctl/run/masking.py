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
        data = self._pattern.sub(MASK.encode(), self._held + data)
        keep = 0
        for size in range(min(self._longest - 1, len(data)), 0, -1):
            if data[-size:] in self._prefixes:
                keep = size
                break
        if keep:
            self._held = data[-keep:]
            return data[:-keep]
        self._held = b""
        return data

    def finish(self) -> bytes:
        """Release what was held back (it cannot become a secret any more)."""
        held, self._held = self._held, b""
        return held


__all__ = ["MASK", "Masker", "mask_text"]

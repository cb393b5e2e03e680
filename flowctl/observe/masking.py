"""Masking secret values as ``***``, in whole strings and in streams written piece by piece.

``mask_text`` masks a complete string (a command for ``--dry-run``/``plan``, an error message, a
value before it goes into the state store). ``StreamMasker`` masks output as it arrives: it
holds back the shortest tail that could still be the start of a secret, so a secret split
across two writes is caught, and what it has returned never contains a secret, even if the run
is killed before ``flush``. It works on bytes (pipes) and is standard-library only, so the
executor can use it without pulling anything else in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"


def _clean(secrets: Iterable[str | bytes]) -> list[bytes]:
    values = {s.encode() if isinstance(s, str) else bytes(s) for s in secrets}
    # Longest first, so a secret that contains another is masked whole.
    return sorted((v for v in values if v), key=lambda v: (-len(v), v))


def _pattern(values: list[bytes]) -> re.Pattern[bytes] | None:
    if not values:
        return None
    return re.compile(b"|".join(re.escape(v) for v in values))


def mask_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of every (non-empty) secret replaced by ``***``."""
    values = sorted({s for s in secrets if s}, key=lambda v: (-len(v), v))
    if not values or not text:
        return text
    return re.sub("|".join(re.escape(v) for v in values), MASK, text)


class StreamMasker:
    """Mask secrets in a byte stream fed in arbitrary pieces.

    ``feed`` returns the bytes that are safe to write now; ``flush`` returns the rest at the
    end of the stream. Memory held back is below the longest secret's length.
    """

    def __init__(self, secrets: Iterable[str | bytes], mask: bytes = MASK.encode()) -> None:
        self._values = _clean(secrets)
        self._pattern = _pattern(self._values)
        self._mask = mask
        self._pending = b""

    @property
    def active(self) -> bool:
        return self._pattern is not None

    def _held(self, data: bytes) -> int:
        """Where the longest tail of ``data`` that is a proper prefix of a secret starts."""
        cut = len(data)
        for value in self._values:
            for size in range(min(len(value) - 1, len(data)), 0, -1):
                if len(data) - size >= cut:
                    break  # cannot start earlier than what is already held
                if data.endswith(value[:size]):
                    cut = len(data) - size
                    break
        return cut

    def feed(self, chunk: bytes) -> bytes:
        """Take the next piece of output; return what can be written without leaking."""
        if self._pattern is None:
            return chunk
        data = self._pending + chunk
        cut = self._held(data)
        matches = list(self._pattern.finditer(data))
        for m in matches:
            # A match reaching into the held tail may still grow into a longer secret.
            if m.end() > cut:
                cut = min(cut, m.start())
        out = []
        pos = 0
        for m in matches:
            if m.end() > cut:
                break
            out.append(data[pos : m.start()])
            out.append(self._mask)
            pos = m.end()
        out.append(data[pos:cut])
        self._pending = data[cut:]
        return b"".join(out)

    def flush(self) -> bytes:
        """The end of the stream: mask and return whatever was held back."""
        data, self._pending = self._pending, b""
        if self._pattern is None or not data:
            return data
        return self._pattern.sub(self._mask, data)


__all__ = ["MASK", "StreamMasker", "mask_text"]

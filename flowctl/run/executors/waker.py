"""The self-pipe an executor's ``wait`` sleeps on: ``wake`` (safe in a signal handler or from
another thread) makes it return. Shared by the executors; each owns one and closes it."""

from __future__ import annotations

import os


class Waker:
    """A non-blocking pipe: poll ``fd`` for reading, ``wake`` it, ``drain`` it after waking."""

    __slots__ = ("_write", "fd")

    def __init__(self) -> None:
        self.fd, self._write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def wake(self) -> None:
        try:
            os.write(self._write, b"\0")
        except OSError:  # full (a wake-up is pending anyway) or closed
            pass

    def drain(self) -> None:
        try:
            while os.read(self.fd, 4096):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        os.close(self.fd)
        os.close(self._write)


__all__ = ["Waker"]

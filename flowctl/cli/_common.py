"""Options and helpers shared by the command modules: output format, consoles, loading.

Import-light (typer and the standard library at the top) so ``flowctl --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TextIO, cast

import typer

from flowctl.errors import StorageError, UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from flowctl.spec.model import Pipeline

FORMAT_HELP = "Output format."
JSON_HELP = "Shorthand for --format json."


def json_option() -> Any:
    return typer.Option(False, "--json", help=JSON_HELP)


def metrics_file_option() -> Any:
    """``--metrics-file PATH`` of a command that runs a pipeline (``run``, ``dlq replay``)."""
    return typer.Option(None, "--metrics-file", metavar="PATH",
                        help="Write the run's Prometheus metrics to PATH (for node_exporter).")


def pushgateway_option() -> Any:
    """``--pushgateway URL`` of a command that runs a pipeline (``run``, ``dlq replay``)."""
    return typer.Option(None, "--pushgateway", metavar="URL",
                        help="Push the run's Prometheus metrics to this Pushgateway.")


def pick_format(fmt: str, as_json: bool, allowed: tuple[str, ...]) -> str:
    """The effective format: ``--json`` wins; anything not in ``allowed`` is a usage error."""
    chosen = "json" if as_json else fmt
    if chosen not in allowed:
        raise UsageError(f"--format {chosen!r} is not one of: {', '.join(allowed)}")
    return chosen


def no_color() -> bool:
    return "NO_COLOR" in os.environ and os.environ["NO_COLOR"] != ""


def stdout_is_tty() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def silence_stdout() -> None:
    """Whoever read stdout went away (``flowctl run … | head -1``): send what is still to come,
    and what is still buffered, to /dev/null, so the command ends with its own exit code and
    no "Broken pipe" noise (a later flush, Python's at exit included, then succeeds)."""
    _silence(sys.stdout)


def _silence(stream: Any) -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


class _ReaderSafe:
    """``sys.stdout`` or ``sys.stderr`` (or its ``buffer``) for the length of a command: a write or
    flush that finds the reader gone sends the stream to /dev/null and carries on, so every
    command ends with its own exit code whether the reader left before, during or after its
    output (``flowctl validate | head -1`` under ``pipefail`` is a CI gate: a 1 there means "a
    file is invalid"). Everything else is the wrapped stream's."""

    def __init__(self, stream: Any, owner: Any = None, name: str = "stdout") -> None:
        self._stream = stream
        self._owner = stream if owner is None else owner  # the text stream whose fd is silenced
        self._name = name

    def write(self, data: Any) -> int:
        try:
            return int(self._stream.write(data))
        except BrokenPipeError:
            _silence(self._owner)
            return len(data)
        except OSError as exc:
            raise self._failed(exc) from None

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            _silence(self._owner)
            with contextlib.suppress(OSError, ValueError):
                self._stream.flush()  # what was still buffered goes to /dev/null now
        except OSError as exc:
            raise self._failed(exc) from None

    def _failed(self, exc: OSError) -> StorageError:
        """A write that failed for another reason (a full disk, ``> /dev/full``, an I/O error): a
        storage error, exit 74, said once (trial 17: an internal error with a crash report). The
        stream goes to /dev/null, so what follows, the final flush included, does not fail again."""
        _silence(self._owner)
        with contextlib.suppress(OSError, ValueError):
            self._stream.flush()
        name = self._name
        return StorageError(f"cannot write the output ({name}): {exc.strerror or exc}",
                            hint=f"free space on the device {name} goes to, or send {name} elsewhere")

    @property
    def buffer(self) -> _ReaderSafe:
        return _ReaderSafe(self._stream.buffer, self._owner, self._name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def reader_safe_output() -> Iterator[None]:
    """For the length of a command (``cli/_boundary.run_app``): stdout and stderr whose reader
    may go away at any time, the one rule for ``| head`` (``silence_stdout``'s, for every
    command); flushed before the exit code is returned, since a flush at interpreter exit that
    fails turns any exit code into 1."""
    real_out, real_err = sys.stdout, sys.stderr
    safe_out, safe_err = cast("TextIO", _ReaderSafe(real_out)), cast("TextIO", _ReaderSafe(real_err, name="stderr"))
    sys.stdout, sys.stderr = safe_out, safe_err
    try:
        yield
    finally:
        safe_out.flush()
        safe_err.flush()
        if sys.stdout is safe_out:
            sys.stdout = real_out
        if sys.stderr is safe_err:
            sys.stderr = real_err


def warn(text: str) -> None:
    """``flowctl: warning: TEXT`` on stderr; dropped when nobody reads stderr any more."""
    try:
        print(f"flowctl: warning: {text}", file=sys.stderr)
    except BrokenPipeError:
        pass


def console(*, stderr: bool = False) -> Console:
    """A rich console honouring NO_COLOR; plain (no codes) when not a terminal."""
    from rich.console import Console

    return Console(stderr=stderr, no_color=no_color(), highlight=False, soft_wrap=False)


def load(path: str) -> Pipeline:
    """Load a pipeline for a command that needs a valid one (invalid → PipelineError, exit 2)."""
    from flowctl.spec import load_pipeline

    return load_pipeline(path)


def param_option() -> Any:
    return typer.Option([], "--param", "-p", metavar="NAME=VALUE", help="Set a parameter (repeatable).")


__all__ = [
    "console",
    "json_option",
    "load",
    "metrics_file_option",
    "no_color",
    "param_option",
    "pick_format",
    "pushgateway_option",
    "reader_safe_output",
    "silence_stdout",
    "stdout_is_tty",
    "warn",
]

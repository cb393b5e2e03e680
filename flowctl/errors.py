"""The ``FlowctlError`` tree, source spans, diagnostics and the exit-code table.

Every user-facing failure is a ``FlowctlError`` carrying an exit code; errors about a file carry
``Diagnostic``s with a ``Span``. Nothing here renders: ``cli/_boundary.py`` turns errors into
text, JSON, SARIF or GitHub annotations.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field


class ExitCode(enum.IntEnum):
    """One table for every command (documented in ``flowctl --help`` and the README)."""

    OK = 0
    FAILED = 1  # what was checked failed: a step, an invalid file, changes under --exit-code
    USAGE = 2  # usage error, or an invalid pipeline given to a command that needs a valid one
    INTERNAL = 70  # a bug in flowctl: a crash report is written
    STORAGE = 74  # the state or log storage failed: disk full, state deleted or replaced, not writable
    LOCKED = 75  # another run of the same pipeline holds the lock
    INTERRUPTED = 130  # SIGINT / SIGTERM


EXIT_CODE_TABLE: tuple[tuple[int, str], ...] = (
    (ExitCode.OK, "success"),
    (ExitCode.FAILED, "what was checked failed (a step, an invalid file, changes with --exit-code)"),
    (ExitCode.USAGE, "usage error, or an invalid pipeline where a valid one is needed"),
    (ExitCode.INTERNAL, "internal error (a crash report path is printed)"),
    (ExitCode.STORAGE, "the state or log storage failed (disk full, state deleted or replaced, not writable)"),
    (ExitCode.LOCKED, "another run of the same pipeline holds the lock"),
    (ExitCode.INTERRUPTED, "interrupted (Ctrl-C / SIGTERM)"),
)


@dataclass(frozen=True, slots=True)
class Span:
    """A region of a source file; lines and columns are 1-based, ``end_*`` exclusive-ish."""

    file: str
    line: int
    col: int
    end_line: int = 0
    end_col: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem in a file: where, what, and what to do about it."""

    span: Span | None
    message: str
    hint: str | None = None
    code: str = "invalid"
    path: str = ""  # dotted path inside the document, e.g. ``steps.load.retries``
    severity: Severity = Severity.ERROR


@dataclass(frozen=True, slots=True)
class Findings:
    """Diagnostics about one file that do not stop anything (warnings), with the file's text
    for showing source lines; a ``PipelineError`` carries the same three things."""

    file: str
    diagnostics: tuple[Diagnostic, ...]
    sources: Mapping[str, str] = field(default_factory=dict)


class FlowctlError(Exception):
    """Base of every error flowctl reports to a user."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(FlowctlError):
    """Wrong options or arguments: exit 2."""

    exit_code = ExitCode.USAGE


class PipelineError(FlowctlError):
    """A pipeline file is unusable; holds every diagnostic found (collect all, raise once)."""

    exit_code = ExitCode.USAGE

    def __init__(self, file: str, diagnostics: list[Diagnostic] | tuple[Diagnostic, ...],
                 sources: Mapping[str, str] | None = None) -> None:
        self.file = file
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        self.sources: Mapping[str, str] = dict(sources or {})  # file → text, for source lines
        first = self.diagnostics[0] if self.diagnostics else None
        summary = first.message if first else "invalid pipeline"
        super().__init__(f"{file}: {summary}")

    def with_source(self, file: str, text: str) -> PipelineError:
        """The same error, also holding ``file``'s text (for its source lines) unless it has it."""
        return PipelineError(self.file, self.diagnostics, {file: text, **self.sources})


class GitError(FlowctlError):
    """Not a git repository, unknown ref, no release tags, dirty tree where a clean one is needed."""

    exit_code = ExitCode.USAGE


class StateError(FlowctlError):
    """The state is unusable: a database that is corrupt, empty, foreign or unreadable, a
    missing or damaged fingerprint key, a state folder that cannot be made. Exit 74 (the state
    storage failed), except where the state is fine and the command is not (``usage=True``,
    exit 2: a database written by a newer flowctl, a folder that holds no state at all)."""

    exit_code = ExitCode.STORAGE

    def __init__(self, message: str, *, hint: str | None = None, usage: bool = False) -> None:
        super().__init__(message, hint=hint)
        if usage:
            self.exit_code = ExitCode.USAGE


class StorageError(StateError):
    """Writing the state or the logs failed: disk full, the database or lock file deleted or
    replaced under a run, a folder that is not writable. Exit 74 (sysexits ``EX_IOERR``)."""

    exit_code = ExitCode.STORAGE


class LockedError(FlowctlError):
    """Another run of the same pipeline and state folder holds the lock."""

    exit_code = ExitCode.LOCKED


class InterruptedRun(FlowctlError):
    """The run was interrupted by SIGINT/SIGTERM."""

    exit_code = ExitCode.INTERRUPTED


__all__ = [
    "EXIT_CODE_TABLE",
    "Diagnostic",
    "ExitCode",
    "Findings",
    "FlowctlError",
    "GitError",
    "InterruptedRun",
    "LockedError",
    "PipelineError",
    "Severity",
    "Span",
    "StateError",
    "StorageError",
    "UsageError",
]

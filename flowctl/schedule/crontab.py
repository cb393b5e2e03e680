"""The flowctl block in a crontab, and the places a crontab lives.

Owns the text of the block (one comment line with the entry's facts in JSON, then the cron line,
per pipeline, between ``# BEGIN flowctl schedule`` and ``# END flowctl schedule``), replacing and
removing it while every line outside it stays byte for byte, and the three targets: the user's
crontab through the ``crontab`` program (``crontab -l`` / ``crontab -``), a file in user-crontab
format, and an ``/etc/cron.d`` style file (with a user column, a name cron accepts, mode 0644).
What goes on each line is decided in ``schedule/install.py``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from flowctl.errors import ExitCode, FlowctlError, UsageError

BEGIN = "# BEGIN flowctl schedule"
END = "# END flowctl schedule"
_BEGIN_LINE = f"{BEGIN} (managed by `flowctl schedule install`; edit the pipelines, not this block)"
_META = "# flowctl-entry: "
#: The file names cron reads in /etc/cron.d (run-parts rules: no dots, no "~").
CRON_D_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


class CrontabError(FlowctlError):
    """``crontab`` is missing or failed, or the block in a crontab is damaged: exit 2."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True, slots=True)
class Entry:
    """One pipeline's line in the block, with what ``schedule list`` needs to read back."""

    pipeline: str  # absolute path of the pipeline file
    name: str
    schedule: str  # as the pipeline wrote it
    timezone: str | None
    installed_at: datetime  # aware, UTC: missed-run detection starts here
    fields: str  # the cron fields on the line (wider than ``schedule`` when guarded)
    command: str  # the shell command, escaped for cron
    user: str | None = None  # cron.d: the user column
    ref: str | None = None
    guarded: bool = False
    log_file: str = ""
    state_dir: str = ""

    def meta(self) -> dict[str, object]:
        return {
            "pipeline": self.pipeline,
            "name": self.name,
            "schedule": self.schedule,
            "timezone": self.timezone,
            "installed_at": self.installed_at.isoformat(),
            "ref": self.ref,
            "guarded": self.guarded,
            "log": self.log_file,
            "state_dir": self.state_dir,
            "user": self.user,
        }

    def line(self) -> str:
        user = f" {self.user}" if self.user else ""
        return f"{self.fields}{user} {self.command}"


def render_block(entries: Sequence[Entry]) -> str:
    """The block for ``entries``, ending with a newline."""
    lines = [_BEGIN_LINE]
    for entry in entries:
        lines.append(_META + json.dumps(entry.meta(), sort_keys=True))
        lines.append(entry.line())
    lines.append(END)
    return "\n".join(lines) + "\n"


def _span(text: str, where: str) -> tuple[list[str], int, int] | None:
    """The lines of ``text`` and the indexes of the block's BEGIN and END lines."""
    lines = text.splitlines(keepends=True)
    begins = [i for i, line in enumerate(lines) if line.startswith(BEGIN)]
    ends = [i for i, line in enumerate(lines) if line.rstrip("\r\n") == END]
    if not begins and not ends:
        return None
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        raise CrontabError(
            f"the flowctl block in {where} is damaged ({len(begins)} BEGIN and {len(ends)} END lines)",
            hint=f"edit {where} so it holds at most one '{BEGIN}' … '{END}' pair, then run again",
        )
    return lines, begins[0], ends[0]


def read_entries(text: str, where: str = "the crontab") -> tuple[Entry, ...]:
    """The entries of the block in ``text`` (none when there is no block)."""
    span = _span(text, where)
    if span is None:
        return ()
    lines, begin, end = span
    out: list[Entry] = []
    body = [line.rstrip("\r\n") for line in lines[begin + 1 : end]]
    for index, line in enumerate(body):
        if not line.startswith(_META) or index + 1 >= len(body):
            continue
        try:
            meta = json.loads(line[len(_META) :])
            installed = datetime.fromisoformat(str(meta["installed_at"]))
        except (ValueError, KeyError, TypeError):
            continue  # a hand-edited comment: ignore rather than guess
        user = meta.get("user") or None
        fields, command = _split_line(body[index + 1], user)
        out.append(
            Entry(
                pipeline=str(meta.get("pipeline", "")),
                name=str(meta.get("name", "")),
                schedule=str(meta.get("schedule", "")),
                timezone=meta.get("timezone"),
                installed_at=installed,
                fields=fields,
                command=command,
                user=user,
                ref=meta.get("ref"),
                guarded=bool(meta.get("guarded", False)),
                log_file=str(meta.get("log") or ""),
                state_dir=str(meta.get("state_dir") or ""),
            )
        )
    return tuple(out)


def _split_line(line: str, user: str | None) -> tuple[str, str]:
    """A cron line's time fields and its command (after the user column, if any)."""
    count = (1 if line.startswith("@") else 5) + (1 if user else 0)
    parts = line.split(None, count)
    if len(parts) <= count:
        return line, ""
    time_parts = parts[: count - 1] if user else parts[:count]
    return " ".join(time_parts), parts[count]


def replace_block(text: str, block: str, where: str = "the crontab") -> str:
    """``text`` with its block replaced by ``block`` (appended when there is none)."""
    span = _span(text, where)
    if span is None:
        if text and not text.endswith("\n"):
            text += "\n"
        return text + block
    lines, begin, end = span
    return "".join(lines[:begin]) + block + "".join(lines[end + 1 :])


def remove_block(text: str, where: str = "the crontab") -> str:
    """``text`` without the block; unchanged when there is none."""
    span = _span(text, where)
    if span is None:
        return text
    lines, begin, end = span
    return "".join(lines[:begin] + lines[end + 1 :])


# -- targets ---------------------------------------------------------------------------------


class Target(Protocol):
    """Somewhere a crontab is kept."""

    description: str
    user_column: bool

    def read(self) -> str: ...

    def write(self, text: str) -> None: ...


class UserCrontab:
    """The invoking user's crontab, through the ``crontab`` program."""

    description = "your crontab"
    user_column = False

    def __init__(self) -> None:
        program = shutil.which("crontab")
        if program is None:
            raise CrontabError(
                "the 'crontab' program is not installed (or not on PATH)",
                hint="install cron (Debian/Ubuntu: apt-get install cron), or write the lines to a "
                "file with --file FILE or --cron-d FILE",
            )
        self.program = program

    def read(self) -> str:
        done = subprocess.run(
            [self.program, "-l"], capture_output=True, text=True, check=False
        )
        if done.returncode == 0:
            return done.stdout
        if "no crontab" in done.stderr.lower():
            return ""
        raise CrontabError(f"'crontab -l' failed: {done.stderr.strip() or done.returncode}")

    def write(self, text: str) -> None:
        done = subprocess.run(
            [self.program, "-"], input=text, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise CrontabError(
                f"'crontab -' refused the new crontab: {done.stderr.strip() or done.returncode}",
                hint="run with --dry-run to see the block flowctl tried to install",
            )


class CrontabFile:
    """A file in user-crontab format (``--file``) or ``/etc/cron.d`` format (``--cron-d``)."""

    def __init__(self, path: str, *, cron_d: bool = False) -> None:
        self.path = os.path.abspath(path)
        self.user_column = cron_d
        self.description = self.path
        if cron_d and not CRON_D_NAME.match(os.path.basename(self.path)):
            suggestion = re.sub(r"[^A-Za-z0-9_-]", "-", os.path.basename(self.path))
            raise UsageError(
                f"cron ignores files in /etc/cron.d named {os.path.basename(self.path)!r}: "
                "names may hold only letters, digits, '_' and '-' (no dots)",
                hint=f"use a name such as {suggestion!r}",
            )

    def read(self) -> str:
        try:
            with open(self.path, encoding="utf-8") as fh:
                return fh.read()
        except FileNotFoundError:
            return ""
        except OSError as exc:
            raise CrontabError(f"cannot read {self.path}: {exc.strerror}") from None

    def write(self, text: str) -> None:
        folder = os.path.dirname(self.path)
        try:
            fd, temp = tempfile.mkstemp(prefix=".flowctl-", dir=folder)
        except OSError as exc:
            raise CrontabError(f"cannot write in {folder}: {exc.strerror}") from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            # cron.d files must not be group- or world-writable; crontabs are the user's own.
            os.chmod(temp, 0o644 if self.user_column else 0o600)
            os.replace(temp, self.path)
        except OSError as exc:
            os.unlink(temp)
            raise CrontabError(f"cannot write {self.path}: {exc.strerror}") from None


def open_target(file: str | None, cron_d: str | None) -> Target:
    """The target the options name: ``--file``, ``--cron-d`` or the user's crontab."""
    if file and cron_d:
        raise UsageError("give --file or --cron-d, not both")
    if file:
        return CrontabFile(file)
    if cron_d:
        return CrontabFile(cron_d, cron_d=True)
    return UserCrontab()


__all__ = [
    "BEGIN",
    "CRON_D_NAME",
    "END",
    "CrontabError",
    "CrontabFile",
    "Entry",
    "Target",
    "UserCrontab",
    "open_target",
    "read_entries",
    "remove_block",
    "render_block",
]

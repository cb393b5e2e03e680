"""Options and helpers shared by the command modules: output format, consoles, loading.

Import-light (typer and the standard library at the top) so ``flowctl --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import typer

from flowctl.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from flowctl.spec.model import Pipeline

FORMAT_HELP = "Output format."
JSON_HELP = "Shorthand for --format json."


def json_option() -> Any:
    return typer.Option(False, "--json", help=JSON_HELP)


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
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


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
    "console", "json_option", "load", "no_color", "param_option", "pick_format", "silence_stdout", "stdout_is_tty",
    "warn",
]

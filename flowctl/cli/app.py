"""Entry point: builds the typer app from the command modules and runs it at the boundary."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

import typer

from flowctl import __version__
from flowctl.cli._app import app
from flowctl.cli._boundary import run_app

# The commands, each registered on ``app`` by the module ``flowctl.cli.<name>`` (which imports
# only typer at the top), in the order ``--help`` lists them.
COMMANDS = (
    "validate", "plan", "graph", "schema", "init", "runs", "show", "logs", "gc", "doctor", "run",
    "bench", "chaos", "stats", "report", "alerts", "schedule", "dlq", "diff", "release", "versions",
)


def register(args: Sequence[str] | None = None) -> None:
    """Register the commands on ``app``: only the one ``args`` names when they start with a
    command (typer builds every registered command's parameters at each start, ~1 ms each),
    else all of them (``--help``, ``--version``, a misspelt command and its "did you mean").
    A module registers its command when first imported; importing it again does nothing."""
    for name in [args[0]] if args and args[0] in COMMANDS else COMMANDS:
        importlib.import_module(f"flowctl.cli.{name}")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"flowctl {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Validate, plan, diff and run YAML-defined pipelines."""


def main(argv: list[str] | None = None) -> None:
    """Run flowctl and exit with a code from the shared table."""
    args = sys.argv[1:] if argv is None else argv
    register(args)
    sys.exit(run_app(app, args))

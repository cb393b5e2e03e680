"""Entry point: builds the typer app from the command modules and runs it at the boundary."""

from __future__ import annotations

import sys

import typer

from flowctl import __version__
from flowctl.cli._app import app
from flowctl.cli._boundary import run_app

# Each import registers its command(s) on ``app``; these modules import only typer at the top.
from flowctl.cli import validate as _validate  # noqa: F401,E402
from flowctl.cli import plan as _plan  # noqa: F401,E402
from flowctl.cli import graph as _graph  # noqa: F401,E402
from flowctl.cli import schema as _schema  # noqa: F401,E402
from flowctl.cli import init as _init  # noqa: F401,E402
from flowctl.cli import runs as _runs  # noqa: F401,E402
from flowctl.cli import show as _show  # noqa: F401,E402
from flowctl.cli import logs as _logs  # noqa: F401,E402
from flowctl.cli import gc as _gc  # noqa: F401,E402
from flowctl.cli import doctor as _doctor  # noqa: F401,E402
from flowctl.cli import run as _run  # noqa: F401,E402
from flowctl.cli import stats as _stats  # noqa: F401,E402
from flowctl.cli import alerts as _alerts  # noqa: F401,E402
from flowctl.cli import schedule as _schedule  # noqa: F401,E402
from flowctl.cli import diff as _diff  # noqa: F401,E402
from flowctl.cli import release as _release  # noqa: F401,E402
from flowctl.cli import versions as _versions  # noqa: F401,E402


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
    sys.exit(run_app(app, argv))

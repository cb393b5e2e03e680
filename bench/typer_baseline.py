"""The floor for ``flowctl --help``: a two-command typer app with nothing else imported.

``bench/validate_bench.py`` runs ``python bench/typer_baseline.py --help`` next to
``python -m flowctl --help`` in the same run; flowctl may take at most 1.3 times as long.
"""

from __future__ import annotations

import typer

app = typer.Typer(add_completion=False, rich_markup_mode=None)


@app.command()
def validate(path: str = typer.Argument(..., help="A pipeline file.")) -> None:
    """Validate a pipeline."""
    typer.echo(path)


@app.command()
def plan(path: str = typer.Argument(..., help="A pipeline file.")) -> None:
    """Plan a pipeline."""
    typer.echo(path)


if __name__ == "__main__":
    app()

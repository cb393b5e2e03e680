"""``flowctl init``: write a commented starter pipeline (and the schema) without overwriting."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from flowctl.cli._app import app


@app.command()
def init(
    name: str = typer.Argument("hello", help="Pipeline name: lower-case letters, digits, '-' and '_'."),
    directory: Path = typer.Option(Path("."), "--dir", help="Project folder to write into."),
) -> int:
    """Write pipelines/NAME.yaml (a small commented starter) and schemas/pipeline.schema.json,
    and make .flowctl/, where the project's runs and logs are kept.

    Existing files are never overwritten.

    Example: flowctl init nightly-orders
    """
    import os

    from flowctl.scaffold import make_state_folder, write_starter

    written = write_starter(directory, name)
    out = sys.stdout
    for path, created in written:
        out.write(f"{'created' if created else 'kept   '} {path}\n")
    state, made = make_state_folder(directory)
    if made:
        out.write(f"created {state}{os.sep} (the project's runs and logs; git ignores it)\n")
    pipeline = written[0][0]
    out.write("\nNext:\n")
    out.write(f"  flowctl validate {pipeline}\n  flowctl plan {pipeline}\n  flowctl run {pipeline}\n")
    return 0

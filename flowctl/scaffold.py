"""Starter files for ``flowctl init``: a commented pipeline, the JSON Schema beside it, and the
project's state folder.

Never overwrites: an existing pipeline file is an error, an existing schema file is kept.
Files are written atomically (temp file + rename).
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from flowctl.errors import UsageError
from flowctl.outfiles import write_atomic
from flowctl.spec import PIPELINE_DIR
from flowctl.spec.schema import SCHEMA_FILE, schema_text

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
#: Where the starter template takes the pipeline's name.
PLACEHOLDER = "__PIPELINE__"


def write_starter(root: Path, name: str) -> list[tuple[Path, bool]]:
    """Write the starter pipeline and the schema; returns (path, created) pairs.

    Raises UsageError for a bad name or an existing pipeline file.
    """
    if not _NAME.match(name):
        raise UsageError(f"{name!r} is not a pipeline name",
                         hint="use lower-case letters, digits, '-' and '_', starting with a letter or digit")
    template = resources.files("flowctl.templates").joinpath("starter.yaml").read_text(encoding="utf-8")
    pipeline = root / PIPELINE_DIR / f"{name}.yaml"
    if pipeline.exists():
        raise UsageError(f"{pipeline} already exists; flowctl init never overwrites a file",
                         hint="choose another name: flowctl init OTHER-NAME")
    # A placeholder no pipeline text can contain: replacing "NAME" once wrote the pipeline's name
    # into `${{ params.NAME }}` in the starter's comment (issue 13).
    if not write_atomic(pipeline, template.replace(PLACEHOLDER, name)):
        raise UsageError(f"{pipeline} already exists; flowctl init never overwrites a file")
    schema_path = root / "schemas" / SCHEMA_FILE
    created = write_atomic(schema_path, schema_text())
    return [(pipeline, True), (schema_path, created)]


def make_state_folder(root: Path) -> tuple[Path, bool]:
    """Make ``root/.flowctl/`` (with a ``.gitignore`` that keeps it out of git) so every
    command run anywhere in the project finds it (``state.location``); returns (path, created).
    An existing folder is left as it is."""
    from flowctl.state.location import STATE_DIR_NAME

    folder = root / STATE_DIR_NAME
    if folder.exists():
        return folder, False
    folder.mkdir(parents=True)
    write_atomic(folder / ".gitignore", "# flowctl's runs and logs: local state, not source\n*\n")
    return folder, True


__all__ = ["PLACEHOLDER", "make_state_folder", "write_atomic", "write_starter"]

"""``flowctl schema``: print the pipeline JSON Schema shipped with flowctl."""

from __future__ import annotations

import sys

from flowctl.cli._app import app


@app.command()
def schema() -> int:
    """Print the pipeline JSON Schema (Draft 2020-12), for editors and other validators.

    Example: flowctl schema > schemas/pipeline.schema.json
    """
    from flowctl.spec.schema import schema_text

    sys.stdout.write(schema_text())
    return 0

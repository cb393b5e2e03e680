"""The typer application every command module registers on.

Kept import-light: only typer and the standard library, so ``flowctl --help`` stays fast.
Command modules import the core (networkx, jsonschema, git, rich.progress) inside functions.
"""

from __future__ import annotations

import typer

from flowctl.errors import EXIT_CODE_TABLE

# ``\b`` keeps click from re-wrapping the table.
_EXIT_CODES = "\b\n" + "\n".join(f"  {code:>3}  {text}" for code, text in EXIT_CODE_TABLE)

HELP = f"""Validate, plan, diff and run YAML-defined pipelines.

Example: flowctl init etl && flowctl validate && flowctl run pipelines/etl.yaml

Exit codes (every command):

{_EXIT_CODES}
"""

app = typer.Typer(
    name="flowctl",
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

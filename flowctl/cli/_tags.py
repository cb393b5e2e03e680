"""The ``--tag-pattern`` option of ``release``, ``versions`` and ``diff`` (one name for all three).

``--tag-format`` (what ``release`` called it before issue 13) stays as a hidden alias that still
works and warns, so scripts keep running while they move to the new name.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from flowctl.errors import UsageError

TAG_PATTERN_HELP = (
    "Release tag names with {name} (the pipeline) and {version} (X.Y.Z), e.g. 'release-{version}'. "
    "Default: both schemes, '{name}/v{version}' and 'v{version}'."
)


def tag_pattern_option(help: str = TAG_PATTERN_HELP) -> Any:
    return typer.Option(None, "--tag-pattern", metavar="PATTERN", help=help)


def tag_format_alias() -> Any:
    return typer.Option(None, "--tag-format", hidden=True, help="Deprecated: use --tag-pattern.")


def tag_pattern(pattern: str | None, deprecated: str | None) -> str | None:
    """The pattern given with ``--tag-pattern``, or with the deprecated ``--tag-format``
    (warned about on stderr). UsageError when both are given and differ."""
    if deprecated is None:
        return pattern
    print("flowctl: warning: --tag-format is deprecated; use --tag-pattern (same meaning)", file=sys.stderr)
    if pattern is not None and pattern != deprecated:
        raise UsageError("--tag-format and --tag-pattern give different patterns", hint="give --tag-pattern only")
    return deprecated

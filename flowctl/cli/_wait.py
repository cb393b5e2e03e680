"""``--wait [DURATION]``: an option whose value is optional, which typer cannot declare.

``OptionalWaitCommand`` rewrites the arguments before parsing: a ``--wait`` not followed by a
duration becomes ``--wait forever``. So ``run p.yaml --wait``, ``run --wait p.yaml`` and
``run p.yaml --wait 10m`` all mean what they say. Import-light (typer only).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from typer.core import TyperCommand

FOREVER = "forever"
_DURATION = re.compile(r"^\s*([0-9]+(\.[0-9]+)?\s*(ms|s|m|h|d)?\s*)+$")


def expand_wait(args: Sequence[str], option: str = "--wait") -> list[str]:
    """``[..., "--wait", X, ...]`` with ``forever`` inserted when X is not a duration."""
    out: list[str] = []
    items = list(args)
    for i, arg in enumerate(items):
        out.append(arg)
        if arg == option:
            following = items[i + 1] if i + 1 < len(items) else None
            if following is None or not _DURATION.match(following):
                out.append(FOREVER)
        if arg == "--":
            out.extend(items[i + 1 :])
            break
    return out


class OptionalWaitCommand(TyperCommand):
    """A typer command whose ``--wait`` takes an optional duration."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, expand_wait(args))


__all__ = ["FOREVER", "OptionalWaitCommand", "expand_wait"]

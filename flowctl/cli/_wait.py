"""``--wait [DURATION]``: an option whose value is optional, which typer cannot declare.

``OptionalWaitCommand`` rewrites the arguments before parsing: a ``--wait`` not followed by a
duration becomes ``--wait forever``. So ``run p.yaml --wait``, ``run --wait p.yaml``,
``run p.yaml --wait 10`` and ``run p.yaml --wait 10m`` all mean what they say. What counts as
a duration is ``spec/durations.py``'s one grammar; a value that starts with a digit and is not
a file (``--wait 1h30``) is taken as a duration too, so that it gets that grammar's error
instead of becoming the pipeline argument. ``run``'s ``--chaos [SPEC]`` is the same kind of
option (issue 17): not followed by a spec (which always holds ``=``), it becomes
``--chaos @pipeline``, the pipeline's ``chaos:`` block. Import-light (typer and the standard library).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from typer.core import TyperCommand

FOREVER = "forever"
FROM_PIPELINE = "@pipeline"  # a bare --chaos: the pipeline's chaos: block


def _meant_as_duration(arg: str) -> bool:
    from flowctl.spec.durations import is_duration  # lazily: flowctl.spec loads yaml

    return is_duration(arg) or (arg[:1].isdigit() and not os.path.exists(arg))


def expand_wait(args: Sequence[str], option: str = "--wait") -> list[str]:
    """``[..., "--wait", X, ...]`` with ``forever`` inserted when X is not a duration."""
    out: list[str] = []
    items = list(args)
    for i, arg in enumerate(items):
        out.append(arg)
        if arg == option:
            following = items[i + 1] if i + 1 < len(items) else None
            if following is None or not _meant_as_duration(following):
                out.append(FOREVER)
        if arg == "--":
            out.extend(items[i + 1 :])
            break
    return out


def expand_chaos(args: Sequence[str]) -> list[str]:
    """``[..., "--chaos", X, ...]`` with ``@pipeline`` inserted when X is not a chaos spec."""
    out: list[str] = []
    items = list(args)
    for i, arg in enumerate(items):
        out.append(arg)
        if arg == "--chaos" and (i + 1 >= len(items) or "=" not in items[i + 1]):
            out.append(FROM_PIPELINE)
        if arg == "--":
            out.extend(items[i + 1 :])
            break
    return out


def wait_option() -> Any:
    """``--wait [DURATION]`` of a command that takes a pipeline's lock (``run``, ``dlq replay``);
    the command needs ``cls=OptionalWaitCommand``."""
    import typer

    return typer.Option(
        None, "--wait", metavar="[DURATION]",
        help="When another run of this pipeline holds the lock, wait for it (for ever, or at most "
        "DURATION, e.g. 10m) instead of exiting with 75.",
    )


class OptionalWaitCommand(TyperCommand):
    """A typer command whose ``--wait`` takes an optional duration."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, expand_chaos(expand_wait(args)))


__all__ = ["FOREVER", "FROM_PIPELINE", "OptionalWaitCommand", "expand_chaos", "expand_wait", "wait_option"]

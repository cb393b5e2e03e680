"""``flowctl run --ref REF [--worktree DIR]``: check REF out, run from there, say where outputs are.

The checkout and the keep-or-remove decision are ``diff.worktree``'s; this module wires them
into ``run``'s exit stack and prints what the user must know: where the run happens, and at the
end where the files the steps wrote are (or that there were none and the worktree is gone).
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TYPE_CHECKING

from flowctl.errors import UsageError

if TYPE_CHECKING:
    from flowctl.diff.worktree import WorktreeOutcome

#: How many written files the closing message names.
_SHOWN = 5


def enter_ref(
    stack: contextlib.ExitStack, pipeline: str, ref: str | None, worktree: str | None, state_dir: str, *, quiet: bool
) -> tuple[str, str, dict[str, object]]:
    """(the pipeline file to load, how to name the run's pipeline, provenance to record).

    Without ``ref``: the pipeline as given. With it: a worktree at REF, settled when ``stack``
    closes (after the run's summary), which then prints where the outputs are unless ``quiet``
    (``--dry-run``) and nothing was written. Raises UsageError for --worktree without --ref.
    """
    if ref is None:
        if worktree is not None:
            raise UsageError("--worktree needs --ref", hint="e.g. flowctl run PIPELINE --ref v1.2.0 --worktree ../v1.2.0")
        return pipeline, pipeline, {}
    from flowctl.diff.worktree import checkout_at

    at = stack.enter_context(
        checkout_at(pipeline, ref, worktrees=os.path.join(state_dir, "worktrees"), into=worktree)
    )
    stack.callback(lambda: _report(at.close(), quiet=quiet))
    named = at.ref if at.ref == ref else f"{at.ref} ({ref})"
    sys.stdout.write(f"Running {pipeline} as of {named} (commit {at.commit[:12]}) in worktree {at.root}\n")
    sys.stdout.flush()
    return at.pipeline_path, f"{pipeline} --ref {ref}", at.provenance


def _report(outcome: WorktreeOutcome, *, quiet: bool) -> None:
    lines = outcome_lines(outcome)
    if quiet and not outcome.written:
        return
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.write("".join(line + "\n" for line in lines))
        sys.stdout.flush()


def outcome_lines(outcome: WorktreeOutcome) -> list[str]:
    """Where the files the steps wrote are, in words."""
    n = len(outcome.written)
    files = f"{n} file" + ("" if n == 1 else "s")
    shown = ", ".join(outcome.written[:_SHOWN]) + (f" and {n - _SHOWN} more" if n > _SHOWN else "")
    if not outcome.owned:
        what = f"the steps wrote {files} there ({shown})" if n else "the steps wrote nothing there"
        return [f"Outputs: in {outcome.path} (your --worktree; it stays): {what}"]
    if outcome.unknown is not None:
        return [f"Outputs: kept the worktree of {outcome.ref} at {outcome.path}, since what the steps wrote "
                f"there could not be read ({outcome.unknown}); `flowctl gc` removes it later"]
    if not outcome.kept:
        return [f"Outputs: none in the worktree of {outcome.ref}: the steps wrote nothing there, so it was removed"]
    return [
        f"Outputs: the steps wrote {files} in the worktree of {outcome.ref}, kept at {outcome.path}: {shown}",
        "  `flowctl gc --keep N` or `--older-than DURATION` removes it later; run with --worktree DIR to keep "
        "outputs in a folder of your own",
    ]


__all__ = ["enter_ref", "outcome_lines"]

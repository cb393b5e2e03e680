"""A temporary git worktree at a ref, for ``flowctl run PIPELINE --ref REF``.

``checkout_at`` adds a detached worktree of REF's commit in a temporary folder (``git worktree
add --detach``), yields where the pipeline file is inside it plus the provenance a run records
(ref and commit), and removes the worktree afterwards, even on Ctrl-C or an error. The user's
work tree, index and HEAD are never touched: uncommitted edits stay as they are. What the steps
write inside the temporary worktree goes away with it; state (runs, logs) stays where the caller
keeps it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field

from flowctl.diff.gitsource import GitSource
from flowctl.errors import GitError, UsageError

#: ``--ref latest-release``: the newest release tag of the pipeline, looked up at each run.
LATEST_RELEASE = "latest-release"


@dataclass(frozen=True, slots=True)
class RefCheckout:
    ref: str
    commit: str
    root: str  # the temporary worktree
    pipeline_path: str  # the pipeline file inside it
    provenance: dict[str, object] = field(default_factory=dict)


@contextlib.contextmanager
def checkout_at(pipeline: str | os.PathLike[str], ref: str, *, cwd: str | os.PathLike[str] = ".") -> Iterator[RefCheckout]:
    """The repository as of ``ref`` in a temporary worktree, removed on exit.

    Raises GitError (not a repo, unknown ref, worktree cannot be made) or UsageError (the
    pipeline file does not exist at ``ref``).
    """
    import git

    src = GitSource(cwd)
    rel = src.relpath(pipeline)
    if ref == LATEST_RELEASE:  # resolved at each run, so a schedule follows new releases
        from flowctl.spec import load_pipeline

        ref = latest_release_tag(src, load_pipeline(pipeline).name, pipeline)
    rev = src.resolve(ref)
    if src.read(rev.commit, rel) is None:
        raise UsageError(
            f"{rel} does not exist at {ref}",
            hint=f"list what the ref holds with: git ls-tree -r --name-only {ref} pipelines/",
        )
    parent = tempfile.mkdtemp(prefix="flowctl-ref-")
    root = os.path.join(parent, "tree")
    try:
        src.repo.git.worktree("add", "--detach", "--quiet", root, rev.commit)
    except git.GitCommandError as exc:
        shutil.rmtree(parent, ignore_errors=True)
        raise GitError(f"could not check out {ref} into a temporary worktree: {exc.stderr.strip()}") from None
    try:
        yield RefCheckout(
            ref=ref,
            commit=rev.commit,
            root=root,
            pipeline_path=os.path.join(root, rel),
            provenance={"git_ref": ref, "git_commit": rev.commit, "git_dirty": False},
        )
    finally:
        _remove(src, root, parent)


def latest_release_tag(src: GitSource, name: str, pipeline: str | os.PathLike[str]) -> str:
    """The newest release tag of pipeline ``name`` reachable from HEAD (what ``--ref
    latest-release`` runs). Raises GitError when there is none."""
    release = src.latest_release(name)
    if release is None:
        raise GitError(
            f"--ref {LATEST_RELEASE}: no release tags for {name} ({name}/vX.Y.Z or vX.Y.Z) reachable from HEAD",
            hint=f"create one with `flowctl release {os.fspath(pipeline)} --bump patch`",
        )
    return release.tag


def _remove(src: GitSource, root: str, parent: str) -> None:
    import git

    try:
        src.repo.git.worktree("remove", "--force", root)
    except git.GitCommandError:
        pass  # a step deleted it, or it holds untracked files git refuses to drop: prune below
    shutil.rmtree(parent, ignore_errors=True)
    with contextlib.suppress(git.GitCommandError):
        src.repo.git.worktree("prune")


__all__ = ["RefCheckout", "checkout_at"]

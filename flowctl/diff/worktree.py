"""The git worktree ``flowctl run PIPELINE --ref REF`` runs in, and what happens to it after.

``checkout_at`` checks REF's commit out as a detached worktree (``git worktree add --detach``)
and gives where the pipeline file is inside it plus the provenance a run records. The user's
work tree, index and HEAD are never touched: uncommitted edits stay as they are.

Nothing a step writes may vanish unannounced (issue 13), so closing the worktree decides:

* a worktree flowctl made (in the state folder's ``worktrees/``) is removed when the run wrote
  nothing in it, and kept when it did: ``close()`` says so (``WorktreeOutcome``), and
  ``collect_worktrees`` (``flowctl gc``) removes kept ones later, by the same ``--keep`` and
  ``--older-than`` rules as runs;
* a worktree the user named (``--worktree DIR``) is theirs: made when absent, reused when it
  already holds REF's commit, never removed.

Git access goes through ``flowctl.repo`` (a ``Repository`` held open for the run, closed with
the worktree); this module never prints (``cli`` does).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from flowctl.diff.gitsource import load_at
from flowctl.errors import GitError, UsageError
from flowctl.repo.releases import LATEST_RELEASE, latest_release_tag
from flowctl.repo.repository import Repository

#: Beside each worktree flowctl made: what it is, for ``gc`` (``<worktrees>/<slug>.json``).
_META = ".json"


@dataclass(frozen=True, slots=True)
class WorktreeOutcome:
    """What became of the worktree when the run was over."""

    path: str
    ref: str
    written: tuple[str, ...]  # files created, changed or deleted in it (repository-relative)
    kept: bool
    owned: bool  # flowctl made it (``gc`` removes it later); False: the user's --worktree
    unknown: str | None = None  # why what was written could not be read (then it is kept)


class RefWorktree:
    """One checkout of REF for one run; ``close()`` (or leaving the ``with``) settles it."""

    def __init__(self, repo: Repository, ref: str, commit: str, root: str, rel: str, *, owned: bool) -> None:
        self.repo = repo
        self.ref = ref
        self.commit = commit
        self.root = root  # the worktree
        self.pipeline_path = os.path.join(root, rel)  # the pipeline file inside it
        self.owned = owned
        self.provenance: dict[str, object] = {
            "git_ref": ref, "git_commit": commit, "git_dirty": False, "git_worktree": root,
        }
        self._outcome: WorktreeOutcome | None = None

    def close(self) -> WorktreeOutcome:
        """Keep the worktree when the run wrote in it (or it is the user's), else remove it."""
        if self._outcome is not None:
            return self._outcome
        try:
            written, unknown = self.repo.changes_in(self.root), None
        except GitError as exc:
            written, unknown = (), exc.message
        keep = not self.owned or bool(written) or unknown is not None
        if not keep:
            self.repo.remove_worktree(self.root)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.root + _META)
        self.repo.close()
        self._outcome = WorktreeOutcome(self.root, self.ref, written, keep, self.owned, unknown)
        return self._outcome

    def __enter__(self) -> RefWorktree:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def checkout_at(
    pipeline: str | os.PathLike[str],
    ref: str,
    *,
    worktrees: str | os.PathLike[str],
    cwd: str | os.PathLike[str] = ".",
    into: str | os.PathLike[str] | None = None,
) -> RefWorktree:
    """The repository as of ``ref`` in a worktree: a new one under ``worktrees`` (the state
    folder's ``worktrees/``), or ``into`` (``--worktree DIR``: made, or reused when it holds
    ``ref``'s commit already).

    Raises GitError (not a repo, unknown ref, no release for ``latest-release``, worktree cannot
    be made) or UsageError (the pipeline file does not exist at ``ref``; ``into`` holds
    something else).
    """
    repo = Repository(cwd)
    try:
        return _checkout(repo, pipeline, ref, worktrees, into)
    except BaseException:
        repo.close()
        raise


def _checkout(
    repo: Repository,
    pipeline: str | os.PathLike[str],
    ref: str,
    worktrees: str | os.PathLike[str],
    into: str | os.PathLike[str] | None,
) -> RefWorktree:
    rel = repo.relpath(pipeline)
    if ref == LATEST_RELEASE:  # resolved at each run, so a schedule follows new releases
        from flowctl.spec import load_pipeline

        ref = latest_release_tag(repo, load_pipeline(pipeline).name, pipeline)
    rev = repo.resolve(ref)
    at_ref = load_at(repo, rev.commit, rel, ref)  # PipelineError (REF:path:line) when invalid there
    if at_ref is None:
        raise UsageError(
            f"{rel} does not exist at {ref}",
            hint=f"list what the ref holds with: git ls-tree -r --name-only {ref} pipelines/",
        )
    if into is not None:
        root = _user_worktree(repo, os.path.abspath(into), ref, rev.commit)
        return RefWorktree(repo, ref, rev.commit, root, rel, owned=False)
    folder = Path(worktrees)
    folder.mkdir(parents=True, exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():  # so `git add -A` in the project never picks the worktrees up
        ignore.write_text("# worktrees of `flowctl run --ref`; `flowctl gc` removes them\n*\n", encoding="utf-8")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{at_ref.name}-{ref}").strip("-")
    root = tempfile.mkdtemp(prefix=f"{slug}-", dir=folder)
    meta = {"pipeline": at_ref.name, "ref": ref, "commit": rev.commit, "repo": repo.root, "created": time.time()}
    Path(root + _META).write_text(json.dumps(meta) + "\n", encoding="utf-8")
    os.rmdir(root)  # git wants to create it
    try:
        repo.add_worktree(root, rev.commit, ref)
    except GitError:
        os.unlink(root + _META)
        raise
    return RefWorktree(repo, ref, rev.commit, root, rel, owned=True)


def _user_worktree(repo: Repository, path: str, ref: str, commit: str) -> str:
    """``--worktree DIR``: reuse it when it is this repository's worktree at ``commit``, make
    it when it is absent or empty, refuse anything else (nothing of the user's is touched)."""
    if os.path.realpath(path) == repo.root:
        raise UsageError(f"--worktree {path} is the repository's own work tree",
                         hint="give a folder of its own, e.g. ../checkout-" + re.sub(r"[^A-Za-z0-9._-]+", "-", ref))
    head = repo.worktree_heads().get(os.path.realpath(path))
    if head == commit:
        return path
    if head is not None:
        raise UsageError(
            f"--worktree {path} holds commit {head[:12]}, not {ref} ({commit[:12]})",
            hint="give another --worktree, or remove that one first: git worktree remove " + path,
        )
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise UsageError(
            f"--worktree {path} exists and is not a worktree of this repository",
            hint="give a folder that does not exist yet (flowctl creates it)",
        )
    repo.add_worktree(path, commit, ref)
    return path


# -- gc ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeptWorktree:
    """A worktree ``run --ref`` kept because the run wrote in it."""

    path: str
    pipeline: str  # the pipeline's name (at the ref)
    ref: str
    created: float
    size: int  # bytes in it, git's own files excluded
    repo: str = field(default="", repr=False)


def kept_worktrees(worktrees: str | os.PathLike[str]) -> list[KeptWorktree]:
    """The worktrees flowctl kept under ``worktrees``, oldest first."""
    folder = Path(os.path.abspath(worktrees))
    found = []
    for meta_path in sorted(folder.glob("*" + _META)) if folder.is_dir() else []:
        root = str(meta_path)[: -len(_META)]
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # not ours, or half-written: leave it
        size = sum(f.stat().st_size for f in Path(root).rglob("*") if f.is_file() and ".git" not in f.parts)
        found.append(KeptWorktree(root, str(meta.get("pipeline", "")), str(meta.get("ref", "")),
                                  float(meta.get("created", 0.0)), size, str(meta.get("repo", ""))))
    return sorted(found, key=lambda w: w.created)


def collect_worktrees(
    worktrees: str | os.PathLike[str],
    *,
    keep: int | None,
    older_than: float | None,
    pipeline: str | None = None,
    in_use: Callable[[str], bool] = lambda name: False,
    dry_run: bool = False,
    now: float | None = None,
) -> tuple[list[KeptWorktree], list[KeptWorktree]]:
    """Remove kept worktrees beyond the newest ``keep`` per pipeline and/or older than
    ``older_than`` seconds, as ``gc`` prunes runs; a worktree whose pipeline is running
    (``in_use(name)``) stays. Returns (removed, skipped because in use)."""
    now = time.time() if now is None else now
    chosen = [w for w in kept_worktrees(worktrees) if pipeline is None or w.pipeline == pipeline]
    doomed: list[KeptWorktree] = []
    by_pipeline: dict[str, list[KeptWorktree]] = {}
    for w in chosen:
        by_pipeline.setdefault(w.pipeline, []).append(w)
    for group in by_pipeline.values():
        for i, w in enumerate(reversed(group)):  # newest first
            beyond = keep is not None and i >= keep
            old = older_than is not None and now - w.created > older_than
            if beyond or old:
                doomed.append(w)
    removed, busy = [], []
    for w in sorted(doomed, key=lambda w: w.created):
        if in_use(w.pipeline):
            busy.append(w)
            continue
        removed.append(w)
        if not dry_run:
            _remove_kept(w)
    return removed, busy


def _remove_kept(w: KeptWorktree) -> None:
    try:
        with Repository(w.repo) as repo:
            repo.remove_worktree(w.path)
    except GitError:  # the repository moved or is gone: the folder is all there is
        import shutil

        shutil.rmtree(w.path, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(w.path + _META)


__all__ = [
    "KeptWorktree",
    "RefWorktree",
    "WorktreeOutcome",
    "checkout_at",
    "collect_worktrees",
    "kept_worktrees",
]

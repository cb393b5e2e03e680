"""Repository access: the one place flowctl talks to git.

Every stage that needs git (``spec`` finding the project, ``state`` placing its folder and
recording provenance, ``diff``/``release``/``versions``, ``run --ref``, ``gc``, ``schedule``)
goes through this package; nothing else runs ``git`` or imports gitpython. It sits at the bottom
of the import graph with ``errors``: it imports nothing else of flowctl, so any stage may use it.

Each operation uses the cheapest means that is exact:

* ``layout``: where the work tree, its main work tree and the common git folder are, read from
  ``.git`` files (no process; runs at the start of every command);
* ``status``: HEAD's commit and whether tracked files changed, one ``git status`` process (the
  run path's provenance, and ``release``'s clean-tree check);
* ``repository``: ``Repository``, through gitpython (imported when one is opened): refs, tags,
  commit dates, files at a revision, creating tags, linked worktrees;
* ``releases``: what release tags are (``<name>/vX.Y.Z``, ``vX.Y.Z``, ``--tag-pattern``) and a
  pipeline's releases in history order, read through a ``Repository``.

Failures are ``GitError`` (exit 2) with a hint; ``layout`` and ``status`` answer None instead
where "not in a repository" is a normal answer.
"""

__all__ = ["layout", "releases", "repository", "status"]

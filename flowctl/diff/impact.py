"""Impact of a change: which recorded results stop counting, which steps change policy only.

Each field and setting change carries its class (``classes.py``). A step's recorded result
stops counting when a change that re-runs (invalidating: what the fingerprint takes; identity:
its id, or the pipeline's name) reaches it, and then so do the results of everything
downstream: resume and up-to-date checks run them again (``rerun``). A step whose only changes
are execution policy (retries, timeouts, remediation, ...) keeps its results (``policy_only``).
Steps new in this version have no recorded result: they are ``new``, never ``rerun``.
"""

from __future__ import annotations

from collections.abc import Iterable

from flowctl.diff.changes import (
    ChangeClass,
    ChangeKind,
    Impact,
    SettingChange,
    StepChange,
)
from flowctl.spec.model import Pipeline


def downstream(pipeline: Pipeline, roots: Iterable[str]) -> set[str]:
    """``roots`` and every step that (transitively) needs one of them (networkx's descendants
    in the pipeline's DAG, ``graph.build_graph``)."""
    import networkx as nx

    from flowctl.graph.plan import build_graph

    dag = build_graph(pipeline)
    seen = {r for r in roots if r in pipeline.steps}
    start = object()  # one search from every root at once: linear however many roots there are
    dag.add_node(start)
    dag.add_edges_from((start, root) for root in seen)
    return seen | {str(s) for s in nx.descendants(dag, start)}


def compute_impact(
    old: Pipeline | None,
    new: Pipeline | None,
    steps: Iterable[StepChange],
    settings: Iterable[SettingChange],
) -> Impact:
    """The ``Impact`` of the ``steps``/``settings`` changes from ``old`` to ``new``."""
    if new is None:
        return Impact()
    order = tuple(new.steps)
    if old is None:
        return Impact(new=order)
    roots: set[str] = set()  # steps whose own recorded result stops counting
    policy: set[str] = set()
    added: set[str] = set()
    for change in steps:
        if change.kind is ChangeKind.ADDED:
            added.add(change.step)
        elif change.kind is ChangeKind.RENAMED:  # results are recorded per step id
            roots.add(change.step)
        if any(f.change_class.reruns for f in change.fields):
            roots.add(change.step)
        elif change.of_class(ChangeClass.POLICY):
            policy.add(change.step)
    for setting in settings:
        if setting.change_class.reruns:
            roots.update(setting.affects)
    rerun = downstream(new, roots) - added
    return Impact(
        rerun=tuple(s for s in order if s in rerun),
        policy_only=tuple(s for s in order if s in policy and s not in rerun),
        new=tuple(s for s in order if s in added),
    )


__all__ = ["compute_impact", "downstream"]

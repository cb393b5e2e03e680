"""``Pipeline`` → ``Plan`` (networkx DAG, selection, levels, critical path) and its renderings."""

from flowctl.graph.plan import Plan, build_graph, check_step_ids, compile_plan

__all__ = ["Plan", "build_graph", "check_step_ids", "compile_plan"]

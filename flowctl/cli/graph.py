"""``flowctl graph``: the pipeline's DAG as mermaid, dot, JSON or an indented tree."""

from __future__ import annotations

import sys

import typer

from flowctl.cli._app import app
from flowctl.cli._common import json_option, load, pick_format

FORMATS = ("text", "mermaid", "dot", "json")


@app.command()
def graph(
    pipeline: str = typer.Argument(..., help="The pipeline file."),
    fmt: str = typer.Option("text", "--format", "-f", help="text (a tree), mermaid (for PRs), dot (Graphviz) or json (node-link)."),
    as_json: bool = json_option(),
    only: list[str] = typer.Option([], "--only", metavar="STEP", help="Only these steps and what they need."),
    from_: list[str] = typer.Option([], "--from", metavar="STEP", help="These steps and everything downstream."),
) -> int:
    """Draw the pipeline's dependency graph.

    Example: flowctl graph pipelines/etl.yaml --format dot | dot -Tsvg > etl.svg
    """
    from flowctl.graph import compile_plan, render

    chosen = pick_format(fmt, as_json, FORMATS)
    plan = compile_plan(load(pipeline), only=only, from_=from_)
    text = {"text": render.to_text, "mermaid": render.to_mermaid, "dot": render.to_dot, "json": render.to_json}[chosen](plan)
    sys.stdout.write(text)
    return 0

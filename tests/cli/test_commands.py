"""``--help``, ``--version``, ``schema``, ``init``, ``plan`` and ``graph`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

from flowctl import __version__
from tests.conftest import REPO, run_flowctl

ETL = str(REPO / "pipelines" / "etl.yaml")


def test_help_lists_commands_and_exit_codes() -> None:
    out = run_flowctl("--help")
    assert out.returncode == 0
    for word in ("validate", "plan", "graph", "schema", "init", "130", "75"):
        assert word in out.stdout


def test_every_command_help_has_an_example() -> None:
    from flowctl.cli._app import app
    from flowctl.cli.app import register

    register()  # every command

    for command in app.registered_commands:
        name = command.name or command.callback.__name__
        out = run_flowctl(name, "--help")
        assert out.returncode == 0, name
        assert "Example:" in out.stdout, name


def test_version() -> None:
    out = run_flowctl("--version")
    assert out.stdout.strip() == f"flowctl {__version__}"


def test_unknown_command_is_usage_error() -> None:
    assert run_flowctl("frobnicate").returncode == 2


def test_schema_is_the_shipped_file() -> None:
    out = run_flowctl("schema")
    assert json.loads(out.stdout)["$id"].endswith("pipeline.schema.json")
    assert out.stdout == (REPO / "schemas" / "pipeline.schema.json").read_text()


def test_init_writes_once_and_never_overwrites(tmp_path: Path) -> None:
    out = run_flowctl("init", "nightly", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    pipeline = tmp_path / "pipelines" / "nightly.yaml"
    assert pipeline.read_text().startswith("# yaml-language-server: $schema=../schemas/pipeline.schema.json")
    assert (tmp_path / "schemas" / "pipeline.schema.json").exists()
    assert "flowctl run pipelines/nightly.yaml" in out.stdout
    assert run_flowctl("validate", cwd=tmp_path).returncode == 0
    pipeline.write_text(pipeline.read_text() + "# my edit\n")
    again = run_flowctl("init", "nightly", cwd=tmp_path)
    assert again.returncode == 2 and "never overwrites" in again.stderr
    assert pipeline.read_text().endswith("# my edit\n")
    other = run_flowctl("init", "second", cwd=tmp_path)
    assert other.returncode == 0 and "kept" in other.stdout


def test_init_rejects_bad_name(tmp_path: Path) -> None:
    out = run_flowctl("init", "Bad Name", cwd=tmp_path)
    assert out.returncode == 2 and not (tmp_path / "pipelines").exists()


def test_plan_text_and_json() -> None:
    out = run_flowctl("plan", ETL, "-p", "day=2026-11-23")
    assert out.returncode == 0, out.stderr
    assert "critical path (4 steps): extract → transform → load → report" in out.stdout
    assert "python3 scripts/extract.py 2026-11-23" in out.stdout
    data = json.loads(run_flowctl("plan", ETL, "--json", "--from", "load").stdout)
    assert data["selected"] == ["load", "report"]


def test_plan_of_invalid_pipeline_is_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\nname: p\nsteps:\n  a: {run: x, needs: [zz]}\n")
    out = run_flowctl("plan", str(path))
    assert out.returncode == 2 and f"{path}:4:23" in out.stderr


def test_plan_unknown_step_and_param_are_usage_errors() -> None:
    assert run_flowctl("plan", ETL, "--only", "lod").returncode == 2
    out = run_flowctl("plan", ETL, "-p", "dya=1")
    assert out.returncode == 2 and "did you mean 'day'?" in out.stderr


def test_graph_formats() -> None:
    assert run_flowctl("graph", ETL).stdout.startswith("extract *\n")
    assert run_flowctl("graph", ETL, "--format", "mermaid").stdout.startswith("flowchart TD")
    assert run_flowctl("graph", ETL, "--format", "dot").stdout.startswith('digraph "orders-etl"')
    data = json.loads(run_flowctl("graph", ETL, "--json").stdout)
    assert {"source": "extract", "target": "transform"} in data["links"]


def test_help_examples_run_against_the_example_pipelines() -> None:
    """Every `Example:` that names pipelines/etl.yaml with -p uses parameters etl.yaml has."""
    import re

    from flowctl.cli._app import app
    from flowctl.cli.app import register

    register()  # every command
    from flowctl.spec import load_pipeline

    params = set(load_pipeline(REPO / "pipelines" / "etl.yaml").params)
    for command in app.registered_commands:
        doc = command.callback.__doc__ or ""
        for example in re.findall(r"Example: (.*pipelines/etl\.yaml.*)", doc):
            for name in re.findall(r"-p (\w+)=", example):
                assert name in params, f"{command.callback.__name__}: {example}"

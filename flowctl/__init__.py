"""flowctl: validate, plan, diff and run YAML-defined pipelines.

The package is a pipeline of stages (see ../shared/STYLE.md): ``load`` (YAML with spans) →
``spec`` (schema check, typed model) → ``graph`` (the DAG) → ``run`` (scheduler, executors,
events) with ``state`` (SQLite) and ``observe`` (event sinks) plugged in by ``cli``.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]

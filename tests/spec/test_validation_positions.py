"""Each problem beyond the YAML level, pinned as (yaml, line, col, code)."""

from __future__ import annotations

import textwrap

import pytest

from flowctl.errors import PipelineError
from flowctl.spec import load_pipeline

HEAD = "version: 1\nname: p\n"


def problems(body: str) -> list[tuple[int, int, str]]:
    text = HEAD + textwrap.dedent(body)
    try:
        load_pipeline("p.yaml", text=text.encode())
    except PipelineError as exc:
        return [(d.span.line, d.span.col, d.code) for d in exc.diagnostics if d.span]
    return []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("steps:\n  a: {run: x, needs: [b]}\n", [(4, 23, "missing-need")]),
        ("steps:\n  a: {run: x, needs: [a]}\n", [(4, 23, "self-need")]),
        ("steps:\n  a: {run: x, needs: [b]}\n  b: {run: y, needs: [a]}\n", [(4, 23, "cycle")]),
        ("steps:\n  a: {run: x, retrys: 2}\n", [(4, 15, "schema.additionalProperties")]),
        ("steps:\n  a: {run: x, retries: -1}\n", [(4, 24, "schema.minimum")]),
        ("steps:\n  a: {run: x, retries: 100000000000000000000000}\n", [(4, 24, "schema.maximum")]),
        ("steps:\n  a: {run: x, timeout: 5 minutes}\n", [(4, 24, "schema.anyOf")]),
        ("steps:\n  a: {run: x, timeout: 31d}\n", [(4, 24, "duration")]),
        ("steps:\n  a: {run: 'echo ${{ params.nope }}'}\n", [(4, 18, "undefined-param")]),
        ("params: {n: {type: integer, default: ten}}\nsteps:\n  a: {run: x}\n", [(3, 38, "param-type")]),
        ("schedule: '61 * * * *'\nsteps:\n  a: {run: x}\n", [(3, 11, "cron")]),
        ("timezone: Europe/Berlim\nsteps:\n  a: {run: x}\n", [(3, 11, "timezone")]),
        ("steps: {}\n", [(3, 8, "schema.minProperties")]),
        ("steps:\n  bad id: {run: x}\n", [(4, 3, "schema.propertyNames")]),
        ("steps:\n  a: {run: x}\n  a: {run: y}\n", [(5, 3, "duplicate-key")]),
        ("steps:\n  a: {run: x, resources: {memory: 1.1KiB}}\n", [(4, 35, "size")]),
        ("steps:\n  a: {run: x, resources: {memory: 4 parsecs}}\n", [(4, 35, "schema.anyOf")]),
        ("steps:\n  a: {run: x, resources: {gpu: -1}}\n", [(4, 32, "schema.anyOf")]),
        ("defaults: {resources: {bad-name: 1}}\nsteps:\n  a: {run: x}\n", [(3, 24, "schema.propertyNames")]),
        ("executor: {type: local, address: 'tcp://h:8786'}\nsteps:\n  a: {run: x}\n", [(3, 34, "executor")]),
        ("executor: {type: ray}\nsteps:\n  a: {run: x}\n", [(3, 18, "schema.enum")]),
        ("executor: {type: dask, address: 'h:8786'}\nsteps:\n  a: {run: x}\n", [(3, 33, "schema.pattern")]),
    ],
)
def test_problem_positions(body: str, expected: list[tuple[int, int, str]]) -> None:
    assert problems(body) == expected


def test_all_problems_are_reported_at_once() -> None:
    found = problems("concurrency: 0\nsteps:\n  a: {run: x, needs: [zz], retrys: 1}\n  b: {run: '', timeout: 2x}\n")
    assert len(found) == 5


def test_single_quoted_expression_is_an_error_with_hint() -> None:
    with pytest.raises(PipelineError) as info:
        load_pipeline("p.yaml", text=(HEAD + "params: {d: {default: x}}\nsteps:\n  a:\n    run: echo '${{ params.d }}'\n").encode())
    [diag] = info.value.diagnostics
    assert "single quotes" in diag.message and diag.hint


def test_did_you_mean_for_needs_and_keys() -> None:
    with pytest.raises(PipelineError) as info:
        load_pipeline("p.yaml", text=(HEAD + "steps:\n  transform: {run: x}\n  load: {run: y, needs: [transfrom], tiemout: 1s}\n").encode())
    hints = sorted(d.hint or "" for d in info.value.diagnostics)
    assert hints == ["did you mean 'timeout'?", "did you mean 'transform'?"]


def test_model_applies_defaults_and_remembers_explicit_fields() -> None:
    text = HEAD + textwrap.dedent(
        """
        defaults: {retries: 2, retry_delay: 5s, timeout: 10m}
        steps:
          a: {run: x}
          b: {run: [echo, hi], needs: a, retries: 0, timeout: 1h30m}
        """
    )
    pipe = load_pipeline("p.yaml", text=text.encode())
    a, b = pipe.steps["a"], pipe.steps["b"]
    assert (a.retries, a.retry_delay, a.timeout, a.explicit) == (2, 5.0, 600.0, frozenset())
    assert (b.retries, b.timeout, b.needs, b.run) == (0, 5400.0, ("a",), ("echo", "hi"))
    assert b.explicit == {"retries", "timeout"}
    assert len(pipe.source_sha256) == 64


def test_resources_merge_over_defaults_in_bytes_and_executor_is_kept() -> None:
    text = HEAD + textwrap.dedent(
        """
        executor: {type: dask, address: "tls://scheduler:8786"}
        defaults: {resources: {memory: 1GiB, licenses: 0.5}}
        steps:
          a: {run: x}
          b: {run: y, resources: {gpu: 1, memory: 4GiB}}
        """
    )
    pipe = load_pipeline("p.yaml", text=text.encode())
    assert dict(pipe.steps["a"].resources) == {"memory": 2.0**30, "licenses": 0.5}
    assert dict(pipe.steps["b"].resources) == {"memory": 4 * 2.0**30, "licenses": 0.5, "gpu": 1.0}
    assert pipe.steps["b"].explicit == {"resources"} and pipe.steps["a"].explicit == frozenset()
    assert pipe.executor is not None
    assert (pipe.executor.type, pipe.executor.address) == ("dask", "tls://scheduler:8786")

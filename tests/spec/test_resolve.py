"""Parameters and invocations: no value can inject a command."""

from __future__ import annotations

import subprocess
import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowctl.errors import UsageError
from flowctl.spec import load_pipeline
from flowctl.spec.paramvalues import coerce_param
from flowctl.spec.resolve import parse_param_args, resolve_params, resolve_step

TEXT = textwrap.dedent(
    """
    version: 1
    name: p
    params:
      date: {default: yesterday}
      limit: {type: integer, default: 10}
      fast: {type: boolean, default: false}
      mode: {default: a, choices: [a, b]}
    env: {TOKEN: "${{ env.CALLER_TOKEN }}", DAY: "${{ params.date }}"}
    secret_env: [TOKEN]
    steps:
      shell: {run: 'printf "[%s]\\n" ${{ params.date }} "x ${{ params.date }} y" ${{ env.HOME_ISH }}'}
      argv: {run: [printf, "[%s]\\n", "${{ params.date }}"]}
      mention: {run: 'echo $FLOWCTL_PARAM_LIMIT'}
      secret: {run: 'echo ${{ env.CALLER_TOKEN }}'}
    """
)


@pytest.fixture
def pipe():  # type: ignore[no-untyped-def]
    return load_pipeline("/tmp/p.yaml", text=TEXT.encode())


def run(inv) -> str:  # type: ignore[no-untyped-def]
    return subprocess.run(inv.argv, env=dict(inv.env), capture_output=True, text=True, check=True).stdout


def test_hostile_value_is_passed_literally(pipe, tmp_path) -> None:  # type: ignore[no-untyped-def]
    victim = tmp_path / "x"
    victim.mkdir()
    value = f"a; rm -rf {victim} $(touch {tmp_path}/pwned) `id` \"'"
    params = resolve_params(pipe, {"date": value})
    shell = resolve_step(pipe, pipe.steps["shell"], params, {"HOME_ISH": "h o"})
    assert run(shell).splitlines() == [f"[{value}]", f"[x {value} y]", "[h o]"]
    argv = resolve_step(pipe, pipe.steps["argv"], params, {})
    assert run(argv) == f"[{value}]\n"
    assert victim.exists() and not (tmp_path / "pwned").exists()


def test_display_fills_values_quoted(pipe) -> None:  # type: ignore[no-untyped-def]
    params = resolve_params(pipe, {"date": "a b"})
    inv = resolve_step(pipe, pipe.steps["shell"], params, {})
    assert inv.display.startswith("printf \"[%s]\\n\" 'a b' \"x a b y\"")


def test_params_used_includes_variable_mentions(pipe) -> None:  # type: ignore[no-untyped-def]
    params = resolve_params(pipe, {})
    assert resolve_step(pipe, pipe.steps["mention"], params, {}).params_used == ("date", "limit")
    assert resolve_step(pipe, pipe.steps["argv"], params, {}).params_used == ("date",)


def test_secrets_are_masked_in_display(pipe) -> None:  # type: ignore[no-untyped-def]
    inv = resolve_step(pipe, pipe.steps["secret"], resolve_params(pipe, {}), {"CALLER_TOKEN": "s3cr3t"})
    assert inv.secrets == ("s3cr3t",)
    assert "s3cr3t" not in inv.display and "***" in inv.display
    assert inv.declared_env["TOKEN"] == "s3cr3t"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["limit=ten"], "takes integer"),
        (["limt=3"], "unknown parameter"),
        (["mode=c"], "not one of"),
        (["novalue"], "expected NAME=VALUE"),
    ],
)
def test_bad_overrides_are_usage_errors(pipe, args, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError, match=message):
        resolve_params(pipe, parse_param_args(args))


def test_typed_overrides(pipe) -> None:  # type: ignore[no-untyped-def]
    values = resolve_params(pipe, parse_param_args(["limit=3", "fast=yes", "date=x=y"]))
    assert values == {"date": "x=y", "limit": 3, "fast": True, "mode": "a"}


# -- canonical typed values (issue 12) ----------------------------------------------------------


from flowctl.spec.expr import value_text  # noqa: E402


@given(st.sampled_from(["number", "integer", "boolean", "string"]),
       st.one_of(st.integers(-10**20, 10**20), st.floats(allow_nan=False, allow_infinity=False), st.booleans(),
                 st.text(max_size=12), st.sampled_from(["10", "10.0", "1e1", "1.0e+1", " 7 ", "1_000", "-0.0", "5e-1"])))
def test_a_canonical_value_reads_back_from_its_own_text_unchanged(ptype, raw):
    """Whatever a value came from, its canonical form is a fixed point of text → value: a
    resume (which passes the recorded values back as text) gets exactly the same value."""
    ok, value = coerce_param(ptype, raw)
    if ok:
        again_ok, again = coerce_param(ptype, value_text(value))
        assert again_ok and again == value and type(again) is type(value)
        assert coerce_param(ptype, value) == (True, value)


@pytest.mark.parametrize("ptype", ["number", "integer"])
def test_every_spelling_of_ten_is_the_same_value_and_text(ptype):
    spellings = [10, 10.0, "10", "10.0", "1e1", "1.0e+1", "+10", "1_0", " 10 "]
    values = {coerce_param(ptype, s) for s in spellings}
    assert values == {(True, 10)}
    assert {value_text(v) for _, v in values} == {"10"}
    assert coerce_param(ptype, "10.5") == ((True, 10.5) if ptype == "number" else (False, "10.5"))

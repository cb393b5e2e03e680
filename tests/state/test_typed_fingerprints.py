"""Typed values fingerprint consistently (issue 12): whatever a param's type and however its
value is spelled (YAML ``10`` / ``10.0`` / ``1e1``, ``-p`` given or not), resuming a finished
run runs nothing, and running again finds every step with ``outputs`` up to date.

Over many generated pipelines this goes through the real decision layer in this process: the
loader, param resolution, the session (lock, SQLite store, key, fingerprints, decisions), the
real scheduler and store recording a run, with an executor that writes each step's output
instead of starting a process. A handful of real ``flowctl run`` processes check the same
promise end to end.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowctl.run.events import StepStatus
from flowctl.run.options import RunOptions
from flowctl.run.ports import AttemptSpec
from flowctl.run.prepare import prepare_run
from flowctl.run.scheduler import Scheduler, new_run_id
from flowctl.state.assess import ResumeTarget, check_resume_params, resume_target
from flowctl.state.decide import Verdict
from flowctl.state.session import open_session
from tests.conftest import run_flowctl
from tests.run.fakes import InlineExecutor


class WritingExecutor(InlineExecutor):
    """Runs an attempt by writing what it would see (argv and its FLOWCTL_PARAM_ / declared
    variables) into ``out_<step>.txt``: the step's declared output."""

    def started(self, spec: AttemptSpec) -> None:
        seen = {k: v for k, v in spec.env.items() if k.startswith(("FLOWCTL_PARAM_", "V_"))}
        Path(spec.cwd, f"out_{spec.key.step}.txt").write_text(json.dumps([spec.argv, seen], sort_keys=True))


def run_in_process(path: Path, given: Mapping[str, str], *, resume: bool) -> tuple[set[str], dict[str, Verdict]]:
    """What ``flowctl run [--resume] -p …`` decides and runs: (steps run, each step's verdict)."""
    state = path.parent / ".flowctl"
    if resume:
        target = resume_target(state, str(path), None, given, (), ())
    else:
        target = ResumeTarget(None, dict(given), (), (), False, (), dict(given), False)
    prepared = prepare_run(path, overrides=target.params, environ={})
    check_resume_params(target, prepared.pipeline, prepared.params)
    run_id = new_run_id()
    with open_session(state, prepared, run_id, environ={}, resume=target.record) as session:
        verdicts = {sid: d.verdict for sid, d in session.assessment.decisions.items()}
        if target.record is not None and session.nothing_to_do:
            return set(), verdicts
        plan = session.plan()
        scheduler = Scheduler(
            prepared.plan, prepared.invocations, WritingExecutor(), session.store, lambda event: None,
            RunOptions(
                logs_dir=str(state / "runs" / run_id), environ={}, reuse=plan.reuse,
                fingerprints=plan.fingerprints, params=dict(prepared.params),
                resumed_from=plan.resumed_from, handle_signals=False,
            ),
            run_id=run_id,
        )
        result = scheduler.run()
    return {sid for sid, status in result.steps.items() if status is StepStatus.SUCCEEDED}, verdicts


# -- generated pipelines ----------------------------------------------------------------------

# (YAML spelling of a default, -p spellings of the same or another value) per type.
NUMBERS = ["10", "10.0", "1e1", "1.0e+1", "0.5", "5e-1", "-2.25", "3", "1_000"]
INTEGERS = ["10", "10.0", "-3", "0", "1_000", "+7"]
BOOLEANS = ["true", "false", "yes", "no", "on", "off", "True", "1", "0"]
STRINGS = ["abc", "10", "10.0", "1e1", "yes", "'quoted x'", "''", "a b;c"]


@st.composite
def params(draw: st.DrawFn) -> tuple[str, str, str | None]:
    """(YAML of one param spec, its type, a -p value or None)."""
    kind = draw(st.sampled_from(["string", "integer", "number-int", "number-float", "boolean", "choices"]))
    spell = {
        "string": STRINGS, "integer": INTEGERS, "number-int": ["10", "10.0", "1e1", "1.0e+1", "3", "1_000"],
        "number-float": ["0.5", "5e-1", "-2.25", "2.5e-3"], "boolean": ["true", "false", "yes", "no", "on", "off"],
    }
    if kind == "choices":
        ptype = draw(st.sampled_from(["number", "string"]))
        options = ["10", "0.5", "3"] if ptype == "number" else ["red", "10", "green"]
        default = draw(st.sampled_from(options))
        body = f"{{type: {ptype}, default: {default}, choices: [{', '.join(options)}]}}"
        value = draw(st.none() | st.sampled_from(
            {"10": ["10", "10.0", "1e1"], "0.5": ["0.5", "5e-1", ".5"], "3": ["3", "3.0"]}.get(default, [default])
            if ptype == "number" else options
        ))
        return body, ptype, value
    ptype = kind.partition("-")[0]
    required = draw(st.booleans()) and draw(st.booleans())  # about one in four has no default
    default = draw(st.sampled_from(spell[kind]))
    body = f"{{type: {ptype}}}" if required else f"{{type: {ptype}, default: {default}}}"
    pool = {"string": STRINGS[:-1], "integer": INTEGERS, "number": NUMBERS, "boolean": BOOLEANS}[ptype]
    choice = st.sampled_from(pool).map(lambda v: v.strip("'"))
    value = draw(choice) if required else draw(st.none() | choice)
    return body, ptype, value


USES = [
    "run: 'echo ${{{{ params.{p} }}}}'",
    "run: [echo, '${{{{ params.{p} }}}}']",
    "run: 'echo \"$V_{p}\"'\n    env: {{V_{p}: 'x${{{{ params.{p} }}}}'}}",
    "run: 'echo \"$FLOWCTL_PARAM_{P}\"'",
]


@st.composite
def pipelines(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    """(pipeline YAML, the -p options given)."""
    specs = draw(st.lists(params(), min_size=1, max_size=4))
    lines = ["version: 1", "name: typed", "env: {RATE: 10, RATIO: 10.0, FLAG: yes}", "params:"]
    given: dict[str, str] = {}
    for i, (body, _, value) in enumerate(specs):
        lines.append(f"  p{i}: {body}")
        if value is not None:
            given[f"p{i}"] = value
    lines.append("steps:")
    previous = None
    for i in range(len(specs)):
        use = draw(st.sampled_from(USES)).format(p=f"p{i}", P=f"P{i}")
        lines.append(f"  s{i}:\n    {use}\n    outputs: [out_s{i}.txt]")
        if previous is not None and draw(st.booleans()):
            lines.append(f"    needs: [{previous}]")
        previous = f"s{i}"
    lines.append("  tail:\n    run: 'echo \"$RATE $RATIO $FLAG\"'\n    needs: [" + ", ".join(f"s{i}" for i in range(len(specs))) + "]")
    return "\n".join(lines) + "\n", given


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pipelines())
def test_resuming_a_finished_run_runs_nothing_and_running_again_is_up_to_date(case):
    text, given = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "pipeline.yaml")
        path.write_text(text)
        ran, _ = run_in_process(path, given, resume=False)
        steps = {line.split(":")[0].strip() for line in text.splitlines() if line.startswith("  s") or line == "  tail:"}
        assert ran == steps
        # Resume the finished run, with and without the -p options given again.
        for again in ({}, given):
            ran, verdicts = run_in_process(path, again, resume=True)
            assert ran == set(), (text, again, verdicts)
            assert set(verdicts.values()) == {Verdict.REUSED}
        # A new run: every step with outputs is up to date; only `tail` (no outputs) runs.
        ran, verdicts = run_in_process(path, given, resume=False)
        assert ran == {"tail"}, (text, verdicts)
        assert all(v is Verdict.UP_TO_DATE for s, v in verdicts.items() if s != "tail")


# -- end to end: a few real runs ----------------------------------------------------------------

E2E = [
    ("number, integer default", "{type: number, default: 10}", []),
    ("number, -p 10.0 over a 1e1 default", "{type: number, default: 1e1}", ["-p", "amount=10.0"]),
    ("number, float default", "{type: number, default: 0.5}", ["-p", "amount=5e-1"]),
    ("integer written 10.0", "{type: integer, default: 10.0}", []),
    ("boolean, -p yes", "{type: boolean, default: false}", ["-p", "amount=yes"]),
    ("choices, -p 1e1", "{type: number, default: 10, choices: [10, 0.5]}", ["-p", "amount=1e1"]),
]


@pytest.mark.parametrize("spec,args", [(s, a) for _, s, a in E2E], ids=[n for n, _, _ in E2E])
def test_real_runs_resume_and_rerun_typed_params_without_running_again(tmp_path, spec, args):
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        "version: 1\nname: typed\n"
        f"params:\n  amount: {spec}\n"
        "steps:\n"
        "  filter:\n    run: echo ${{ params.amount }} > out.txt; echo filter >> ledger.txt\n    outputs: [out.txt]\n"
        "  report:\n    run: cat out.txt > report.txt; echo \"$FLOWCTL_PARAM_AMOUNT\" >> ledger.txt\n"
        "    needs: [filter]\n    outputs: [report.txt]\n"
    )
    first = run_flowctl("run", str(path), *args, cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    ledger = (tmp_path / "ledger.txt").read_text()
    resumed = run_flowctl("run", str(path), "--resume", *args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "nothing to do: every step of run" in resumed.stdout and "param amount changed" not in resumed.stdout
    again = run_flowctl("run", str(path), *args, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing to run: all 2 step(s) up to date" in again.stdout
    assert (tmp_path / "ledger.txt").read_text() == ledger  # nothing ran again
    assert os.path.getsize(tmp_path / "out.txt") > 0

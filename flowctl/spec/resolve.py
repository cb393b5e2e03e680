"""Parameter values and each step's concrete invocation (argv, env, cwd) for one run.

``resolve_params`` merges defaults with ``-p name=value`` overrides, checking types.
``resolve_step`` turns a step into an ``Invocation``: the argv to execute (expressions become
quoted variable references, so no value is ever parsed by the shell), the environment flowctl
adds over the caller's, the absolute working folder, and a display form with values filled in
and secrets masked. Shared by ``run``, ``plan``, ``--dry-run`` and the fingerprint.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from flowctl.errors import UsageError
from flowctl.masking import MASK, mask_text, short_secret_names
from flowctl.spec import expr
from flowctl.spec.model import Command, ParamValue, Pipeline, Step
from flowctl.spec.paramvalues import coerce_param
from flowctl.spec.schema import suggest

SHELL = "/bin/sh"
_PARAM_MENTION = re.compile(re.escape(expr.PARAM_VAR_PREFIX) + r"([A-Za-z0-9_]+)")


@dataclass(frozen=True, slots=True)
class Invocation:
    """One step's command ready to start: argv, environment, folder, masked display text."""

    argv: tuple[str, ...]
    env: Mapping[str, str]  # added over the caller's environment (secrets named in secret_env included)
    declared_env: Mapping[str, str]  # pipeline + step ``env:`` after substitution
    cwd: str  # absolute
    display: str  # values filled in and shell-quoted, secrets masked
    params_used: tuple[str, ...]
    secrets: tuple[str, ...]  # secret values to mask, longest first
    inputs: tuple[str, ...] = ()  # declared inputs (paths or globs) with values filled in, relative to cwd
    outputs: tuple[str, ...] = ()  # declared outputs with values filled in, relative to cwd
    short_secrets: tuple[str, ...] = ()  # names of secrets masked only as whole words (too short)


def parse_param_args(items: Sequence[str]) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` → ``{"a": "1", "b": "x=y"}``. Raises UsageError for a missing ``=``."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"-p {item!r}: expected NAME=VALUE", hint="e.g. -p date=2026-11-24")
        out[name.strip()] = value
    return out


def resolve_params(pipeline: Pipeline, overrides: Mapping[str, str]) -> dict[str, ParamValue]:
    """Every parameter's value for a run. Raises UsageError (unknown, mistyped or missing)."""
    for name in overrides:
        if name not in pipeline.params:
            guess = suggest(name, pipeline.params)
            known = ", ".join(pipeline.params) or "none"
            raise UsageError(f"unknown parameter {name!r} for pipeline {pipeline.name!r}",
                             hint=f"did you mean {guess!r}?" if guess else f"its parameters: {known}")
    values: dict[str, ParamValue] = {}
    for name, param in pipeline.params.items():
        if name in overrides:
            ok, value = coerce_param(param.type.value, overrides[name])
            if not ok:
                raise UsageError(f"-p {name}={overrides[name]!r}: parameter {name!r} takes {param.type.value} values",
                                 hint=f"e.g. -p {name}={_example(param.type.value)}")
            if param.choices and value not in param.choices:
                raise UsageError(f"-p {name}={overrides[name]!r} is not one of {', '.join(map(str, param.choices))}")
            values[name] = value
        elif param.default is None:
            raise UsageError(f"parameter {name!r} has no default: give it with -p {name}=VALUE")
        else:
            values[name] = param.default
    return values


def _example(ptype: str) -> str:
    return {"integer": "10", "number": "0.5", "boolean": "true"}.get(ptype, "text")


def resolve_step(pipeline: Pipeline, step: Step, params: Mapping[str, ParamValue],
                 environ: Mapping[str, str]) -> Invocation:
    """The concrete invocation of ``step`` with these parameter values and caller environment
    (for many steps of one pipeline, a ``Resolver`` computes what they share once)."""
    return Resolver(pipeline, params, environ).step(step)


def resolve_remediation(pipeline: Pipeline, step: Step, params: Mapping[str, ParamValue],
                        environ: Mapping[str, str]) -> Invocation | None:
    """The invocation of ``step``'s ``remediate`` command, or None when it has none."""
    return Resolver(pipeline, params, environ).remediation(step)


class Resolver:
    """Resolves the steps of one pipeline for one set of parameter values and caller
    environment. What every step shares (each parameter's text, its ``FLOWCTL_PARAM_*``
    variable, the names those variables mention) is computed once, not once per step (issue 12:
    100,000-step pipelines)."""

    def __init__(self, pipeline: Pipeline, params: Mapping[str, ParamValue], environ: Mapping[str, str]) -> None:
        self.pipeline = pipeline
        self.params = params
        self.environ = environ
        self._values = _param_values(params)
        self._param_env = {expr.param_var(name): text for (_, name), text in self._values.items()}
        self._by_upper = {name.upper(): name for name in params}

    def step(self, step: Step) -> Invocation:
        """The concrete invocation of ``step``."""
        return self._invocation(step, step.run, step.env)

    def remediation(self, step: Step) -> Invocation | None:
        """The invocation of ``step``'s ``remediate`` command, or None when it has none."""
        if step.remediate is None:
            return None
        return self._invocation(step, step.remediate.run, {**step.env, **step.remediate.env})

    def _invocation(self, step: Step, run: Command, step_env: Mapping[str, str]) -> Invocation:
        pipeline, environ = self.pipeline, self.environ
        filler = _Filler(self._values, environ)
        values, used, plain = filler.values, filler.used, filler.plain
        helper: dict[str, str] = {}

        declared: dict[str, str] = {}
        for source in (pipeline.env, step_env):
            for key, value in source.items():
                declared[key] = plain(value)
        folder = filler.folder(pipeline, step.cwd)
        inputs = tuple(map(plain, step.inputs))
        outputs = tuple(map(plain, step.outputs))

        if isinstance(run, str):
            refs = expr.find_refs(run, shell=True)
            filler.note(refs)
            argv: tuple[str, ...] = (SHELL, "-c", expr.fill_shell(run, refs))
            display = expr.show_shell(run, refs, values)
            for r in refs:
                if r.source == "env":
                    helper[r.var] = values[("env", r.name)]
            texts = [run]
        else:
            argv = tuple(plain(item) for item in run)
            display = shlex.join(argv)
            texts = list(run)

        by_upper = self._by_upper
        for text in texts + list(declared.values()):
            if expr.PARAM_VAR_PREFIX in text:
                for m in _PARAM_MENTION.finditer(text):
                    if m.group(1) in by_upper:
                        used.add(by_upper[m.group(1)])

        env = dict(declared)
        env.update(self._param_env)
        env.update(helper)

        named = [(name, declared.get(name) or environ.get(name) or "") for name in pipeline.secrets_for(step)]
        ordered = tuple(sorted({value for _, value in named if value}, key=len, reverse=True))
        display = mask_text(display, ordered) if ordered else display
        for name, value in named:
            if value:
                # A secret named in `secret_env` but set only in the caller's environment is passed
                # on explicitly: an executor that does not inherit this process's environment (a
                # Dask worker) must still give it to the step (issue 16).
                env.setdefault(name, value)
        return Invocation(
            argv=argv,
            env=MappingProxyType(env),
            declared_env=MappingProxyType(declared),
            cwd=folder,
            display=display,
            params_used=tuple(sorted(used)),
            secrets=ordered,
            short_secrets=short_secret_names(named),
            inputs=inputs,
            outputs=outputs,
        )


class _Filler:
    """Fills expressions in plain text (argv items, env values, cwd, inputs, outputs) and notes
    which parameters and caller variables were used. One filler serves an invocation and the
    path checks of ``spec/preflight.py``."""

    def __init__(self, values: Mapping[tuple[str, str], str], environ: Mapping[str, str]) -> None:
        self.values: dict[tuple[str, str], str] = dict(values)  # ("params", NAME) → its text; env, item added
        self.environ = environ
        self.used: set[str] = set()

    def note(self, refs: list[expr.Ref]) -> None:
        for r in refs:
            if r.source == "params":
                if ("params", r.name) not in self.values:
                    raise _NoValue(r.name)
                self.used.add(r.name)
            elif r.source == "env":
                self.values[("env", r.name)] = self.environ.get(r.name, "")
            else:  # item and batch values exist per item: ``run/foreach.py`` fills them in
                self.values[(r.source, r.name)] = expr.ref_text(r)

    def plain(self, text: str) -> str:
        if "${{" not in text:  # most values hold no expression: nothing to note or fill
            return text
        refs = expr.find_refs(text)
        self.note(refs)
        return expr.fill_plain(text, refs, self.values)

    def folder(self, pipeline: Pipeline, cwd: str | None) -> str:
        """The absolute working folder for ``cwd`` (relative to the pipeline file's folder)."""
        return pipeline.base_dir if cwd is None else os.path.normpath(os.path.join(pipeline.base_dir, self.plain(cwd)))


def _param_values(params: Mapping[str, ParamValue]) -> dict[tuple[str, str], str]:
    """Each parameter's text (the one rendering of a typed value) under ("params", NAME)."""
    return {("params", k): expr.value_text(v) for k, v in params.items()}


class _NoValue(KeyError):
    """A parameter without a value (required and not given): only ``step_paths`` meets one."""


@dataclass(frozen=True, slots=True)
class StepPaths:
    """Where a step runs and the paths it declares, with values filled in."""

    cwd: str  # absolute
    inputs: tuple[str, ...]  # relative to cwd, as declared
    outputs: tuple[str, ...]


def step_paths(pipeline: Pipeline, step: Step, params: Mapping[str, ParamValue],
               environ: Mapping[str, str]) -> StepPaths | None:
    """The step's folder, inputs and outputs for these values; None when one of them uses a
    parameter that has no value here (``validate`` of a pipeline with a required parameter)."""
    filler = _Filler(_param_values(params), environ)
    try:
        return StepPaths(filler.folder(pipeline, step.cwd), tuple(filler.plain(p) for p in step.inputs),
                         tuple(filler.plain(p) for p in step.outputs))
    except _NoValue:
        return None


__all__ = [
    "MASK", "SHELL", "Invocation", "Resolver", "StepPaths", "parse_param_args", "resolve_params",
    "resolve_remediation", "resolve_step", "step_paths",
]

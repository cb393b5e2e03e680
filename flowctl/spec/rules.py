"""The named rules that look past a pipeline's structure, and how serious each is where.

A rule's name is the ``code`` of the diagnostics it gives; it is printed with them
(``warning[unset-env]``) and documented in ``docs/validation-rules.md``. The same finding can be a
warning in one command and an error in another: an unset secret is worth a warning in CI's
``validate`` (which often runs without production secrets) and a refusal from ``run``. This
module says which, per ``Stage``; ``--strict`` turns every warning of ``validate`` and ``plan``
into an error. The checks themselves live in ``spec/lint.py`` (the file alone) and
``spec/preflight.py`` (the file against this machine: environment, folders, files).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

from flowctl.errors import Diagnostic, Severity


class Stage(enum.Enum):
    """Which command is asking: how serious a finding is depends on it."""

    CHECK = "check"  # validate, plan
    RUN = "run"  # run, run --dry-run
    INSTALL = "install"  # schedule install


@dataclass(frozen=True, slots=True)
class Rule:
    """A named rule; ``severities`` says in which stages it is checked and how serious it is."""

    name: str
    summary: str
    severities: Mapping[Stage, Severity]


_W, _E = Severity.WARNING, Severity.ERROR

NESTED_SHELL = "nested-shell-substitution"
UNSET_ENV = "unset-env"
UNSET_SECRET = "unset-secret"
MISSING_CWD = "missing-cwd"
MISSING_INPUT = "missing-input"

RULES: Mapping[str, Rule] = MappingProxyType({
    rule.name: rule
    for rule in (
        Rule(NESTED_SHELL, "a substitution lands in a script that a nested interpreter parses",
             {Stage.CHECK: _W}),
        Rule(UNSET_ENV, "${{ env.NAME }} names a variable that is not set",
             {Stage.CHECK: _W, Stage.RUN: _W, Stage.INSTALL: _W}),
        Rule(UNSET_SECRET, "a secret_env value is not set",
             {Stage.CHECK: _W, Stage.RUN: _E, Stage.INSTALL: _E}),
        Rule(MISSING_CWD, "a step's cwd does not exist and no step declares it among its outputs",
             {Stage.CHECK: _E, Stage.RUN: _E}),
        Rule(MISSING_INPUT, "a declared input exists nowhere and no step declares it among its outputs",
             {Stage.CHECK: _W, Stage.RUN: _E}),
    )
})


def checked(rule: str, stage: Stage) -> bool:
    """Whether ``rule`` is checked at all in ``stage``."""
    return stage in RULES[rule].severities


def severity(rule: str, stage: Stage) -> Severity:
    """How serious a finding of ``rule`` is in ``stage``. Raises KeyError for a rule not checked there."""
    return RULES[rule].severities[stage]


def strict(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """``--strict``: every warning becomes an error (the rule name stays with it)."""
    return [replace(d, severity=Severity.ERROR) if d.severity is Severity.WARNING else d for d in diagnostics]


def errors(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diagnostics if d.severity is Severity.ERROR]


def warnings(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diagnostics if d.severity is Severity.WARNING]


__all__ = [
    "MISSING_CWD",
    "MISSING_INPUT",
    "NESTED_SHELL",
    "RULES",
    "UNSET_ENV",
    "UNSET_SECRET",
    "Rule",
    "Stage",
    "checked",
    "errors",
    "severity",
    "strict",
    "warnings",
]

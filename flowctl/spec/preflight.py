"""A valid pipeline checked against this machine: variables it reads, folders and files it needs.

Rules (named in ``spec/rules.py``, severity by command):

* ``unset-env``: ``${{ env.NAME }}`` where ``NAME`` is not set (it would silently become empty);
* ``unset-secret``: the same for a secret (an ``env:`` entry named in ``secret_env`` that takes
  its value from an unset variable), or a ``secret_env`` name that no ``env:`` declares and the
  environment does not set;
* ``missing-cwd``: a step's ``cwd`` that does not exist, unless a step declares it (or something
  inside it) among its ``outputs``;
* ``missing-input``: a declared input that exists nowhere and that no step declares among its
  outputs.

Each unset variable is reported once, at its first use. Paths are resolved with the values
given (parameter defaults, ``-p``); a step whose paths use a parameter without a value is not
checked. Nothing here starts a process or writes a file; the deciding what to do with the
diagnostics (print, refuse) is the caller's.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flowctl.errors import Diagnostic
from flowctl.load.yamlsource import Document
from flowctl.spec import expr
from flowctl.spec.model import ParamValue, Pipeline, Step
from flowctl.spec.places import expression_places, span_within
from flowctl.spec.resolve import StepPaths, step_paths
from flowctl.spec.rules import MISSING_CWD, MISSING_INPUT, UNSET_ENV, UNSET_SECRET, Stage, checked, severity
from flowctl.spec.schema import dotted


@dataclass(frozen=True, slots=True)
class _Use:
    path: list[Any]
    text: str
    start: int
    end: int
    secret_as: str | None  # the secret_env name it feeds, None when not a secret


class _Produced:
    """What the steps declare among their outputs, as absolute paths, for ancestor lookups."""

    def __init__(self, paths: Mapping[str, StepPaths | None]) -> None:
        self.exact: set[str] = set()  # outputs (globs: the folder before the first wildcard)
        self.ancestors: set[str] = set()  # every folder above an output
        for resolved in paths.values():
            if resolved is None:
                continue
            for out in resolved.outputs:
                path = _concrete(os.path.join(resolved.cwd, out))
                self.exact.add(path)
                parent = os.path.dirname(path)
                while parent and parent not in self.ancestors and parent != os.path.dirname(parent):
                    self.ancestors.add(parent)
                    parent = os.path.dirname(parent)

    def covers(self, path: str) -> bool:
        """Whether a step declares ``path``, a folder holding it, or something inside it."""
        path = _concrete(path)
        if path in self.exact or path in self.ancestors:
            return True
        parent = os.path.dirname(path)
        while parent != os.path.dirname(parent):
            if parent in self.exact:
                return True
            parent = os.path.dirname(parent)
        return False


def _concrete(path: str) -> str:
    """``path`` normalised, cut before its first wildcard component (``out/*/x.csv`` → ``out``)."""
    path = os.path.normpath(path)
    if not glob.has_magic(path):
        return path
    parts = path.split(os.sep)
    keep = []
    for part in parts:
        if glob.has_magic(part):
            break
        keep.append(part)
    return os.sep.join(keep) or os.sep


def _declared(step: Step) -> set[str]:
    """The env names a step declares itself (its remediation's included)."""
    return set(step.env) | set(step.remediate.env if step.remediate is not None else ())


def _exists(pattern: str) -> bool:
    if glob.has_magic(pattern):
        return next(glob.iglob(pattern, recursive=True), None) is not None
    return os.path.exists(pattern)


class _Checker:
    def __init__(self, pipeline: Pipeline, doc: Document, stage: Stage, params: Mapping[str, ParamValue],
                 environ: Mapping[str, str], selected: Collection[str]) -> None:
        self.pipeline, self.doc, self.stage = pipeline, doc, stage
        self.params, self.environ, self.selected = params, environ, selected
        self.out: list[Diagnostic] = []
        self._paths: dict[str, StepPaths | None] = {}
        self._produced: _Produced | None = None

    def add(self, rule: str, path: list[Any], message: str, hint: str, *, text: str | None = None,
            start: int = 0, end: int = 0) -> None:
        span = span_within(self.doc, path, text, start, end - start) if text is not None else self.doc.span(path)
        self.out.append(Diagnostic(span, message, hint=hint, code=rule, path=dotted(path),
                                   severity=severity(rule, self.stage)))

    def paths(self, sid: str) -> StepPaths | None:
        if sid not in self._paths:
            self._paths[sid] = step_paths(self.pipeline, self.pipeline.steps[sid], self.params, self.environ)
        return self._paths[sid]

    def produced(self, path: str) -> bool:
        if self._produced is None:
            self._produced = _Produced({sid: self.paths(sid) for sid in self.pipeline.steps})
        return self._produced.covers(path)

    # -- variables ------------------------------------------------------------------------

    def variables(self) -> None:
        if "env." not in self.doc.text:
            return  # no ${{ env.X }} anywhere: the fast path on large files
        uses: dict[str, list[_Use]] = {}
        data = self.doc.data if isinstance(self.doc.data, dict) else {}
        for path, text, _ in expression_places(data):
            if "${{" not in text or (path[0] == "steps" and path[1] not in self.selected):
                continue
            for ref in expr.find_refs(text):
                if ref.source == "env" and ref.name not in self.environ:
                    uses.setdefault(ref.name, []).append(
                        _Use(path, text, ref.start, ref.end, self._secret(path, ref.name)))
        for name, found in uses.items():
            secret = next((u for u in found if u.secret_as is not None), None)
            first = secret or found[0]
            more = f" (and {len(found) - 1} more place(s))" if len(found) > 1 else ""
            if secret is not None:
                if not checked(UNSET_SECRET, self.stage):
                    continue
                self.add(UNSET_SECRET, first.path,
                         f"${{{{ env.{name} }}}} is not set, so the secret {secret.secret_as} would be empty{more}",
                         self._set_hint(name), text=first.text, start=first.start, end=first.end)
            elif checked(UNSET_ENV, self.stage):
                self.add(UNSET_ENV, first.path, f"${{{{ env.{name} }}}} is not set, so it would be empty{more}",
                         self._set_hint(name), text=first.text, start=first.start, end=first.end)

    def _secret(self, path: list[Any], var: str) -> str | None:
        """The secret_env name that the value at ``path`` feeds (None: not a secret)."""
        pipeline = self.pipeline
        if path[0] == "env":
            key = str(path[1])
            if key in pipeline.secret_env or any(key in pipeline.steps[s].secret_env for s in self.selected):
                return key
        elif path[0] == "steps":
            step = pipeline.steps[path[1]]
            secrets = pipeline.secrets_for(step)
            in_env = path[2] == "env" or path[2:4] == ["remediate", "env"]
            if in_env and str(path[-1]) in secrets:
                return str(path[-1])
            if var in secrets:
                return var
        elif var in pipeline.secret_env:
            return var
        return None

    def _set_hint(self, name: str) -> str:
        if self.stage is Stage.INSTALL:
            return (f"set {name} where cron will run flowctl (cron does not see your shell's variables), "
                    "then install again")
        if self.stage is Stage.CHECK:
            return f"set {name} (export {name}=…) before `flowctl run`; `--strict` makes this an error"
        return f"set {name} (export {name}=…), or remove the reference"

    def secrets(self) -> None:
        """Secret names that the environment must provide and does not: a step's own
        ``secret_env`` name that neither it nor the pipeline declares under ``env:``, or a
        pipeline-wide one that no ``env:`` anywhere declares (a name some other step declares is
        that step's secret, not one this step expects from the environment)."""
        if not checked(UNSET_SECRET, self.stage):
            return
        pipeline = self.pipeline
        declared_somewhere = set(pipeline.env).union(*(_declared(step) for step in pipeline.steps.values()))
        seen: set[str] = set()
        for sid in self.selected:
            step = pipeline.steps[sid]
            for name in sorted(pipeline.secrets_for(step)):
                if name in seen or name in pipeline.env or name in _declared(step) or name in self.environ:
                    continue
                own = name in step.secret_env
                if not own and name in declared_somewhere:
                    continue
                seen.add(name)
                if own:
                    path = ["steps", sid, "secret_env", self._index(["steps", sid, "secret_env"], name)]
                else:
                    path = ["secret_env", self._index(["secret_env"], name)]
                self.add(UNSET_SECRET, path,
                         f"the secret {name} is not set: no env: entry declares it and the environment has none",
                         self._set_hint(name))

    def _index(self, path: list[Any], name: str) -> int:
        node: Any = self.doc.data
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        return node.index(name) if isinstance(node, list) and name in node else 0

    # -- folders and files ----------------------------------------------------------------

    def folders(self) -> None:
        if not checked(MISSING_CWD, self.stage):
            return
        for sid in self.selected:
            step = self.pipeline.steps[sid]
            if step.cwd is None:
                continue
            resolved = self.paths(sid)
            if resolved is None or os.path.isdir(resolved.cwd):
                continue
            shown = self._shown(resolved.cwd)
            if os.path.exists(resolved.cwd):
                self.add(MISSING_CWD, ["steps", sid, "cwd"], f"step {sid!r}: cwd {shown} is a file, not a folder",
                         "point `cwd:` at a folder (relative to the pipeline file's folder)")
            elif not self.produced(resolved.cwd):
                self.add(MISSING_CWD, ["steps", sid, "cwd"], f"step {sid!r}: cwd {shown} does not exist",
                         "create it, fix `cwd:` (relative to the pipeline file's folder), or add it to the "
                         "`outputs:` of the step that creates it")

    def _shown(self, path: str) -> str:
        """``path`` as the user wrote it: relative to the pipeline file's folder."""
        return os.path.relpath(path, self.pipeline.base_dir)

    def inputs(self) -> None:
        if not checked(MISSING_INPUT, self.stage):
            return
        for sid in self.selected:
            step = self.pipeline.steps[sid]
            if not step.inputs:
                continue
            resolved = self.paths(sid)
            if resolved is None:
                continue
            for i, pattern in enumerate(resolved.inputs):
                path = os.path.join(resolved.cwd, pattern)
                if _exists(path) or self.produced(path):
                    continue
                where = self._shown(path)
                shown = pattern if where == os.path.normpath(pattern) else f"{pattern} ({where} from the pipeline's folder)"
                self.add(MISSING_INPUT, ["steps", sid, "inputs", i],
                         f"step {sid!r}: input {shown} exists nowhere and no step declares it among its outputs",
                         "create it, fix the path (relative to the step's cwd), or add it to the `outputs:` of "
                         "the step that writes it")


def preflight(pipeline: Pipeline, doc: Document, *, stage: Stage, params: Mapping[str, ParamValue],
              environ: Mapping[str, str], selected: Sequence[str] | None = None) -> list[Diagnostic]:
    """Every environment finding for ``selected`` steps (default: all), with the severity
    ``stage`` gives its rule. ``doc`` is the document ``pipeline`` was built from (for spans)."""
    chosen: Collection[str] = pipeline.steps if selected is None else frozenset(selected)
    checker = _Checker(pipeline, doc, stage, params, environ, chosen)
    checker.variables()
    checker.secrets()
    checker.folders()
    checker.inputs()
    return sorted(checker.out, key=lambda d: (d.span.line, d.span.col) if d.span else (0, 0))


def sensitive(text: str) -> bool:
    """Whether a pipeline's text has anything ``preflight`` looks at (a cheap test on the text,
    so that ``validate`` builds no model for files that need none; substring tests, because a
    regular expression over a large file costs more than the rest of this module)."""
    return "cwd" in text or "inputs" in text or "secret_env" in text or ("env." in text and "${{" in text)


__all__ = ["preflight", "sensitive"]

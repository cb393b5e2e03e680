"""Validating many pipeline files at once: the core of ``flowctl validate``.

Files are parsed and checked without building the model (parsing and checking is all most files
need, and the fastest path on a 10,000-step file). Then the warnings: the nested-shell rule
(``spec/lint.py``) on the document, and, when the file has anything they look at, the checks
against this machine (``spec/preflight.py``) on the model. With ``-p`` overrides the values are
checked against the parameters' types and used for those checks. ``strict`` makes every warning
an error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from flowctl.errors import Diagnostic, Findings, PipelineError, Severity, Span, UsageError
from flowctl.load.yamlsource import Document
from flowctl.spec import Source, check_document, discover_pipelines, pipeline_files, read_document
from flowctl.spec.model import ParamValue, Pipeline
from flowctl.spec.rules import Stage
from flowctl.spec.rules import strict as make_strict


@dataclass(frozen=True, slots=True)
class FileResult:
    """One file's findings: errors make it invalid, warnings do not."""

    file: str
    steps: int
    diagnostics: tuple[Diagnostic, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def error(self) -> PipelineError | None:
        """The file's errors (and only those) as one PipelineError, or None when it is valid."""
        errors = [d for d in self.diagnostics if d.severity is Severity.ERROR]
        return PipelineError(self.file, errors, self.sources) if errors else None

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.WARNING)


@dataclass(frozen=True, slots=True)
class ValidationReport:
    results: tuple[FileResult, ...]
    errors: tuple[PipelineError, ...] = field(default=())

    @property
    def warnings(self) -> int:
        return sum(len(r.warnings) for r in self.results)


def expand_paths(paths: Sequence[os.PathLike[str] | str]) -> list[Path]:
    """Files as given, folders expanded to their pipeline files; none given: discovery.

    Raises UsageError for a missing path or when no pipeline file is found.
    """
    if not paths:
        return [_relative(p) for p in discover_pipelines()]
    out = expand_folders(paths)
    for path in out:
        if not path.exists():
            raise UsageError(f"{path}: no such file or folder")
    return out


def expand_folders(paths: Sequence[os.PathLike[str] | str]) -> list[Path]:
    """``paths`` with each folder replaced by its pipeline files (other paths as given, so a
    file that exists only at a git ref stays usable). Raises UsageError for a folder without any."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = pipeline_files(path)
            if not found:
                raise UsageError(f"no pipeline files (*.yaml, *.yml) under {path}")
            out.extend(found)
        else:
            out.append(path)
    return out


def _relative(path: Path) -> Path:
    """``path`` relative to the current folder when it is inside it (shorter messages)."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def validate_paths(paths: Sequence[os.PathLike[str] | str], *, params: Sequence[str] = (),
                   strict: bool = False, environ: Mapping[str, str] | None = None) -> ValidationReport:
    """Check every file; never raises for an invalid file (it is in the report)."""
    env = os.environ if environ is None else environ
    results: list[FileResult] = []
    for path in expand_paths(paths):
        doc, _ = read_document(path)
        diags = check_document(doc)
        steps = len(doc.data.get("steps") or {}) if isinstance(doc.data, dict) and isinstance(doc.data.get("steps"), dict) else 0
        if not diags:
            diags = findings(doc, path, params, env)
        if strict:
            diags = make_strict(diags)
        results.append(FileResult(doc.file, steps, tuple(diags), {doc.file: doc.text}))
    errors = tuple(e for e in (r.error for r in results) if e is not None)
    return ValidationReport(tuple(results), errors)


def findings(doc: Document, path: os.PathLike[str] | str, params: Sequence[str],
             environ: Mapping[str, str]) -> list[Diagnostic]:
    """The warnings (and the parameter and folder errors) of a document that passed every check."""
    from flowctl.spec.lint import lint_document
    from flowctl.spec.preflight import preflight, sensitive

    out = lint_document(doc)
    if not params and not sensitive(doc.text):
        return out
    from flowctl.spec.build import build_pipeline
    from flowctl.spec.resolve import parse_param_args, resolve_params

    if not isinstance(doc.data, dict):
        return out
    pipeline = build_pipeline(doc, doc.data, path=doc.file, base_dir=os.path.dirname(os.path.abspath(path)),
                              sha256="")
    values: Mapping[str, ParamValue] = default_params(pipeline)
    if params:
        try:
            values = resolve_params(pipeline, parse_param_args(params))
        except UsageError as exc:
            return [Diagnostic(Span(pipeline.path, 1, 1), exc.message, hint=exc.hint, code="param"), *out]
    out += preflight(pipeline, doc, stage=Stage.CHECK, params=values, environ=environ)
    out.sort(key=lambda d: (d.span.line, d.span.col) if d.span else (0, 0))
    return out


def gate(source: Source, *, stage: Stage, params: Mapping[str, ParamValue], environ: Mapping[str, str],
         selected: Sequence[str] | None = None, strict: bool = False) -> Findings:
    """The findings a command that needs a valid pipeline acts on: those of ``spec/preflight.py``
    (plus the nested-shell rule for ``plan``), for the selected steps.

    Returns the warnings; raises PipelineError (exit 2) when any finding is an error in
    ``stage`` (every one with ``strict``).
    """
    from flowctl.spec.lint import lint_document
    from flowctl.spec.preflight import preflight

    doc = source.document
    found = lint_document(doc) if stage is Stage.CHECK else []
    found += preflight(source.pipeline, doc, stage=stage, params=params, environ=environ, selected=selected)
    if strict:
        found = make_strict(found)
    found.sort(key=lambda d: (d.span.line, d.span.col) if d.span else (0, 0))
    errors = [d for d in found if d.severity is Severity.ERROR]
    if errors:
        raise PipelineError(doc.file, errors, {doc.file: doc.text})
    return Findings(doc.file, tuple(found), {doc.file: doc.text} if found else {})


def default_params(pipeline: Pipeline) -> dict[str, ParamValue]:
    """The parameters that have a value without ``-p``."""
    return {name: p.default for name, p in pipeline.params.items() if p.default is not None}


__all__ = [
    "FileResult", "ValidationReport", "default_params", "expand_folders", "expand_paths", "findings", "gate", "validate_paths",
]

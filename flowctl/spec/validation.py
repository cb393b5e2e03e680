"""Validating many pipeline files at once: the core of ``flowctl validate``.

Files are checked without building the model (parsing and checking is all a CI gate needs,
and the fastest path on a 10,000-step file); with ``-p`` overrides the model is built too so
the values can be checked against the parameters' types.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from flowctl.errors import Diagnostic, PipelineError, Span, UsageError
from flowctl.spec import PIPELINE_SUFFIXES, check_document, discover_pipelines, read_document


@dataclass(frozen=True, slots=True)
class FileResult:
    file: str
    steps: int
    error: PipelineError | None


@dataclass(frozen=True, slots=True)
class ValidationReport:
    results: tuple[FileResult, ...]
    errors: tuple[PipelineError, ...] = field(default=())


def expand_paths(paths: Sequence[os.PathLike[str] | str]) -> list[Path]:
    """Files as given, folders expanded to their pipeline files; none given: discovery.

    Raises UsageError for a missing path or when no pipeline file is found.
    """
    if not paths:
        return [_relative(p) for p in discover_pipelines()]
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in PIPELINE_SUFFIXES and p.is_file())
            if not found:
                raise UsageError(f"no pipeline files (*.yaml, *.yml) under {path}")
            out.extend(found)
        elif path.exists():
            out.append(path)
        else:
            raise UsageError(f"{path}: no such file or folder")
    return out


def _relative(path: Path) -> Path:
    """``path`` relative to the current folder when it is inside it (shorter messages)."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def validate_paths(paths: Sequence[os.PathLike[str] | str], *, params: Sequence[str] = ()) -> ValidationReport:
    """Check every file; never raises for an invalid file (it is in the report)."""
    results: list[FileResult] = []
    for path in expand_paths(paths):
        doc, _ = read_document(path)
        diags = check_document(doc)
        steps = len(doc.data.get("steps") or {}) if isinstance(doc.data, dict) and isinstance(doc.data.get("steps"), dict) else 0
        if not diags and params:
            diags = _param_problems(path, params)
        error = None
        if diags:
            error = PipelineError(doc.file, diags)
            error.sources = {doc.file: doc.text}  # type: ignore[attr-defined]
        results.append(FileResult(doc.file, steps, error))
    return ValidationReport(tuple(results), tuple(r.error for r in results if r.error is not None))


def _param_problems(path: os.PathLike[str] | str, params: Sequence[str]) -> list[Diagnostic]:
    from flowctl.spec import load_pipeline
    from flowctl.spec.resolve import parse_param_args, resolve_params

    pipeline = load_pipeline(path)
    try:
        resolve_params(pipeline, parse_param_args(params))
    except UsageError as exc:
        return [Diagnostic(Span(pipeline.path, 1, 1), exc.message, hint=exc.hint, code="param")]
    return []


__all__ = ["FileResult", "ValidationReport", "expand_paths", "validate_paths"]

"""Pipeline files → typed ``Pipeline`` models, with every problem reported at its line.

``load_pipeline`` is the one entry point: parse (``load``), schema check (``spec.schema``),
semantic checks and model building (``spec.build``). ``discover_pipelines`` finds the pipeline
files of a project (shared by ``validate``, ``diff`` and ``schedule``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from flowctl.errors import Diagnostic, PipelineError, UsageError
from flowctl.load.yamlsource import Document, parse
from flowctl.repo.layout import work_tree_top
from flowctl.spec.model import Pipeline

PIPELINE_DIR = "pipelines"
PIPELINE_SUFFIXES = (".yaml", ".yml")


def read_document(path: str | os.PathLike[str], *, text: bytes | None = None,
                  display_path: str | None = None) -> tuple[Document, bytes]:
    """Parse a pipeline file (or ``text`` given for it) into a ``Document``.

    Raises UsageError when the file cannot be read at all.
    """
    name = display_path or os.fspath(path)
    if text is None:
        try:
            text = Path(path).read_bytes()
        except IsADirectoryError:
            raise _a_folder(name, Path(path)) from None
        except FileNotFoundError:
            raise UsageError(f"{name}: no such file", hint="check the path, or run `flowctl init`") from None
        except OSError as exc:
            raise UsageError(f"{name}: cannot read: {exc.strerror}") from None
    return parse(text, name), text


def pipeline_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The pipeline files (``*.yaml``, ``*.yml``) under ``folder``, sorted; none for a non-folder."""
    base = Path(folder)
    if not base.is_dir():
        return []
    return sorted(p for p in base.rglob("*") if is_pipeline_file(p.relative_to(base).parts) and p.is_file())


def require_pipeline_file(path: str | os.PathLike[str]) -> None:
    """For a command that takes one pipeline file: UsageError when ``path`` is a folder, listing
    the pipeline files in it (issue 13: `flowctl run pipelines` was a dead end)."""
    if os.path.isdir(path):
        raise _a_folder(os.fspath(path), Path(path))


def _a_folder(name: str, folder: Path, most: int = 8) -> UsageError:
    found = pipeline_files(folder)
    if not found:
        return UsageError(f"{name} is a folder, not a pipeline file",
                          hint="it holds no pipeline files (*.yaml, *.yml); give a pipeline file")
    shown = ", ".join(str(p) for p in found[:most]) + (f" and {len(found) - most} more" if len(found) > most else "")
    return UsageError(f"{name} is a folder, not a pipeline file", hint=f"give one of the pipeline files in it: {shown}")


def check_document(doc: Document) -> list[Diagnostic]:
    """Every problem in a parsed document: YAML, schema, then semantic."""
    if doc.diagnostics or doc.data is None:
        return list(doc.diagnostics)
    from flowctl.spec import build, schema

    diags = schema.check(doc)
    if isinstance(doc.data, dict):
        diags.extend(build.semantic_check(doc, doc.data))
    diags.sort(key=lambda d: (d.span.line, d.span.col) if d.span else (0, 0))
    return diags


@dataclass(frozen=True, slots=True)
class Source:
    """A pipeline with the document it was built from (for spans of later findings)."""

    pipeline: Pipeline
    document: Document


def load_source(path: str | os.PathLike[str], *, text: bytes | None = None,
                display_path: str | None = None) -> Source:
    """Read, check and build the pipeline in ``path`` (or in ``text``, e.g. a file at a git ref).

    ``display_path`` names the file in messages (e.g. ``v1.2.0:pipelines/etl.yaml``).
    Raises PipelineError with every diagnostic, or UsageError when the file cannot be read.
    """
    doc, raw = read_document(path, text=text, display_path=display_path)
    diags = check_document(doc)
    if diags:
        raise PipelineError(doc.file, diags, {doc.file: doc.text})
    from flowctl.spec.build import build_pipeline

    pipeline = build_pipeline(doc, doc.data, path=doc.file, base_dir=os.path.dirname(os.path.abspath(path)),
                              sha256=hashlib.sha256(raw).hexdigest())
    return Source(pipeline, doc)


def load_pipeline(path: str | os.PathLike[str], *, text: bytes | None = None,
                  display_path: str | None = None) -> Pipeline:
    """``load_source`` without the document: what every command that only reads the model uses."""
    return load_source(path, text=text, display_path=display_path).pipeline


def project_root(start: str | os.PathLike[str] | None = None) -> Path:
    """The git top level containing ``start`` (default: the current folder), else ``start``."""
    here = Path(start or os.getcwd()).resolve()
    return work_tree_top(here) or here


def is_pipeline_file(parts: Sequence[str]) -> bool:
    """Whether the path ``parts`` below ``pipelines/`` is one discovery takes: a pipeline suffix,
    in no hidden folder (a state folder there holds `run --ref` worktrees, issue 13)."""
    return os.path.splitext(parts[-1])[1] in PIPELINE_SUFFIXES and not any(p.startswith(".") for p in parts[:-1])


def discover_pipelines(root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Every ``*.yaml``/``*.yml`` under ``pipelines/`` of the project root, sorted; hidden
    folders (``.flowctl/``) are not searched.

    Raises UsageError when there is none (a CI gate must never pass by checking nothing).
    """
    base = Path(root) if root is not None else project_root()
    folder = base / PIPELINE_DIR
    found = pipeline_files(folder)
    if not found:
        raise UsageError(f"no pipeline files found under {folder}",
                         hint="pass pipeline files as arguments, or create one with `flowctl init`")
    return found


__all__ = [
    "Source", "check_document", "discover_pipelines", "is_pipeline_file", "load_pipeline", "load_source", "pipeline_files", "project_root",
    "read_document", "require_pipeline_file",
]

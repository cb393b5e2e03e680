"""The typed pipeline model: what a valid pipeline file means, with source spans.

``spec.build`` produces these from a schema-checked document; every later stage (graph, run,
state, diff, schedule) reads only these frozen types, never the raw YAML. Values are resolved:
step fields already carry the pipeline ``defaults`` where the step did not set them, and
``Step.explicit`` says which fields the step set itself (``diff`` reports which steps a changed
default affects from it). Expressions (``${{ params.X }}``) stay unsubstituted here;
``spec.resolve`` fills them in for a given set of parameter values.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from flowctl.errors import Span

#: A shell command (run with ``/bin/sh -c``) or an argv list (no shell).
Command = str | tuple[str, ...]

_EMPTY: Mapping[str, str] = MappingProxyType({})
_NO_RESOURCES: Mapping[str, float] = MappingProxyType({})


class ParamType(enum.Enum):
    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"


ParamValue = str | int | float | bool


@dataclass(frozen=True, slots=True)
class Param:
    """A pipeline parameter, overridable with ``-p name=value``."""

    name: str
    type: ParamType
    default: ParamValue | None  # None: required, must be given with -p
    description: str | None = None
    choices: tuple[ParamValue, ...] = ()
    span: Span | None = None

    @property
    def required(self) -> bool:
        return self.default is None


@dataclass(frozen=True, slots=True)
class Remediation:
    """``remediate:`` runs after the last failed attempt; then the step gets one final attempt."""

    run: Command
    timeout: float | None = None
    env: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    span: Span | None = None


class ItemsKind(enum.Enum):
    """Where a ``foreach`` step's items come from."""

    LITERAL = "items"  # ``items: [...]`` in the file
    FILE = "file"  # ``items_from: {file: F}``: one JSON value a line, or one string with ``format: lines``
    GLOB = "glob"  # ``items_from: {glob: G}``: the matching paths, sorted
    STEP = "step"  # ``items_from: {step: S}``: S's stdout, one JSON value a line


@dataclass(frozen=True, slots=True)
class ItemsSource:
    """``items`` or ``items_from``; paths are relative to the step's cwd, expressions unfilled."""

    kind: ItemsKind
    literal: tuple[str, ...] = ()  # LITERAL: each item as canonical JSON
    path: str = ""  # FILE: the file; GLOB: the pattern; STEP: the step id
    lines: bool = False  # FILE: ``format: lines`` (each line a string item)
    stream: bool = False  # STEP: items start as the producer prints them
    span: Span | None = None


@dataclass(frozen=True, slots=True)
class Batch:
    """``batch:``: items reach one process together, as a JSONL file (``${{ batch.file }}``)."""

    size: int
    max_bytes: int | None = None  # a batch's JSONL may not grow past this (one item always fits)
    split_on_failure: bool = False


@dataclass(frozen=True, slots=True)
class Foreach:
    """``foreach:``: the step runs once per item (or batch); see docs/foreach.md."""

    source: ItemsSource
    key: str | None = None  # an expression over ``item``; None: the item's canonical JSON
    batch: Batch | None = None
    max_concurrent: int | None = None  # None: the pipeline's concurrency
    max_items: int = 100_000
    tolerated_percent: float | None = None  # None (with tolerated_count None too): nothing tolerated
    tolerated_count: int | None = None
    tolerated: bool = False  # ``tolerated_failure`` given (an omitted limit in it is unlimited)
    fail_fast: bool = False
    span: Span | None = None

    def exceeded(self, failed: int, total: int, *, partial: bool = False) -> bool:
        """Whether ``failed`` of ``total`` items is strictly over a tolerated limit. ``partial``:
        more items may come (a stream), so only the count is judged; the percentage at the end."""
        if failed == 0:
            return False
        if not self.tolerated:
            return True
        if self.tolerated_count is not None and failed > self.tolerated_count:
            return True
        return (not partial and self.tolerated_percent is not None and total > 0
                and failed * 100 > self.tolerated_percent * total)


#: Fields a step may inherit from ``defaults``.
DEFAULTABLE = (
    "retries",
    "retry_delay",
    "retry_max_delay",
    "retry_on_exit_codes",
    "timeout",
    "continue_on_error",
    "resources",
)


@dataclass(frozen=True, slots=True)
class Defaults:
    """Pipeline-wide defaults for step fields; durations are in seconds."""

    retries: int = 0
    retry_delay: float = 1.0
    retry_max_delay: float = 300.0
    retry_on_exit_codes: tuple[int, ...] = ()  # empty: retry on any failure
    timeout: float | None = None
    continue_on_error: bool = False
    resources: Mapping[str, float] = field(default_factory=lambda: _NO_RESOURCES)


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a pipeline, with defaults applied; durations are in seconds."""

    id: str
    run: Command
    needs: tuple[str, ...] = ()
    description: str | None = None
    tags: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    secret_env: frozenset[str] = frozenset()  # the step's own; see Pipeline.secrets_for
    cwd: str | None = None  # relative to the pipeline file's folder
    inputs: tuple[str, ...] = ()  # paths or globs, relative to the step's cwd
    outputs: tuple[str, ...] = ()
    retries: int = 0
    retry_delay: float = 1.0
    retry_max_delay: float = 300.0
    retry_on_exit_codes: tuple[int, ...] = ()
    timeout: float | None = None
    continue_on_error: bool = False
    #: What one attempt holds while it runs (sizes in bytes): Dask worker resources under
    #: ``--executor dask``, counting limits (``--resources``) locally. Merged over the defaults'.
    resources: Mapping[str, float] = field(default_factory=lambda: _NO_RESOURCES)
    remediate: Remediation | None = None
    foreach: Foreach | None = None  # issue 15: run once per item
    explicit: frozenset[str] = frozenset()  # DEFAULTABLE fields the step set itself
    span: Span | None = None  # the step's key in the file

    @property
    def shell(self) -> bool:
        return isinstance(self.run, str)

    @property
    def max_attempts(self) -> int:
        """Regular attempts (first + retries); a remediation adds one more."""
        return 1 + self.retries


@dataclass(frozen=True, slots=True)
class AlertSpec:
    """One ``alerts:`` entry; ``when`` is checked by ``spec.alerts`` and evaluated after a run."""

    when: str
    description: str | None = None
    span: Span | None = None


@dataclass(frozen=True, slots=True)
class NotifierSpec:
    """One ``notify:`` entry: a command (``run``) or a ``webhook`` URL."""

    run: Command | None = None
    webhook: str | None = None
    timeout: float | None = None
    retries: int = 0
    span: Span | None = None


@dataclass(frozen=True, slots=True)
class ExecutorSpec:
    """``executor:``: where steps run (``local`` or ``dask``); options on the command line win."""

    type: str = "local"
    address: str | None = None  # a Dask scheduler; None: a local cluster for the run
    span: Span | None = None


@dataclass(frozen=True, slots=True)
class Pipeline:
    """A validated pipeline file."""

    path: str  # the file as given on the command line (or ``REF:path`` for a git revision)
    name: str
    steps: Mapping[str, Step]  # in file order
    version: int = 1
    description: str | None = None
    tags: tuple[str, ...] = ()
    schedule: str | None = None
    timezone: str | None = None
    chaos: str | None = None  # faults to inject, active only under --chaos / FLOWCTL_CHAOS (issue 17)
    concurrency: int | None = None  # None: the CPU count
    params: Mapping[str, Param] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    secret_env: frozenset[str] = frozenset()
    defaults: Defaults = field(default_factory=Defaults)
    alerts: tuple[AlertSpec, ...] = ()
    notify: tuple[NotifierSpec, ...] = ()
    executor: ExecutorSpec | None = None
    base_dir: str = "."  # absolute folder of the pipeline file: step cwd is relative to it
    source_sha256: str = ""  # hash of the file's bytes, recorded as run provenance
    span: Span | None = None

    def secrets_for(self, step: Step) -> frozenset[str]:
        """Names of the env entries of ``step`` whose values are secret."""
        return self.secret_env | step.secret_env


__all__ = [
    "DEFAULTABLE",
    "AlertSpec",
    "Batch",
    "Command",
    "Defaults",
    "ExecutorSpec",
    "Foreach",
    "ItemsKind",
    "ItemsSource",
    "NotifierSpec",
    "Param",
    "ParamType",
    "ParamValue",
    "Pipeline",
    "Remediation",
    "Step",
]

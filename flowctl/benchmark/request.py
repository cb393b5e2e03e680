"""What a benchmark was asked to do, and everything checked before the first execution starts.

``BenchRequest`` is what the options of ``flowctl bench`` fill; ``prepare_bench`` turns it into
a ``BenchPlan``: the pipeline loaded and its parameters resolved as ``flowctl run`` would
(``run.prepare``), the thresholds parsed, the ``--compare`` file read and validated, the working
copy decided and the environment probed. Every usage error surfaces here (exit 2), before
anything runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from flowctl.benchmark.compare import Baseline, load_baseline
from flowctl.benchmark.environment import Environment, probe_environment
from flowctl.benchmark.thresholds import parse_thresholds
from flowctl.benchmark.workspace import Workspace, plan_workspace
from flowctl.spec.alerts import AlertRule

if TYPE_CHECKING:
    from flowctl.run.prepare import PreparedRun


@dataclass(frozen=True, slots=True)
class BenchRequest:
    """The options of one ``flowctl bench``."""

    pipeline: str
    runs: int = 10
    warmup: int = 0
    parallel: int = 1
    concurrency: int | None = None  # -j for every execution (default: as `flowctl run` decides)
    params: tuple[str, ...] = ()  # NAME=VALUE, as -p takes them
    thresholds: tuple[str, ...] = ()
    compare: str | None = None
    keep_state: bool = False
    chaos: str | None = None  # --chaos SPEC, passed on to every execution (issue 17)
    environ: Mapping[str, str] = field(default_factory=lambda: MappingProxyType(dict(os.environ)))


@dataclass(frozen=True, slots=True)
class BenchPlan:
    """A checked request, ready to run."""

    request: BenchRequest
    prepared: PreparedRun
    overrides: Mapping[str, str]  # the -p values as given
    rules: tuple[AlertRule, ...]
    baseline: Baseline | None
    workspace: Workspace
    environment: Environment
    concurrency: int  # what each execution runs with
    warnings: tuple[str, ...] = ()

    @property
    def run_args(self) -> tuple[str, ...]:
        """``flowctl run`` options after the pipeline file: always ``-j``, so the executions run
        with exactly the concurrency the report states; ``--chaos SPEC`` when given."""
        args: list[str] = ["-j", str(self.concurrency)]
        if self.request.chaos:
            args += ["--chaos", self.request.chaos]
        for item in self.request.params:
            args += ["-p", item]
        return tuple(args)

    def settings(self) -> dict[str, object]:
        """The request as the export records it."""
        r = self.request
        return {
            "runs": r.runs,
            "warmup": r.warmup,
            "parallel": r.parallel,
            "concurrency": self.concurrency,
            "params": dict(self.overrides),
            "thresholds": list(r.thresholds),
            "compare": r.compare,
            "keep_state": r.keep_state,
            "chaos": r.chaos,
        }


def prepare_bench(request: BenchRequest) -> BenchPlan:
    """Check ``request`` and decide everything a benchmark needs before it runs.

    Raises ``PipelineError`` (invalid pipeline) or ``UsageError`` (parameters, thresholds, the
    ``--compare`` file, a missing working folder), all exit 2.
    """
    from flowctl.run.prepare import prepare_run
    from flowctl.spec.resolve import parse_param_args

    overrides = parse_param_args(request.params)
    prepared = prepare_run(request.pipeline, overrides=overrides, environ=request.environ)
    baseline = load_baseline(request.compare) if request.compare is not None else None
    rules = parse_thresholds(request.thresholds, prepared.plan.selected, baseline=baseline is not None)
    workspace = plan_workspace(request.pipeline, (inv.cwd for inv in prepared.invocations.values()))
    warnings = [
        f"steps run in {folder}, outside the copied tree {workspace.root}: every execution shares it"
        for folder in workspace.outside
    ]
    if request.chaos:
        _check_chaos(request.chaos, prepared)
    # `flowctl run`'s default, decided once here and passed on as -j (run_args).
    concurrency = request.concurrency or prepared.pipeline.concurrency or os.cpu_count() or 1
    return BenchPlan(
        request=request,
        prepared=prepared,
        overrides=MappingProxyType(overrides),
        rules=rules,
        baseline=baseline,
        workspace=workspace,
        environment=probe_environment(workspace),
        concurrency=concurrency,
        warnings=tuple(warnings),
    )


def _check_chaos(text: str, prepared: PreparedRun) -> None:
    """``--chaos`` as ``flowctl run`` would check it, and no ``kill-runner``: an execution that
    kills itself needs a resume, which is ``flowctl chaos soak``'s job. Raises ``UsageError``."""
    from flowctl.errors import UsageError
    from flowctl.run.chaos import check_chaos
    from flowctl.spec.chaos import ChaosError, parse_chaos

    try:
        settings = parse_chaos(text)
    except ChaosError as exc:
        raise UsageError(f"--chaos: {exc.message}", hint=exc.hint) from None
    if settings.kill_runner:
        raise UsageError("bench --chaos: kill-runner would stop an execution half way (it needs a resume)",
                         hint="measure resumes with `flowctl chaos soak`; here use fail, delay, hang or kill")
    steps = prepared.pipeline.steps
    check_chaos(settings, {sid: steps[sid] for sid in prepared.plan.selected}, "local")


__all__ = ["BenchPlan", "BenchRequest", "prepare_bench"]

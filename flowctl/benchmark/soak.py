"""``flowctl chaos soak``: run a pipeline under chaos for N seeds, resuming after each self-kill,
and check each seed's history (issue 17).

Each seed gets a fresh working copy of the project and an empty state folder (the benchmark's
``workspace``, so effects of one seed never leak into the next), and runs as real ``flowctl run``
processes (forked from this one with flowctl already imported, so a 50-step run costs its steps,
not an interpreter start; each in its own session, its output in the seed's ``output.log``,
killed for real by ``kill-runner``): the first with ``--chaos SPEC,seed=K``, then ``--resume`` (which carries the settings
and the faults spent) each time the runner killed itself (``kill-runner``: SIGKILL), until a run
ends. ``state.invariants.check_run`` then checks the chain. The soak stops at the first failing
seed and keeps its folder; passing seeds' folders are removed. Ctrl-C or SIGTERM stops the run
under way (SIGTERM, then SIGKILL on a second one), removes the scratch folders and raises
``SoakInterrupted`` (exit 130) naming the seeds that passed. Alerts, notifications and metrics
pushes are muted (``FLOWCTL_MUTE``), as under ``bench``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shlex
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from flowctl.benchmark.executions import child_environment, signals_interrupt
from flowctl.benchmark.workspace import Workspace, copy_workspace, plan_workspace
from flowctl.errors import FlowctlError, InterruptedRun, StorageError
from flowctl.spec.chaos import ENV_VAR, ChaosSettings
from flowctl.state.invariants import CheckReport, check_run

#: A chain resumes at most this many times per seed (``kill-runner=1`` needs one per attempt).
MAX_RESUMES = 10_000


class SoakError(FlowctlError):
    """A run of the soak ended in a way no chaos explains (usage error, storage failure, lock)."""


class SoakInterrupted(InterruptedRun):
    """Ctrl-C or SIGTERM stopped the soak (exit 130): which seeds passed, how to go on."""


@dataclass(frozen=True, slots=True)
class SoakRequest:
    """What to soak: the pipeline, the settings (their seed is replaced), which seeds."""

    pipeline: str
    settings: ChaosSettings
    runs: int = 20
    seed_from: int = 0
    run_args: tuple[str, ...] = ()  # -j N, -p k=v: passed to every `flowctl run`
    environ: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Launcher:
    """How a soak runs ``flowctl ARGV`` in a forked child. The CLI supplies it, so this core
    module never imports the CLI: ``preload(pipeline)`` imports, once before the first fork,
    what a run of the pipeline imports; ``main(argv)`` runs the command in the child and
    returns its exit code."""

    preload: Callable[[str], None]
    main: Callable[[Sequence[str]], int]


@dataclass(frozen=True, slots=True)
class SeedResult:
    """One seed: how many runs its chain took and what the check found."""

    seed: int
    runs: int
    report: CheckReport
    folder: str  # kept when the seed failed, else removed
    command: str  # the one command that reproduces this seed


def soak_command(request: SoakRequest, seed: int) -> str:
    """``flowctl chaos soak PIPELINE --runs 1 --seed-from SEED --chaos SPEC``: one seed again."""
    spec = dataclasses.replace(request.settings, seed=seed).text
    return shlex.join(["flowctl", "chaos", "soak", request.pipeline, "--runs", "1", "--seed-from", str(seed),
                       "--chaos", spec, *request.run_args])


def run_soak(
    request: SoakRequest,
    needs: Mapping[str, Sequence[str]],
    on_seed: Callable[[SeedResult], None],
    launcher: Launcher,
    *,
    scratch: str | None = None,
    streams: Mapping[str, str] | None = None,
    allowed: Mapping[str, int] | None = None,
) -> list[SeedResult]:
    """Soak ``request.runs`` seeds from ``seed_from`` (``needs``, ``streams`` and ``allowed``
    attempts per step: the pipeline's, for the check; see ``check_run``), each run started by
    ``launcher``, calling ``on_seed`` after each; stops at the first seed whose check fails. Raises ``SoakError`` when a run fails in a way chaos does
    not explain, ``StorageError`` when the working copy cannot be made."""
    workspace = plan_workspace(request.pipeline)
    env = child_environment(os.environ if request.environ is None else request.environ)
    env.pop(ENV_VAR, None)
    base = scratch or tempfile.mkdtemp(prefix="flowctl-soak-")
    results: list[SeedResult] = []
    try:
        with signals_interrupt():  # SIGTERM stops the soak as Ctrl-C does
            _soak(request, needs, streams, allowed, on_seed, launcher, workspace, env, base, results)
    except KeyboardInterrupt:
        # Trial of main: an interrupted soak was silent and left its folders behind.
        shutil.rmtree(base if scratch is None else os.path.join(base, f"seed-{_next_seed(request, results)}"),
                      ignore_errors=True)
        message, hint = _interrupted(request, results)
        raise SoakInterrupted(message, hint=hint) from None
    if scratch is None and all(r.report.ok for r in results):
        shutil.rmtree(base, ignore_errors=True)
    return results


def _next_seed(request: SoakRequest, results: Sequence[SeedResult]) -> int:
    return results[-1].seed + 1 if results else request.seed_from


def _interrupted(request: SoakRequest, results: Sequence[SeedResult]) -> tuple[str, str]:
    seed = _next_seed(request, results)
    passed = ", ".join(str(r.seed) for r in results) or "none"
    left = request.seed_from + request.runs - seed
    again = shlex.join(["flowctl", "chaos", "soak", request.pipeline, "--runs", str(left), "--seed-from", str(seed),
                        "--chaos", request.settings.text, *request.run_args])
    return (f"chaos soak interrupted at seed {seed}: {len(results)}/{request.runs} seed(s) passed before it "
            f"(seeds: {passed}); its scratch folders are removed", f"to go on: {again}")


def _soak(
    request: SoakRequest,
    needs: Mapping[str, Sequence[str]],
    streams: Mapping[str, str] | None,
    allowed: Mapping[str, int] | None,
    on_seed: Callable[[SeedResult], None],
    launcher: Launcher,
    workspace: Workspace,
    env: Mapping[str, str],
    base: str,
    results: list[SeedResult],
) -> None:
    for seed in range(request.seed_from, request.seed_from + request.runs):
        folder = os.path.join(base, f"seed-{seed}")
        try:
            pipeline = copy_workspace(workspace, os.path.join(folder, "work"))
        except OSError as exc:
            raise StorageError(f"chaos soak: cannot make the working copy of seed {seed}: {exc}",
                               hint="free space there, or point TMPDIR at a folder with room") from None
        state = os.path.join(folder, "state")
        runs = _run_chain(request, launcher, seed, pipeline, state, env, folder)
        report = check_run(state, "latest", needs, streams=streams, allowed=allowed)
        result = SeedResult(seed, runs, report, folder, soak_command(request, seed))
        results.append(result)
        on_seed(result)
        if not report.ok:
            break
        shutil.rmtree(folder, ignore_errors=True)


def _run_chain(request: SoakRequest, launcher: Launcher, seed: int, pipeline: str, state: str, env: Mapping[str, str],
               folder: str) -> int:
    spec = dataclasses.replace(request.settings, seed=seed).text
    first = ["--chaos", spec]
    log = os.path.join(folder, "output.log")
    launcher.preload(pipeline)
    for n in range(MAX_RESUMES + 1):
        argv = ["run", pipeline, "--state-dir", state, "--no-progress", *(first if n == 0 else ["--resume"]),
                *request.run_args]
        code = _fork_run(launcher.main, argv, log, os.path.dirname(pipeline), env)
        if code == -signal.SIGKILL:  # kill-runner: resuming is our job
            continue
        if code in (0, 1):  # the run ended: the check says whether it converged
            return n + 1
        raise SoakError(f"chaos soak: seed {seed}: `flowctl run` exited {code} (see {log})",
                        hint=f"reproduce it: {soak_command(request, seed)}")
    raise SoakError(f"chaos soak: seed {seed}: still not done after {MAX_RESUMES} resumes (see {log})")


def _fork_run(main: Callable[[Sequence[str]], int], argv: Sequence[str], log: str, cwd: str,
              env: Mapping[str, str]) -> int:
    """Run ``main(ARGV)`` (``flowctl ARGV``) in a forked child (its own session, output appended to ``log``);
    its exit code, or minus the signal that killed it."""
    sys.stdout.flush()
    sys.stderr.flush()
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 70
        try:
            os.setsid()
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(out, 1)
            os.dup2(out, 2)
            os.chdir(cwd)
            os.environ.clear()
            os.environ.update(env)
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(signum, signal.SIG_DFL)
            code = main(list(argv))
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
    os.close(out)
    interrupted = False
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except KeyboardInterrupt:  # stop the run as Ctrl-C stops it (SIGKILL on a second one), wait for it
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL if interrupted else signal.SIGTERM)
            interrupted = True
    if interrupted:
        raise KeyboardInterrupt
    return os.waitstatus_to_exitcode(status)


__all__ = ["MAX_RESUMES", "Launcher", "SeedResult", "SoakError", "SoakInterrupted", "SoakRequest", "run_soak", "soak_command"]

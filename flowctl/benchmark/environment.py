"""The environment a benchmark ran in: the header of its report and of its export.

Numbers from two machines, or two Python versions, are not comparable; the header says what
produced them (as hyperfine and k6 print theirs). The git commit comes from the workspace
(``workspace.plan_workspace`` asked git once).
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass

from flowctl import __version__
from flowctl.benchmark.workspace import Workspace

#: What runs the steps. Only the local executor exists; ``--executor dask`` will add its name.
LOCAL_EXECUTOR = "local"


@dataclass(frozen=True, slots=True)
class Environment:
    cpus: int  # os.cpu_count()
    usable_cpus: int  # those this process may run on (affinity, cgroup cpusets)
    python: str  # e.g. "CPython 3.11.7"
    flowctl: str
    platform: str  # system, kernel release, machine
    git_commit: str | None
    git_dirty: bool | None
    executor: str
    started_at: float  # epoch seconds

    def to_dict(self) -> dict[str, object]:
        return {
            "cpus": self.cpus,
            "usable_cpus": self.usable_cpus,
            "python": self.python,
            "flowctl": self.flowctl,
            "platform": self.platform,
            "git_commit": self.git_commit,
            "git_dirty": self.git_dirty,
            "executor": self.executor,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started_at)),
        }


def probe_environment(workspace: Workspace, *, executor: str = LOCAL_EXECUTOR) -> Environment:
    """The environment of a benchmark of ``workspace`` starting now."""
    cpus = os.cpu_count() or 1
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        usable = cpus
    return Environment(
        cpus=cpus,
        usable_cpus=usable,
        python=f"{platform.python_implementation()} {platform.python_version()}",
        flowctl=__version__,
        platform=f"{platform.system()} {platform.release()} {platform.machine()}".strip(),
        git_commit=workspace.git_commit,
        git_dirty=workspace.git_dirty,
        executor=executor,
        started_at=time.time(),
    )


__all__ = ["LOCAL_EXECUTOR", "Environment", "probe_environment"]

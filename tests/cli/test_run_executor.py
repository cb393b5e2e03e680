"""``flowctl run`` executor options that need no Dask: the missing extra, options that do not
fit the executor (exit 2 before anything runs), and ``--resources`` counting limits locally."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import flowctl_env, run_flowctl


def write(folder: Path, text: str) -> Path:
    path = folder / "pipeline.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


@pytest.mark.parametrize("how", ["absent", "broken"])
def test_flowctl_without_the_dask_extra_says_how_to_install_it(tmp_path, how) -> None:
    """``absent``: Python finds no ``distributed`` at all; ``broken``: it is there but cannot be
    imported. Either way: exit 2 with the install command, nothing run, no traceback."""
    shadow = tmp_path / "shadow"
    if how == "absent":
        shadow.mkdir()
        (shadow / "sitecustomize.py").write_text("import sys\nsys.modules['distributed'] = None\n")
    else:
        (shadow / "distributed").mkdir(parents=True)
        (shadow / "distributed" / "__init__.py").write_text("raise ImportError(\"No module named 'distributed'\")\n")
    path = write(tmp_path, "version: 1\nname: nodask\nsteps:\n  a: {run: 'touch ran'}\n")
    env = {"PYTHONPATH": os.pathsep.join([str(shadow), str(Path(__file__).resolve().parents[2])])}
    proc = subprocess.run([sys.executable, "-m", "flowctl", "run", str(path), "--executor", "dask"], cwd=tmp_path,
                          env={**flowctl_env(), **env}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "pip install 'flowctl[dask]'" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--executor", "ray"], "--executor 'ray' is not one of"),
        (["--dask-workers", "2"], "--dask-workers only applies to --executor dask"),
        (["--executor", "dask", "--dask-workers", "3:1"], "--dask-workers '3:1'"),
        (["--executor", "dask", "--resources", "gpu=1"], "--resources sets limits for the local executor"),
        (["--dask-scheduler", "tcp://127.0.0.1:1", "--dask-threads", "2"], "--dask-threads describes the local cluster"),
        (["--executor", "dask", "--dask-lease", "soon"], "--dask-lease"),
        (["--resources", "gpu=1"], "step 'big' needs gpu=2, which is more than --resources gives"),
    ],
)
def test_options_that_do_not_fit_are_usage_errors(tmp_path, args, message) -> None:
    path = write(tmp_path, "version: 1\nname: opts\nsteps:\n  big: {run: 'touch ran', resources: {gpu: 2}}\n")
    proc = run_flowctl("run", str(path), *args, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr
    assert not (tmp_path / "ran").exists()


def test_local_resource_limits_hold_steps_back(tmp_path) -> None:
    body = "echo $FLOWCTL_STEP start >> log; sleep 0.3; echo $FLOWCTL_STEP end >> log"
    steps = "\n".join(f"  s{i}: {{run: '{body}', resources: {{licenses: 1}}}}" for i in range(4))
    path = write(tmp_path, f"version: 1\nname: lic\nsteps:\n{steps}\n  free: {{run: 'true'}}\n")
    proc = run_flowctl("run", str(path), "-j", "4", "--resources", "licenses=2", cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    held = peak = 0
    for line in (tmp_path / "log").read_text().splitlines():
        held += 1 if line.endswith("start") else -1
        peak = max(peak, held)
    assert peak == 2

"""Files flowctl writes at a path the user names (``bench --export-json``, ``report -o``,
``run --metrics-file``) are written through when the path is a device or a pipe, never renamed
over (trial 17: ``bench --export-json /dev/full`` run as root replaced the device with a regular
file, for every process on the machine). A FIFO stands in for ``/dev/stdout``: a real reader,
and nothing is lost if the check fails."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_flowctl

PIPELINE = "version: 1\nname: tiny\nsteps:\n  a: {run: 'true'}\n"


def _reader(fifo: Path, out: Path) -> subprocess.Popen[bytes]:
    """``cat FIFO > OUT``: it holds the FIFO's read end until a writer has come and gone."""
    os.mkfifo(fifo)
    with open(out, "wb") as sink:
        return subprocess.Popen(["cat", str(fifo)], stdout=sink)


def _written_through(fifo: Path, out: Path, reader: subprocess.Popen[bytes]) -> str:
    try:
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the pipe was replaced by a regular file"
        assert reader.wait(timeout=30) == 0
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()
    return out.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["bench", "p.yaml", "--runs", "1", "--export-json", "{fifo}"], '"$schema"'),
        (["run", "p.yaml", "--no-progress", "--metrics-file", "{fifo}"], "flowctl_last_run_"),
        (["report", "latest", "-o", "{fifo}"], "<html"),
    ],
)
def test_a_pipe_given_as_the_output_file_is_written_through(tmp_path: Path, args: list[str], expect: str) -> None:
    project = tmp_path / "project"  # the pipe outside it: bench copies the project
    project.mkdir()
    (project / "p.yaml").write_text(PIPELINE, encoding="utf-8")
    if args[0] == "report":
        assert run_flowctl("run", "p.yaml", "--no-progress", cwd=project).returncode == 0
    fifo, out = tmp_path / "out.fifo", tmp_path / "read.txt"
    reader = _reader(fifo, out)
    got = run_flowctl(*[a.format(fifo=fifo) for a in args], cwd=project, timeout=120)
    text = _written_through(fifo, out, reader)
    assert got.returncode == 0, got.stdout + got.stderr
    assert expect in text


def test_a_symbolic_link_to_a_file_stays_a_link_and_its_target_gets_the_page(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(PIPELINE, encoding="utf-8")
    assert run_flowctl("run", "p.yaml", "--no-progress", cwd=tmp_path).returncode == 0
    (tmp_path / "pages").mkdir()
    target = tmp_path / "pages" / "run.html"
    target.write_text("old", encoding="utf-8")
    link = tmp_path / "run.html"
    link.symlink_to(target)
    got = run_flowctl("report", "latest", "-o", "run.html", cwd=tmp_path)
    assert got.returncode == 0, got.stdout + got.stderr
    assert link.is_symlink() and "<html" in target.read_text(encoding="utf-8")

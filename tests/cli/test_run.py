"""``flowctl run`` end to end: real ``python -m flowctl`` processes, real signals."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from flowctl.run import procs
from tests.conftest import flowctl_env, run_flowctl

SLEEPIT = str(Path(__file__).resolve().parent.parent / "bin" / "sleepit.py")
S = f"{sys.executable} {SLEEPIT}"
LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \d{8}T\d{6}-[0-9a-f]{4} [A-Z-]+ ")


def test_plain_lines_when_not_a_tty(flowctl, write_pipeline, tmp_path):
    path = write_pipeline(
        """
        version: 1
        name: hello
        steps:
          load: {run: 'echo loading'}
          report: {run: 'echo done', needs: [load]}
        """
    )
    res = flowctl("run", str(path))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    events = [line for line in lines if LINE.match(line)]
    run_id = events[0].split()[1]
    logs = tmp_path / ".flowctl" / "runs" / run_id
    assert events[0].split(" ", 2)[2].startswith("RUN hello: 2 steps, concurrency ")
    assert events[0].endswith(f"logs: {logs}")
    assert events[1].split(" ", 2)[2] == "START load (attempt 1/1)"
    assert re.search(r" OK load \d+(ms|\.\ds)$", res.stdout, re.M)
    assert re.search(r" END succeeded in ", res.stdout)
    assert all(e.split()[1] == run_id for e in events)
    assert "\x1b[" not in res.stdout  # no colour, nothing that redraws
    assert (logs / "load" / "1.log").read_text() == "loading\n"


def test_an_attempt_that_prints_nothing_leaves_no_log_file(flowctl, write_pipeline, tmp_path):
    path = write_pipeline(
        """
        version: 1
        name: quiet
        steps:
          silent: {run: 'true'}
          talks: {run: 'echo hello; echo oops >&2', needs: [silent]}
          fails: {run: 'exit 4', needs: [talks]}
        """
    )
    res = flowctl("run", str(path))
    assert res.returncode == 1
    run_id = res.stdout.split()[1]
    logs = tmp_path / ".flowctl" / "runs" / run_id
    assert logs.is_dir()  # the run's log folder is there even when no step printed
    assert (logs / "talks" / "1.log").read_text() == "hello\noops\n"
    assert not (logs / "silent").exists() and not (logs / "fails").exists()
    assert re.search(r" FAIL fails exit 4 \(no output\)$", res.stdout, re.M)
    st = ["--state-dir", str(tmp_path / ".flowctl")]
    quiet = flowctl("logs", run_id, "silent", *st)
    assert quiet.returncode == 0 and quiet.stdout == ""
    assert "silent attempt 1 of run " in quiet.stderr and "printed nothing" in quiet.stderr
    assert flowctl("logs", run_id, "talks", *st).stdout == "hello\noops\n"
    import json

    data = json.loads(flowctl("logs", run_id, "silent", "--json", *st).stdout)
    assert data["path"] is None and data["text"] == "" and data["attempt"] == 1
    show = flowctl("show", run_id, *st).stdout
    assert re.search(r"^silent .*\(no output\)\s*$", show, re.M)
    assert re.search(r"^talks .*talks/1\.log\s*$", show, re.M)


def test_state_dir_option_and_env(flowctl, write_pipeline, tmp_path):
    path = write_pipeline("version: 1\nname: s\nsteps:\n  a: {run: 'echo hi'}\n")
    res = flowctl("run", str(path), "--state-dir", str(tmp_path / "st"))
    assert res.returncode == 0
    assert list((tmp_path / "st" / "runs").glob("*/a/1.log"))
    res = flowctl("run", str(path), env={"FLOWCTL_STATE_DIR": str(tmp_path / "env-st")})
    assert res.returncode == 0
    assert list((tmp_path / "env-st" / "runs").glob("*/a/1.log"))
    assert not (tmp_path / ".flowctl").exists()


def test_failure_exit_code_and_root_failure_last(flowctl, write_pipeline):
    path = write_pipeline(
        """
        version: 1
        name: broken
        steps:
          extract: {run: 'echo "bad row 17" >&2; exit 3'}
          transform: {run: 'true', needs: [extract]}
          other: {run: 'sleep 0.2'}
        """
    )
    res = flowctl("run", str(path))
    assert res.returncode == 1
    out = res.stdout
    root = out.index("Root failure: extract (exit 3, after 1 attempt)")
    # what was skipped and how to go on come first; the root failure and its log tail last,
    # nearest the prompt (issue 13)
    assert out.index("Skipped because an upstream step failed: transform") < root
    assert out.index("--from extract") < root
    assert out.rstrip().endswith("  | bad row 17")


def test_continue_on_error_exits_0(flowctl, write_pipeline):
    path = write_pipeline(
        "version: 1\nname: c\nsteps:\n  lint: {run: 'exit 1', continue_on_error: true}\n  b: {run: 'true', needs: [lint]}\n"
    )
    res = flowctl("run", str(path))
    assert res.returncode == 0, res.stdout
    assert "failed (allowed)" in res.stdout


def test_usage_errors_exit_2_before_anything_runs(flowctl, write_pipeline, tmp_path):
    path = write_pipeline(
        f"""
        version: 1
        name: u
        params:
          n: {{type: integer, default: 1}}
        steps:
          a: {{run: 'touch {tmp_path}/ran'}}
          b: {{run: 'true', cwd: missing-folder}}
        """
    )
    res = flowctl("run", str(path))
    assert res.returncode == 2 and "missing-folder" in res.stderr and "does not exist" in res.stderr
    res = flowctl("run", str(path), "-p", "m=2")
    assert res.returncode == 2 and "unknown parameter 'm'" in res.stderr
    res = flowctl("run", str(path), "--only", "nope")
    assert res.returncode == 2
    assert not (tmp_path / "ran").exists()
    bad = write_pipeline("version: 1\nname: x\nsteps: {a: {run: 'true', needs: [zz]}}\n", name="bad.yaml")
    res = flowctl("run", str(bad))
    assert res.returncode == 2 and "bad.yaml:" in res.stderr and "Traceback" not in res.stderr


def test_dry_run_prints_commands_in_order_and_runs_nothing(flowctl, write_pipeline, tmp_path):
    path = write_pipeline(
        f"""
        version: 1
        name: dry
        params:
          day: {{type: string, default: '2026-01-01'}}
        env: {{TOKEN: hunter22}}
        secret_env: [TOKEN]
        steps:
          report: {{run: 'echo report', needs: [load]}}
          load: {{run: 'touch {tmp_path}/ran; echo ${{{{ params.day }}}} hunter22'}}
        """
    )
    res = flowctl("run", str(path), "--dry-run", "-p", "day=2026-11-24")
    assert res.returncode == 0
    assert res.stdout.index("1. load") < res.stdout.index("2. report")
    assert "2026-11-24" in res.stdout and "hunter22" not in res.stdout
    assert not (tmp_path / "ran").exists()
    assert not (tmp_path / ".flowctl").exists()


def test_param_with_shell_syntax_is_passed_literally(flowctl, write_pipeline, tmp_path):
    (tmp_path / "x").mkdir()
    path = write_pipeline(
        """
        version: 1
        name: inj
        params:
          msg: {type: string, default: hi}
        steps:
          say: {run: 'echo ${{ params.msg }}'}
          argv: {run: [echo, '${{ params.msg }}']}
        """
    )
    res = flowctl("run", str(path), "-p", "msg=hello; rm -rf x", "--stream")
    assert res.returncode == 0, res.stdout
    assert (tmp_path / "x").is_dir()
    assert re.search(r" say \| hello; rm -rf x$", res.stdout, re.M)
    assert re.search(r" argv \| hello; rm -rf x$", res.stdout, re.M)


def test_a_process_that_clears_its_environment_and_detaches_is_killed_at_the_end(flowctl, write_pipeline, tmp_path):
    path = write_pipeline(
        f"""
        version: 1
        name: sneaky
        steps:
          hide: {{run: 'env -i setsid sleep 60 & sleep 0.3; echo $! > {tmp_path}/pid'}}
          wait: {{run: 'sleep 0.3', needs: [hide]}}
        """
    )
    res = flowctl("run", str(path))
    assert res.returncode == 0, res.stdout
    pid = int((tmp_path / "pid").read_text())
    assert not procs.is_alive(pid)


def _start(path: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "flowctl", "run", str(path), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=flowctl_env(),
    )


def _wait_for(path: Path, timeout: float = 10) -> list[int]:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.02)
    return [int(p) for p in path.read_text().split()]


def test_sigint_cancels_cleans_up_and_exits_130(write_pipeline, tmp_path):
    path = write_pipeline(
        f"""
        version: 1
        name: intr
        steps:
          hang: {{run: '{S} family {tmp_path}/pids'}}
          after: {{run: 'true', needs: [hang]}}
          other: {{run: 'sleep 30'}}
        """
    )
    proc = _start(path)
    pids = _wait_for(tmp_path / "pids")  # written once the whole family runs
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 130, (out, err)
    assert "cancelled" in out and "To run what did not finish" in out
    assert "Traceback" not in err
    assert len(pids) == 2 and not any(procs.is_alive(p) for p in pids), pids
    assert subprocess.run(["pgrep", "-f", f"{tmp_path}/pids"], capture_output=True).stdout == b""


def test_sigterm_behaves_like_ctrl_c(write_pipeline, tmp_path):
    path = write_pipeline(f"version: 1\nname: t\nsteps:\n  hang: {{run: '{S} orphan {tmp_path}/pid; sleep 30'}}\n")
    proc = _start(path)
    pids = _wait_for(tmp_path / "pid")
    proc.send_signal(signal.SIGTERM)
    _out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 130
    assert not procs.is_alive(pids[0])


def test_second_ctrl_c_kills_at_once(write_pipeline, tmp_path):
    from flowctl.run.executors.sweep import GRACE

    path = write_pipeline(f"version: 1\nname: t\nsteps:\n  deaf: {{run: 'exec {S} deaf {tmp_path}/up 30'}}\n")
    proc = _start(path)
    _wait_for(tmp_path / "up")  # its SIGTERM handler is in place
    proc.send_signal(signal.SIGINT)
    termed = tmp_path / "up.term"
    deadline = time.monotonic() + 30
    while not termed.exists():  # the first Ctrl-C reached the step: its grace period runs
        assert time.monotonic() < deadline and proc.poll() is None, "the first Ctrl-C never reached the step"
        time.sleep(0.01)
    grace_started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=15)
    assert proc.returncode == 130
    # The second Ctrl-C does not wait for the grace period to end (the step ignores SIGTERM,
    # so only a SIGKILL before then ends the run this early).
    assert time.monotonic() - grace_started < GRACE


def test_live_view_on_a_terminal(write_pipeline, tmp_path):
    import os
    import pty

    path = write_pipeline(
        "version: 1\nname: tty\nsteps:\n  a: {run: 'sleep 0.3'}\n  b: {run: 'echo oops; exit 2', continue_on_error: true}\n"
    )
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "flowctl", "run", str(path)],
        stdin=slave, stdout=slave, stderr=slave, env=flowctl_env({"COLUMNS": "100"}), close_fds=True,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the terminal's other side closed
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=30) == 0
    text = b"".join(chunks).decode(errors="replace")
    assert re.search(r"Run \d{8}T\d{6}-[0-9a-f]{4} of tty", text)
    assert "✗ b attempt 1: exit 2" in text and "oops" in text
    assert "failed (allowed)" in text and "succeeded" in text
    assert not re.search(LINE.pattern, text, re.M)  # no plain timestamped lines on a terminal


def test_a_short_secret_warns_once_by_name_and_is_masked_as_a_whole_word(flowctl, write_pipeline, tmp_path):
    path = write_pipeline(
        """
        version: 1
        name: short
        secret_env: [PIN]
        env: {PIN: '42', TOKEN: 's3cr3t-token'}
        steps:
          one: {run: 'echo "pin $PIN, not 1420 or 42x; token $TOKEN"'}
          two: {run: 'echo "pin=$PIN."', secret_env: [TOKEN], needs: [one]}
        """
    )
    res = flowctl("run", str(path), "--stream")
    assert res.returncode == 0, res.stderr
    warnings = [line for line in res.stderr.splitlines() if "warning" in line]
    assert warnings == [
        "flowctl: warning: secret PIN: shorter than 4 characters, so masked in output only where it stands as a whole word"
    ]
    assert "42" not in warnings[0].replace("PIN", "")
    logs = tmp_path / ".flowctl" / "runs"
    one = next(logs.glob("*/one/1.log")).read_text()
    assert one == "pin ***, not 1420 or 42x; token s3cr3t-token\n"  # TOKEN is no secret of step one
    assert next(logs.glob("*/two/1.log")).read_text() == "pin=***.\n"
    assert "pin ***, not 1420 or 42x" in res.stdout


def test_ctrl_c_while_a_step_waits_to_retry_says_so(tmp_path):
    """The step ran once and waits out its back-off: cancelled "while waiting to retry", never
    "before it started" (trial of main)."""
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\nname: t\nsteps:\n  flaky: {run: 'exit 3', retries: 1, retry_delay: 60s}\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "flowctl", "run", str(path), "--no-progress"],
        cwd=tmp_path, env=flowctl_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:  # readiness: the runner has scheduled the retry
        if " RETRY flaky " in line:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, (out, err)
    shown = json.loads(run_flowctl("show", "latest", "--json", cwd=tmp_path).stdout)
    [step] = shown["steps"]
    assert step["status"] == "cancelled"
    assert step["reason"] == "interrupted while waiting to retry (after 1 attempt(s))"

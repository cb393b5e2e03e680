"""Resume and run state you can trust (issue 12), end to end: interrupted steps run again,
a resume keeps the forcing of the run it continues, cancelled-while-running says so, records of
an older fingerprint scheme are never compared, and the state folder holds no unkeyed hash of a
secret.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tests.conftest import flowctl_env, run_flowctl


def starts(folder: Path) -> Counter[str]:
    path = folder / "ledger.txt"
    lines = path.read_text().split("\n") if path.exists() else []
    return Counter(line.split()[1] for line in lines if line.startswith("start "))


def wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, "the run ended before the moment to stop it"
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.01)


def start_run(folder: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "flowctl", "run", "pipeline.yaml", *args],
        cwd=folder, env=flowctl_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def runs(folder: Path) -> list[dict[str, object]]:
    got = run_flowctl("runs", "--json", cwd=folder)
    assert got.returncode == 0, got.stderr
    return json.loads(got.stdout)  # type: ignore[no-any-return]


# A step that holds (sleeps) while the file `hold` exists, after writing its pid.
HELD = """
version: 1
name: held
steps:
  slow:
    run: echo start slow >> ledger.txt; echo $$ > slow.pid; while [ -f hold ]; do sleep 0.05; done; echo out > out.txt
    outputs: [out.txt]
  after:
    run: echo start after >> ledger.txt; cat out.txt > after.txt
    needs: [slow]
    outputs: [after.txt]
"""


def test_a_step_killed_while_it_ran_runs_again_on_resume_even_with_an_older_matching_success(tmp_path):
    """Its outputs may be half-written: an older success with the same fingerprint and
    unchanged outputs must not make it 'up to date' on resume."""
    (tmp_path / "pipeline.yaml").write_text(HELD)
    assert run_flowctl("run", "pipeline.yaml", cwd=tmp_path).returncode == 0
    (tmp_path / "slow.pid").unlink()
    (tmp_path / "hold").touch()
    proc = start_run(tmp_path, "--force-step", "slow")
    wait_for(tmp_path / "slow.pid", proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    os.killpg(int((tmp_path / "slow.pid").read_text()), signal.SIGKILL)  # what the runner left behind
    (tmp_path / "hold").unlink()
    killed = runs(tmp_path)[0]["run_id"]
    resumed = run_flowctl("run", "pipeline.yaml", "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"run slow: interrupted in run {killed}" in resumed.stdout
    assert starts(tmp_path) == {"slow": 3, "after": 2}


CHAIN = """
version: 1
name: chain
steps:
  a: {run: 'echo start a >> ledger.txt; echo a > a.txt', outputs: [a.txt]}
  b: {run: 'echo start b >> ledger.txt; cat a.txt > b.txt', needs: [a], outputs: [b.txt]}
  c: {run: 'echo start c >> ledger.txt; cat b.txt > c.txt', needs: [b], outputs: [c.txt]}
"""


def test_a_resume_keeps_the_force_of_the_run_it_continues(tmp_path):
    """`run --force` killed early, then resumed twice (the first resume killed too): every
    step runs once more (none skipped as up to date), the resume records --force again, and
    no step that finished under --force runs a third time."""
    (tmp_path / "pipeline.yaml").write_text(CHAIN)
    assert run_flowctl("run", "pipeline.yaml", cwd=tmp_path).returncode == 0
    kill_third = {"FLOWCTL_FAILPOINTS": "state.after-commit=kill@4"}  # after a's result is saved
    forced = run_flowctl("run", "pipeline.yaml", "--force", cwd=tmp_path, env=kill_third)
    assert forced.returncode == -9
    resumed = run_flowctl("run", "pipeline.yaml", "--resume", cwd=tmp_path, env=kill_third)
    assert resumed.returncode == -9
    done = run_flowctl("run", "pipeline.yaml", "--resume", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert starts(tmp_path) == {"a": 2, "b": 2, "c": 2}
    history = runs(tmp_path)
    assert [r["status"] for r in history] == ["succeeded", "interrupted", "interrupted", "succeeded"]
    assert all(r["selection"]["force"] for r in history[:3])  # type: ignore[index]
    assert history[0]["resumed_from"] == history[1]["run_id"]


def test_a_resume_keeps_the_force_step_of_the_run_it_continues_after_any_commit(tmp_path):
    """`run --force-step b` killed after each of its state commits in turn, then resumed (no
    --force-step given again): b and c, which that run was asked to run afresh, each start
    again at least once (a step killed while it ran may run twice), c is never skipped as up
    to date, a never runs, and every resume records the forcing it continues."""
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "pipeline.yaml").write_text(CHAIN)
    assert run_flowctl("run", "pipeline.yaml", cwd=folder).returncode == 0
    saved = tmp_path / "saved"
    shutil.copytree(folder, saved)
    n = 0
    while True:
        n += 1
        shutil.rmtree(folder)
        shutil.copytree(saved, folder)
        env = {"FLOWCTL_FAILPOINTS": f"state.after-commit=kill@{n}"}
        forced = run_flowctl("run", "pipeline.yaml", "--force-step", "b", cwd=folder, env=env)
        if forced.returncode == 0:
            break
        assert forced.returncode == -9, forced.stdout + forced.stderr
        if len(runs(folder)) == 1:  # killed before it recorded its run: there is nothing to continue
            continue
        done = run_flowctl("run", "pipeline.yaml", "--resume", cwd=folder)
        assert done.returncode == 0, done.stdout + done.stderr
        again = starts(folder) - Counter({"a": 1, "b": 1, "c": 1})
        assert again["a"] == 0 and again["b"] >= 1 and again["c"] >= 1, f"kill@{n}: {dict(again)}\n{done.stdout}"
        history = runs(folder)
        assert history[0]["selection"]["force_steps"] == ["b"], f"kill@{n}"  # newest first  # type: ignore[index]
        assert n < 30, "the forced run never completed"
    assert n > 3, "the forced run commits several times: the loop must have covered each"


def test_a_step_stopped_while_it_ran_says_so(tmp_path):
    (tmp_path / "pipeline.yaml").write_text(HELD)
    (tmp_path / "hold").touch()
    proc = start_run(tmp_path)
    wait_for(tmp_path / "slow.pid", proc)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 130
    run_id = runs(tmp_path)[0]["run_id"]
    detail = json.loads(run_flowctl("show", str(run_id), "--json", cwd=tmp_path).stdout)
    reasons = {s["step"]: (s["status"], s["reason"]) for s in detail["steps"]}
    assert reasons == {
        "slow": ("cancelled", "interrupted while it ran"),
        "after": ("cancelled", "interrupted before it started"),
    }


def downgrade_to_scheme_1(state: Path) -> None:
    """Make the state folder look like one written before fingerprints had a scheme and a key
    (schema 1): the upgrade path every existing user takes."""
    conn = sqlite3.connect(state / "state.db")
    conn.execute("ALTER TABLE fingerprints DROP COLUMN key_id")
    conn.execute("ALTER TABLE fingerprints DROP COLUMN scheme")
    conn.execute("ALTER TABLE runs DROP COLUMN chaos")  # schema 3's columns (issue 17)
    conn.execute("ALTER TABLE attempts DROP COLUMN injected")
    conn.execute("DROP TABLE items")  # schema 3 (issue 15)
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    (state / "fingerprints.key").unlink()


def test_records_of_an_older_fingerprint_scheme_are_never_compared(tmp_path):
    (tmp_path / "pipeline.yaml").write_text(CHAIN)
    assert run_flowctl("run", "pipeline.yaml", cwd=tmp_path).returncode == 0
    old = runs(tmp_path)[0]["run_id"]
    downgrade_to_scheme_1(tmp_path / ".flowctl")
    explain = json.loads(run_flowctl("plan", "pipeline.yaml", "--explain", "--resume", "--json", cwd=tmp_path).stdout)
    assert [(s["verdict"], s["changes"][0]["part"] if s["changes"] else None) for s in explain["steps"]] == [
        ("run", "scheme"), ("run", None), ("run", None)
    ]
    assert explain["steps"][0]["reason"] == f"the fingerprint scheme changed (flowctl was upgraded) since run {old}"
    resumed = run_flowctl("run", "pipeline.yaml", "--resume", cwd=tmp_path)  # never a silent match
    assert resumed.returncode == 0, resumed.stderr
    assert "run a: the fingerprint scheme changed (flowctl was upgraded) since run" in resumed.stdout
    assert starts(tmp_path) == {"a": 2, "b": 2, "c": 2}
    assert stat.S_IMODE((tmp_path / ".flowctl" / "fingerprints.key").stat().st_mode) == 0o600
    again = run_flowctl("run", "pipeline.yaml", cwd=tmp_path)  # once only
    assert "nothing to run: all 3 step(s) up to date" in again.stdout


def test_a_missing_key_is_an_error_with_a_way_out_never_a_silent_new_key(tmp_path):
    (tmp_path / "pipeline.yaml").write_text(CHAIN)
    assert run_flowctl("run", "pipeline.yaml", cwd=tmp_path).returncode == 0
    key = tmp_path / ".flowctl" / "fingerprints.key"
    saved = key.read_bytes()
    key.unlink()
    for args in (["run", "pipeline.yaml"], ["plan", "pipeline.yaml", "--explain"]):
        got = run_flowctl(*args, cwd=tmp_path)
        assert got.returncode == 74, got.stdout + got.stderr
        assert "fingerprints.key is missing" in got.stderr and "flowctl doctor --repair" in got.stderr
        assert "Traceback" not in got.stderr and not key.exists()
    assert starts(tmp_path) == {"a": 1, "b": 1, "c": 1}
    doctor = run_flowctl("doctor", "pipeline.yaml", cwd=tmp_path)
    assert doctor.returncode == 1 and "key: the fingerprint key" in doctor.stdout
    key.write_bytes(saved)  # restored: everything is up to date again
    assert "nothing to run: all 3 step(s) up to date" in run_flowctl("run", "pipeline.yaml", cwd=tmp_path).stdout
    key.unlink()
    repaired = run_flowctl("doctor", "pipeline.yaml", "--repair", cwd=tmp_path)
    assert repaired.returncode == 0 and "made a new fingerprint key" in repaired.stdout
    rerun = run_flowctl("run", "pipeline.yaml", cwd=tmp_path)
    assert "run a: the fingerprint key changed (fingerprints.key was replaced) since run" in rerun.stdout
    assert starts(tmp_path) == {"a": 2, "b": 2, "c": 2}


# -- secrets ------------------------------------------------------------------------------------

SECRET = "s3cr3t-Value-4242"


def unkeyed_variants(name: str, value: str, extra: list[str]) -> set[bytes]:
    """Hex (full and the prefixes flowctl ever stored) and raw digests of SHA-256, SHA-1 and MD5
    of the secret as any unkeyed scheme might hash it."""
    texts = [value, value + "\0", f"{name}\0{value}\0", f"{name}\0{value}", f"{name}={value}", f"{name}={value}\n",
             json.dumps(value), f"FLOWCTL_ENV_{name}\0{value}\0", f"env\0{name}\0{value}\0", *extra]
    found: set[bytes] = set()
    for text in texts:
        for algo in ("sha256", "sha1", "md5"):
            digest = hashlib.new(algo, text.encode()).digest()
            found.add(digest)
            hexed = digest.hex()
            for size in (len(hexed), 32, 16):
                found.add(hexed[:size].encode())
                found.add(hexed[:size].upper().encode())
    return found


def test_no_unkeyed_hash_of_a_secret_is_stored_and_the_state_folder_is_private(tmp_path):
    (tmp_path / "pipeline.yaml").write_text(
        f"""
version: 1
name: sec
env: {{TOKEN: {SECRET}}}
secret_env: [TOKEN]
steps:
  shell:
    run: 'test "$TOKEN" = {SECRET} && echo "token is $TOKEN" && touch shell.txt'
    outputs: [shell.txt]
  argv:
    run: [sh, -c, 'echo "$1" > argv.txt', x, '${{{{ env.TOKEN }}}}']
    outputs: [argv.txt]
"""
    )
    env = {"TOKEN": SECRET}
    done = run_flowctl("run", "pipeline.yaml", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    state = tmp_path / ".flowctl"
    argv = "\0".join(["sh", "-c", 'echo "$1" > argv.txt', "x", SECRET]) + "\0"
    variants = unkeyed_variants("TOKEN", SECRET, [argv])
    files = [p for p in state.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"state.db", "fingerprints.key"}
    for path in files:
        data = path.read_bytes()
        assert SECRET.encode() not in data, path
        hits = [v for v in variants if v in data]
        assert not hits, f"{path} holds an unkeyed hash of the secret: {hits[:3]}"
    parts = sqlite3.connect(state / "state.db").execute("SELECT parts FROM fingerprints").fetchall()
    assert any("env:TOKEN" in p for (p,) in parts)  # the secret still counts, keyed
    modes = {p.relative_to(state).as_posix(): stat.S_IMODE(p.stat().st_mode)
             for p in [state, state / "runs", *state.glob("state.db*"), state / "fingerprints.key", *state.glob("*.lock")]}
    assert modes.pop(".") == 0o700 and modes.pop("runs") == 0o700
    assert set(modes.values()) == {0o600}, modes

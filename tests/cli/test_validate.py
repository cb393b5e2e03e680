"""``flowctl validate`` end to end: formats, exit codes, discovery."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import run_flowctl

GOOD = "version: 1\nname: good\nsteps:\n  a: {run: echo hi}\n"
BAD = "version: 1\nname: bad\nsteps:\n  a: {run: echo hi, needs: [b], retrys: 2}\n"


def project(tmp_path: Path, **files: str) -> Path:
    for name, text in files.items():
        path = tmp_path / "pipelines" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_valid_files_exit_0(tmp_path: Path) -> None:
    root = project(tmp_path, **{"good.yaml": GOOD})
    out = run_flowctl("validate", cwd=root)
    assert out.returncode == 0, out.stderr
    assert "pipelines/good.yaml (1 steps)" in out.stdout


def test_invalid_file_exit_1_with_positions(tmp_path: Path) -> None:
    root = project(tmp_path, **{"good.yaml": GOOD, "bad.yml": BAD})
    out = run_flowctl("validate", cwd=root)
    assert out.returncode == 1
    assert "pipelines/bad.yml:4:29: error: step 'a' needs 'b'" in out.stdout
    assert "pipelines/bad.yml:4:33: error: unknown key 'retrys'" in out.stdout
    assert "did you mean 'retries'?" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr


def test_no_pipeline_found_is_exit_2(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "sub").mkdir()
    out = run_flowctl("validate", cwd=tmp_path / "sub")
    assert out.returncode == 2
    assert "no pipeline files found" in out.stderr


def test_discovery_uses_git_top_level(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    root = project(tmp_path, **{"good.yaml": GOOD})
    (root / "deep" / "er").mkdir(parents=True)
    out = run_flowctl("validate", cwd=root / "deep" / "er")
    assert out.returncode == 0 and "good.yaml" in out.stdout


def test_missing_path_is_usage_error(tmp_path: Path) -> None:
    out = run_flowctl("validate", str(tmp_path / "nope.yaml"))
    assert out.returncode == 2 and "no such file" in out.stderr


def test_json_format(tmp_path: Path) -> None:
    root = project(tmp_path, **{"good.yaml": GOOD, "bad.yaml": BAD})
    out = run_flowctl("validate", "--json", cwd=root)
    data = json.loads(out.stdout)
    assert out.returncode == 1 and data["valid"] is False
    bad = next(f for f in data["files"] if f["file"].endswith("bad.yaml"))
    assert [(d["line"], d["column"], d["code"]) for d in bad["diagnostics"]] == [
        (4, 29, "missing-need"),
        (4, 33, "schema.additionalProperties"),
    ]


def test_github_format(tmp_path: Path) -> None:
    root = project(tmp_path, **{"bad.yaml": BAD})
    out = run_flowctl("validate", "--format", "github", cwd=root)
    lines = out.stdout.splitlines()
    assert lines[0].startswith("::error file=pipelines/bad.yaml,line=4,col=29,")
    assert len(lines) == 2 and out.returncode == 1


def test_sarif_format_shape(tmp_path: Path) -> None:
    root = project(tmp_path, **{"bad.yaml": BAD})
    out = run_flowctl("validate", "--format", "sarif", cwd=root)
    log = json.loads(out.stdout)
    assert log["version"] == "2.1.0"
    results = log["runs"][0]["results"]
    assert results[0]["locations"][0]["physicalLocation"]["region"]["startLine"] == 4


def test_param_override_type_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\nname: p\nparams: {n: {type: integer, default: 1}}\nsteps:\n  a: {run: x}\n")
    assert run_flowctl("validate", str(path), "-p", "n=5").returncode == 0
    out = run_flowctl("validate", str(path), "-p", "n=five")
    assert out.returncode == 1 and "takes integer" in out.stdout


def test_unknown_format_is_usage_error(tmp_path: Path) -> None:
    root = project(tmp_path, **{"good.yaml": GOOD})
    assert run_flowctl("validate", "--format", "xml", cwd=root).returncode == 2


def test_hostile_files_never_traceback(tmp_path: Path) -> None:
    files = {
        "binary.yaml": "\x00\x01\x02",
        "list.yaml": "- a\n- b\n",
        "tag.yaml": "version: 1\nname: x\nsteps: !!python/object/apply:os.system [id]\n",
    }
    root = project(tmp_path, **files)
    out = run_flowctl("validate", cwd=root)
    assert out.returncode == 1
    assert "Traceback" not in out.stdout + out.stderr
    assert out.stdout.count(": error: ") == 3

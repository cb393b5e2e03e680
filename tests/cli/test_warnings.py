"""Issue 13, "Warnings that save an hour", end to end: what validate, plan, run and schedule
install say (and refuse) about a pipeline this machine cannot run as written; the rendering of
warnings in every format; and the smaller dead ends (a folder given for a file, ``--force-step``
with ``--dry-run``, the duration grammar, ``init``'s starter)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from flowctl.spec.durations import PATTERN, is_duration, parse_duration
from tests.conftest import REPO, run_flowctl

SECRET = """
version: 1
name: secret
env: {API_TOKEN: "${{ env.FLOWCTL_TEST_TOKEN }}", REGION: "${{ env.FLOWCTL_TEST_REGION }}"}
secret_env: [API_TOKEN]
schedule: "0 2 * * *"
steps:
  a: {run: touch ran}
"""


def write(folder: Path, text: str, name: str = "p.yaml") -> Path:
    path = folder / name
    path.write_text(text.lstrip(), encoding="utf-8")
    return path


def test_run_refuses_an_unset_secret_before_anything_starts(tmp_path: Path) -> None:
    write(tmp_path, SECRET)
    refused = run_flowctl("run", "p.yaml", "--no-progress", cwd=tmp_path)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "p.yaml:3:19: error[unset-secret]: ${{ env.FLOWCTL_TEST_TOKEN }} is not set" in refused.stderr
    assert not (tmp_path / "ran").exists() and not (tmp_path / ".flowctl").exists()
    dry = run_flowctl("run", "p.yaml", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 2 and "error[unset-secret]" in dry.stderr  # a dry run refuses what a run would
    ran = run_flowctl("run", "p.yaml", "--no-progress", cwd=tmp_path, env={"FLOWCTL_TEST_TOKEN": "s3cr3t-token"})
    assert ran.returncode == 0, ran.stderr
    assert (tmp_path / "ran").exists()
    # The other variable is only worth a warning; it names its rule and its place.
    assert "p.yaml:3:60: warning[unset-env]: ${{ env.FLOWCTL_TEST_REGION }} is not set" in ran.stderr


def test_validate_and_plan_warn_and_strict_makes_it_an_error(tmp_path: Path) -> None:
    write(tmp_path, SECRET)
    checked = run_flowctl("validate", "p.yaml", cwd=tmp_path)
    assert checked.returncode == 0 and "warning[unset-secret]" in checked.stdout and "2 warning(s)" in checked.stdout
    assert run_flowctl("validate", "--strict", "p.yaml", cwd=tmp_path).returncode == 1
    planned = run_flowctl("plan", "p.yaml", "--json", cwd=tmp_path)
    assert planned.returncode == 0 and "warning[unset-env]" in planned.stderr
    assert [w["code"] for w in json.loads(planned.stdout)["warnings"]] == ["unset-secret", "unset-env"]
    strict = run_flowctl("plan", "p.yaml", "--strict", cwd=tmp_path)
    assert strict.returncode == 2 and "error[unset-secret]" in strict.stderr and strict.stdout == ""
    explained = run_flowctl("plan", "p.yaml", "--explain", "--strict", cwd=tmp_path)
    assert explained.returncode == 2 and "error[unset-env]" in explained.stderr


def test_schedule_install_refuses_an_unset_secret_and_warns_for_the_rest(tmp_path: Path) -> None:
    write(tmp_path, SECRET)
    crontab = tmp_path / "crontab"
    crontab.write_text("# mine\n")
    refused = run_flowctl("schedule", "install", "--file", str(crontab), "p.yaml", cwd=tmp_path)
    assert refused.returncode == 2 and "error[unset-secret]" in refused.stderr
    assert crontab.read_text() == "# mine\n"
    done = run_flowctl("schedule", "install", "--file", str(crontab), "p.yaml", cwd=tmp_path,
                       env={"FLOWCTL_TEST_TOKEN": "t"})
    assert done.returncode == 0, done.stderr
    assert "warning[unset-env]" in done.stderr and "cron does not see your shell's variables" in done.stderr
    assert "BEGIN flowctl schedule" in crontab.read_text()


MISSING = """
version: 1
name: missing
steps:
  make: {run: mkdir -p build/site, outputs: [build/site]}
  serve: {run: touch ../../served, cwd: build/site, needs: [make]}
  report: {run: touch reported, inputs: [data/never-made.csv]}
"""


def test_a_missing_input_is_a_warning_for_validate_and_an_error_for_run(tmp_path: Path) -> None:
    write(tmp_path, MISSING)
    checked = run_flowctl("validate", "p.yaml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout
    assert "p.yaml:6:42: warning[missing-input]: step 'report': input data/never-made.csv exists nowhere" in checked.stdout
    planned = run_flowctl("plan", "p.yaml", cwd=tmp_path)  # plan shows it too, and still plans
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "warning[missing-input]: step 'report': input data/never-made.csv exists nowhere" in planned.stderr + planned.stdout
    refused = run_flowctl("run", "p.yaml", "--no-progress", cwd=tmp_path)
    assert refused.returncode == 2 and "error[missing-input]" in refused.stderr
    assert not (tmp_path / "build").exists()  # nothing started
    # Without that step the run goes ahead; the cwd made by `make` is not a missing folder.
    ran = run_flowctl("run", "p.yaml", "--no-progress", "--only", "serve", cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert (tmp_path / "served").exists()


def test_a_missing_cwd_is_an_error_at_its_line(tmp_path: Path) -> None:
    write(tmp_path, "version: 1\nname: c\nsteps:\n  a: {run: 'true'}\n  b:\n    run: 'true'\n    cwd: nowhere\n")
    checked = run_flowctl("validate", "p.yaml", cwd=tmp_path)
    assert checked.returncode == 1 and "p.yaml:7:10: error[missing-cwd]: step 'b': cwd nowhere does not exist" in checked.stdout
    assert run_flowctl("run", "p.yaml", "--no-progress", cwd=tmp_path).returncode == 2


def test_warnings_in_json_github_and_sarif(tmp_path: Path) -> None:
    write(tmp_path, 'version: 1\nname: w\nparams: {v: {default: x}}\nsteps:\n  a: {run: \'bash -c "echo ${{ params.v }}"\'}\n')
    data = json.loads(run_flowctl("validate", "--json", "p.yaml", cwd=tmp_path).stdout)
    assert data["valid"] is True and data["warnings"] == 1 and data["files"][0]["valid"] is True
    [diag] = data["files"][0]["diagnostics"]
    assert (diag["line"], diag["column"], diag["code"], diag["severity"]) == (5, 27, "nested-shell-substitution", "warning")
    github = run_flowctl("validate", "--format", "github", "p.yaml", cwd=tmp_path)
    assert github.returncode == 0
    assert github.stdout.startswith("::warning file=p.yaml,line=5,col=27,") and "title=flowctl nested-shell-substitution" in github.stdout
    sarif = json.loads(run_flowctl("validate", "--format", "sarif", "p.yaml", cwd=tmp_path).stdout)
    [result] = sarif["runs"][0]["results"]
    assert (result["ruleId"], result["level"]) == ("nested-shell-substitution", "warning")
    [rule] = sarif["runs"][0]["tool"]["driver"]["rules"]
    assert "nested interpreter" in rule["shortDescription"]["text"]
    strict = json.loads(run_flowctl("validate", "--json", "--strict", "p.yaml", cwd=tmp_path).stdout)
    assert strict["valid"] is False and strict["files"][0]["diagnostics"][0]["severity"] == "error"


# -- smaller dead ends --------------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "plan", "graph", "versions", "release --bump minor", "schedule next"])
def test_a_folder_given_for_a_pipeline_lists_its_pipeline_files(command: str, tmp_path: Path) -> None:
    (tmp_path / "pipelines").mkdir()
    for name in ("etl.yaml", "build.yml"):
        write(tmp_path / "pipelines", "version: 1\nname: x\nsteps: {a: {run: 'true'}}\n", name)
    words = command.split()
    done = run_flowctl(*words[:2 if command.startswith("schedule") else 1], "pipelines",
                       *words[2 if command.startswith("schedule") else 1:], cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "pipelines is a folder, not a pipeline file" in done.stderr
    assert "give one of the pipeline files in it: pipelines/build.yml, pipelines/etl.yaml" in done.stderr


def test_diff_takes_a_folder_as_the_pipeline_files_in_it(tmp_path: Path) -> None:
    import subprocess

    (tmp_path / "pipelines").mkdir()
    write(tmp_path / "pipelines", "version: 1\nname: x\nsteps: {a: {run: 'true'}}\n", "x.yaml")
    git = ["git", "-C", str(tmp_path), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    done = run_flowctl("diff", "pipelines", "--against", "HEAD", cwd=tmp_path)
    assert done.returncode == 0 and "1 pipeline compared" in done.stdout, done.stdout + done.stderr


def test_force_step_of_an_unknown_step_is_an_error_with_dry_run_too(tmp_path: Path) -> None:
    write(tmp_path, "version: 1\nname: f\nsteps:\n  compile: {run: 'true'}\n")
    done = run_flowctl("run", "p.yaml", "--dry-run", "--force-step", "compil", cwd=tmp_path)
    assert done.returncode == 2 and "--force-step compil: no step 'compil'" in done.stderr
    assert "did you mean 'compile'?" in done.stderr


def test_one_duration_grammar_for_the_schema_the_format_and_every_option(tmp_path: Path) -> None:
    for schema in (REPO / "schemas" / "pipeline.schema.json", REPO / "flowctl" / "schemas" / "pipeline.schema.json"):
        duration = json.loads(schema.read_text())["$defs"]["duration"]["anyOf"][0]
        assert duration["pattern"] == PATTERN
    for text in ("10", "1.5", "500ms", "30s", " 5m ", "1h30m", "1d 2h"):
        assert is_duration(text) and parse_duration(text) >= 0
    for text in ("1h30", "10 minutes", "", "ms", "-5", "1e3"):
        assert not is_duration(text)
        with pytest.raises(ValueError):
            parse_duration(text)
    write(tmp_path, "version: 1\nname: d\nsteps:\n  a: {run: 'true', timeout: '10'}\n")
    assert run_flowctl("validate", "p.yaml", cwd=tmp_path).returncode == 0
    assert run_flowctl("run", "p.yaml", "--no-progress", "--wait", "10", cwd=tmp_path).returncode == 0
    assert run_flowctl("run", "--wait", "p.yaml", "--no-progress", cwd=tmp_path).returncode == 0
    bad = run_flowctl("run", "p.yaml", "--wait", "1h30", cwd=tmp_path)
    assert bad.returncode == 2 and "--wait: '1h30' is not a duration" in bad.stderr
    assert run_flowctl("gc", "--older-than", "10", "--dry-run", cwd=tmp_path).returncode == 0
    assert run_flowctl("stats", "p.yaml", "--since", "10", cwd=tmp_path).returncode == 0
    since = run_flowctl("stats", "p.yaml", "--since", "ten", cwd=tmp_path)
    assert since.returncode == 2 and "--since: 'ten' is not a duration" in since.stderr


@pytest.mark.parametrize("name", ["nightly", "params", "greeting", "name-with-dashes"])
def test_init_starter_mentions_only_its_real_params(name: str, tmp_path: Path) -> None:
    assert run_flowctl("init", name, cwd=tmp_path).returncode == 0
    text = (tmp_path / "pipelines" / f"{name}.yaml").read_text()
    params = set(yaml.safe_load(text)["params"])
    mentioned = set(re.findall(r"\$\{\{\s*params\.([A-Za-z0-9_-]+)\s*\}\}", text))
    assert mentioned and mentioned <= params, (mentioned, params)
    assert f"name: {name}\n" in text and "__PIPELINE__" not in text
    strict = run_flowctl("validate", "--strict", cwd=tmp_path)
    assert strict.returncode == 0, strict.stdout
    assert run_flowctl("run", f"pipelines/{name}.yaml", "--no-progress", cwd=tmp_path).returncode == 0

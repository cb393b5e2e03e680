"""A step renamed or added since the run being resumed is called a new step, not "not selected"
(issue 13: after renaming ``c`` to ``c2``, ``--resume`` said ``run c2: not selected in run X``)."""

from __future__ import annotations

from tests.conftest import run_flowctl


def test_a_renamed_step_is_new_on_resume(tmp_path, write_pipeline):  # type: ignore[no-untyped-def]
    (tmp_path / ".flowctl").mkdir()
    text = "version: 1\nname: ren\nsteps:\n  a: {run: 'echo a'}\n  b: {run: 'exit 1', needs: [a]}\n  c: {run: 'echo c'}\n"
    path = write_pipeline(text)
    assert run_flowctl("run", str(path), "--no-progress", cwd=tmp_path).returncode == 1
    path.write_text(text.replace("  c:", "  c2:"), encoding="utf-8")
    resumed = run_flowctl("run", str(path), "--resume", "--no-progress", cwd=tmp_path)
    assert resumed.returncode == 1
    assert "run c2: a new step: not in the pipeline of run " in resumed.stdout
    assert "not selected" not in resumed.stdout


def test_a_step_left_out_by_only_is_still_not_selected(tmp_path, write_pipeline):  # type: ignore[no-untyped-def]
    (tmp_path / ".flowctl").mkdir()
    path = write_pipeline("version: 1\nname: sel\nsteps:\n  a: {run: 'exit 1'}\n  c: {run: 'echo c'}\n")
    assert run_flowctl("run", str(path), "--only", "a", "--no-progress", cwd=tmp_path).returncode == 1
    resumed = run_flowctl("run", str(path), "--resume", "--no-progress", cwd=tmp_path)
    assert "a new step" not in resumed.stdout

"""The resume / up-to-date decision, step by step, with its reasons."""

from __future__ import annotations

from flowctl.fingerprint import MISSING, SCHEME, Fingerprint
from flowctl.state.decide import Verdict, decide, nothing_to_run
from flowctl.state.records import LastSuccess, RunDetail, RunRecord, StepRecord, StoredFingerprint

ORDER = ("extract", "transform", "load", "report")
NEEDS = {"transform": ("extract",), "load": ("transform",), "report": ("extract",)}


def fps(**changed):
    return {s: Fingerprint(s, changed.get(s, f"{s}-v1"), {"command": changed.get(s, "c1")}) for s in ORDER}


def run(statuses, fingerprints=None):
    fingerprints = fingerprints or {s: f"{s}-v1" for s in ORDER}
    record = RunRecord("r1", "etl", "", "failed", 1.0, 2.0, 1.0, ORDER, {}, {}, 2, None, {}, {}, None, "h", 1, None)
    steps = tuple(
        StepRecord("r1", s, i, statuses.get(s, "pending"), None, None, None, None, 1, None, None, "",
                   fingerprints[s], {})
        for i, s in enumerate(ORDER)
    )
    return RunDetail(record, steps)


def no_outputs(step):
    raise AssertionError(f"no output hashing expected for {step}")


def test_resume_reuses_unchanged_successes_and_reruns_the_rest():
    prior = run({"extract": "succeeded", "transform": "failed", "report": "interrupted"})
    got = decide(ORDER, NEEDS, fps(), outputs={}, output_hashes=no_outputs, resume=prior)
    assert {s: d.verdict for s, d in got.items()} == {
        "extract": Verdict.REUSED, "transform": Verdict.RUN, "load": Verdict.RUN, "report": Verdict.RUN,
    }
    assert got["extract"].reason == "succeeded in run r1, fingerprint unchanged"
    assert got["transform"].reason == "failed in run r1"
    assert got["load"].reason == "upstream transform will run"
    assert got["report"].reason == "interrupted in run r1"


def test_a_changed_fingerprint_reruns_the_step_and_everything_downstream():
    prior = run({s: "succeeded" for s in ORDER})
    parts = {"extract-v1": StoredFingerprint("extract-v1", {"command": "c1"}, SCHEME, "")}
    current = fps(extract="extract-v2")
    current["extract"] = Fingerprint("extract", "extract-v2", {"command": "c2"})
    got = decide(ORDER, NEEDS, current, outputs={}, output_hashes=no_outputs, resume=prior, recorded=parts)
    assert all(d.verdict is Verdict.RUN for d in got.values())
    assert got["extract"].reason == "the command changed since run r1"
    assert got["report"].reason == "upstream extract will run"


def test_a_finished_run_with_nothing_changed_leaves_nothing_to_do():
    prior = run({s: "succeeded" for s in ORDER} | {"load": "reused"})
    got = decide(ORDER, NEEDS, fps(), outputs={}, output_hashes=no_outputs, resume=prior)
    assert nothing_to_run(got)


def test_up_to_date_needs_outputs_a_matching_success_and_unchanged_files():
    last = {"extract": LastSuccess("extract", "r0", "extract-v1", {"raw.csv": "h1"}, 5.0)}
    outputs = {"extract": ("raw.csv",)}
    now = {"raw.csv": "h1"}
    got = decide(ORDER, NEEDS, fps(), outputs=outputs, output_hashes=lambda s: now, successes=last)
    assert got["extract"].verdict is Verdict.UP_TO_DATE
    assert got["extract"].outputs == {"raw.csv": "h1"}
    assert got["transform"].verdict is Verdict.RUN
    assert got["transform"].reason == "declares no outputs, so it always runs"
    now = {"raw.csv": "h2"}
    got = decide(ORDER, NEEDS, fps(), outputs=outputs, output_hashes=lambda s: now, successes=last)
    assert got["extract"].reason == "output raw.csv changed since run r0"
    now = {"raw.csv": MISSING}
    got = decide(ORDER, NEEDS, fps(), outputs=outputs, output_hashes=lambda s: now, successes=last)
    assert got["extract"].reason == "output raw.csv missing"
    got = decide(ORDER, NEEDS, fps(extract="x"), outputs=outputs, output_hashes=lambda s: now, successes=last)
    assert got["extract"].reason == "fingerprint changed since run r0"
    got = decide(ORDER, NEEDS, fps(), outputs=outputs, output_hashes=lambda s: now, successes={})
    assert got["extract"].reason == "never succeeded before"


def test_force_and_force_step():
    prior = run({s: "succeeded" for s in ORDER})
    got = decide(ORDER, NEEDS, fps(), outputs={}, output_hashes=no_outputs, resume=prior, force=True)
    assert all(d.verdict is Verdict.RUN and d.reason == "forced (--force)" for d in got.values())
    got = decide(ORDER, NEEDS, fps(), outputs={}, output_hashes=no_outputs, resume=prior, force_steps={"transform"})
    assert {s: d.verdict for s, d in got.items()} == {
        "extract": Verdict.REUSED, "transform": Verdict.RUN, "load": Verdict.RUN, "report": Verdict.REUSED,
    }
    assert got["load"].reason == "--force-step transform runs upstream"

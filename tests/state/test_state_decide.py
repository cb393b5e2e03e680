"""The resume / up-to-date decision, step by step, with its reasons."""

from __future__ import annotations

import dataclasses

from flowctl.fingerprint import MISSING, SCHEME, Fingerprint
from flowctl.state.decide import Verdict, decide, nothing_to_run
from flowctl.state.run_records import LastSuccess, RunDetail, RunRecord, StepRecord, StoredFingerprint

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


def stored(digest, scheme=SCHEME, key_id="k1"):
    return StoredFingerprint(digest, {"command": "c1"}, scheme, key_id)


def keyed(**changed):
    return {s: Fingerprint(s, f.digest, f.parts, key_id="k1") for s, f in fps(**changed).items()}


def test_a_record_of_another_scheme_or_key_never_matches_even_with_the_same_digest():
    """Issue 12: an old-scheme record never silently matches (nor mismatches part by part)."""
    prior = run({s: "succeeded" for s in ORDER})
    for record, words in ((stored("extract-v1", scheme=1, key_id=""), "the fingerprint scheme changed"),
                          (stored("extract-v1", key_id="k0"), "the fingerprint key changed")):
        got = decide(ORDER, NEEDS, keyed(), outputs={}, output_hashes=no_outputs, resume=prior,
                     recorded={"extract-v1": record})
        assert got["extract"].verdict is Verdict.RUN
        assert got["extract"].reason.startswith(words) and got["extract"].reason.endswith("since run r1")
        assert [c.part for c in got["extract"].changes] in (["scheme"], ["key"])
        last = {"extract": LastSuccess("extract", "r0", "extract-v1", {"raw.csv": "h1"}, 5.0)}
        got = decide(ORDER, NEEDS, keyed(), outputs={"extract": ("raw.csv",)}, output_hashes=lambda s: {"raw.csv": "h1"},
                     successes=last, recorded={"extract-v1": record})
        assert got["extract"].verdict is Verdict.RUN and got["extract"].reason.startswith(words)
    same = decide(ORDER, NEEDS, keyed(), outputs={}, output_hashes=no_outputs, resume=prior,
                  recorded={f"{s}-v1": stored(f"{s}-v1") for s in ORDER})
    assert nothing_to_run(same)


def test_a_step_that_did_not_succeed_in_the_resumed_run_runs_even_when_up_to_date():
    """Issue 12: interrupted (or never started, failed, cancelled) in the run resumed: it runs,
    although an older success with this fingerprint and these outputs exists."""
    last = {s: LastSuccess(s, "r0", f"{s}-v1", {"o": "h"}, 5.0) for s in ORDER}
    outputs = {s: ("o",) for s in ORDER}
    for status, words in (("interrupted", "interrupted"), ("pending", "never started"),
                          ("cancelled", "cancelled"), ("running", "was running")):
        prior = run({"extract": "succeeded", "transform": status, "load": "succeeded", "report": "succeeded"})
        got = decide(ORDER, NEEDS, fps(), outputs=outputs, output_hashes=lambda s: {"o": "h"}, resume=prior,
                     successes=last)
        assert got["transform"].verdict is Verdict.RUN and got["transform"].reason == f"{words} in run r1"
        assert got["load"].reason == "upstream transform will run"
        assert got["extract"].verdict is got["report"].verdict is Verdict.REUSED
    fresh = decide(ORDER, NEEDS, fps(), outputs=outputs, output_hashes=lambda s: {"o": "h"}, successes=last)
    assert {d.verdict for d in fresh.values()} == {Verdict.UP_TO_DATE}  # without resume: up to date


def test_a_resume_keeps_the_forcing_of_the_run_it_continues():
    """Steps the resumed run does not record (added since) are not 'up to date' when that run
    was forced; what it finished is still reused."""
    record = RunRecord("r1", "etl", "", "interrupted", 1.0, 2.0, 1.0, ("extract",), {}, {"force_steps": ["extract"]},
                       2, None, {}, {}, None, "h", 1, None)
    prior = RunDetail(record, (StepRecord("r1", "extract", 0, "succeeded", None, None, None, None, 1, None, None, "",
                                          "extract-v1", {}),))
    last = {s: LastSuccess(s, "r0", f"{s}-v1", {"o": "h"}, 5.0) for s in ORDER}
    got = decide(ORDER, NEEDS, fps(), outputs={s: ("o",) for s in ORDER}, output_hashes=lambda s: {"o": "h"},
                 resume=prior, successes=last)
    assert got["extract"].verdict is Verdict.REUSED
    assert got["transform"].reason == "--force-step extract ran upstream in run r1"
    assert got["load"].verdict is Verdict.RUN
    assert got["report"].verdict is Verdict.RUN  # needs extract, forced there too
    unforced = RunDetail(dataclasses.replace(record, selection={}), prior.steps)
    got = decide(ORDER, NEEDS, fps(), outputs={s: ("o",) for s in ORDER}, output_hashes=lambda s: {"o": "h"},
                 resume=unforced, successes=last)
    assert got["transform"].verdict is Verdict.UP_TO_DATE

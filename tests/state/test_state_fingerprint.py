"""Fingerprints: exactly the parts that decide a step's result, and which of them changed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from flowctl.fingerprint import (
    MISSING,
    SCHEME,
    FingerprintKey,
    PartChange,
    diff_parts,
    fingerprint_step,
    fingerprint_steps,
    hash_paths,
)


@dataclass(frozen=True)
class Inv:
    argv: tuple[str, ...]
    cwd: str
    declared_env: Mapping[str, str] = field(default_factory=dict)
    params_used: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()


KEY = FingerprintKey(b"k" * 32)


def fp(inv, tmp_path=None, **kw):
    return fingerprint_step("s", inv, params=kw.pop("params", {}), key=kw.pop("key", KEY), **kw)


def test_the_same_inputs_give_the_same_digest(tmp_path):
    inv = Inv(("/bin/sh", "-c", "echo hi"), str(tmp_path), {"A": "1"}, ("day",))
    one = fp(inv, params={"day": "mon"})
    two = fp(inv, params={"day": "mon", "unused": 1})
    assert one.digest == two.digest and len(one.digest) == 32
    assert set(one.parts) == {"command", "cwd", "env:A", "param:day"}


def test_each_part_changes_the_digest(tmp_path):
    base = Inv(("/bin/sh", "-c", "echo hi"), str(tmp_path), {"A": "1"}, ("day",))
    ref = fp(base, params={"day": "mon"})
    variants = {
        "command": fp(replace(base, argv=("/bin/sh", "-c", "echo ho")), params={"day": "mon"}),
        "cwd": fp(replace(base, cwd=str(tmp_path / "x")), params={"day": "mon"}),
        "env:A": fp(replace(base, declared_env={"A": "2"}), params={"day": "mon"}),
        "param:day": fp(base, params={"day": "tue"}),
        "needs:up": fp(base, params={"day": "mon"}, upstream={"up": "x"}),
        "outputs": fp(replace(base, outputs=("out.csv",)), params={"day": "mon"}),
        "envref:HOME": fp(replace(base, env={"FLOWCTL_ENV_HOME": "/root", "FLOWCTL_PARAM_DAY": "x"}),
                          params={"day": "mon"}),
    }
    for part, other in variants.items():
        assert other.digest != ref.digest, part
        assert part in {c.part for c in diff_parts(ref.parts, other.parts)}


def test_a_secret_value_is_hashed_never_kept(tmp_path):
    secret = "hunter2-very-secret"
    got = fp(Inv(("true",), str(tmp_path), {"TOKEN": secret}))
    assert secret not in repr(got)
    assert got.parts["env:TOKEN"] != fp(Inv(("true",), str(tmp_path), {"TOKEN": "other"})).parts["env:TOKEN"]


def test_inputs_globs_are_expanded_sorted_and_hashed_by_content(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "b.csv").write_text("b")
    (tmp_path / "data" / "a.csv").write_text("a")
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "x.ini").write_text("x")
    inv = Inv(("true",), str(tmp_path))
    inv = replace(inv, inputs=("data/*.csv", "conf", "nothing/*.txt"))
    one = fp(inv)
    inputs = [k for k in one.parts if k.startswith("input:")]
    assert inputs == ["input:conf/x.ini", "input:data/a.csv", "input:data/b.csv", "input:nothing/*.txt"]
    assert one.parts["input:nothing/*.txt"] == MISSING
    (tmp_path / "data" / "a.csv").write_text("A")
    two = fp(inv)
    assert [c.part for c in diff_parts(one.parts, two.parts)] == ["input:data/a.csv"]
    (tmp_path / "data" / "c.csv").write_text("c")
    three = fp(inv)
    assert diff_parts(two.parts, three.parts) == (PartChange("input:data/c.csv", "added"),)
    assert diff_parts(two.parts, three.parts)[0].describe() == "input data/c.csv is new"


def test_upstream_changes_flow_downstream(tmp_path):
    invs = {s: Inv(("/bin/sh", "-c", f"echo {s}"), str(tmp_path)) for s in "abc"}
    needs = {"b": ("a",), "c": ("b",)}
    one = fingerprint_steps("abc", needs, invs, {}, key=KEY)
    invs["a"] = Inv(("/bin/sh", "-c", "echo A"), str(tmp_path))
    two = fingerprint_steps("abc", needs, invs, {}, key=KEY)
    assert all(one[s].digest != two[s].digest for s in "abc")
    assert [c.describe() for c in diff_parts(one["c"].parts, two["c"].parts)] == ["upstream step b changed"]


def test_hash_paths_reports_missing_outputs(tmp_path):
    (tmp_path / "out.txt").write_text("x")
    hashes = hash_paths(["out.txt", "gone.txt"], str(tmp_path))
    assert hashes["gone.txt"] == MISSING and len(hashes["out.txt"]) == 64


def test_only_env_expressions_count_among_the_added_variables(tmp_path):
    base = Inv(("/bin/sh", "-c", 'echo "$FLOWCTL_ENV_HOME"'), str(tmp_path), {},
               env={"FLOWCTL_ENV_HOME": "/a", "FLOWCTL_PARAM_X": "1", "FLOWCTL_RUN_ID": "r"})
    one = fp(base)
    assert [k for k in one.parts if k.startswith("env")] == ["envref:HOME"]
    two = fp(replace(base, env={**base.env, "FLOWCTL_ENV_HOME": "/b", "FLOWCTL_RUN_ID": "other"}))
    changes = diff_parts(one.parts, two.parts)
    assert [c.describe() for c in changes] == ["the value of ${{ env.HOME }} changed"]


def test_every_part_is_keyed_and_the_fingerprint_names_its_scheme_and_key(tmp_path):
    (tmp_path / "in.txt").write_text("data")
    inv = Inv(("/bin/sh", "-c", "echo hi"), str(tmp_path), {"A": "1"}, ("day",), inputs=("in.txt",),
              env={"FLOWCTL_ENV_HOME": "/root"})
    one = fp(inv, params={"day": "mon"}, upstream={"up": "d"})
    other = fp(inv, params={"day": "mon"}, upstream={"up": "d"}, key=FingerprintKey(b"o" * 32))
    assert (one.scheme, one.key_id) == (SCHEME, KEY.id) and other.key_id != KEY.id
    assert one.digest != other.digest
    assert {k for k in one.parts if one.parts[k] == other.parts[k]} == {"needs:up"}  # the upstream digest itself


def test_typed_values_hash_as_the_text_the_step_sees(tmp_path):
    inv = Inv(("true",), str(tmp_path), params_used=("n",))
    assert fp(inv, params={"n": True}).digest == fp(inv, params={"n": "true"}).digest
    assert fp(inv, params={"n": 10}).digest == fp(inv, params={"n": "10"}).digest
    assert fp(inv, params={"n": 10}).digest != fp(inv, params={"n": 10.5}).digest


def test_the_digest_and_the_command_part_are_the_documented_keyed_hashes(tmp_path):
    """``fingerprint_step`` hashes inline for speed (issue 12): the digest stays ``digest_of``
    its parts and each part the HMAC of its NUL-terminated chunks, so stored records still match."""
    import hmac

    from flowctl.fingerprint import digest_of

    inv = Inv(("/bin/sh", "-c", "echo hi é"), str(tmp_path), {"A": "1"}, ("day",), outputs=("o.txt",))
    got = fp(inv, params={"day": "mon"}, upstream={"x": "d1", "a": "d2"})
    assert got.digest == digest_of(got.parts, KEY)
    want = hmac.new(b"k" * 32, "command\0/bin/sh\0-c\0echo hi é\0".encode(), "sha256").hexdigest()[:32]
    assert got.parts["command"] == want
    assert list(got.parts)[:2] == ["command", "cwd"] and got.parts["needs:a"] == "d2"

"""Step fingerprints: a keyed hash of everything that decides a step's result, kept with its parts.

A fingerprint is made of these parts (each a short keyed hash; values are never stored):

* ``command`` — the command after parameter substitution (the argv for argv-form steps, the
  ``/bin/sh -c`` text for shell steps);
* ``param:<name>`` — the value of every parameter the step uses, also when it reaches the step
  only as a ``FLOWCTL_PARAM_<NAME>`` variable;
* ``env:<KEY>`` — every ``env`` entry the pipeline and the step declare, after substitution
  (secret entries included, hashed like the others). The inherited environment and the
  ``FLOWCTL_*`` variables flowctl adds are not part of it, except:
* ``envref:<NAME>`` — the value of each ``${{ env.NAME }}`` a shell command uses (it reaches the
  command as a variable, so the command text alone would not show a change);
* ``cwd`` — the folder the step runs in;
* ``needs:<step>`` — the fingerprint of every step it needs (so a change flows downstream);
* ``input:<path>`` — the content of each file its ``inputs`` name, globs expanded and sorted,
  folders walked; a pattern that matches nothing is ``input:<pattern>`` = ``missing``;
* ``outputs`` — the list of files it declares it writes (as written, values filled in), when it
  declares any: a step asked for other outputs has not produced them (DVC hashes its outs too).

``FINGERPRINT_KEYS`` names the pipeline keys that feed these parts. It is the one list of what
invalidates a recorded result: ``diff`` classes exactly these keys as invalidating
(``diff/classes.py``, docs/change-classes.md), and a test changes every schema key and checks
that the digest moves for these keys and for no other.

Scheme 2 (``SCHEME``): every part is HMAC-SHA256 under the state folder's ``FingerprintKey``
(``state/keys.py``), so a stored part is no test for guessing a secret offline (issue 12); typed
values are hashed as the text the step sees (``expr.value_text`` of the canonical value that
``spec.paramvalues.coerce_param`` makes), so ``10`` and ``10.0`` of a ``number`` never differ. Scheme 1
(before) was unkeyed SHA-256 over JSON values: its records are never compared with scheme 2 ones
(``state/decide.py`` says the scheme changed instead).

The digest is the HMAC over the sorted parts. ``diff_parts`` says which parts changed, which
``plan --explain`` turns into words. Used by the run wiring, resume and ``plan``; pure apart from
reading input files.
"""

from __future__ import annotations

import glob
import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from flowctl.spec.expr import ENV_VAR_PREFIX, value_text

MISSING = "missing"
SCHEME = 2  # 1: unkeyed SHA-256 over JSON values (before issue 12); 2: HMAC-SHA256, canonical text
_CHUNK = 1 << 20
_KEY_ID_MESSAGE = b"flowctl fingerprint key id"


class _Sha256(Protocol):
    """What ``mac`` uses of a ``hashlib.sha256`` object."""

    def copy(self) -> _Sha256: ...
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...
    def hexdigest(self) -> str: ...


@dataclass(frozen=True, slots=True)
class FingerprintKey:
    """The secret every fingerprint part is keyed with; ``id`` names it without revealing it
    (recorded with each stored fingerprint, so a replaced key is told apart from a change)."""

    secret: bytes = field(repr=False)
    id: str = field(init=False, default="")
    # HMAC's inner and outer SHA-256 states after the padded key (RFC 2104), copied per message:
    # the same digests as hmac.digest at less than half its cost (a fingerprint hashes 4-6
    # parts per step; 100,000-step pipelines exist).
    _inner: _Sha256 | None = field(init=False, repr=False, compare=False, default=None)
    _outer: _Sha256 | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if len(self.secret) < 16:
            raise ValueError("a fingerprint key needs at least 16 bytes")
        block = (hashlib.sha256(self.secret).digest() if len(self.secret) > 64 else self.secret).ljust(64, b"\0")
        object.__setattr__(self, "_inner", hashlib.sha256(bytes(b ^ 0x36 for b in block)))
        object.__setattr__(self, "_outer", hashlib.sha256(bytes(b ^ 0x5C for b in block)))
        object.__setattr__(self, "id", self.mac(_KEY_ID_MESSAGE)[:16])

    def mac(self, data: bytes) -> str:
        """HMAC-SHA256 of ``data`` under this key, in hex."""
        assert self._inner is not None and self._outer is not None  # set in __post_init__
        inner = self._inner.copy()
        inner.update(data)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()

    @classmethod
    def random(cls) -> FingerprintKey:
        """A new random key (256 bits)."""
        return cls(os.urandom(32))

#: Each pipeline key (a schema path: ``<name>`` a parameter, ``<id>`` a step) whose value goes
#: into the fingerprint, and the part it feeds. Keep in step with ``fingerprint_step``.
FINGERPRINT_KEYS: Mapping[str, str] = {
    "params": "param",  # a parameter added or removed changes what the steps using it see
    "params.<name>": "param",
    "params.<name>.default": "param",
    "env": "env",
    "steps.<id>.run": "command",
    "steps.<id>.needs": "needs",
    "steps.<id>.env": "env",
    "steps.<id>.cwd": "cwd",
    "steps.<id>.inputs": "input",
    "steps.<id>.outputs": "outputs",
}


class InvocationLike(Protocol):
    """What the run path reads of ``spec.resolve.Invocation``: the scheduler (argv, env, cwd,
    display, secrets) and the fingerprint (argv, declared env, cwd, params used, inputs,
    outputs). The one protocol for both (``run.options`` re-exports it)."""

    @property
    def argv(self) -> tuple[str, ...]: ...
    @property
    def display(self) -> str: ...
    @property
    def secrets(self) -> tuple[str, ...]: ...
    @property
    def declared_env(self) -> Mapping[str, str]: ...
    @property
    def cwd(self) -> str: ...
    @property
    def params_used(self) -> tuple[str, ...]: ...
    @property
    def inputs(self) -> tuple[str, ...]: ...
    @property
    def outputs(self) -> tuple[str, ...]: ...
    @property
    def env(self) -> Mapping[str, str]: ...


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A step's fingerprint: ``digest`` and the ``parts`` it was computed from (name → hash)."""

    step: str
    digest: str
    parts: Mapping[str, str] = field(default_factory=dict)
    scheme: int = SCHEME
    key_id: str = ""  # FingerprintKey.id of the key it was made with


@dataclass(frozen=True, slots=True)
class PartChange:
    """One part that differs between a recorded fingerprint and the current one."""

    part: str  # e.g. "command", "env:TOKEN", "input:data/a.csv", "needs:extract"
    change: str  # "changed", "added" or "removed"

    def describe(self) -> str:
        kind, _, name = self.part.partition(":")
        what = {
            "command": "the command",
            "cwd": "the working directory",
            "param": f"param {name}",
            "env": f"env {name}",
            "envref": f"the value of ${{{{ env.{name} }}}}",
            "input": f"input {name}",
            "needs": f"upstream step {name}",
            "outputs": "the declared outputs",
        }.get(kind, self.part)
        if kind in _RECORD_CHANGES:  # the record cannot be compared at all: no part is named
            return _RECORD_CHANGES[kind]
        if kind == "needs":
            return {"changed": f"{what} changed", "added": f"now needs {name}"}.get(
                self.change, f"no longer needs {name}"
            )
        if kind == "input" and self.change != "changed":
            return f"{what} is new" if self.change == "added" else f"{what} is gone"
        return f"{what} {self.change}"


_RECORD_CHANGES = {
    "scheme": "the fingerprint scheme changed (flowctl was upgraded)",
    "key": "the fingerprint key changed (fingerprints.key was replaced)",
}


def _hash(key: FingerprintKey, *chunks: str) -> str:
    # HMAC-SHA256 of the chunks, each followed by a NUL byte (so ("ab", "c") != ("a", "bc")).
    data = "\0".join(chunks) + "\0" if chunks else ""
    return key.mac(data.encode("utf-8", "surrogatepass"))[:32]


def hash_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes (full hex), or ``missing`` when it cannot be read."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
    except OSError:
        return MISSING
    return h.hexdigest()


def expand_paths(patterns: Iterable[str], cwd: str) -> dict[str, tuple[str, ...]]:
    """Each pattern → the files it names relative to ``cwd`` (globs expanded, folders walked,
    sorted); an empty tuple when it names nothing."""
    found: dict[str, tuple[str, ...]] = {}
    for pattern in patterns:
        absolute = os.path.join(cwd, pattern)
        matches = glob.glob(absolute, recursive=True) if glob.has_magic(pattern) else (
            [absolute] if os.path.exists(absolute) else []
        )
        files: set[str] = set()
        for match in matches:
            if os.path.isdir(match):
                for root, dirs, names in os.walk(match):
                    dirs.sort()
                    files.update(os.path.join(root, n) for n in names)
            else:
                files.add(match)
        found[pattern] = tuple(sorted(os.path.relpath(f, cwd) for f in files))
    return found


def hash_paths(patterns: Iterable[str], cwd: str) -> dict[str, str]:
    """Content hashes of what ``patterns`` name: relative path → hash; a pattern naming nothing
    maps to ``missing`` under its own text."""
    hashes: dict[str, str] = {}
    for pattern, files in expand_paths(patterns, cwd).items():
        if not files:
            hashes[pattern] = MISSING
        for rel in files:
            hashes[rel] = hash_file(os.path.join(cwd, rel))
    return hashes


def fingerprint_step(
    step: str,
    invocation: InvocationLike,
    *,
    params: Mapping[str, object],
    key: FingerprintKey,
    upstream: Mapping[str, str] | None = None,
    memo: dict[tuple[str, ...], str] | None = None,
) -> Fingerprint:
    """The fingerprint of one step: ``params`` are the run's values (only those the step uses
    count), ``upstream`` need id → its digest; inputs are the invocation's (values filled in).
    Each part hashes its own name first, so equal values in two parts never hash alike.
    ``memo`` (shared by the steps of one plan) keeps the hashes of parts many steps have alike:
    the same folder, the pipeline's env entries, a parameter's value."""
    shared = memo if memo is not None else {}
    mac = key.mac
    parts: dict[str, str] = {  # _hash(key, "command", *argv), without packing the chunks
        "command": mac(("command\0" + "".join([a + "\0" for a in invocation.argv])).encode("utf-8", "surrogatepass"))[:32],
        "cwd": _shared(shared, key, ("cwd", invocation.cwd)),
    }
    used = invocation.params_used
    for name in sorted(set(used)) if used else ():
        # value_text: the text the step gets, the one rendering of every typed value (issue 12).
        parts[f"param:{name}"] = _shared(shared, key, ("param", name, value_text(params.get(name, ""))))
    declared = invocation.declared_env
    for k in sorted(declared):
        parts[f"env:{k}"] = _shared(shared, key, ("env", k, declared[k]))
    env = invocation.env
    refs = [k for k in env if k.startswith(ENV_VAR_PREFIX)]
    for k in sorted(refs):  # the value of a ${{ env.NAME }} in a shell command
        parts[f"envref:{k[len(ENV_VAR_PREFIX):]}"] = _shared(shared, key, ("envref", k, env[k]))
    if upstream:
        for need in sorted(upstream):
            parts[f"needs:{need}"] = upstream[need]
    if invocation.inputs:
        for rel, digest in sorted(hash_paths(invocation.inputs, invocation.cwd).items()):
            parts[f"input:{rel}"] = MISSING if digest == MISSING else _hash(key, "input", rel, digest)
    if invocation.outputs:  # only then: steps without outputs keep the digests they had
        parts["outputs"] = _hash(key, "outputs", *invocation.outputs)
    text = "".join([f"{k}={parts[k]}\0" for k in sorted(parts)])  # digest_of, inline
    return Fingerprint(step, mac(text.encode("utf-8", "surrogatepass"))[:32], parts, SCHEME, key.id)


def _shared(memo: dict[tuple[str, ...], str], key: FingerprintKey, chunks: tuple[str, ...]) -> str:
    """``_hash`` of a part many steps have alike (a folder, an env entry, a value), hashed once
    per plan (``memo``)."""
    found = memo.get(chunks)
    if found is None:
        found = memo[chunks] = _hash(key, *chunks)
    return found


def digest_of(parts: Mapping[str, str], key: FingerprintKey) -> str:
    """The digest of a set of parts (order-independent)."""
    return _hash(key, *[f"{k}={parts[k]}" for k in sorted(parts)])


def fingerprint_steps(
    order: Sequence[str],
    needs: Mapping[str, Sequence[str]],
    invocations: Mapping[str, InvocationLike],
    params: Mapping[str, object],
    *,
    key: FingerprintKey,
    known: Mapping[str, str] | None = None,
) -> dict[str, Fingerprint]:
    """Fingerprints of the steps in ``order`` (topological). A need outside ``order`` takes its
    digest from ``known`` (e.g. its last recorded one) or counts as the empty string."""
    result: dict[str, Fingerprint] = {}
    memo: dict[tuple[str, ...], str] = {}
    digests = dict(known or {})  # then each step's own, as it is made (a step comes after its needs)
    get = digests.get
    for step in order:
        upstream = {need: get(need, "") for need in needs.get(step, ())}
        fp = result[step] = fingerprint_step(
            step, invocations[step], params=params, key=key, upstream=upstream, memo=memo
        )
        digests[step] = fp.digest
    return result


def diff_parts(old: Mapping[str, str], new: Mapping[str, str]) -> tuple[PartChange, ...]:
    """The parts that differ, commands first, then params, env, cwd, inputs, upstream."""
    rank = {"scheme": -2, "key": -1, "command": 0, "param": 1, "env": 2, "envref": 2, "cwd": 3, "input": 4, "outputs": 4, "needs": 5}
    changes = [
        PartChange(k, "changed" if k in old and k in new else ("added" if k in new else "removed"))
        for k in set(old) | set(new)
        if old.get(k) != new.get(k)
    ]
    return tuple(sorted(changes, key=lambda c: (rank.get(c.part.partition(":")[0], 9), c.part)))


__all__ = [
    "FINGERPRINT_KEYS",
    "MISSING",
    "SCHEME",
    "Fingerprint",
    "FingerprintKey",
    "InvocationLike",
    "PartChange",
    "diff_parts",
    "digest_of",
    "expand_paths",
    "fingerprint_step",
    "fingerprint_steps",
    "hash_file",
    "hash_paths",
]

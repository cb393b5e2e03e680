"""Step fingerprints: a hash of everything that decides a step's result, kept with its parts.

A fingerprint is made of these parts (each a short hash; values are never stored, so a secret's
value is hashed and never kept):

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
* ``input:<path>`` — the content hash of each file its ``inputs`` name, globs expanded and sorted,
  folders walked; a pattern that matches nothing is ``input:<pattern>`` = ``missing``;
* ``outputs`` — the list of files it declares it writes (as written, values filled in), when it
  declares any: a step asked for other outputs has not produced them (DVC hashes its outs too).

``FINGERPRINT_KEYS`` names the pipeline keys that feed these parts. It is the one list of what
invalidates a recorded result: ``diff`` classes exactly these keys as invalidating
(``diff/classes.py``, docs/change-classes.md), and a test changes every schema key and checks
that the digest moves for these keys and for no other.

The digest is SHA-256 over the sorted parts. ``diff_parts`` says which parts changed, which
``plan --explain`` turns into words. Used by the run wiring, resume, ``plan`` and ``diff``; pure
apart from reading input files.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from flowctl.spec.expr import ENV_VAR_PREFIX

MISSING = "missing"
_CHUNK = 1 << 20

#: Each pipeline key (a schema path: ``<name>`` a parameter, ``<id>`` a step) whose value goes
#: into the fingerprint, and the part it feeds. Keep in step with ``fingerprint_step``.
FINGERPRINT_KEYS: Mapping[str, str] = {
    "params": "param",  # a parameter added or removed changes what the steps using it see
    "params.<name>": "param",
    "params.<name>.type": "param",  # the value is read as this type
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
    """The parts of ``spec.resolve.Invocation`` a fingerprint reads."""

    @property
    def argv(self) -> tuple[str, ...]: ...
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
        if kind == "needs":
            return {"changed": f"{what} changed", "added": f"now needs {name}"}.get(
                self.change, f"no longer needs {name}"
            )
        if kind == "input" and self.change != "changed":
            return f"{what} is new" if self.change == "added" else f"{what} is gone"
        return f"{what} {self.change}"


def _hash(*chunks: str) -> str:
    # Each chunk followed by a NUL byte, fed to SHA-256 in one call.
    data = "\0".join(chunks) + "\0" if chunks else ""
    return hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest()[:32]


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
    upstream: Mapping[str, str] | None = None,
) -> Fingerprint:
    """The fingerprint of one step: ``params`` are the run's values (only those the step uses
    count), ``upstream`` need id → its digest; inputs are the invocation's (values filled in)."""
    parts: dict[str, str] = {"command": _hash(*invocation.argv), "cwd": _hash(invocation.cwd)}
    for name in sorted(set(invocation.params_used)):
        value = params.get(name)
        parts[f"param:{name}"] = _hash(json.dumps(value, sort_keys=True, default=str))
    for key in sorted(invocation.declared_env):
        parts[f"env:{key}"] = _hash(key, invocation.declared_env[key])
    for key in sorted(invocation.env):
        if key.startswith(ENV_VAR_PREFIX):  # the value of a ${{ env.NAME }} in a shell command
            parts[f"envref:{key[len(ENV_VAR_PREFIX):]}"] = _hash(key, invocation.env[key])
    for need, digest in sorted((upstream or {}).items()):
        parts[f"needs:{need}"] = digest
    for rel, digest in sorted(hash_paths(invocation.inputs, invocation.cwd).items()):
        parts[f"input:{rel}"] = digest[:32]
    if invocation.outputs:  # only then: steps without outputs keep the digests they had
        parts["outputs"] = _hash(*invocation.outputs)
    return Fingerprint(step=step, digest=digest_of(parts), parts=parts)


def digest_of(parts: Mapping[str, str]) -> str:
    """The digest of a set of parts (order-independent)."""
    return _hash(*(f"{k}={parts[k]}" for k in sorted(parts)))


def fingerprint_steps(
    order: Sequence[str],
    needs: Mapping[str, Sequence[str]],
    invocations: Mapping[str, InvocationLike],
    params: Mapping[str, object],
    *,
    known: Mapping[str, str] | None = None,
) -> dict[str, Fingerprint]:
    """Fingerprints of the steps in ``order`` (topological). A need outside ``order`` takes its
    digest from ``known`` (e.g. its last recorded one) or counts as the empty string."""
    result: dict[str, Fingerprint] = {}
    for step in order:
        upstream = {
            need: result[need].digest if need in result else (known or {}).get(need, "")
            for need in needs.get(step, ())
        }
        result[step] = fingerprint_step(step, invocations[step], params=params, upstream=upstream)
    return result


def diff_parts(old: Mapping[str, str], new: Mapping[str, str]) -> tuple[PartChange, ...]:
    """The parts that differ, commands first, then params, env, cwd, inputs, upstream."""
    rank = {"command": 0, "param": 1, "env": 2, "envref": 2, "cwd": 3, "input": 4, "outputs": 4, "needs": 5}
    changes = [
        PartChange(k, "changed" if k in old and k in new else ("added" if k in new else "removed"))
        for k in set(old) | set(new)
        if old.get(k) != new.get(k)
    ]
    return tuple(sorted(changes, key=lambda c: (rank.get(c.part.partition(":")[0], 9), c.part)))


__all__ = [
    "FINGERPRINT_KEYS",
    "MISSING",
    "Fingerprint",
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

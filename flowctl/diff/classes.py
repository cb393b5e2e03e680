"""What a change to each pipeline key does to recorded results: the classes ``diff`` reports.

Every key of the pipeline schema (``schemas/pipeline.schema.json``, written as a path with
``<name>`` for a parameter, ``<id>`` for a step and ``[]`` for a list entry) belongs to exactly
one class:

* ``INVALIDATING``: the key feeds the step fingerprint (``fingerprint.FINGERPRINT_KEYS``, the
  one list), so a change invalidates the recorded results of the steps it reaches and of
  everything that needs them: they run again.
* ``IDENTITY``: how recorded results are found (the pipeline's name, the step ids). A new name
  finds no results: the step (or pipeline) runs again, and so does everything that needs it.
* ``POLICY``: execution policy: how attempts are run (retries, delays, timeouts, remediation,
  concurrency), when the pipeline runs, what a run reports and masks. Nothing runs again.
* ``DOCUMENTATION``: descriptions and tags. Nothing runs differently.

docs/change-classes.md shows the same table for users; tests/diff/test_classes.py fails when a
schema key is missing here or there, or when a key's class disagrees with the fingerprint.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from flowctl.fingerprint import FINGERPRINT_KEYS


class ChangeClass(enum.Enum):
    INVALIDATING = "invalidating"
    IDENTITY = "identity"
    POLICY = "policy"
    DOCUMENTATION = "documentation"

    @property
    def reruns(self) -> bool:
        """Whether a change of this class makes recorded results stop counting."""
        return self in (ChangeClass.INVALIDATING, ChangeClass.IDENTITY)


_IDENTITY = ("name", "steps", "steps.<id>")

_POLICY = (
    "schedule",
    "timezone",
    "chaos",  # faults injected only when a run asks for them (issue 17)
    "concurrency",
    "secret_env",
    "params.<name>.type",  # which -p values are accepted; steps see the value's canonical text
    "params.<name>.choices",
    "defaults",
    *(f"{where}.{key}" for where in ("defaults", "steps.<id>") for key in (
        "retries", "retry_delay", "retry_max_delay", "retry_on_exit_codes", "timeout", "continue_on_error",
    )),
    "steps.<id>.secret_env",
    "defaults.resources",  # what a step needs of a worker: where it runs, not what it does
    "steps.<id>.resources",
    "executor",  # local processes or a Dask cluster: where steps run, not what they do
    "executor.type",
    "executor.address",
    # foreach (issue 15): which items run and how. An item's result is found by the step's
    # fingerprint and the item's key, so items that stay keep their results; new ones run.
    *(k for k in ('steps.<id>.foreach', 'steps.<id>.foreach.items', 'steps.<id>.foreach.items_from', 'steps.<id>.foreach.items_from.file', 'steps.<id>.foreach.items_from.format', 'steps.<id>.foreach.items_from.glob', 'steps.<id>.foreach.items_from.step', 'steps.<id>.foreach.items_from.stream', 'steps.<id>.foreach.key', 'steps.<id>.foreach.batch', 'steps.<id>.foreach.batch.size', 'steps.<id>.foreach.batch.max_bytes', 'steps.<id>.foreach.batch.split_on_failure', 'steps.<id>.foreach.max_concurrent', 'steps.<id>.foreach.max_items', 'steps.<id>.foreach.tolerated_failure', 'steps.<id>.foreach.tolerated_failure.percent', 'steps.<id>.foreach.tolerated_failure.count', 'steps.<id>.foreach.fail_fast')),
    "steps.<id>.remediate",
    "steps.<id>.remediate.run",
    "steps.<id>.remediate.timeout",
    "steps.<id>.remediate.env",
    "alerts",
    "alerts[].when",
    "notify",
    "notify[].run",
    "notify[].webhook",
    "notify[].timeout",
    "notify[].retries",
)

_DOCUMENTATION = (
    "version",  # the format version: only 1 exists
    "description",
    "tags",
    "params.<name>.description",
    "steps.<id>.description",
    "steps.<id>.tags",
    "alerts[].description",
)


def _table() -> dict[str, ChangeClass]:
    table: dict[str, ChangeClass] = {key: ChangeClass.INVALIDATING for key in FINGERPRINT_KEYS}
    for keys, cls in ((_IDENTITY, ChangeClass.IDENTITY), (_POLICY, ChangeClass.POLICY),
                      (_DOCUMENTATION, ChangeClass.DOCUMENTATION)):
        for key in keys:
            if key in table:  # a key in two classes is a bug in this module
                raise AssertionError(f"{key} is both {table[key].value} and {cls.value}")
            table[key] = cls
    return table


#: Every schema key → its class.
KEY_CLASSES: Mapping[str, ChangeClass] = _table()


def step_key(field: str) -> str:
    """The schema key of a step field as ``diff`` names it (``env.TOKEN``, ``remediate.env.X``)."""
    head, _, rest = field.partition(".")
    if head == "env" or (head == "remediate" and rest.startswith("env.")):
        return "steps.<id>." + ("env" if head == "env" else "remediate.env")
    return f"steps.<id>.{field}"


def setting_key(field: str) -> str:
    """The schema key of a pipeline setting as ``diff`` names it (``params.day.default``,
    ``env.LEVEL``, ``defaults.retries``)."""
    parts = field.split(".")
    if parts[0] == "params" and len(parts) >= 2:
        return ".".join(["params", "<name>", *parts[2:]])
    if parts[0] == "env":
        return "env"
    return field


def class_of(key: str) -> ChangeClass:
    """The class of schema key ``key``; KeyError for a key this table does not know."""
    return KEY_CLASSES[key]


__all__ = ["KEY_CLASSES", "ChangeClass", "class_of", "setting_key", "step_key"]

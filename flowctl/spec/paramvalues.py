"""The canonical value of a typed pipeline parameter.

Every value a parameter can get (a YAML default or choice, ``-p NAME=VALUE``, the params a resumed
run recorded) goes through ``coerce_param``, so the same number always has the same value and
text, and so the same fingerprint (issue 12). Used by the semantic checks (``spec.build``), the
resolver of a run's params (``spec.resolve``) and the resume assessment (``state.assess``).
"""

from __future__ import annotations

from typing import Any


def coerce_param(ptype: str, value: Any) -> tuple[bool, Any]:
    """(ok, value) for ``value`` read as a parameter of ``ptype`` (strings from -p are parsed).

    The one place a parameter value gets its canonical form, whatever it came from (a YAML
    default or choice, ``-p``, the params a resumed run recorded): the same number is always the
    same value, so its text (``expr.value_text``: what a step sees and what the fingerprint
    hashes) is too. ``10``, ``10.0``, ``1e1`` and ``-p x=10`` are all the int 10 for a
    ``number`` or an ``integer``; other numbers stay floats (issue 12: "param changed" on every
    resume).
    """
    if ptype == "string":
        if isinstance(value, str):
            return True, value
        if isinstance(value, bool):
            return True, "true" if value else "false"
        if isinstance(value, (int, float)):
            return True, str(value)
        return False, value
    if ptype == "boolean":
        if isinstance(value, bool):
            return True, value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0", "on", "off"):
            return True, value.lower() in ("true", "yes", "1", "on")
        return False, value
    if ptype == "integer":
        if isinstance(value, bool):
            return False, value
        if isinstance(value, int):
            return True, value
        if isinstance(value, float) and value.is_integer():
            return True, int(value)
        if isinstance(value, str):
            try:
                return True, int(value.strip().replace("_", ""), 10)
            except ValueError:
                pass
            # "10.0" and "1e1" are whole numbers too, as the YAML float 10.0 is (issue 12)
            ok, number = coerce_param("number", value)
            return (True, number) if ok and isinstance(number, int) else (False, value)
        return False, value
    if ptype == "number":
        if isinstance(value, bool):
            return False, value
        if isinstance(value, int):
            return True, value
        if isinstance(value, str):
            try:  # digits stay an exact int, however large (a float would round them)
                return True, int(value.strip().replace("_", ""), 10)
            except ValueError:
                pass
            try:
                value = float(value)
            except ValueError:
                return False, value
        if isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                return False, value
            return True, _canonical_number(value)
        return False, value
    return False, value


def _canonical_number(value: float) -> int | float:
    # A whole float that a float holds exactly becomes an int: its text never depends on
    # whether it was written 10, 10.0 or 1e1. Beyond 2**53 floats are not exact integers.
    if value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value

"""``--wait [DURATION]``: the optional value is read the way a user means it."""

from __future__ import annotations

import pytest

from flowctl.cli._run_state import wait_seconds
from flowctl.cli._wait import expand_wait
from flowctl.errors import UsageError


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["p.yaml", "--wait"], ["p.yaml", "--wait", "forever"]),
        (["--wait", "p.yaml"], ["--wait", "forever", "p.yaml"]),
        (["p.yaml", "--wait", "10m"], ["p.yaml", "--wait", "10m"]),
        (["p.yaml", "--wait", "1h30m", "-j", "2"], ["p.yaml", "--wait", "1h30m", "-j", "2"]),
        (["p.yaml", "--wait", "--no-progress"], ["p.yaml", "--wait", "forever", "--no-progress"]),
        (["p.yaml", "--wait=5s"], ["p.yaml", "--wait=5s"]),
        (["p.yaml", "--", "--wait"], ["p.yaml", "--", "--wait"]),
    ],
)
def test_expand_wait(args, expected):
    assert expand_wait(args) == expected


def test_wait_seconds():
    assert wait_seconds(None) == 0.0
    assert wait_seconds("forever") is None
    assert wait_seconds("2m") == 120.0
    with pytest.raises(UsageError, match="not a duration"):
        wait_seconds("soonish")

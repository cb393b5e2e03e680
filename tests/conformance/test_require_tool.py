"""The skip-or-fail rule of ``require_tool``: skip on a developer machine, fail under CI=true."""

from __future__ import annotations

from collections.abc import Callable

import pytest

pytestmark = pytest.mark.conformance


def test_missing_tool_skips_on_a_developer_machine(
    require_tool: Callable[[str], str], monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no dot, no node
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="dot is not available: install Graphviz"):
        require_tool("dot")


@pytest.mark.parametrize("value", ["true", "1", "TRUE"])
def test_missing_tool_fails_under_ci(
    require_tool: Callable[[str], str], monkeypatch: pytest.MonkeyPatch, tmp_path, value: str
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="CI=true, so this test fails instead of skipping"):
        require_tool("mermaid")


def test_unknown_tool_is_a_programming_error(require_tool: Callable[[str], str]) -> None:
    with pytest.raises(KeyError, match="add it to TOOLS"):
        require_tool("no-such-tool")


def test_present_tool_is_located(require_tool: Callable[[str], str]) -> None:
    # check-jsonschema is a test extra, so it is present wherever the tests run.
    assert require_tool("check-jsonschema") == "check_jsonschema"

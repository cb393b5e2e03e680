"""The marked block: replaced in place, removed, and never a byte outside it changed."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flowctl.errors import UsageError
from flowctl.schedule.crontab import (
    BEGIN,
    END,
    CrontabError,
    CrontabFile,
    Entry,
    read_entries,
    remove_block,
    render_block,
    replace_block,
)

FOREIGN_TOP = "# my own jobs\nMAILTO=ops@example.com\n0 1 * * * /usr/bin/backup --all\n"
FOREIGN_BOTTOM = "*/5 * * * * echo 'keep me'  # trailing comment\n"


def entry(name: str, fields: str = "0 2 * * *", **kw: object) -> Entry:
    values: dict[str, object] = {
        "pipeline": f"/srv/pipelines/{name}.yaml",
        "name": name,
        "schedule": fields,
        "timezone": None,
        "installed_at": datetime(2026, 11, 25, 12, 0, tzinfo=UTC),
        "fields": fields,
        "command": f"cd /srv && /opt/flowctl run /srv/pipelines/{name}.yaml",
        "log_file": f"/srv/.flowctl/cron/{name}.log",
        "state_dir": "/srv/.flowctl",
    }
    values.update(kw)
    return Entry(**values)  # type: ignore[arg-type]


def test_block_is_appended_after_foreign_lines() -> None:
    block = render_block([entry("etl")])
    text = replace_block(FOREIGN_TOP, block)
    assert text.startswith(FOREIGN_TOP)
    assert text.endswith(f"{END}\n")
    assert block.splitlines()[0].startswith(BEGIN)


def test_missing_final_newline_of_foreign_text_is_added_before_the_block() -> None:
    text = replace_block("0 1 * * * /bin/true", render_block([entry("etl")]))
    assert text.startswith("0 1 * * * /bin/true\n# BEGIN")


def test_replace_in_place_keeps_everything_around_the_block() -> None:
    first = FOREIGN_TOP + render_block([entry("etl"), entry("other")]) + FOREIGN_BOTTOM
    second = replace_block(first, render_block([entry("etl", "30 3 * * *")]))
    assert second.startswith(FOREIGN_TOP)
    assert second.endswith(FOREIGN_BOTTOM)
    assert "30 3 * * *" in second
    assert "other.yaml" not in second
    assert second.count(BEGIN) == 1


def test_remove_leaves_exactly_the_foreign_lines() -> None:
    text = FOREIGN_TOP + render_block([entry("etl")]) + FOREIGN_BOTTOM
    assert remove_block(text) == FOREIGN_TOP + FOREIGN_BOTTOM
    assert remove_block(FOREIGN_TOP) == FOREIGN_TOP


def test_entries_read_back() -> None:
    pinned = entry("etl", ref="latest-release", timezone="Europe/Berlin", guarded=True, fields="0 1,2 * * *")
    cron_d = entry("load", user="etl", fields="@daily")
    (a, b) = read_entries(FOREIGN_TOP + render_block([pinned, cron_d]))
    assert a == pinned
    assert b == cron_d
    assert b.line() == "@daily etl " + cron_d.command


@pytest.mark.parametrize(
    "damaged",
    [
        FOREIGN_TOP + BEGIN + "\n0 2 * * * x\n",  # no END
        FOREIGN_TOP + END + "\n",  # END alone
        render_block([entry("a")]) + render_block([entry("b")]),  # two blocks
    ],
)
def test_a_damaged_block_is_refused_not_guessed(damaged: str) -> None:
    with pytest.raises(CrontabError, match="damaged"):
        replace_block(damaged, render_block([entry("etl")]))
    with pytest.raises(CrontabError):
        remove_block(damaged)


def test_file_target_is_written_atomically_with_modes(tmp_path: Path) -> None:
    user_file = CrontabFile(str(tmp_path / "crontab"))
    assert user_file.read() == ""
    user_file.write("0 1 * * * /bin/true\n")
    assert (tmp_path / "crontab").read_text() == "0 1 * * * /bin/true\n"
    assert stat.S_IMODE(os.stat(tmp_path / "crontab").st_mode) == 0o600
    cron_d = CrontabFile(str(tmp_path / "flowctl-etl"), cron_d=True)
    cron_d.write("0 1 * * * root /bin/true\n")
    assert stat.S_IMODE(os.stat(tmp_path / "flowctl-etl").st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".flowctl-")] == []


@pytest.mark.parametrize("name", ["flowctl.cron", "etl~", "my jobs", "a.b"])
def test_cron_d_names_cron_would_ignore_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(UsageError, match="cron ignores files") as info:
        CrontabFile(str(tmp_path / name), cron_d=True)
    assert info.value.hint and "." not in info.value.hint.split("'")[1]

"""The fingerprint key: private, made once, never silently replaced; the state folder's modes."""

from __future__ import annotations

import stat
import subprocess
import sys
import textwrap

import pytest

from flowctl.errors import StateError
from flowctl.fingerprint import FingerprintKey
from flowctl.state import keys
from flowctl.state.store import SqliteRunStore
from tests.conftest import REPO


def mode(path) -> int:  # type: ignore[no-untyped-def]
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_state_folder_is_private(tmp_path):
    state = keys.ensure_state_dir(tmp_path / "deep" / "state")
    key = keys.load_key(state, create=True)
    SqliteRunStore(state).close()
    assert mode(state) == 0o700 and mode(state / "runs") == 0o700
    assert mode(keys.key_path(state)) == 0o600 and mode(state / "state.db") == 0o600
    assert keys.load_key(state, create=True) == key  # made once, read back after


def test_the_key_is_never_shown_and_names_itself_without_revealing_itself():
    key = FingerprintKey(bytes(range(32)))
    assert bytes(range(32)).hex() not in repr(key) and key.id not in bytes(range(32)).hex()
    assert key.id == FingerprintKey(bytes(range(32))).id != FingerprintKey.random().id
    with pytest.raises(ValueError):
        FingerprintKey(b"short")


def test_runs_starting_together_end_up_with_one_key(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from flowctl.state.keys import new_key
        print(new_key({str(tmp_path)!r}).id)
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(6)]
    ids = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert ids == {keys.load_key(tmp_path, create=False).id}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fingerprints.key"]  # no temporary left


def test_without_recorded_keyed_fingerprints_a_reader_gets_a_throwaway_key_and_writes_nothing(tmp_path):
    one = keys.load_key(tmp_path, create=False)
    assert one != keys.load_key(tmp_path, create=False)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_or_damaged_key_with_keyed_fingerprints_is_an_error_with_a_way_out(tmp_path):
    from flowctl.fingerprint import Fingerprint

    key = keys.load_key(tmp_path, create=True)
    with SqliteRunStore(tmp_path) as store:
        store.save_fingerprints([Fingerprint("a", "d1", {"command": "x"}, key_id=key.id)])
    keys.key_path(tmp_path).write_text("not hex\n")
    with pytest.raises(StateError, match="is damaged") as info:
        keys.load_key(tmp_path, create=True)
    assert "doctor --repair" in (info.value.hint or "")
    keys.key_path(tmp_path).unlink()
    for create in (True, False):
        with pytest.raises(StateError, match="is missing"):
            keys.load_key(tmp_path, create=create)
    assert not keys.key_path(tmp_path).exists()
    said = keys.replace_key(tmp_path)
    assert "made a new fingerprint key" in said and keys.load_key(tmp_path, create=False) != key


def test_the_key_computes_standard_hmac_sha256():
    import hashlib
    import hmac
    import os

    for size in (16, 32, 64, 65, 100):
        secret = os.urandom(size)
        key = FingerprintKey(secret)
        for data in (b"", b"command\0echo\0", os.urandom(300)):
            assert key.mac(data) == hmac.new(secret, data, hashlib.sha256).hexdigest()

"""The state folder's fingerprint key, and the folder's own permissions.

Fingerprint parts are HMAC-SHA256 under a random 256-bit key kept in
``<state dir>/fingerprints.key`` (mode 0600), so reading ``state.db`` is no way to test guesses
of a secret offline (issue 12). The key belongs to the state folder and moves with it. Its
``id`` is recorded with every stored fingerprint: a record made with another key is never
compared, it says "the fingerprint key changed".

A missing key while ``state.db`` holds fingerprints made with one is an error, never a silent
new key (every step with outputs would run again for no visible reason): restore the file, or
``flowctl doctor --repair`` makes a new key on purpose. ``ensure_state_dir`` creates the state
folder 0700 and its ``runs/`` logs folder 0700 (the database is made 0600 by ``db.connect``).
Raises ``StateError``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from flowctl.errors import StateError, StorageError
from flowctl.fingerprint import FingerprintKey
from flowctl.state import db

KEY_NAME = "fingerprints.key"
LOGS_NAME = "runs"


def key_path(state_dir: str | os.PathLike[str]) -> Path:
    """``<state dir>/fingerprints.key``."""
    return Path(state_dir) / KEY_NAME


def ensure_state_dir(state_dir: str | os.PathLike[str]) -> Path:
    """Create the state folder (0700) and its logs folder (0700) when they do not exist yet;
    an existing folder keeps the mode its owner gave it."""
    folder = Path(state_dir)
    try:
        if not folder.is_dir():
            folder.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):  # another run made it a moment ago
                folder.mkdir(mode=0o700)
        with contextlib.suppress(FileExistsError):
            (folder / LOGS_NAME).mkdir(mode=0o700)
    except OSError as exc:
        raise StorageError(
            f"cannot create state folder {folder}: {exc.strerror}",
            hint="check the permissions of its parent folder, or use another --state-dir",
        ) from exc
    return folder


def load_key(state_dir: str | os.PathLike[str], *, create: bool) -> FingerprintKey:
    """The fingerprint key of ``state_dir``.

    A missing key is made (``create``) or, for commands that must not write, replaced by a
    throwaway one, but only while no fingerprint made with a key is recorded: then it is a
    ``StateError`` with the ways out. A damaged key file is a ``StateError`` too.
    """
    path = key_path(state_dir)
    key = _read(path)
    if key is not None:
        return key
    if _keyed_fingerprints_recorded(state_dir):
        raise StateError(
            f"the fingerprint key {path} is missing, but {db.db_path(state_dir)} holds fingerprints made with it",
            hint="restore the file from where this state folder came from (it moves with state.db); "
            "if it is lost, `flowctl doctor --repair` makes a new key, and every step with outputs "
            "then runs once (its recorded fingerprint cannot be checked any more)",
        )
    if not create:
        return FingerprintKey.random()
    return new_key(state_dir)


def new_key(state_dir: str | os.PathLike[str]) -> FingerprintKey:
    """Write a new random key (0600) unless one exists; return the key the file holds.

    Written to a private temporary file, then hard-linked into place: two runs of different
    pipelines that start together end up with the same key, and a half-written key never
    appears under the real name."""
    path = key_path(state_dir)
    tmp = path.with_name(f".{KEY_NAME}.{os.getpid()}.tmp")
    key = FingerprintKey.random()
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, key.secret.hex().encode("ascii") + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
        _sync_folder(path.parent)
    except OSError as exc:
        raise StateError(
            f"cannot write the fingerprint key {path}: {exc.strerror}",
            hint="check the state folder's permissions and free space, or use another --state-dir",
        ) from exc
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    found = _read(path)
    if found is None:  # pragma: no cover - the link above or another process made it
        raise StateError(f"the fingerprint key {path} vanished while it was being made")
    return found


def replace_key(state_dir: str | os.PathLike[str]) -> str:
    """Move a damaged key aside (kept as ``fingerprints.key.bad-<time>``) and make a new one;
    what was done, in words. For ``flowctl doctor --repair`` only: fingerprints made with the
    old key are then told apart by its id and their steps run once."""
    import time

    path = key_path(state_dir)
    said = ""
    if path.exists():
        target = path.with_name(f"{KEY_NAME}.bad-{time.strftime('%Y%m%dT%H%M%S')}")
        os.replace(path, target)
        said = f"moved the damaged fingerprint key to {target}; "
    new_key(state_dir)
    return said + f"made a new fingerprint key {path} (steps with outputs run once, their old fingerprints cannot be checked)"


def key_problem(state_dir: str | os.PathLike[str]) -> str | None:
    """What is wrong with the key of ``state_dir`` (for ``flowctl doctor``), or None."""
    try:
        load_key(state_dir, create=False)
    except StateError as exc:
        return exc.message
    return None


def _read(path: Path) -> FingerprintKey | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise StateError(
            f"cannot read the fingerprint key {path}: {getattr(exc, 'strerror', None) or exc}",
            hint="check its permissions (it should be yours, mode 0600)",
        ) from exc
    try:
        return FingerprintKey(bytes.fromhex(text))
    except ValueError as exc:
        raise StateError(
            f"the fingerprint key {path} is damaged (expected 64 hex digits)",
            hint="restore it from where this state folder came from, or `flowctl doctor --repair` to make a new one",
        ) from exc


def _keyed_fingerprints_recorded(state_dir: str | os.PathLike[str]) -> bool:
    if not db.db_path(state_dir).exists():
        return False
    from flowctl.state import queries

    conn = db.connect(state_dir, create=False)
    try:
        with db.translated(db.db_path(state_dir)):
            return queries.has_keyed_fingerprints(conn)
    finally:
        conn.close()


def _sync_folder(folder: Path) -> None:
    # The key must survive what the database survives: the link itself is made durable too.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


__all__ = ["KEY_NAME", "ensure_state_dir", "key_path", "key_problem", "load_key", "new_key", "replace_key"]

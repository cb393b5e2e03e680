"""Run state: the SQLite ``RunStore``, history, the overlap lock, resume and up-to-date decisions.

``db`` (connection, schema, migrations, errors) → ``store`` (events into rows, commit policy)
and ``queries`` (every read query) → ``run_records`` (the values reads return); ``lock`` (the
``flock`` overlap lock); ``decide`` (pure: run / reused / up to date, with reasons) fed by
``assess`` (fingerprints + history); ``keys`` (the fingerprint key, the folder's modes);
``session`` (what ``flowctl run`` opens: lock, store, key, decisions); ``views`` (lock-aware answers for runs/show/logs/gc); ``doctor`` (check, repair,
move aside); ``provenance`` (file hash, git commit, dirty tree). Never schedules; all SQL of
flowctl lives here. Submodules are imported where used, to keep ``flowctl --help`` fast.
"""

__all__ = ["assess", "db", "decide", "doctor", "keys", "lock", "provenance", "queries", "run_records", "session", "store", "views"]

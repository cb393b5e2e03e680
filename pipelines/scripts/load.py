"""Load the per-region totals into an SQLite 'warehouse' (out/warehouse.db), idempotently."""
import csv
import os
import sqlite3
from pathlib import Path

target = os.environ.get("TARGET", "warehouse")
day = os.environ.get("DAY", "unknown")
db = Path(f"out/{target}.db")
with sqlite3.connect(db) as conn, open("out/clean/orders_by_region.csv", newline="", encoding="utf-8") as fh:
    conn.execute("CREATE TABLE IF NOT EXISTS totals (day TEXT, region TEXT, amount REAL, PRIMARY KEY (day, region))")
    rows = [(day, r["region"], float(r["amount"])) for r in csv.DictReader(fh)]
    conn.executemany("INSERT OR REPLACE INTO totals VALUES (?, ?, ?)", rows)
print(f"loaded {len(rows)} rows into {db}")

"""Print a small report of what the warehouse holds for the day."""
import os
import sqlite3

day = os.environ.get("DAY", "unknown")
with sqlite3.connect("out/warehouse.db") as conn:
    for region, amount in conn.execute("SELECT region, amount FROM totals WHERE day = ? ORDER BY amount DESC", (day,)):
        print(f"{day} {region:<6} {amount:>10.2f}")

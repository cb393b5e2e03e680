"""Extract the orders of one day from data/orders.csv into out/raw/orders.json."""
import csv
import json
import sys
from pathlib import Path

day = sys.argv[1] if len(sys.argv) > 1 else "2026-11-24"
with open("data/orders.csv", newline="", encoding="utf-8") as fh:
    rows = [r for r in csv.DictReader(fh) if r["date"] == day]
out = Path("out/raw/orders.json")
out.parent.mkdir(parents=True, exist_ok=True)
out.write_text(json.dumps(rows, indent=2), encoding="utf-8")
print(f"extracted {len(rows)} orders for {day}")

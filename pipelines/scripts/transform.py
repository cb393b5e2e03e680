"""Total the extracted orders per region into out/clean/orders_by_region.csv."""
import csv
import json
from collections import defaultdict
from pathlib import Path

rows = json.loads(Path("out/raw/orders.json").read_text(encoding="utf-8"))
totals: dict[str, float] = defaultdict(float)
for row in rows:
    totals[row["region"]] += float(row["amount"])
out = Path("out/clean/orders_by_region.csv")
out.parent.mkdir(parents=True, exist_ok=True)
with out.open("w", newline="", encoding="utf-8") as fh:
    writer = csv.writer(fh)
    writer.writerow(["region", "amount"])
    for region in sorted(totals):
        writer.writerow([region, f"{totals[region]:.2f}"])
print(f"{len(totals)} regions")

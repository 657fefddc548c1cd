"""`make bench`'s verdict: reads criterion's estimates and checks that, on every payload, the
core path (verify, split, plan) takes at most BUDGET times a bare HMAC-SHA256 of the same
bytes. Exits non-zero when a budget is missed.
"""

import json
import pathlib
import sys

BUDGET = 2.0
ROOT = pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion"
PAYLOADS = ["v3-2KB", "v3-900KB", "v2-50-deltas"]


def mean_ns(group, name):
    [bench] = (ROOT / group / name).iterdir()
    estimates = json.loads((bench / "new" / "estimates.json").read_text())
    return estimates["mean"]["point_estimate"]


missed = []
print(f"{'payload':<14} {'hmac floor':>12} {'core path':>12} {'ratio':>7}  budget {BUDGET}x")
for payload in PAYLOADS:
    floor = mean_ns(payload, "hmac-floor")
    core = mean_ns(payload, "core-path")
    ratio = core / floor
    print(f"{payload:<14} {floor / 1000:>9.1f} µs {core / 1000:>9.1f} µs {ratio:>6.2f}x")
    if ratio > BUDGET:
        missed.append(payload)
if missed:
    sys.exit(f"over budget: {', '.join(missed)}")
print("every payload within budget")

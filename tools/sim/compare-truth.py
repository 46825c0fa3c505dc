#!/usr/bin/env python3
"""Compares bbt-report's JSON output with bbt-sim's ground truth; prints every figure that differs.

Usage: compare-truth.py TRUTH.json SUMMARY.json SCHOOLS.json TERMINALS.json IDLE.json BALANCE.json [ENERGY.json]
Exit status: 0 every figure agrees (within the report's rounding), 1 a figure differs, 2 bad input.
"""
import json
import sys

# The decimals bbt-report prints each figure with (rates: 4).
DECIMALS = {"avg_daily_hours": 2, "weekly_lessons": 1, "mean": 3, "sd": 3, "cv": 3, "evening_hours": 2,
            "night_hours": 2, "weekend_hours": 2, "holiday_hours": 2, "after_hours": 2}
RATES = {"power_on_rate", "usage_rate", "period_usage_rate", "interactive_share", "online_rate", "intact_rate",
         "weekly_rule_rate"}
COUNTS = {"terminals", "schools", "idle", "faulty", "left_out", "nights_on"}


def close(key, got, want):
    if want is None or got is None:
        return want is None and got is None
    if key in COUNTS:
        return int(got) == int(want)
    decimals = 4 if key in RATES else DECIMALS.get(key)
    if decimals is None:
        return got == want
    return abs(float(got) - float(want)) <= 0.5 * 10 ** -decimals + 1e-9


def compare_rows(what, got_rows, want_rows, key_cols, problems):
    got = {tuple(r[k] for k in key_cols): r for r in got_rows}
    for want in want_rows:
        key = tuple(want[k] for k in key_cols)
        row = got.get(key)
        if row is None:
            problems.append(f"{what} {key}: missing from the report")
            continue
        for col, value in want.items():
            if col in key_cols or col not in row:
                continue
            if not close(col, row[col], value):
                problems.append(f"{what} {'/'.join(map(str, key))} {col}: report {row[col]}, truth {value}")
    extra = set(got) - {tuple(w[k] for k in key_cols) for w in want_rows}
    for key in sorted(extra):
        problems.append(f"{what} {key}: in the report, not in the truth")


def main(argv):
    if len(argv) not in (7, 8):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        truth = json.load(open(argv[1]))["tables"]
        reports = [json.load(open(p)) for p in argv[2:]]
        schools, terminals, idle, balance = (r["tables"] for r in reports[1:5])
        energy = reports[5]["tables"] if len(reports) > 5 else None
        overall = reports[0]["objects"]["overall"]
    except (OSError, ValueError, KeyError) as e:
        print(f"compare-truth: {e}", file=sys.stderr)
        return 2
    problems = []
    compare_rows("overall", [overall], truth["overall"], [], problems)
    compare_rows("school", schools["schools"], truth["schools"], ["school_code"], problems)
    compare_rows("terminal", terminals["terminals"], truth["terminals"], ["school_code", "terminal"], problems)
    compare_rows("idle", idle["idle"], truth["idle"], ["school_code", "terminal"], problems)
    for section in ("primary", "junior"):
        compare_rows(section, balance[section], truth[section], ["indicator"], problems)
    if energy is not None:
        compare_rows("energy", energy["terminals"], truth["energy"], ["school_code", "terminal"], problems)
    checked = sum(len(v) for k, v in truth.items() if k != "energy" or energy is not None)
    for p in problems:
        print(p)
    print(f"compare-truth: {checked} rows compared, {len(problems)} differences")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

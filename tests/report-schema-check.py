#!/usr/bin/python3
"""Validates bbt-report's JSON for every report kind against its published JSON Schema.

Run with Debian's /usr/bin/python3 (python3-jsonschema 4.10 or later).

  report-schema-check.py --run TEST_REPORTS --schemas DIR

Runs `TEST_REPORTS json_every_kind` (tests/test-reports.c), which prints every
report kind of bbt-report's table as JSON over the test fixture, in several
scopes and both languages, as "<kind>\\t<json>" lines. Each line must validate
against DIR/report-<kind>.schema.json (with "date-time" and "date" formats
checked); every kind needs a schema and every schema a kind. Then, to show the
schemas are strict, a few deliberate shape changes of each kind's first
document (an unknown member, a wrong type, a missing member, a label in place
of a code, a word in place of a time) must each be rejected.
Exit 0 if all pass, 1 if not, 2 on a usage error.
"""

import argparse
import copy
import datetime
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT = 120

# The protocol check's validator: 2020-12 with ECMA-262 "$" in patterns, no network.
_spec = importlib.util.spec_from_file_location("schema_check", os.path.join(HERE, "schema-check.py"))
schema_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(schema_check)
jsonschema = schema_check.jsonschema

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


UsageError = schema_check.UsageError


def format_checker():
    """date-time and date checked here: python3-jsonschema checks date-time
    only with rfc3339-validator, which Debian 12 does not install with it."""
    checker = jsonschema.FormatChecker()

    @checker.checks("date-time", raises=ValueError)
    def date_time(value):
        if not isinstance(value, str):
            return True
        if not RFC3339.match(value):
            raise ValueError(f"{value!r} is not RFC 3339")
        if datetime.datetime.fromisoformat(value.replace("z", "+00:00").replace("Z", "+00:00")).tzinfo is None:
            raise ValueError(f"{value!r} has no UTC offset")
        return True

    @checker.checks("date", raises=ValueError)
    def date(value):
        if not isinstance(value, str):
            return True
        if not re.match(r"^\d{4}-\d{2}-\d{2}$", value):
            raise ValueError(f"{value!r} is not YYYY-MM-DD")
        datetime.date.fromisoformat(value)
        return True

    return checker


def load_schemas(schema_dir):
    """Returns {kind: validator} for every report-<kind>.schema.json in SCHEMA_DIR."""
    docs, resolvers = schema_check.read_schemas(schema_dir, ".schema.json")
    checker = format_checker()
    validators = {}
    for name, doc in docs.items():
        m = re.match(r"^report-([a-z]+)\.schema\.json$", name)
        if m:
            validators[m.group(1)] = schema_check.Validator(doc, resolver=resolvers[name], format_checker=checker)
    return validators


def first_error(validator, value):
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    e = errors[0]
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.absolute_path)
    return f"{path or '.'}: {e.message}"


def run_dump(program):
    """Runs PROGRAM json_every_kind; returns [(kind, raw json bytes)]."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "reports.jsonl")
        env = dict(os.environ, BBT_REPORT_JSON_DUMP=path)
        p = subprocess.run([program, "json_every_kind"], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=TIMEOUT)
        if p.returncode != 0:
            raise UsageError(f"{program} json_every_kind: exit {p.returncode}: "
                             f"{(p.stdout + p.stderr).decode('utf-8', 'replace').strip()[-2000:]}")
        with open(path, "rb") as f:
            data = f.read()
    out = []
    for line in data.split(b"\n"):
        if not line:
            continue
        kind, tab, raw = line.partition(b"\t")
        if not tab:
            raise UsageError("a dump line without a tab")
        out.append((kind.decode("ascii"), raw))
    return out


def first_row(doc):
    """(table, row) of DOC's first table with a row, or None."""
    for table, rows in doc["tables"].items():
        if rows:
            return table, rows[0]
    return None


def mutations(doc):
    """Deliberate shape changes of DOC, each the schema must reject: (what, changed doc)."""
    out = []
    d = copy.deepcopy(doc)
    d["extra"] = 1
    out.append(("an unknown top-level member", d))
    d = copy.deepcopy(doc)
    del d["settings"]["from"]
    out.append(("a setting missing", d))
    d = copy.deepcopy(doc)
    d["settings"]["used_day_min"] = "10"
    out.append(("a setting as a bare string", d))
    d = copy.deepcopy(doc)
    d["schema"] = "bbt-report/2"
    out.append(("another contract version", d))
    found = first_row(doc)
    if found:
        table, row = found
        keys = list(row)
        d = copy.deepcopy(doc)
        d["tables"][table][0]["extra"] = None
        out.append((f"an unknown member in {table}", d))
        d = copy.deepcopy(doc)
        del d["tables"][table][0][keys[-1]]
        out.append((f"{table}.{keys[-1]} missing", d))
        d = copy.deepcopy(doc)
        d["tables"][table][0][keys[0]] = [row[keys[0]]]
        out.append((f"{table}.{keys[0]} as a list", d))
        d = copy.deepcopy(doc)
        d["tables"][table].append("a pseudo-row")
        out.append((f"a pseudo-row in {table}", d))
        for key in keys:
            if key + "_label" in row and row[key] is not None:
                d = copy.deepcopy(doc)
                d["tables"][table][0][key] = row[key + "_label"] + " X"
                out.append((f"{table}.{key} holding a label", d))
                break
    for table, rows in doc["tables"].items():
        for key, value in (rows[0].items() if rows else []):
            if isinstance(value, str) and re.match(r"^\d{4}-\d{2}-\d{2}T", value):
                for bad in ("从未", "2026-09-01 08:05", "2026-09-01T08:05:00", "2026-02-30T08:05:00+08:00"):
                    d = copy.deepcopy(doc)
                    d["tables"][table][0][key] = bad
                    out.append((f"{table}.{key} = {bad!r}", d))
                break
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", metavar="TEST_REPORTS", required=True, help="path to the test-reports binary")
    ap.add_argument("--schemas", metavar="DIR", required=True, help="docs/schemas")
    args = ap.parse_args()
    passed = failed = 0
    try:
        if not (os.path.isfile(args.run) and os.access(args.run, os.X_OK)):
            raise UsageError(f"{args.run}: not an executable file")
        validators = load_schemas(args.schemas)
        lines = run_dump(os.path.abspath(args.run))
    except UsageError as e:
        sys.stderr.write(f"report-schema-check: {e}\n")
        return 2
    except (jsonschema.SchemaError, jsonschema.RefResolutionError, ValueError, OSError) as e:
        print(f"FAIL schemas: {e}")
        print("0 passed, 1 failed")
        return 1

    seen = {}
    for n, (kind, raw) in enumerate(lines, 1):
        label = f"line {n} {kind}"
        if kind not in validators:
            print(f"FAIL {label}: no docs/schemas/report-{kind}.schema.json")
            failed += 1
            continue
        value, parse_error = schema_check.parse_payload(raw)
        if parse_error:
            print(f"FAIL {label}: {parse_error}")
            failed += 1
            continue
        error = first_error(validators[kind], value)
        if error:
            print(f"FAIL {label}: {error}")
            failed += 1
            continue
        passed += 1
        seen.setdefault(kind, value)
    for kind in sorted(set(validators) - set(seen)):
        print(f"FAIL schema report-{kind}.schema.json: no report of that kind was checked")
        failed += 1

    # The schemas must be strict: each deliberate change is rejected.
    for kind, doc in sorted(seen.items()):
        for what, changed in mutations(doc):
            if first_error(validators[kind], changed) is None:
                print(f"FAIL {kind}: the schema accepts {what}")
                failed += 1
            else:
                passed += 1
    print(f"{len(lines)} reports of {len(seen)} kinds; {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

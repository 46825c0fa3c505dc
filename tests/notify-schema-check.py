#!/usr/bin/python3
"""Validates bbt-notify's generic JSON bodies against docs/schemas/notify.schema.json.

Run with Debian's /usr/bin/python3 (python3-jsonschema 4.10 or later).

  notify-schema-check.py --schema docs/schemas/notify.schema.json BODY.json...

The protocol and report checks' validator (2020-12, ECMA-262 "$" in patterns,
"date-time" and "date" checked, no network). Exit 0 if every body validates,
1 if one does not, 2 on a usage error.
"""

import argparse
import importlib.util
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def load(name, file):
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, file))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--schema", required=True)
    ap.add_argument("bodies", nargs="+")
    args = ap.parse_args()
    report_check = load("report_schema_check", "report-schema-check.py")
    schema_check = report_check.schema_check
    docs, resolvers = schema_check.read_schemas(os.path.dirname(os.path.abspath(args.schema)), ".schema.json")
    name = os.path.basename(args.schema)
    if name not in docs:
        sys.stderr.write(f"{args.schema}: not found\n")
        return 2
    validator = schema_check.Validator(docs[name], resolver=resolvers[name],
                                       format_checker=report_check.format_checker())
    bad = 0
    for path in args.bodies:
        with open(path, encoding="utf-8") as f:
            body = json.load(f)
        err = report_check.first_error(validator, body)
        if err:
            print(f"{path}: {err}")
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

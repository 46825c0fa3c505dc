#!/usr/bin/python3
"""Checks bbt's JSON Schemas against the C protocol code, as an independent validator.

Run with Debian's /usr/bin/python3 (python3-jsonschema 4.10 or later; stdlib otherwise).

  schema-check.py --validate BBT_VALIDATE --schemas DIR --corpus DIR
      Runs every corpus file through both bbt-validate (the C decoder) and the
      channel's JSON Schema. valid/ must be accepted by both, invalid/ rejected by
      both, c-only/ accepted by the schema (or not even UTF-8 JSON) and rejected
      by C. Exit 0 if all agree, 1 if not, 2 on a usage error or a missing
      bbt-validate.

  schema-check.py --encoded DUMP_PROGRAM --schemas DIR
      Runs DUMP_PROGRAM, which prints "<channel>\\t<compact json>" per line,
      and checks every line against the channel's schema and the rules the
      schema cannot express. Exit 0 if all pass, 1 if not, 2 on a usage error.

Both modes first check the schemas themselves against the 2020-12 meta-schema
and resolve every "$ref" offline (nothing is fetched from the network).
"""

import argparse
import json
import os
import re
import subprocess
import sys

try:
    import jsonschema
    from jsonschema import Draft202012Validator
except ImportError:
    sys.stderr.write("schema-check: python3-jsonschema is missing (run with /usr/bin/python3)\n")
    sys.exit(2)

CHANNELS = ["state", "hb", "usage", "periph", "inventory", "alert", "cmd", "cmd/reply"]
KINDS = ["valid", "invalid", "c-only"]
TOPIC_PREFIX = "bbt/v1/510107/3151010001/r101/"
MSG_MAX = 16384
MIN_VALID = 40
MIN_INVALID = 40
SUBPROCESS_TIMEOUT = 20


class UsageError(Exception):
    pass


def chan_dir(channel):
    """Corpus directory and schema file stem of CHANNEL ("cmd/reply" -> "cmd-reply")."""
    return channel.replace("/", "-")


# ---- schemas ----

def ecma_pattern(validator, patrn, instance, schema):
    """The "pattern" keyword with ECMA-262 semantics for a trailing "$".

    Python's re.search lets "$" match before a final newline ("ab\\n" matches
    "^ab$"); ECMA-262, which JSON Schema specifies, does not. Every pattern in
    our schemas is written "^...$", so an unescaped final "$" becomes "\\Z"."""
    if not validator.is_type(instance, "string"):
        return
    py = patrn
    if py.endswith("$") and not py.endswith("\\$"):
        py = py[:-1] + "\\Z"
    if not re.search(py, instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {patrn!r}")


Validator = jsonschema.validators.extend(Draft202012Validator, {"pattern": ecma_pattern})


def no_network(uri):
    raise jsonschema.RefResolutionError(f"{uri}: not among the local schemas (no network fetch)")


def walk_refs(node, where):
    """Yields (json pointer, ref) for every "$ref" under NODE."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield where, value
            else:
                yield from walk_refs(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk_refs(value, f"{where}/{i}")


def read_schemas(schema_dir, suffix=".json"):
    """Loads every schema in SCHEMA_DIR whose name ends in SUFFIX, checks it
    against the 2020-12 meta-schema and resolves every "$ref" offline.
    Returns ({file name: schema}, {file name: resolver})."""
    if not os.path.isdir(schema_dir):
        raise UsageError(f"{schema_dir}: not a directory")
    docs = {}
    for name in sorted(os.listdir(schema_dir)):
        if not name.endswith(suffix):
            continue
        path = os.path.join(schema_dir, name)
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        Draft202012Validator.check_schema(doc)
        if "$id" not in doc:
            raise jsonschema.SchemaError(f"{path}: no $id")
        docs[name] = doc
    store = {doc["$id"]: doc for doc in docs.values()}
    handlers = {"http": no_network, "https": no_network, "file": no_network}
    resolvers = {}
    # Resolve every reference once, so a dangling one fails here and not only
    # when some message happens to reach it.
    for name, doc in docs.items():
        resolver = jsonschema.RefResolver.from_schema(doc, store=store, handlers=handlers)
        for where, ref in walk_refs(doc, ""):
            # Relative refs resolve against the $id of the document (none of our
            # schemas nests another $id).
            try:
                resolver.resolve(ref)
            except jsonschema.RefResolutionError as e:
                raise jsonschema.SchemaError(f"{name}#{where}: $ref {ref!r} does not resolve: {e}")
        resolvers[name] = jsonschema.RefResolver.from_schema(doc, store=store, handlers=handlers)
    return docs, resolvers


def load_schemas(schema_dir):
    """Loads and checks every schema in SCHEMA_DIR; returns {channel: validator}."""
    docs, resolvers = read_schemas(schema_dir)
    validators = {}
    for channel in CHANNELS:
        name = chan_dir(channel) + ".json"
        if name not in docs:
            raise jsonschema.SchemaError(f"{schema_dir}/{name}: missing")
        validators[channel] = Validator(docs[name], resolver=resolvers[name])
    return validators


# ---- messages ----

def reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def parse_payload(data):
    """Parses raw payload bytes as strict JSON. Returns (value, None) or (None, reason)."""
    try:
        text = data.decode("utf-8", errors="strict")
    except UnicodeDecodeError as e:
        return None, f"not UTF-8: {e}"
    try:
        # Python accepts NaN and Infinity, which are not JSON.
        return json.loads(text, parse_constant=reject_constant), None
    except ValueError as e:
        return None, f"not JSON: {e}"


def schema_verdict(validator, value):
    """Returns (accepted, message)."""
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    if not errors:
        return True, ""
    e = errors[0]
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.absolute_path)
    return False, f"{path or '.'}: {e.message}"


def is_num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def c_only_violations(channel, data, value):
    """The rules JSON Schema cannot express, for a message the schema accepted."""
    out = []
    if len(data) > MSG_MAX:
        out.append(f"payload is {len(data)} bytes, over {MSG_MAX}")
    if channel == "usage" and isinstance(value, dict):
        start, end = value.get("start"), value.get("end")
        if is_num(start) and is_num(end):
            span = end - start
            if end < start:
                out.append("usage.end: before start")
            elif span > 3600000:
                out.append("usage.end: more than 3600000 ms after start")
            for key in ("interactive_ms", "audio_ms"):
                if is_num(value.get(key)) and value[key] > max(span, 0):
                    out.append(f"usage.{key}: longer than end - start")
    if channel == "cmd" and isinstance(value, dict) and value.get("op") == "resend":
        args = value.get("args")
        if isinstance(args, dict) and is_num(args.get("from")) and is_num(args.get("to")):
            if args["to"] < args["from"]:
                out.append("cmd.args.to: less than args.from")
    if channel == "state" and isinstance(value, dict):
        lo, hi = value.get("skipped_from"), value.get("skipped_to")
        if is_num(lo) and is_num(hi) and hi < lo:
            out.append("state.skipped_to: less than skipped_from")
    if channel == "cmd/reply" and isinstance(value, dict) and isinstance(value.get("result"), dict):
        missing = value["result"].get("missing")
        for i, item in enumerate(missing if isinstance(missing, list) else []):
            if isinstance(item, dict) and is_num(item.get("from")) and is_num(item.get("to")):
                if item["to"] < item["from"]:
                    out.append(f"cmd/reply.result.missing[{i}].to: less than from")
    return out


def run_validate(program, channel, path):
    """Runs bbt-validate on PATH. Returns (verdict, message) with verdict
    "accept", "reject" or "error"."""
    argv = [program, TOPIC_PREFIX + channel, path]
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=SUBPROCESS_TIMEOUT)
    except subprocess.TimeoutExpired:
        return "error", f"timed out after {SUBPROCESS_TIMEOUT} s"
    except OSError as e:
        return "error", f"cannot run: {e}"
    out = (p.stdout.decode("utf-8", "replace") + p.stderr.decode("utf-8", "replace")).strip()
    first = out.splitlines()[0] if out else ""
    if p.returncode == 0:
        if first != f"ok {channel}":
            return "error", f"exit 0 but printed {first!r}, expected 'ok {channel}'"
        return "accept", first
    if p.returncode == 1:
        if not first:
            return "error", "exit 1 without an error message"
        return "reject", first
    if p.returncode < 0:
        return "error", f"killed by signal {-p.returncode}: {first}"
    return "error", f"exit {p.returncode}: {first}"


def check_corpus(program, validators, corpus_dir):
    passed = failed = 0
    counts = {kind: {ch: 0 for ch in CHANNELS} for kind in KINDS}
    by_dir = {chan_dir(ch): ch for ch in CHANNELS}

    for kind in KINDS:
        kind_dir = os.path.join(corpus_dir, kind)
        if not os.path.isdir(kind_dir):
            if kind == "c-only":
                continue
            raise UsageError(f"{kind_dir}: not a directory")
        for sub in sorted(os.listdir(kind_dir)):
            sub_path = os.path.join(kind_dir, sub)
            if not os.path.isdir(sub_path):
                print(f"FAIL {kind}/{sub}: not a channel directory")
                failed += 1
                continue
            if sub not in by_dir:
                print(f"FAIL {kind}/{sub}: unknown channel directory")
                failed += 1
                continue
            channel = by_dir[sub]
            for name in sorted(os.listdir(sub_path)):
                rel = f"{sub}/{name}"
                path = os.path.join(sub_path, name)
                if not name.endswith(".json") or not os.path.isfile(path):
                    print(f"FAIL {kind}/{rel}: not a .json file")
                    failed += 1
                    continue
                counts[kind][channel] += 1
                ok, line = check_file(program, validators[channel], channel, kind, path)
                print(f"{'agree' if ok else 'DISAGREE'} {kind} {rel}{line}")
                if ok:
                    passed += 1
                else:
                    failed += 1

    for kind, least in (("valid", MIN_VALID), ("invalid", MIN_INVALID)):
        total = sum(counts[kind].values())
        if total < least:
            print(f"FAIL corpus: {total} {kind} files, need at least {least}")
            failed += 1
        for ch in CHANNELS:
            if counts[kind][ch] == 0:
                print(f"FAIL corpus: no {kind} files for channel {ch}")
                failed += 1
    return passed, failed


def check_file(program, validator, channel, kind, path):
    """Returns (agreed, detail) for one corpus file."""
    with open(path, "rb") as f:
        data = f.read()
    value, parse_error = parse_payload(data)
    if parse_error:
        s_ok, s_msg = False, parse_error
    else:
        s_ok, s_msg = schema_verdict(validator, value)
    c_verdict, c_msg = run_validate(program, channel, path)

    problems = []
    if c_verdict == "error":
        problems.append("bbt-validate failed")
    if kind == "valid":
        if not s_ok:
            problems.append("schema should accept")
        if c_verdict == "reject":
            problems.append("C should accept")
        if s_ok:
            extra = c_only_violations(channel, data, value)
            if extra:
                problems.append("corpus file breaks a C-only rule: " + "; ".join(extra))
    elif kind == "invalid":
        if s_ok:
            problems.append("schema should reject")
        if c_verdict == "accept":
            problems.append("C should reject")
    else:  # c-only
        if parse_error and "not UTF-8" not in parse_error:
            problems.append("c-only file must be UTF-8 JSON the schema accepts (or not UTF-8)")
        elif not parse_error and not s_ok:
            problems.append("schema should accept (it is a C-only rule)")
        elif not parse_error and not c_only_violations(channel, data, value):
            problems.append("corpus file breaks no known C-only rule")
        if c_verdict == "accept":
            problems.append("C should reject")

    schema_part = f"schema={'accept' if s_ok else 'reject'}" + (f" ({s_msg})" if s_msg else "")
    c_part = f"c={c_verdict} ({c_msg})"
    if problems:
        return False, f": {'; '.join(problems)}: {schema_part}; {c_part}"
    return True, ""


def check_encoded(program, validators):
    argv = [program]
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=SUBPROCESS_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as e:
        print(f"FAIL {program}: {e}")
        return 0, 1
    passed = failed = 0
    if p.returncode != 0:
        print(f"FAIL {program}: exit {p.returncode}: "
              f"{p.stderr.decode('utf-8', 'replace').strip()}")
        failed += 1
    lines = [ln for ln in p.stdout.split(b"\n") if ln.strip()]
    if not lines:
        print(f"FAIL {program}: printed no messages")
        failed += 1
    for n, raw in enumerate(lines, 1):
        tab = raw.find(b"\t")
        if tab < 0:
            print(f"FAIL line {n}: no tab between channel and JSON")
            failed += 1
            continue
        channel = raw[:tab].decode("utf-8", "replace")
        data = raw[tab + 1:]
        label = f"line {n} {channel}"
        if channel not in validators:
            print(f"FAIL {label}: unknown channel")
            failed += 1
            continue
        value, parse_error = parse_payload(data)
        if parse_error:
            print(f"FAIL {label}: {parse_error}")
            failed += 1
            continue
        s_ok, s_msg = schema_verdict(validators[channel], value)
        problems = [] if s_ok else [f"schema rejects: {s_msg}"]
        problems += c_only_violations(channel, data, value)
        if data != data.strip():
            problems.append("leading or trailing whitespace in compact JSON")
        if problems:
            print(f"FAIL {label}: {'; '.join(problems)}: {data[:200].decode('utf-8', 'replace')}")
            failed += 1
        else:
            print(f"ok {label}")
            passed += 1
    return passed, failed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--validate", metavar="BBT_VALIDATE", help="path to bbt-validate")
    mode.add_argument("--encoded", metavar="DUMP_PROGRAM", help="path to the encoder dump program")
    ap.add_argument("--schemas", metavar="DIR", required=True, help="protocol/schema directory")
    ap.add_argument("--corpus", metavar="DIR", help="tests/corpus directory (with --validate)")
    args = ap.parse_args()

    try:
        if args.validate and not args.corpus:
            raise UsageError("--validate needs --corpus")
        program = args.validate or args.encoded
        if not (os.path.isfile(program) and os.access(program, os.X_OK)):
            raise UsageError(f"{program}: not an executable file")
        validators = load_schemas(args.schemas)
        if args.validate:
            passed, failed = check_corpus(os.path.abspath(program), validators, args.corpus)
        else:
            passed, failed = check_encoded(os.path.abspath(program), validators)
    except UsageError as e:
        sys.stderr.write(f"schema-check: {e}\n")
        return 2
    except (jsonschema.SchemaError, jsonschema.RefResolutionError, ValueError, OSError) as e:
        # A broken schema breaks every check: report it as a failure, not a skip.
        print(f"FAIL schemas: {e}")
        print("0 passed, 1 failed")
        return 1

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

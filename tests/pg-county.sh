#!/bin/sh
# The simulated county end to end on PostgreSQL: bbt-sim's terminals through
# mosquitto into a bbt-aggregator whose store is a postgresql:// database, then
# bbt-report. Every message stored once, every figure equal to the simulator's
# truth (tools/sim/run-county.sh --check), and every report (summary, schools,
# terminals, idle, balance, energy as JSON) equal to the same county's on SQLite but for
# the store's name, the time it was made and receive times.
#
# With --share-group: two bbt-aggregators in one MQTT share group writing one
# PostgreSQL store instead (docs/aggregator.md, "Several aggregators"), the
# first killed with SIGKILL a third of the way through and started again with
# the same client id; afterwards every message stored exactly once, nothing
# lost, no gap open, every figure equal to the truth (run-county.sh --check
# --aggregators 2 --fault aggregator).
# Usage: pg-county.sh [--share-group] BINDIR (under ctest: the postgresql
#        fixture's server, BBT_TEST_PG)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
share=0
[ "${1:-}" = --share-group ] && { share=1; shift; }
bindir=$1
state=${BBT_TEST_PG:?run under ctest (the postgresql fixture), or set BBT_TEST_PG}
[ -r "$state/server" ] || { echo "pg-county: no server: $state/server (postgresql.start failed?)" >&2; exit 1; }
read -r _ port < "$state/server"
psql=/usr/lib/postgresql/15/bin/psql
db=bbt_county_$$
admin="postgresql://bbt@127.0.0.1:$port/postgres"
w=$(mktemp -d /tmp/bbt-pg-county.XXXXXX)
cleanup() {
    "$psql" -X -q -d "$admin" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
    rm -rf "$w"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
"$psql" -X -q -v ON_ERROR_STOP=1 -d "$admin" -c "CREATE DATABASE $db"

if [ $share -eq 1 ]; then
    "$here/../tools/sim/run-county.sh" --bindir "$bindir" --check --schools 4 --terminals 8 --seed 5 \
        --aggregators 2 --fault aggregator --store "postgresql://bbt@127.0.0.1:$port/$db"
    echo "pg-county: two aggregators, one killed and restarted: stored exactly once, figures equal the truth"
    exit 0
fi

# The two counties at once (each its own broker and aggregator): they spend
# most of their time waiting on the simulation.
county="--schools 3 --terminals 6 --seed 7"
# shellcheck disable=SC2086
"$here/../tools/sim/run-county.sh" --bindir "$bindir" --check $county --keep --workdir "$w/pg" \
    --store "postgresql://bbt@127.0.0.1:$port/$db" > "$w/pg.out" 2>&1 &
pg_pid=$!
# shellcheck disable=SC2086
"$here/../tools/sim/run-county.sh" --bindir "$bindir" --check $county --keep --workdir "$w/sqlite" \
    > "$w/sqlite.out" 2>&1 &
sqlite_pid=$!
status=0
wait $pg_pid || status=1
cat "$w/pg.out"
[ $status -eq 0 ] || { kill $sqlite_pid 2>/dev/null; wait $sqlite_pid 2>/dev/null; echo "pg-county: the county on PostgreSQL failed" >&2; exit 1; }
echo "pg-county: PostgreSQL: stored exactly once, figures equal the truth"
wait $sqlite_pid || status=1
cat "$w/sqlite.out"
[ $status -eq 0 ] || { echo "pg-county: the county on SQLite failed" >&2; exit 1; }
echo "pg-county: SQLite: stored exactly once, figures equal the truth"
python3 - "$w/pg" "$w/sqlite" <<'PY'
import json, sys

def strip(x):
    """The report without what differs between two runs of one county."""
    if isinstance(x, dict):
        return {k: strip(v) for k, v in x.items() if k not in ("store", "generated", "last_seen")}
    if isinstance(x, list):
        return [strip(v) for v in x]
    return x

bad = 0
for r in ("summary", "schools", "terminals", "idle", "balance", "energy"):
    a = strip(json.load(open(f"{sys.argv[1]}/{r}.json")))
    b = strip(json.load(open(f"{sys.argv[2]}/{r}.json")))
    if a != b:
        bad += 1
        print(f"pg-county: {r}: the PostgreSQL report differs from SQLite's", file=sys.stderr)
    else:
        print(f"pg-county: {r}: equal on PostgreSQL and SQLite")
sys.exit(1 if bad else 0)
PY

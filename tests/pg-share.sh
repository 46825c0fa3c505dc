#!/bin/sh
# Two bbt-aggregators in one MQTT share group writing one PostgreSQL store
# (docs/aggregator.md, "Several aggregators"), under a simulated county; the
# first is killed with SIGKILL a third of the way through and started again
# with the same client id. Afterwards every message is stored exactly once,
# nothing is lost, no gap is open, and every figure equals the simulator's
# truth (tools/sim/run-county.sh --check --aggregators 2 --fault aggregator).
# Usage: pg-share.sh BINDIR (under ctest: the postgresql fixture's server, BBT_TEST_PG)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bindir=$1
state=${BBT_TEST_PG:?run under ctest (the postgresql fixture), or set BBT_TEST_PG}
[ -r "$state/server" ] || { echo "pg-share: no server: $state/server (postgresql.start failed?)" >&2; exit 1; }
read -r _ port < "$state/server"
psql=/usr/lib/postgresql/15/bin/psql
db=bbt_share_$$
admin="postgresql://bbt@127.0.0.1:$port/postgres"
cleanup() {
    "$psql" -X -q -d "$admin" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM
"$psql" -X -q -v ON_ERROR_STOP=1 -d "$admin" -c "CREATE DATABASE $db"
"$here/../tools/sim/run-county.sh" --bindir "$bindir" --check --schools 4 --terminals 8 --seed 5 \
    --aggregators 2 --fault aggregator --store "postgresql://bbt@127.0.0.1:$port/$db"
echo "pg-share: two aggregators, one killed and restarted: stored exactly once, figures equal the truth"

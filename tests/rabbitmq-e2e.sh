#!/bin/sh
# bbt end to end on RabbitMQ's MQTT plugin, a second broker beside mosquitto
# (docs/brokers.md), on the server of ctest's rabbitmq fixture
# (tests/rabbitmq-server.sh; BBT_TEST_RABBITMQ names its state directory):
#   county  the simulated county's truth check (tools/sim/run-county.sh
#           --check): every message stored once, every figure equal to the truth
#   ask     the real bbt-agent connected first, then a bbt-aggregator with a new
#           store: RabbitMQ delivers it no retained birth or inventory, so it
#           asks the terminal (cmd state, inventory) and learns both
#   share   a bbt-aggregator with [broker] share_group: RabbitMQ accepts the
#           $share/ subscription and delivers nothing; the aggregator says so
#           and exits 2 after share_probe_timeout
# Usage: rabbitmq-e2e.sh BINDIR county|ask|share
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bindir=$1 what=$2
state=${BBT_TEST_RABBITMQ:?run under ctest (the rabbitmq fixture), or set BBT_TEST_RABBITMQ}
if [ ! -r "$state/server" ]; then
    [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || { echo "rabbitmq-e2e: RabbitMQ is not installed (scripts/install-deps)" >&2; exit 77; }
    echo "rabbitmq-e2e: no server: $state/server (rabbitmq.start failed?)" >&2
    exit 1
fi
read -r _ port _ _ < "$state/server"
aggregator=$bindir/county/aggregator/bbt-aggregator
w=$(mktemp -d /tmp/bbt-rabbitmq-e2e.XXXXXX)
pids=
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    rm -rf "$w"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() {
    for f in "$w"/*.log; do [ -r "$f" ] && { echo "---- $f" >&2; tail -30 "$f" >&2; }; done
    echo "rabbitmq-e2e: $what: $*" >&2
    exit 1
}
# Waits up to $1 seconds for the shell condition $2.
wait_for() {
    n=$(($1 * 10))
    until eval "$2"; do
        n=$((n - 1))
        [ $n -gt 0 ] || return 1
        sleep 0.1
    done
}
# An aggregator configuration in $w/aggregator.conf with EXTRA lines in [broker].
aggregator_conf() {
    cat > "$w/aggregator.conf" <<CONF
[broker]
port = $port
client_id = bbt-aggregator-$what-$$
$1
[store]
path = $w/aggregator.db
[aggregator]
metrics_listen =
CONF
}

case $what in
county)
    "$here/../tools/sim/run-county.sh" --bindir "$bindir" --check --schools 3 --terminals 6 --seed 7 \
        --broker-port "$port" ;;
ask)
    county=510198 school=5101980001 terminal=rmq-$$
    mkdir -p "$w/agent/spool"
    cat > "$w/agent.conf" <<CONF
[identity]
county = $county
school = $school
terminal = $terminal
[broker]
port = $port
[agent]
state_dir = $w/agent
heartbeat_interval = 1s
[spool]
dir = $w/agent/spool
CONF
    "$bindir/agent/bbt-agent" --config "$w/agent.conf" 2> "$w/agent.log" &
    pids="$pids $!"
    wait_for 20 'grep -q "connected to" "$w/agent.log"' || fail "bbt-agent did not connect"
    # Its birth and inventory went out before any aggregator subscribed.
    aggregator_conf "topic = bbt/v1/$county/#"
    "$aggregator" --config "$w/aggregator.conf" 2> "$w/aggregator.log" &
    pids="$pids $!"
    wait_for 30 'python3 - "$w/aggregator.db" "$terminal" <<PY 2>/dev/null
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
r = c.execute("SELECT online, hostname, inventory_seq FROM terminal WHERE terminal = ?", (sys.argv[2],)).fetchone()
sys.exit(0 if r and r[0] == 1 and r[1] and r[2] >= 0 else 1)
PY' || fail "the aggregator did not learn the terminal's session and inventory"
    grep -q "its birth and inventory not known" "$w/aggregator.log" || fail "the aggregator did not say it asked"
    grep -q "command as-.*: state" "$w/agent.log" || fail "the agent got no state command"
    echo "rabbitmq-e2e: ask: a new aggregator learnt $county/$school/$terminal's birth and inventory by asking" ;;
share)
    aggregator_conf "share_group = county
share_probe_timeout = 3s"
    start=$(date +%s)
    status=0
    timeout 60 "$aggregator" --config "$w/aggregator.conf" 2> "$w/aggregator.log" || status=$?
    [ $status -eq 2 ] || fail "expected exit status 2 (a configuration that cannot work), got $status"
    grep -q 'nothing arrived through the shared subscription \$share/county/bbt/v1/#' "$w/aggregator.log" ||
        fail "no clear error in the log"
    grep -q 'docs/brokers.md' "$w/aggregator.log" || fail "the error does not point to docs/brokers.md"
    echo "rabbitmq-e2e: share: refused after $(($(date +%s) - start)) s, exit status 2:"
    grep 'nothing arrived' "$w/aggregator.log" ;;
*) echo "usage: $0 BINDIR county|ask|share" >&2; exit 2 ;;
esac

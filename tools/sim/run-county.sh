#!/bin/sh
# Runs a simulated county end to end on loopback and prints its reports:
# mosquitto (limits that do not drop QoS 1), bbt-aggregator on SQLite with the
# county's registry, bbt-sim (a school week of simulated terminals, faster than
# real time), optionally the real bbt-agent on this machine as one more
# terminal, then bbt-report. With --check it compares every figure with the
# simulator's ground truth instead and fails on any difference.
# Everything it starts is stopped, and its directory removed, when it ends.
#
# --fault broker|aggregator|sim kills that process with SIGKILL once a third of
# the week is stored, and starts it again: with --check, every figure must still
# match and every message be stored exactly once, with no loss.
#
# Usage: tools/sim/run-county.sh [--bindir DIR] [--workdir DIR] [--schools N]
#        [--terminals N] [--seed S] [--agent] [--check] [--fault KIND]
#        [--lang zh|en] [--keep] [--store LOCATION] [--left-on PCT]
#        [--power-off HH:MM] [--aggregators N] [--broker-port PORT]
# --left-on and --power-off are bbt-sim's: boards left on after hours, and a
# power-off schedule (docs/simulator.md, "After hours").
# --store postgresql://USER@HOST:PORT/DB stores into that (empty) PostgreSQL
# database instead of an SQLite file in the work directory.
# --aggregators N (with a PostgreSQL --store) runs N bbt-aggregators in one
# share group ([broker] share_group), each with its own client id, writing the
# one store; --fault aggregator then kills the first of them.
# --broker-port PORT uses the broker already listening on 127.0.0.1:PORT
# (anonymous, e.g. RabbitMQ's MQTT plugin: tests/rabbitmq-e2e.sh) instead of
# starting mosquitto; not with --fault broker.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
bindir=$here/../../build/run
workdir=
schools=20
terminals=30
seed=1
agent=0
check=0
lang=zh
keep=0
fault=
store=
timeout=180
sim_extra=
aggregators=1
broker_port=

while [ $# -gt 0 ]; do
    case $1 in
        --bindir) bindir=$2; shift ;;
        --workdir) workdir=$2; shift ;;
        --schools) schools=$2; shift ;;
        --terminals) terminals=$2; shift ;;
        --seed) seed=$2; shift ;;
        --agent) agent=1 ;;
        --check) check=1 ;;
        --lang) lang=$2; shift ;;
        --keep) keep=1 ;;
        --fault) fault=$2; shift ;;
        --store) store=$2; shift ;;
        --aggregators) aggregators=$2; shift ;;
        --broker-port) broker_port=$2; shift ;;
        --left-on) sim_extra="$sim_extra --left-on $2"; shift ;;
        --power-off) sim_extra="$sim_extra --power-off $2"; shift ;;
        -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
        *) echo "run-county: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

sim=$bindir/tools/sim/bbt-sim
aggregator=$bindir/county/aggregator/bbt-aggregator
report=$bindir/county/report/bbt-report
agent_bin=$bindir/agent/bbt-agent
case $fault in
    ''|broker|aggregator|sim) ;;
    *) echo "run-county: --fault broker, aggregator or sim" >&2; exit 2 ;;
esac
case $aggregators in
    1) ;;
    [2-9])
        case $store in
            postgres*) ;;
            *) echo "run-county: --aggregators $aggregators needs a PostgreSQL --store (one SQLite file has one writer)" >&2; exit 2 ;;
        esac ;;
    *) echo "run-county: --aggregators 1 to 9" >&2; exit 2 ;;
esac
for b in "$sim" "$aggregator" "$report"; do
    [ -x "$b" ] || { echo "run-county: $b is not built (--bindir)" >&2; exit 2; }
done
[ -z "$broker_port" ] || [ "$fault" != broker ] || { echo "run-county: --fault broker needs its own mosquitto" >&2; exit 2; }
mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)
[ -n "$broker_port" ] || [ -x "$mosquitto" ] || { echo "run-county: mosquitto is not installed (scripts/install-deps)" >&2; exit 2; }

if [ -z "$workdir" ]; then
    workdir=$(mktemp -d /tmp/bbt-county.XXXXXX)
else
    mkdir -p "$workdir"
fi
[ -n "$store" ] || store=$workdir/aggregator.db
export PYTHONPATH=$here${PYTHONPATH:+:$PYTHONPATH}
pids=
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    if [ $keep -eq 0 ]; then rm -rf "$workdir"; else echo "run-county: kept $workdir" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { [ $check -eq 1 ] || printf '%s\n' "$*" >&2; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
county=510199
# Last week, Monday to Sunday, in Beijing time.
week=$(python3 -c 'import datetime as d; t=(d.datetime.utcnow()+d.timedelta(hours=8)).date(); m=t-d.timedelta(days=t.weekday()+7); print(m.isoformat(), (m+d.timedelta(days=6)).isoformat())')
from=${week% *}
to=${week#* }

# The broker.
cat > "$workdir/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 1000000
max_inflight_messages 100
log_dest file $workdir/mosquitto.log
CONF
start_broker() {
    "$mosquitto" -c "$workdir/mosquitto.conf" >/dev/null 2>&1 &
    broker_pid=$!
    pids="$pids $broker_pid"
    python3 - "$port" <<'PY'
import socket, sys, time
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close(); sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit("run-county: mosquitto did not come up")
PY
}
if [ -n "$broker_port" ]; then
    port=$broker_port
else
    start_broker
fi
say "== broker on 127.0.0.1:$port"

# The county: registry, calendar and bells from the simulator.
"$sim" --only-files --quiet --county $county --schools "$schools" --terminals "$terminals" --seed "$seed" \
    --week "$from" --registry "$workdir" --truth "$workdir/truth.json" $sim_extra
first_school=$(sed -n '2p' "$workdir/schools.csv" | cut -d, -f4)
if [ $agent -eq 1 ]; then
    printf '%s,local,本机 (bbt-agent),\r\n' "$first_school" >> "$workdir/terminals.csv"
fi

# The aggregator.
cat > "$workdir/aggregator.conf" <<CONF
[broker]
port = $port
# On loopback: come back quickly after a broker restart.
backoff_max = 2s
[store]
path = $store
[registry]
schools = $workdir/schools.csv
terminals = $workdir/terminals.csv
calendar = $workdir/calendar.csv
bells = $workdir/bells.csv
[ingest]
gap_grace = 2s
resend_timeout = 10s
resend_settle = 5s
# The simulator's first heartbeats are the live ones that show a skewed clock.
skew_warmup = 0s
[metrics]
heartbeat_interval = 15m
CONF
# Several: each its own client id (its persistent session), one share group.
n=1
while [ $n -le "$aggregators" ] && [ "$aggregators" -gt 1 ]; do
    # Each member gets every other message of a terminal: what one stores
    # before the other has stored the message before it is a gap until the
    # other catches up -- within a second or two, or, for a member killed
    # and restarted, once it has worked through what the broker kept for it
    # meanwhile (the simulator sends a week in seconds): gap_grace covers it.
    { printf '[broker]\nclient_id = bbt-aggregator-%s\nshare_group = county\n' "$n"
      sed -e '1d' -e 's/^gap_grace = .*/gap_grace = 10s/' "$workdir/aggregator.conf"
      printf '[aggregator]\n# One port between them: none.\nmetrics_listen =\n'; } > "$workdir/aggregator-$n.conf"
    n=$((n + 1))
done
# start_aggregator [N]: the only one, or the Nth of several (log aggregator-N.log).
start_aggregator() {
    if [ "$aggregators" -eq 1 ]; then
        "$aggregator" --config "$workdir/aggregator.conf" 2>> "$workdir/aggregator.log" &
    else
        "$aggregator" --config "$workdir/aggregator-$1.conf" 2>> "$workdir/aggregator-$1.log" &
    fi
    aggregator_pid=$!
    pids="$pids $aggregator_pid"
}
wait_connected() {
    i=0
    until grep -q 'broker: connected' "$1" 2>/dev/null; do
        i=$((i + 1))
        [ $i -lt 100 ] || { cat "$1" >&2; echo "run-county: bbt-aggregator did not connect" >&2; exit 1; }
        sleep 0.1
    done
}
if [ "$aggregators" -eq 1 ]; then
    start_aggregator
    wait_connected "$workdir/aggregator.log"
else
    n=1
    while [ $n -le "$aggregators" ]; do
        start_aggregator $n
        [ $n -eq 1 ] && first_aggregator_pid=$aggregator_pid
        wait_connected "$workdir/aggregator-$n.log"
        n=$((n + 1))
    done
    aggregator_pid=$first_aggregator_pid
    say "== $aggregators bbt-aggregators in share group 'county'"
fi
case $store in
    postgres*) say "== bbt-aggregator ingesting into PostgreSQL at ${store##*@}" ;;
    *) say "== bbt-aggregator ingesting into $store" ;;
esac

# The real agent on this machine, as terminal "local" of the first school.
if [ $agent -eq 1 ] && [ -x "$agent_bin" ]; then
    mkdir -p "$workdir/agent/spool"
    cat > "$workdir/agent.conf" <<CONF
[identity]
county = $county
school = $first_school
terminal = local
[broker]
port = $port
[agent]
state_dir = $workdir/agent
heartbeat_interval = 5s
[spool]
dir = $workdir/agent/spool
CONF
    "$agent_bin" --config "$workdir/agent.conf" 2> "$workdir/agent.log" &
    pids="$pids $!"
    say "== bbt-agent on this machine reporting as $county/$first_school/local"
fi

say "== bbt-sim: $schools schools x $terminals terminals, the week of $from, seed $seed"
run_sim() {
    "$sim" --quiet --port "$port" --county $county --schools "$schools" --terminals "$terminals" --seed "$seed" \
        --week "$from" --produced "$workdir/produced.txt" --linger "$linger" $sim_extra
}
linger=3
if [ -z "$fault" ]; then
    run_sim
else
    # Time for the resends that the fault makes necessary (with several
    # aggregators, more: the restarted one works through the broker's queue
    # for it before it sees what its batch lost).
    linger=20
    [ "$aggregators" -gt 1 ] && linger=40
    run_sim & sim_pid=$!
    pids="$pids $sim_pid"
    python3 - "$store" "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["messages"] // 3)' "$workdir/truth.json")" <<'PY'
import storedb, sys, time
db, want = sys.argv[1], int(sys.argv[2])
deadline = time.time() + 120
while time.time() < deadline:
    try:
        if storedb.Store(db).one("SELECT coalesce(sum(received), 0) FROM terminal") >= want:
            sys.exit(0)
    except storedb.StoreError:
        pass
    time.sleep(0.05)
sys.exit("run-county: the stream did not get a third of the way")
PY
    say "== fault: kill -9 $fault mid-stream"
    case $fault in
        broker) kill -9 "$broker_pid"; wait "$broker_pid" 2>/dev/null || true; sleep 1; start_broker ;;
        aggregator) kill -9 "$aggregator_pid"; wait "$aggregator_pid" 2>/dev/null || true; sleep 1; start_aggregator 1 ;;
        sim) kill -9 "$sim_pid"; wait "$sim_pid" 2>/dev/null || true; sleep 1; run_sim & sim_pid=$!; pids="$pids $sim_pid" ;;
    esac
    wait "$sim_pid"
fi

# Wait until every simulated message is stored and no gap is open.
python3 - "$store" "$(cat "$workdir/produced.txt")" "$timeout" <<'PY'
import storedb, sys, time
db, want, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
deadline = time.time() + limit
while True:
    try:
        c = storedb.Store(db)
        got = c.one("SELECT coalesce(sum(received), 0) FROM terminal WHERE terminal != 'local'")
        gaps = c.one("SELECT count(*) FROM gap g JOIN terminal t ON t.id = g.terminal_id"
                     " WHERE t.terminal != 'local'")
        c.close()
    except storedb.StoreError:
        got, gaps = -1, -1
    if got >= want and gaps == 0:
        break
    if time.time() > deadline:
        try:
            c = storedb.Store(db)
            for row in c.rows("SELECT t.school, t.terminal, g.from_seq, g.to_seq, g.state, g.attempts, g.cmd_id"
                              " FROM gap g JOIN terminal t ON t.id = g.terminal_id ORDER BY 1, 2, 3 LIMIT 20"):
                print("run-county: open gap: %s/%s seq %s..%s state %s, %s attempts, command %s" % tuple(row),
                      file=sys.stderr)
        except storedb.StoreError:
            pass
        sys.exit(f"run-county: after {limit:.0f} s the store holds {got} of {want} simulated messages, {gaps} gaps open")
    time.sleep(0.2)
PY
say "== all $(cat "$workdir/produced.txt") simulated messages stored"

run_report() {
    "$report" "$1" --config "$workdir/aggregator.conf" --from "$from" --to "$to" --lang "$lang" "$@"
}
if [ $check -eq 1 ]; then
    for r in summary schools terminals idle balance energy; do
        "$report" $r --config "$workdir/aggregator.conf" --from "$from" --to "$to" --format json > "$workdir/$r.json"
    done
    status=0
    python3 - "$store" <<'PY' || status=1
import storedb, sys
c = storedb.Store(sys.argv[1])
lost = c.one("SELECT count(*) FROM loss")
dup = c.one("SELECT coalesce(max(value), 0) FROM counter WHERE name = 'duplicates'")
rows = c.one("SELECT count(*) FROM raw")
stored = c.one("SELECT coalesce(sum(received), 0) FROM terminal")
print(f"run-county: {rows} messages stored once each, {dup} duplicates dropped, {lost} loss records")
if lost or rows != stored:
    sys.exit("run-county: messages were lost or stored twice")
PY
    python3 "$here/compare-truth.py" "$workdir/truth.json" "$workdir/summary.json" "$workdir/schools.json" \
        "$workdir/terminals.json" "$workdir/idle.json" "$workdir/balance.json" "$workdir/energy.json" || status=1
    # Stop the daemons now, to see that they end cleanly (and, in a sanitizer
    # build, without a report).
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    pids=
    if cat "$workdir"/aggregator*.log 2>/dev/null | grep -E 'Sanitizer|runtime error:' >/dev/null; then
        cat "$workdir"/aggregator*.log >&2
        echo "run-county: bbt-aggregator's log has a sanitizer report" >&2
        status=1
    fi
    if [ $status -ne 0 ]; then
        keep=1
        for f in "$workdir"/aggregator*.log; do tail -20 "$f" >&2; done
    fi
    exit $status
fi
for r in summary balance idle; do
    echo
    "$report" $r --config "$workdir/aggregator.conf" --from "$from" --to "$to" --lang "$lang"
done
if [ $agent -eq 1 ]; then
    echo
    python3 - "$store" <<'PY'
import storedb, sys
row = storedb.Store(sys.argv[1]).row("SELECT received, online FROM terminal WHERE terminal = 'local'")
if row:
    print(f"本机 bbt-agent: {row[0]} 条消息已入库, {'在线' if int(row[1]) else '离线'}")
else:
    print("本机 bbt-agent: 尚未收到消息 (see agent.log)")
PY
fi

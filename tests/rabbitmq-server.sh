#!/bin/sh
# A real RabbitMQ with its MQTT plugin for the tests (ctest's rabbitmq fixture):
# Debian's rabbitmq-server, run as an unprivileged user (rabbitmq, else
# nobody) with everything in a new temporary directory (node database, logs,
# configuration, enabled-plugins file, HOME for the Erlang cookie), a node
# name of its own, and its AMQP, distribution, epmd and MQTT ports free ones
# on 127.0.0.1 only. Its own epmd, started first, is stopped with it.
#   rabbitmq-server.sh start STATE_DIR   start it; STATE_DIR/server then holds
#                                        "DIR MQTT_PORT BEAM_PID EPMD_PID"
#   rabbitmq-server.sh stop STATE_DIR    stop it (and epmd), remove DIR
# Exit status: 0, 77 when RabbitMQ is not installed (scripts/install-deps), 1.
# A server left by a killed run is stopped by the next start, or by its
# watchdog after LIFETIME seconds.
set -eu
LIFETIME=1800
server=/usr/lib/rabbitmq/bin/rabbitmq-server
cmd=${1:-} state=${2:-}
[ -n "$state" ] || { echo "usage: $0 start|stop STATE_DIR" >&2; exit 2; }

# Stops the server whose directory is $1 (beam $2, epmd $3): SIGTERM (the
# node shuts down cleanly), SIGKILL after 15 s; then epmd; then the directory.
stop_server() {
    dir=$1 beam=$2 epmd=$3
    if kill -0 "$beam" 2>/dev/null; then
        kill -TERM "$beam" 2>/dev/null || true
        i=0
        while kill -0 "$beam" 2>/dev/null && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
        kill -KILL "$beam" 2>/dev/null || true
    fi
    kill -TERM "$epmd" 2>/dev/null || true
    i=0
    while kill -0 "$epmd" 2>/dev/null && [ $i -lt 20 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$epmd" 2>/dev/null || true
    case $dir in /tmp/bbt-rabbitmq-*) rm -rf "$dir" ;; esac
}

case $cmd in
stop)
    [ -r "$state/server" ] || exit 0
    read -r dir port beam epmd < "$state/server"
    stop_server "$dir" "$beam" "$epmd"
    rm -f "$state/server"
    echo "rabbitmq: stopped the server on 127.0.0.1:$port"
    exit 0 ;;
watchdog)
    # (internal) $3 = DIR, $4 = beam, $5 = epmd: stop it after LIFETIME s
    # unless it was stopped (its directory gone) before.
    i=0
    while [ $i -lt $LIFETIME ] && [ -d "$3" ]; do sleep 5; i=$((i + 5)); done
    [ -d "$3" ] && stop_server "$3" "$4" "$5"
    exit 0 ;;
start) ;;
*) echo "usage: $0 start|stop STATE_DIR" >&2; exit 2 ;;
esac

[ -x "$server" ] || { echo "rabbitmq: $server: not installed (apt-get install rabbitmq-server; scripts/install-deps)" >&2; exit 77; }
epmd_bin=$(command -v epmd || echo /usr/bin/epmd)
"$0" stop "$state" >/dev/null # a server left by a killed run
mkdir -p "$state"
dir=$(mktemp -d /tmp/bbt-rabbitmq-XXXXXX)
# The server refuses nothing as root, but the tests run it as a user who owns
# nothing but its directory, as a county would.
as_user=
if [ "$(id -u)" -eq 0 ]; then
    user=rabbitmq
    id "$user" >/dev/null 2>&1 || user=nobody
    chown "$user:" "$dir" 2>/dev/null || chown "$user" "$dir"
    as_user="setpriv --reuid=$user --regid=$(id -g "$user") --clear-groups"
fi
# Four ports free a moment ago, on loopback.
set -- $(python3 -c '
import socket
ss = [socket.socket() for _ in range(4)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
amqp=$1 dist=$2 epmd_port=$3 mqtt=$4
node=bbt-$$-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')@localhost

cat > "$dir/rabbitmq.conf" <<CONF
listeners.tcp.1 = 127.0.0.1:$amqp
mqtt.listeners.tcp.1 = 127.0.0.1:$mqtt
mqtt.allow_anonymous = true
loopback_users = none
log.console = false
log.file.level = info
CONF
echo '[rabbitmq_mqtt].' > "$dir/enabled_plugins"
: > "$dir/rabbitmq-env.conf" # not /etc/rabbitmq's
[ -z "$as_user" ] || chown -R "$user:" "$dir"

# Nothing of the caller's environment but PATH; the Erlang VM's epmd and
# distribution ports on 127.0.0.1.
run_env() {
    # shellcheck disable=SC2086
    setsid $as_user env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME="$dir" \
        ERL_EPMD_PORT="$epmd_port" ERL_EPMD_ADDRESS=127.0.0.1 "$@" < /dev/null >> "$dir/startup.log" 2>&1 &
}
run_env "$epmd_bin" -port "$epmd_port" -address 127.0.0.1
epmd_pid=$!
run_env RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf" RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" RABBITMQ_MNESIA_BASE="$dir/mnesia" \
    RABBITMQ_LOG_BASE="$dir/log" RABBITMQ_PID_FILE="$dir/rabbitmq.pid" RABBITMQ_NODENAME="$node" \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$amqp" RABBITMQ_DIST_PORT="$dist" \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
    RUNNING_UNDER_SYSTEMD=1 "$server" # the script execs the VM: $! is the node's pid
beam_pid=$!
setsid "$0" watchdog "$state" "$dir" "$beam_pid" "$epmd_pid" < /dev/null > /dev/null 2>&1 &

# Up when the MQTT port answers (start-up takes 10-30 s on 2 busy cores).
if ! python3 - "$mqtt" "$beam_pid" <<'PY'
import os, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
end = time.time() + 120
while time.time() < end:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("rabbitmq: the server ended during its start")
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit("rabbitmq: the MQTT port did not answer within 120 s")
PY
then
    tail -20 "$dir/startup.log" >&2
    tail -20 "$dir"/log/*.log >&2 2>/dev/null || true
    stop_server "$dir" "$beam_pid" "$epmd_pid"
    exit 1
fi
echo "$dir $mqtt $beam_pid $epmd_pid" > "$state/server"
echo "rabbitmq: RabbitMQ $(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null) MQTT on 127.0.0.1:$mqtt (node $node, epmd $epmd_port), in $dir"

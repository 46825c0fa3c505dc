#!/bin/bash
# agent-footprint.sh: RSS, private memory, CPU and idle wakeups of bbt-agent at
# its default settings beside two baselines in the same run, all against one
# mosquitto on loopback: bare-publisher (a minimal libuv + libmosquitto client
# publishing the same messages) and collectd (Debian's collectd-core: cpu,
# memory, df, interface, load and uptime every 60 s over its mqtt plugin).
#
# Usage: tools/bench/agent-footprint.sh [--duration SECONDS] [--interval SECONDS]
#                                       [--build-dir DIR] [--before-agent BIN]
#                                       [--markdown] [--keep]
# Environment: DURATION (600), INTERVAL (10), SETTLE (5), BUILD_DIR (<repo>/build).
# --before-agent runs a second bbt-agent (an earlier build) beside the first,
# for a before/after comparison in the same run; --markdown prints a section
# for docs/BENCHMARKS.md instead of the plain table; --keep keeps the work
# directory (logs, samples, smaps, pmap, the reports).
# Exit status: 0 all targets met, 3 a target missed, 1 a process died or
# could not start, 2 bad usage. Nothing it starts outlives it.
#
# See docs/BENCHMARKS.md for what is measured and why.
set -u

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

# The environment as given, for the command line in the report; the last two
# reach the agents and bare-publisher (experiments such as UV_THREADPOOL_SIZE=1).
envprefix=""
for v in DURATION INTERVAL SETTLE BUILD_DIR UV_THREADPOOL_SIZE MALLOC_ARENA_MAX; do
        [ -n "${!v:-}" ] && envprefix+="$v=$(printf '%q' "${!v}") "
done

DURATION=${DURATION:-600}
INTERVAL=${INTERVAL:-10}
SETTLE=${SETTLE:-5}
BUILD_DIR=${BUILD_DIR:-$repo/build}
markdown=false
keep=false
before_bin=""

# Targets (from the issues): RSS against the bare client, private memory and
# CPU absolute, idle wakeups and CPU against collectd; with --before-agent,
# RSS and private memory not above the earlier build's (2 % for page noise).
TARGET_RSS_RATIO=1.5
TARGET_ANON_KB=2048
TARGET_CPU_PCT=0.05
TARGET_BEFORE_RATIO=1.02

invocation="$0"
for a in "$@"; do invocation+=" $(printf '%q' "$a")"; done

usage() {
        sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
        case $1 in
        --duration) DURATION=${2:?}; shift 2 ;;
        --duration=*) DURATION=${1#*=}; shift ;;
        --interval) INTERVAL=${2:?}; shift 2 ;;
        --interval=*) INTERVAL=${1#*=}; shift ;;
        --build-dir) BUILD_DIR=${2:?}; shift 2 ;;
        --build-dir=*) BUILD_DIR=${1#*=}; shift ;;
        --before-agent) before_bin=${2:?}; shift 2 ;;
        --before-agent=*) before_bin=${1#*=}; shift ;;
        --markdown) markdown=true; shift ;;
        --keep) keep=true; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "agent-footprint: unknown argument $1" >&2; usage >&2; exit 2 ;;
        esac
done
for v in DURATION INTERVAL SETTLE; do
        case ${!v} in
        ''|*[!0-9]*) echo "agent-footprint: $v must be a whole number of seconds" >&2; exit 2 ;;
        esac
done
[ "$DURATION" -ge "$INTERVAL" ] && [ "$INTERVAL" -ge 1 ] || {
        echo "agent-footprint: need DURATION >= INTERVAL >= 1" >&2; exit 2; }

agent_bin=$BUILD_DIR/agent/bbt-agent
bare_bin=$BUILD_DIR/tools/bench/bare-publisher
for b in "$agent_bin" "$bare_bin"; do
        [ -x "$b" ] || { echo "agent-footprint: $b not built (cmake --build $BUILD_DIR)" >&2; exit 1; }
done
[ -z "$before_bin" ] || [ -x "$before_bin" ] || {
        echo "agent-footprint: --before-agent $before_bin is not an executable" >&2; exit 2; }
for t in mosquitto mosquitto_sub getconf; do
        command -v "$t" >/dev/null || { echo "agent-footprint: $t not found (apt-get install mosquitto mosquitto-clients)" >&2; exit 1; }
done
mosquitto_bin=$(command -v mosquitto)
collectd_bin=$(command -v collectd || echo /usr/sbin/collectd)
collectd_plugins=/usr/lib/collectd
[ -x "$collectd_bin" ] && [ -r "$collectd_plugins/mqtt.so" ] && [ -r /usr/share/collectd/types.db ] || {
        echo "agent-footprint: collectd with its mqtt plugin not found (apt-get install collectd-core)" >&2; exit 1; }

log() { printf 'agent-footprint: %s\n' "$*" >&2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bbt-footprint.XXXXXX") || exit 1
broker_pid="" sub_pid="" agent_pid="" before_pid="" bare_pid="" collectd_pid=""

cleanup() {
        local p
        trap - EXIT INT TERM HUP
        for p in $agent_pid $before_pid $bare_pid $collectd_pid $sub_pid $broker_pid; do
                kill -0 "$p" 2>/dev/null && kill -TERM "$p" 2>/dev/null
        done
        for p in $agent_pid $before_pid $bare_pid $collectd_pid $sub_pid $broker_pid; do
                for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.5; done
                kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
                wait "$p" 2>/dev/null
        done
        if $keep; then log "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM HUP

alive() { # PID: running (not a zombie)
        local s
        [ -r "/proc/$1/stat" ] || return 1
        s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
        [ -n "$s" ] && [ "$s" != Z ] && [ "$s" != X ]
}

listening() { # PORT
        ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

# ---- the broker, on a free loopback port ----
started=false
for port in $(shuf -i 20000-60999 -n 20); do
        listening "$port" && continue
        cat >"$tmp/mosquitto.conf" <<EOF
listener $port 127.0.0.1
allow_anonymous true
persistence false
log_dest stderr
log_type error
log_type warning
log_type notice
log_type information
EOF
        # Logs to stderr (unbuffered): run as root, mosquitto switches to its own user,
        # which could not open a file in this private directory.
        "$mosquitto_bin" -c "$tmp/mosquitto.conf" >"$tmp/mosquitto.log" 2>&1 &
        broker_pid=$!
        for _ in $(seq 50); do
                listening "$port" && { started=true; break; }
                alive "$broker_pid" || break
                sleep 0.1
        done
        $started && break
        kill "$broker_pid" 2>/dev/null; wait "$broker_pid" 2>/dev/null; broker_pid=""
done
$started || { log "cannot start mosquitto on a free port"; exit 1; }
log "broker: mosquitto pid $broker_pid on 127.0.0.1:$port (workdir $tmp)"

# ---- the subscriber: one line per message, topic and payload length ----
mosquitto_sub -h 127.0.0.1 -p "$port" -i bench-sub -q 1 -t 'bbt/#' -t 'collectd/#' -F '%t %l' \
        >"$tmp/sub.txt" 2>"$tmp/sub.err" &
sub_pid=$!
for _ in $(seq 50); do
        grep -q 'as bench-sub' "$tmp/mosquitto.log" 2>/dev/null && break
        sleep 0.1
done
grep -q 'as bench-sub' "$tmp/mosquitto.log" || { log "mosquitto_sub did not connect"; exit 1; }

# ---- bbt-agent at its defaults, but for identity, broker and where it writes ----
agent_prefix="bbt/v1/000000/bench/agent/"
before_prefix="bbt/v1/000000/bench/before/"
bare_prefix="bbt/v1/000000/bench/bare/"
collectd_prefix="collectd/"
write_agent_conf() { # TERMINAL
        mkdir -p "$tmp/$1/state" "$tmp/$1/spool"
        cat >"$tmp/$1.conf" <<EOF
# Generated by agent-footprint.sh: everything else is at its default.
[identity]
county = 000000
school = bench
terminal = $1

[broker]
host = 127.0.0.1
port = $port

[agent]
state_dir = $tmp/$1/state

[spool]
dir = $tmp/$1/spool
EOF
}

# ---- collectd: the same kind of readings every 60 s, over MQTT to the same broker ----
mkdir -p "$tmp/collectd"
cat >"$tmp/collectd.conf" <<EOF
# Generated by agent-footprint.sh: collection comparable to bbt-agent's heartbeat.
Hostname "bench"
FQDNLookup false
BaseDir "$tmp/collectd"
PIDFile "$tmp/collectd/collectd.pid"
PluginDir "$collectd_plugins"
TypesDB "/usr/share/collectd/types.db"
Interval 60
LoadPlugin cpu
LoadPlugin memory
LoadPlugin df
LoadPlugin interface
LoadPlugin load
LoadPlugin uptime
LoadPlugin mqtt
<Plugin mqtt>
  <Publish "bench">
    Host "127.0.0.1"
    Port "$port"
    ClientId "bench-collectd"
    Prefix "collectd"
    QoS 1
  </Publish>
</Plugin>
EOF

write_agent_conf agent
"$agent_bin" -c "$tmp/agent.conf" >"$tmp/agent.log" 2>&1 &
agent_pid=$!
if [ -n "$before_bin" ]; then
        write_agent_conf before
        "$before_bin" -c "$tmp/before.conf" >"$tmp/before.log" 2>&1 &
        before_pid=$!
fi
"$bare_bin" --host 127.0.0.1 --port "$port" --topic-prefix "$bare_prefix" >"$tmp/bare.log" 2>&1 &
bare_pid=$!
"$collectd_bin" -f -C "$tmp/collectd.conf" >"$tmp/collectd.log" 2>&1 &
collectd_pid=$!
log "bbt-agent pid $agent_pid${before_pid:+, bbt-agent (before) pid $before_pid}, bare-publisher pid $bare_pid, collectd pid $collectd_pid; settling ${SETTLE}s"
sleep "$SETTLE"

clk_tck=$(getconf CLK_TCK)

# sample NAME PID T: appends "T name rss anon file hwm threads ticks wakeups_main
# wakeups_all cpu_ns" to samples.txt. Wakeups are voluntary context switches
# (each is a sleep, ended by a wakeup): of the main thread, and of every thread
# summed over /proc/PID/task (a thread that ended is no longer counted). CPU is
# utime + stime in CLK_TCK ticks for the whole process, and the run time
# summed over /proc/PID/task/*/schedstat in ns where the kernel keeps it
# (0 where it does not).
sample() {
        local name=$1 pid=$2 t=$3 status stat tasks
        status=$(cat "/proc/$pid/status" 2>/dev/null) || return 1
        stat=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || return 1
        tasks="$(cat /proc/"$pid"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches:/ { n += $2 } END { print n + 0 }')"
        tasks+=" $(cat /proc/"$pid"/task/*/schedstat 2>/dev/null | awk '{ n += $1 } END { printf "%.0f", n + 0 }')"
        awk -v t="$t" -v name="$name" -v stat="$stat" -v tasks="$tasks" '
                /^VmRSS:/ { rss = $2 } /^RssAnon:/ { anon = $2 } /^RssFile:/ { file = $2 }
                /^VmHWM:/ { hwm = $2 } /^Threads:/ { thr = $2 } /^voluntary_ctxt_switches:/ { vcs = $2 }
                END {
                        split(stat, f, " ")
                        split(tasks, a, " ")
                        # after "comm) ": f[1] is field 3 (state); utime, stime are fields 14, 15
                        print t, name, rss, anon, file, hwm, thr, f[12] + f[13], vcs, a[1], a[2]
                }' <<<"$status" >>"$tmp/samples.txt"
}

names="agent${before_bin:+ before} bare collectd"
pid_of() { # NAME
        case $1 in
        agent) echo "$agent_pid" ;; before) echo "$before_pid" ;;
        bare) echo "$bare_pid" ;; collectd) echo "$collectd_pid" ;;
        esac
}

died=""
check_alive() {
        alive "$broker_pid" || died+=" mosquitto"
        alive "$agent_pid" || died+=" bbt-agent"
        [ -z "$before_bin" ] || alive "$before_pid" || died+=" bbt-agent(before)"
        alive "$bare_pid" || died+=" bare-publisher"
        alive "$collectd_pid" || died+=" collectd"
        [ -z "$died" ]
}

# ---- sampling ----
: >"$tmp/samples.txt"
t0=$(date +%s.%N)
elapsed=0
while :; do
        check_alive || break
        for n in $names; do sample "$n" "$(pid_of "$n")" "$elapsed"; done
        if [ "$elapsed" -gt 0 ] && [ $((elapsed % 60)) -eq 0 ]; then
                log "t=${elapsed}s $(awk -v e="$elapsed" '$1 == e { printf " %s: rss %s kB, anon %s kB;", $2, $3, $4 }' "$tmp/samples.txt")"
        fi
        [ "$elapsed" -ge "$DURATION" ] && break
        next=$((elapsed + INTERVAL))
        [ "$next" -gt "$DURATION" ] && next=$DURATION
        # sleep to the next whole multiple of INTERVAL since t0 (no drift)
        delay=$(awk -v t0="$t0" -v n="$next" -v now="$(date +%s.%N)" 'BEGIN { d = t0 + n - now; if (d < 0) d = 0; printf "%.3f", d }')
        sleep "$delay"
        elapsed=$next
done
t1=$(date +%s.%N)

# Where the memory is, before stopping: kept for the report.
for n in $names; do
        p=$(pid_of "$n")
        alive "$p" || continue
        cat "/proc/$p/smaps_rollup" >"$tmp/$n.smaps_rollup" 2>/dev/null
        cat "/proc/$p/smaps" >"$tmp/$n.smaps" 2>/dev/null
        command -v pmap >/dev/null && pmap -x "$p" >"$tmp/$n.pmap" 2>/dev/null
        ls "/proc/$p/task" >"$tmp/$n.tasks" 2>/dev/null
        for task in /proc/$p/task/*; do cat "$task/comm"; done >"$tmp/$n.threads" 2>/dev/null
done

# ---- stop: SIGTERM, then the subscriber gets what was sent on the way out ----
exit_status="" # set by stop_and_wait: the exit status, or "killed"
stop_and_wait() { # PID
        local p=$1
        kill -TERM "$p" 2>/dev/null
        for _ in $(seq 100); do alive "$p" || break; sleep 0.1; done
        if alive "$p"; then
                kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null
                exit_status="killed (still running 10 s after SIGTERM)"
                return
        fi
        wait "$p"; exit_status=$?
}
stop_and_wait "$agent_pid"; agent_exit=$exit_status; agent_pid=""
before_exit="-"
if [ -n "$before_pid" ]; then stop_and_wait "$before_pid"; before_exit=$exit_status; before_pid=""; fi
stop_and_wait "$bare_pid"; bare_exit=$exit_status; bare_pid=""
stop_and_wait "$collectd_pid"; collectd_exit=$exit_status; collectd_pid=""
sleep 1
kill -TERM "$sub_pid" 2>/dev/null; wait "$sub_pid" 2>/dev/null; sub_pid=""

# ---- the figures ----
wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
# NAME -> "peak_rss final_rss peak_anon final_anon final_file hwm threads cpu_total_s
# cpu_window_s window_s wake_main_per_s wake_all_per_s cpu_pct": CPU % over the
# window from schedstat where it counted, else from the ticks.
stats() {
        awk -v name="$1" -v hz="$clk_tck" '
                $2 == name {
                        if (!n++) { t_first = $1; c_first = $8; w_first = $9; a_first = $10; ns_first = $11 }
                        if ($3 > prss) prss = $3
                        if ($4 > panon) panon = $4
                        frss = $3; fanon = $4; ffile = $5; hwm = $6; thr = $7; t_last = $1; c_last = $8
                        w_last = $9; a_last = $10; ns_last = $11
                }
                END {
                        win = t_last - t_first
                        cpuw = (c_last - c_first) / hz
                        if (ns_last > ns_first) cpuw = (ns_last - ns_first) / 1e9
                        printf "%d %d %d %d %d %d %d %.2f %.3f %d %.3f %.3f %.4f\n", prss, frss, panon, fanon, ffile, hwm, thr,
                                c_last / hz, cpuw, win,
                                (win > 0 ? (w_last - w_first) / win : 0), (win > 0 ? (a_last - a_first) / win : 0),
                                (win > 0 ? 100 * cpuw / win : 0)
                }' "$tmp/samples.txt"
}
declare -A prss frss panon fanon ffile hwm thr cpu cpuw win wmain wakes pct
for n in $names; do
        read -r prss[$n] frss[$n] panon[$n] fanon[$n] ffile[$n] hwm[$n] thr[$n] cpu[$n] cpuw[$n] win[$n] \
                wmain[$n] wakes[$n] pct[$n] <<<"$(stats "$n")"
done
cpu_source="schedstat"
awk '$2 == "agent" && $11 > 0 { found = 1 } END { exit !found }' "$tmp/samples.txt" || cpu_source="CLK_TCK ticks ($clk_tck/s)"
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
ratio=$(div "${prss[agent]}" "${prss[bare]}")
anon_ratio=$(div "${panon[agent]}" "${panon[bare]}")
wake_ratio=$(div "${wakes[agent]}" "${wakes[collectd]}")
cpu_ratio=$(div "${pct[agent]}" "${pct[collectd]}")
mib() { awk -v k="$1" 'BEGIN { printf "%.2f", k / 1024 }'; }

verdict() { awk -v v="$1" -v lim="$2" 'BEGIN { if (v == "n/a" || v == "") print "n/a"; else if (v + 0 <= lim + 0) print "PASS"; else print "FAIL" }'; }
v_ratio=$(verdict "$ratio" "$TARGET_RSS_RATIO")
v_anon=$(verdict "${panon[agent]}" "$TARGET_ANON_KB")
v_cpu=$(verdict "${pct[agent]}" "$TARGET_CPU_PCT")
v_wake=$(verdict "${wakes[agent]}" "${wakes[collectd]}")
v_cpu_cd=$(verdict "${pct[agent]}" "${pct[collectd]}")
v_before_rss="n/a" v_before_anon="n/a" before_rss_ratio="n/a" before_anon_ratio="n/a"
if [ -n "$before_bin" ]; then
        before_rss_ratio=$(div "${prss[agent]}" "${prss[before]}")
        before_anon_ratio=$(div "${panon[agent]}" "${panon[before]}")
        v_before_rss=$(verdict "$before_rss_ratio" "$TARGET_BEFORE_RATIO")
        v_before_anon=$(verdict "$before_anon_ratio" "$TARGET_BEFORE_RATIO")
fi

count() { # PREFIX
        awk -v p="$1" 'index($1, p) == 1 { n++ } END { print n + 0 }' "$tmp/sub.txt"
}
channels() { # PREFIX -> "hb 11, usage 2, ..." (collectd: by plugin)
        awk -v p="$1" 'index($1, p) == 1 { c = substr($1, length(p) + 1); if (p == "collectd/") { split(c, x, "/"); c = x[2]; sub(/-.*/, "", c) }
                        if (!(c in n)) o[++k] = c; n[c]++ }
                END { for (i = 1; i <= k; i++) printf "%s%s %d", (i > 1 ? ", " : ""), o[i], n[o[i]]; print "" }' "$tmp/sub.txt"
}
prefix_of() { case $1 in agent) echo "$agent_prefix" ;; before) echo "$before_prefix" ;; bare) echo "$bare_prefix" ;; collectd) echo "$collectd_prefix" ;; esac; }
declare -A msgs chan
for n in $names; do msgs[$n]=$(count "$(prefix_of "$n")"); chan[$n]=$(channels "$(prefix_of "$n")"); done
a_warn=$(grep -c '^<[0-4]>' "$tmp/agent.log")

cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
debian="$( . /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-unknown}" ), Debian $(cat /etc/debian_version 2>/dev/null || echo '?')"
ver() { dpkg-query -W -f='${Version}\n' "$1" 2>/dev/null | head -1 | grep . || echo '?'; }
libs="libuv1 $(ver libuv1), libmosquitto1 $(ver libmosquitto1), mosquitto $(ver mosquitto), collectd-core $(ver collectd-core), glibc $(ver libc6), OpenSSL $(ver libssl3)"
commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')
git -C "$repo" diff --quiet HEAD 2>/dev/null || commit+=" + uncommitted changes"
commit+="; bbt-agent built $(date -u -r "$agent_bin" '+%Y-%m-%d %H:%M UTC')"
[ -n "$before_bin" ] && commit+="; before: $before_bin, built $(date -u -r "$before_bin" '+%Y-%m-%d %H:%M UTC')"
machine="$(nproc) CPUs, $cpu_model; $(free -m | awk '/^Mem:/ { printf "%.1f GiB", $2 / 1024 }') memory; kernel $(uname -r); $debian"
command_line="${envprefix}${invocation}"
threads_of() { sort "$tmp/$1.threads" 2>/dev/null | uniq -c | awk '{ printf "%s%s×%s", (NR > 1 ? ", " : ""), $1, $2 }'; }

# Private memory by mapping: anonymous kB per mapping, largest first.
private_breakdown() { # NAME
        [ -r "$tmp/$1.smaps" ] || return
        awk '
                /^[0-9a-f]+-[0-9a-f]+ / {
                        flush()
                        split($1, r, "-"); perms = $2; name = (NF >= 6 ? $6 : "[anon]")
                        for (i = 7; i <= NF; i++) name = name " " $i
                        next
                }
                /^Size:/ { size = $2 } /^Anonymous:/ { anon = $2 } /^Private_Dirty:/ { pd = $2 }
                function flush() {
                        if (name != "" && anon > 0) {
                                key = name
                                sub(/.*\//, "", key)
                                if (name == "[anon]") key = sprintf("[anon %s, %d kB]", perms, size)
                                a[key] += anon; c[key]++
                        }
                        name = ""; anon = 0
                }
                END { flush(); for (k in a) printf "%d\t%s%s\n", a[k], k, (c[k] > 1 ? " x" c[k] : "") }' "$tmp/$1.smaps" | sort -rn | head -12
}

# kB of RSS per mapping name (file base name, or [heap], [stack], [anon]) of NAME's smaps.
rss_by_mapping() { # NAME
        [ -r "$tmp/$1.smaps" ] || return
        awk '
                /^[0-9a-f]+-[0-9a-f]+ / {
                        key = (NF >= 6 ? $6 : "[anon]"); sub(/.*\//, "", key); next
                }
                /^Rss:/ { rss[key] += $2 } /^Anonymous:/ { anon[key] += $2 }
                END { for (k in rss) if (rss[k] > 0) printf "%s\t%d\t%d\n", k, rss[k], anon[k] }' "$tmp/$1.smaps"
}
# Where the agent's RSS beyond the bare client's is: "delta_kB delta_anon_kB mapping", largest first.
rss_difference() {
        [ -r "$tmp/agent.smaps" ] && [ -r "$tmp/bare.smaps" ] || return
        rss_by_mapping agent | sed 's/bbt-agent\( (deleted)\)\{0,1\}\t/[executable]\t/' >"$tmp/agent.bymap"
        rss_by_mapping bare | sed 's/bare-publisher\( (deleted)\)\{0,1\}\t/[executable]\t/' >"$tmp/bare.bymap"
        awk -F'\t' 'FNR == NR { br[$1] = $2; ba[$1] = $3; next }
                { d = $2 - br[$1]; da = $3 - ba[$1]; seen[$1] = 1; if (d != 0 || da != 0) printf "%d\t%d\t%s\n", d, da, $1 }
                END { for (k in br) if (!(k in seen)) printf "%d\t%d\t%s\n", -br[k], -ba[k], k }' \
                "$tmp/bare.bymap" "$tmp/agent.bymap" | sort -t"$(printf '\t')" -k1,1 -rn
}

# One row of the table: LABEL FIELD [UNIT], a cell per process.
row() { # LABEL ARRAY UNIT
        local label=$1 unit=${3:-} n line
        local -n ref=$2
        line="| $label |"
        for n in $names; do
                line+=" ${ref[$n]}${unit:+ $unit} |"
        done
        echo "$line"
}
header() {
        local line="| |" sep="| --- |" n
        for n in $names; do
                case $n in agent) line+=" bbt-agent |" ;; before) line+=" bbt-agent (before) |" ;;
                bare) line+=" bare-publisher |" ;; collectd) line+=" collectd |" ;; esac
                sep+=" ---: |"
        done
        echo "$line"; echo "$sep"
}

report_markdown() {
        local n
        cat <<EOF
## Agent footprint

bbt-agent at its default settings (heartbeat 60 s, usage flush 300 s, spool
fsync \`interval\` 1 s, health on, the input, display, audio and peripheral
drivers on) beside two baselines in the same run, all connected to one
mosquitto on 127.0.0.1 and sampled every ${INTERVAL} s for ${DURATION} s:
\`bare-publisher\`, a minimal libuv + libmosquitto client that publishes the
same messages on the same schedule (the floor for memory), and collectd
(\`collectd-core\`) reading cpu, memory, df, interface, load and uptime every
60 s and publishing them over its \`mqtt\` plugin (QoS 1): comparable
collection, for idle CPU and wakeups. Nothing feeds the agent input or audio
events here, so the classroom is idle throughout.

- **Command:** \`$command_line\`
- **Machine:** $machine
- **Libraries:** $libs
- **Tree:** $commit; measured $(date -u '+%Y-%m-%d %H:%M UTC'), ${wall} s of sampling

$(header)
$(row "VmRSS peak (sampled)" prss kB)
$(row "VmRSS final" frss kB)
$(row "VmHWM (lifetime peak)" hwm kB)
$(row "RssAnon (private) peak" panon kB)
$(row "RssAnon final" fanon kB)
$(row "RssFile final" ffile kB)
$(row "Threads" thr)
$(row "CPU since start (ticks)" cpu s)
$(row "CPU over the ${win[agent]} s window" cpuw s)
$(row "CPU % of one core (window)" pct %)
$(row "Wakeups per second, all threads" wakes)
$(row "Wakeups per second, main thread" wmain)
$(row "Messages seen by the subscriber" msgs)

CPU over the window is from $cpu_source. Messages: $(for n in $names; do printf '%s: %s. ' "$n" "${chan[$n]}"; done)

| Target | Figure | Result |
| --- | ---: | --- |
| RSS ≤ ${TARGET_RSS_RATIO}× the bare client's | ${ratio}× | **$v_ratio** |
| Private (anonymous) memory ≤ 2 MiB | $(mib "${panon[agent]}") MiB (${panon[agent]} kB) | **$v_anon** |
| CPU ≤ ${TARGET_CPU_PCT} % of one core, idle | ${pct[agent]} % | **$v_cpu** |
| Idle wakeups ≤ collectd's | ${wakes[agent]} vs ${wakes[collectd]} per s (${wake_ratio}×) | **$v_wake** |
| Idle CPU ≤ collectd's | ${pct[agent]} % vs ${pct[collectd]} % (${cpu_ratio}×) | **$v_cpu_cd** |
EOF
        if [ -n "$before_bin" ]; then
                cat <<EOF
| RSS ≤ the earlier build's (+2 %) | ${prss[agent]} vs ${prss[before]} kB (${before_rss_ratio}×) | **$v_before_rss** |
| Private memory ≤ the earlier build's (+2 %) | ${panon[agent]} vs ${panon[before]} kB (${before_anon_ratio}×) | **$v_before_anon** |
EOF
        fi
        echo
        echo "Threads at the end: agent $(threads_of agent); collectd $(threads_of collectd)."
        echo "Exit status after SIGTERM: agent $agent_exit${before_bin:+, agent (before) $before_exit}, bare-publisher $bare_exit, collectd $collectd_exit."
        if [ -r "$tmp/agent.smaps" ]; then
                echo
                echo "Agent's anonymous memory by mapping at the end (kB):"
                echo
                echo '```'
                private_breakdown agent
                echo '```'
        fi
        if [ -r "$tmp/agent.smaps" ] && [ -r "$tmp/bare.smaps" ]; then
                echo
                echo "Where the agent's RSS beyond the bare client's is, by mapping (kB; anonymous part in the second column):"
                echo
                echo '```'
                rss_difference | head -15
                echo '```'
        fi
}

report_text() {
        local n
        printf '\nAgent footprint: bbt-agent (defaults) vs bare-publisher and collectd, same broker, same run\n\n'
        printf '%-36s' ""; for n in $names; do printf ' %16s' "$n"; done; printf '\n'
        trow() { # LABEL ARRAY UNIT
                local -n ref=$2
                printf '%-36s' "$1"; for n in $names; do printf ' %13s %-2s' "${ref[$n]}" "${3:-}"; done; printf '\n'
        }
        trow "VmRSS peak (sampled)" prss kB
        trow "VmRSS final" frss kB
        trow "VmHWM (lifetime peak)" hwm kB
        trow "RssAnon (private) peak" panon kB
        trow "RssAnon final" fanon kB
        trow "RssFile final" ffile kB
        trow "Threads" thr
        trow "CPU since start (ticks)" cpu s
        trow "CPU over the ${win[agent]} s window" cpuw s
        trow "CPU % of one core (window)" pct %
        trow "Wakeups/s, all threads" wakes
        trow "Wakeups/s, main thread" wmain
        trow "Messages seen by the subscriber" msgs
        for n in $names; do printf '  %s: %s\n' "$n" "${chan[$n]}"; done
        printf 'CPU over the window from %s.\n' "$cpu_source"
        printf '\nTargets\n'
        printf '  RSS agent/bare <= %s              %10s   %s\n' "$TARGET_RSS_RATIO" "$ratio" "$v_ratio"
        printf '  private (RssAnon) <= 2048 kB        %10s   %s\n' "${panon[agent]}" "$v_anon"
        printf '  CPU <= %s %% of one core (idle)   %10s   %s\n' "$TARGET_CPU_PCT" "${pct[agent]}" "$v_cpu"
        printf '  idle wakeups/s <= collectd (%s)  %10s   %s\n' "${wakes[collectd]}" "${wakes[agent]}" "$v_wake"
        printf '  idle CPU %% <= collectd (%s)    %10s   %s\n' "${pct[collectd]}" "${pct[agent]}" "$v_cpu_cd"
        if [ -n "$before_bin" ]; then
                printf '  RSS <= before x %s               %10s   %s\n' "$TARGET_BEFORE_RATIO" "$before_rss_ratio" "$v_before_rss"
                printf '  private <= before x %s           %10s   %s\n' "$TARGET_BEFORE_RATIO" "$before_anon_ratio" "$v_before_anon"
        fi
        printf '\nThreads: agent %s; collectd %s\n' "$(threads_of agent)" "$(threads_of collectd)"
        printf 'Exit status after SIGTERM: agent %s%s, bare-publisher %s, collectd %s; agent log lines at warning or worse: %s\n' \
                "$agent_exit" "${before_bin:+, agent (before) $before_exit}" "$bare_exit" "$collectd_exit" "$a_warn"
        if [ -r "$tmp/agent.smaps" ]; then
                printf '\nAgent anonymous memory by mapping (kB, largest first):\n'
                private_breakdown agent | sed 's/^/  /'
                printf '\nBare anonymous memory by mapping (kB, largest first):\n'
                private_breakdown bare | sed 's/^/  /'
                printf '\nAgent RSS minus bare RSS by mapping (kB total, kB anonymous):\n'
                rss_difference | head -15 | sed 's/^/  /'
        fi
        printf '\nMachine: %s\nLibraries: %s\nTree: %s\nSampling: every %s s for %s s (%s s wall), CLK_TCK %s\n' \
                "$machine" "$libs" "$commit" "$INTERVAL" "$DURATION" "$wall" "$clk_tck"
        printf 'Command: %s\n' "$command_line"
}

report_text >"$tmp/report.txt"
report_markdown >"$tmp/report.md"
if $markdown; then cat "$tmp/report.md"; else cat "$tmp/report.txt"; fi

status=0
if [ -n "$died" ]; then
        log "a process died during the run:$died"
        for n in agent before collectd; do
                [ -r "$tmp/$n.log" ] && sed "s/^/agent-footprint: $n.log: /" "$tmp/$n.log" | tail -20 >&2
        done
        status=1
elif [ "$agent_exit" != 0 ] || [ "$bare_exit" != 0 ] || [ "$collectd_exit" != 0 ] ||
     { [ -n "$before_bin" ] && [ "$before_exit" != 0 ]; }; then
        log "exit after SIGTERM: agent $agent_exit, agent (before) $before_exit, bare-publisher $bare_exit, collectd $collectd_exit"
        status=1
else
        for v in "$v_ratio" "$v_anon" "$v_cpu" "$v_wake" "$v_cpu_cd" "$v_before_rss" "$v_before_anon"; do
                [ "$v" = FAIL ] && status=3
        done
fi
exit $status

#!/bin/bash
# agent-footprint.sh: RSS and CPU of bbt-agent at its default settings beside
# bare-publisher (a minimal libuv + libmosquitto client publishing the same
# messages), both against one mosquitto on loopback, in the same run.
#
# Usage: tools/bench/agent-footprint.sh [--duration SECONDS] [--interval SECONDS]
#                                       [--build-dir DIR] [--markdown] [--keep]
# Environment: DURATION (600), INTERVAL (10), SETTLE (5), BUILD_DIR (<repo>/build).
# --markdown prints a section for docs/BENCHMARKS.md instead of the plain table;
# --keep keeps the work directory (logs, samples, smaps, pmap, both reports).
# Exit status: 0 all targets met, 3 a target missed, 1 a process died or
# could not start, 2 bad usage. Nothing it starts outlives it.
#
# See docs/BENCHMARKS.md for what is measured and why.
set -u

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

# The environment as given, for the command line in the report; the last two
# reach both clients (experiments such as UV_THREADPOOL_SIZE=1).
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

# Targets (from the issue).
TARGET_RSS_RATIO=1.5
TARGET_ANON_KB=2048
TARGET_CPU_PCT=0.05

invocation="$0"
for a in "$@"; do invocation+=" $(printf '%q' "$a")"; done

usage() {
        sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
        case $1 in
        --duration) DURATION=${2:?}; shift 2 ;;
        --duration=*) DURATION=${1#*=}; shift ;;
        --interval) INTERVAL=${2:?}; shift 2 ;;
        --interval=*) INTERVAL=${1#*=}; shift ;;
        --build-dir) BUILD_DIR=${2:?}; shift 2 ;;
        --build-dir=*) BUILD_DIR=${1#*=}; shift ;;
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
for t in mosquitto mosquitto_sub getconf; do
        command -v "$t" >/dev/null || { echo "agent-footprint: $t not found (apt-get install mosquitto mosquitto-clients)" >&2; exit 1; }
done
mosquitto_bin=$(command -v mosquitto)

log() { printf 'agent-footprint: %s\n' "$*" >&2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bbt-footprint.XXXXXX") || exit 1
broker_pid="" sub_pid="" agent_pid="" bare_pid=""

cleanup() {
        local p
        trap - EXIT INT TERM HUP
        for p in $agent_pid $bare_pid $sub_pid $broker_pid; do
                kill -0 "$p" 2>/dev/null && kill -TERM "$p" 2>/dev/null
        done
        for p in $agent_pid $bare_pid $sub_pid $broker_pid; do
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
mosquitto_sub -h 127.0.0.1 -p "$port" -i bench-sub -q 1 -t 'bbt/#' -F '%t %l' >"$tmp/sub.txt" 2>"$tmp/sub.err" &
sub_pid=$!
for _ in $(seq 50); do
        grep -q 'as bench-sub' "$tmp/mosquitto.log" 2>/dev/null && break
        sleep 0.1
done
grep -q 'as bench-sub' "$tmp/mosquitto.log" || { log "mosquitto_sub did not connect"; exit 1; }

# ---- bbt-agent at its defaults, but for identity, broker and where it writes ----
agent_prefix="bbt/v1/000000/bench/agent/"
bare_prefix="bbt/v1/000000/bench/bare/"
mkdir -p "$tmp/agent/state" "$tmp/agent/spool"
cat >"$tmp/agent.conf" <<EOF
# Generated by agent-footprint.sh: everything else is at its default.
[identity]
county = 000000
school = bench
terminal = agent

[broker]
host = 127.0.0.1
port = $port

[agent]
state_dir = $tmp/agent/state

[spool]
dir = $tmp/agent/spool
EOF

"$agent_bin" -c "$tmp/agent.conf" >"$tmp/agent.log" 2>&1 &
agent_pid=$!
"$bare_bin" --host 127.0.0.1 --port "$port" --topic-prefix "$bare_prefix" >"$tmp/bare.log" 2>&1 &
bare_pid=$!
log "bbt-agent pid $agent_pid, bare-publisher pid $bare_pid; settling ${SETTLE}s"
sleep "$SETTLE"

clk_tck=$(getconf CLK_TCK)
page_kb=$(( $(getconf PAGESIZE) / 1024 ))

# sample NAME PID T: appends "T name rss anon file hwm threads ticks wakeups" to
# samples.txt; wakeups are the main thread's voluntary context switches.
# CPU time is in CLK_TCK ticks: per-thread schedstat is not kept by every
# kernel (it reads 0 on some), so it is not used.
sample() {
        local name=$1 pid=$2 t=$3 status stat
        status=$(cat "/proc/$pid/status" 2>/dev/null) || return 1
        stat=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || return 1
        awk -v t="$t" -v name="$name" -v stat="$stat" '
                /^VmRSS:/ { rss = $2 } /^RssAnon:/ { anon = $2 } /^RssFile:/ { file = $2 }
                /^VmHWM:/ { hwm = $2 } /^Threads:/ { thr = $2 } /^voluntary_ctxt_switches:/ { vcs = $2 }
                END {
                        n = split(stat, f, " ")
                        # after "comm) ": f[1] is field 3 (state); utime, stime are fields 14, 15
                        print t, name, rss, anon, file, hwm, thr, f[12] + f[13], vcs
                }' <<<"$status" >>"$tmp/samples.txt"
}

died=""
check_alive() {
        alive "$broker_pid" || died+=" mosquitto"
        alive "$agent_pid" || died+=" bbt-agent"
        alive "$bare_pid" || died+=" bare-publisher"
        [ -z "$died" ]
}

# ---- sampling ----
: >"$tmp/samples.txt"
t0=$(date +%s.%N)
elapsed=0
while :; do
        check_alive || break
        sample agent "$agent_pid" "$elapsed"
        sample bare "$bare_pid" "$elapsed"
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
for w in agent:$agent_pid bare:$bare_pid; do
        n=${w%%:*} p=${w#*:}
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
stop_and_wait "$bare_pid"; bare_exit=$exit_status; bare_pid=""
sleep 1
kill -TERM "$sub_pid" 2>/dev/null; wait "$sub_pid" 2>/dev/null; sub_pid=""

# ---- the figures ----
wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
stats() { # NAME -> "peak_rss final_rss peak_anon final_anon final_file hwm threads cpu_total_s cpu_window_s window_s wakeups_per_s"
        awk -v name="$1" -v hz="$clk_tck" '
                $2 == name {
                        if (!n++) { t_first = $1; c_first = $8; w_first = $9 }
                        if ($3 > prss) prss = $3
                        if ($4 > panon) panon = $4
                        frss = $3; fanon = $4; ffile = $5; hwm = $6; thr = $7; t_last = $1; c_last = $8; w_last = $9
                }
                END {
                        printf "%d %d %d %d %d %d %d %.2f %.2f %d %.2f\n", prss, frss, panon, fanon, ffile, hwm, thr,
                                c_last / hz, (c_last - c_first) / hz, t_last - t_first,
                                (t_last > t_first ? (w_last - w_first) / (t_last - t_first) : 0)
                }' "$tmp/samples.txt"
}
read -r a_prss a_frss a_panon a_fanon a_ffile a_hwm a_thr a_cpu a_cpuw a_win a_wake <<<"$(stats agent)"
read -r b_prss b_frss b_panon b_fanon b_ffile b_hwm b_thr b_cpu b_cpuw b_win b_wake <<<"$(stats bare)"
pct() { awk -v c="$1" -v w="$2" 'BEGIN { if (w > 0) printf "%.4f", 100 * c / w; else print "n/a" }'; }
a_pct=$(pct "$a_cpuw" "$a_win")
b_pct=$(pct "$b_cpuw" "$b_win")
ratio=$(awk -v a="$a_prss" -v b="$b_prss" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
anon_ratio=$(awk -v a="$a_panon" -v b="$b_panon" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
mib() { awk -v k="$1" 'BEGIN { printf "%.2f", k / 1024 }'; }

verdict() { awk -v v="$1" -v lim="$2" 'BEGIN { if (v == "n/a" || v == "") print "n/a"; else if (v + 0 <= lim + 0) print "PASS"; else print "FAIL" }'; }
v_ratio=$(verdict "$ratio" "$TARGET_RSS_RATIO")
v_anon=$(verdict "$a_panon" "$TARGET_ANON_KB")
v_cpu=$(verdict "$a_pct" "$TARGET_CPU_PCT")

count() { # PREFIX [CHANNEL]
        awk -v p="$1${2:-}" 'index($1, p) == 1 { n++ } END { print n + 0 }' "$tmp/sub.txt"
}
channels() { # PREFIX -> "hb 11, usage 2, ..."
        awk -v p="$1" 'index($1, p) == 1 { c = substr($1, length(p) + 1); if (!(c in n)) o[++k] = c; n[c]++ }
                END { for (i = 1; i <= k; i++) printf "%s%s %d", (i > 1 ? ", " : ""), o[i], n[o[i]]; print "" }' "$tmp/sub.txt"
}
a_msgs=$(count "$agent_prefix"); b_msgs=$(count "$bare_prefix")
a_chan=$(channels "$agent_prefix"); b_chan=$(channels "$bare_prefix")
a_warn=$(grep -c '^<[0-4]>' "$tmp/agent.log")

cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
debian="$( . /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-unknown}" ), Debian $(cat /etc/debian_version 2>/dev/null || echo '?')"
ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo '?'; }
libs="libuv1 $(ver libuv1), libmosquitto1 $(ver libmosquitto1), mosquitto $(ver mosquitto), glibc $(ver libc6), OpenSSL $(ver libssl3)"
commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')
git -C "$repo" diff --quiet HEAD 2>/dev/null || commit+=" + uncommitted changes"
commit+="; bbt-agent built $(date -u -r "$agent_bin" '+%Y-%m-%d %H:%M UTC')"
machine="$(nproc) CPUs, $cpu_model; $(free -m | awk '/^Mem:/ { printf "%.1f GiB", $2 / 1024 }') memory; kernel $(uname -r); $debian"
command_line="${envprefix}${invocation}"
a_threads=$(sort "$tmp/agent.threads" 2>/dev/null | uniq -c | awk '{ printf "%s%s×%s", (NR > 1 ? ", " : ""), $1, $2 }')

# Private memory of the agent by mapping: anonymous kB per mapping, largest first.
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

report_markdown() {
        cat <<EOF
## Agent footprint

bbt-agent at its default settings (heartbeat 60 s, usage flush 300 s, spool
fsync every 1 s, health on) beside \`bare-publisher\`, a minimal libuv +
libmosquitto client that publishes the same messages on the same schedule,
both connected to one mosquitto on 127.0.0.1, sampled every ${INTERVAL} s for
${DURATION} s. Nothing feeds the agent input or audio events here, so the
classroom is idle throughout.

- **Command:** \`$command_line\`
- **Machine:** $machine
- **Libraries:** $libs
- **Tree:** $commit; measured $(date -u '+%Y-%m-%d %H:%M UTC'), ${wall} s of sampling

| | bbt-agent | bare-publisher | agent / bare |
| --- | ---: | ---: | ---: |
| VmRSS peak (sampled) | $a_prss kB | $b_prss kB | **$ratio** |
| VmRSS final | $a_frss kB | $b_frss kB | $(awk -v a="$a_frss" -v b="$b_frss" 'BEGIN { printf "%.2f", a / b }') |
| VmHWM (lifetime peak) | $a_hwm kB | $b_hwm kB | $(awk -v a="$a_hwm" -v b="$b_hwm" 'BEGIN { printf "%.2f", a / b }') |
| RssAnon (private) peak | $a_panon kB | $b_panon kB | $anon_ratio |
| RssAnon final | $a_fanon kB | $b_fanon kB | |
| RssFile final | $a_ffile kB | $b_ffile kB | |
| Threads | $a_thr | $b_thr | |
| CPU since start | $a_cpu s | $b_cpu s | |
| CPU over the ${a_win} s window | $a_cpuw s | $b_cpuw s | |
| CPU % of one core (window) | $a_pct % | $b_pct % | |
| Main-thread wakeups per second | $a_wake | $b_wake | |
| Messages seen by the subscriber | $a_msgs ($a_chan) | $b_msgs ($b_chan) | |

| Target | Figure | Result |
| --- | ---: | --- |
| RSS ≤ ${TARGET_RSS_RATIO}× the bare client's | ${ratio}× | **$v_ratio** |
| Private (anonymous) memory ≤ 2 MiB | $(mib "$a_panon") MiB ($a_panon kB) | **$v_anon** |
| CPU ≤ ${TARGET_CPU_PCT} % of one core, idle | $a_pct % | **$v_cpu** |

Agent threads at the end: ${a_threads:-?}. Exit status after SIGTERM: agent $agent_exit, bare-publisher $bare_exit.
EOF
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
        printf '\nAgent footprint: bbt-agent (defaults) vs bare-publisher, same broker, same run\n\n'
        printf '%-34s %16s %16s %10s\n' "" bbt-agent bare-publisher agent/bare
        printf '%-34s %13s kB %13s kB %10s\n' "VmRSS peak (sampled)" "$a_prss" "$b_prss" "$ratio"
        printf '%-34s %13s kB %13s kB\n' "VmRSS final" "$a_frss" "$b_frss"
        printf '%-34s %13s kB %13s kB\n' "VmHWM (lifetime peak)" "$a_hwm" "$b_hwm"
        printf '%-34s %13s kB %13s kB %10s\n' "RssAnon (private) peak" "$a_panon" "$b_panon" "$anon_ratio"
        printf '%-34s %13s kB %13s kB\n' "RssAnon final" "$a_fanon" "$b_fanon"
        printf '%-34s %13s kB %13s kB\n' "RssFile final" "$a_ffile" "$b_ffile"
        printf '%-34s %16s %16s\n' "Threads" "$a_thr" "$b_thr"
        printf '%-34s %14s s %14s s\n' "CPU since start" "$a_cpu" "$b_cpu"
        printf '%-34s %14s s %14s s\n' "CPU over the ${a_win} s window" "$a_cpuw" "$b_cpuw"
        printf '%-34s %14s %% %14s %%\n' "CPU % of one core (window)" "$a_pct" "$b_pct"
        printf '%-34s %16s %16s\n' "Main-thread wakeups per second" "$a_wake" "$b_wake"
        printf '%-34s %16s %16s\n' "Messages seen by the subscriber" "$a_msgs" "$b_msgs"
        printf '  agent: %s\n  bare:  %s\n' "$a_chan" "$b_chan"
        printf '\nTargets\n'
        printf '  RSS agent/bare <= %s            %8s   %s\n' "$TARGET_RSS_RATIO" "$ratio" "$v_ratio"
        printf '  private (RssAnon) <= 2048 kB      %8s   %s\n' "$a_panon" "$v_anon"
        printf '  CPU <= %s %% of one core (idle) %8s   %s\n' "$TARGET_CPU_PCT" "$a_pct" "$v_cpu"
        printf '\nAgent threads: %s\n' "${a_threads:-?}"
        printf 'Exit status after SIGTERM: agent %s, bare-publisher %s; agent log lines at warning or worse: %s\n' \
                "$agent_exit" "$bare_exit" "$a_warn"
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
        sed 's/^/agent-footprint: agent.log: /' "$tmp/agent.log" | tail -20 >&2
        status=1
elif [ "$agent_exit" != 0 ] || [ "$bare_exit" != 0 ]; then
        log "exit after SIGTERM: agent $agent_exit, bare-publisher $bare_exit"
        status=1
elif [ "$v_ratio" = FAIL ] || [ "$v_anon" = FAIL ] || [ "$v_cpu" = FAIL ]; then
        status=3
fi
exit $status

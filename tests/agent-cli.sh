#!/bin/sh
# bbt-agent's command line: --help, --version, --check-config, --probe, bad usage.
# Usage: agent-cli.sh PATH_TO_bbt-agent
set -u
agent=$1
. "$(dirname "$0")/cli-lib.sh"

cat > "$t/ok.conf" <<CONF
[identity]
county = 510107
school = 3151010001
terminal = r101
[agent]
state_dir = $t/state
[spool]
dir = $t/spool
[peripherals]
expect = camera, touch
CONF
printf '[identity]\ncounty = 5101\nschool = s\nterminal = t\n' > "$t/bad-county.conf"
printf '[identity]\ncounty = 510107\nschool = s\nterminal = t\n[agent]\nheartbeat_interval = soon\n' > "$t/bad-value.conf"
printf '[identity]\ncounty = 510107\nschool = s\nterminal = t\n[peripherals]\nexpect = camera, toaster\n' > "$t/bad-expect.conf"
# A PJLink password inline: the file must not be readable by other users.
printf '[identity]\ncounty = 510107\nschool = s\nterminal = t\n[projector]\nhost = 192.0.2.1\npassword = JBMIAProjectorLink\n' > "$t/projector.conf"
chmod 644 "$t/projector.conf"
printf 'no-newline-secret' > "$t/agent.password"
chmod 644 "$t/agent.password"
printf '[identity]\ncounty = 510107\nschool = s\nterminal = t\n[agent]\nstate_dir = %s/state2\n[spool]\ndir = %s/spool2\n[broker]\nusername = 510107/s/t\npassword_file = %s/agent.password\n[input]\nenabled = no\n[display]\nenabled = no\n[audio]\nenabled = no\n[peripherals]\nenabled = no\n' "$t" "$t" "$t" > "$t/secret.conf"

expect help 0 "Usage: bbt-agent" -- "$agent" --help
expect version 0 "protocol v1" -- "$agent" --version
expect bad-option 2 "Usage" -- "$agent" --frobnicate
expect extra-arg 2 "unexpected argument" -- "$agent" stray
expect check-ok 0 "expect = camera, touch" -- "$agent" -c "$t/ok.conf" --check-config
expect check-missing 2 "No such file or directory" -- "$agent" -c "$t/nope.conf" --check-config
expect check-county 2 "[identity] county: expected 6 digits" -- "$agent" -c "$t/bad-county.conf" --check-config
expect check-value 2 "bad-value.conf:6: [agent] heartbeat_interval:" -- "$agent" -c "$t/bad-value.conf" --check-config
expect check-expect 2 "[peripherals] expect: expected kinds" -- "$agent" -c "$t/bad-expect.conf" --check-config
expect check-projector-password-readable 2 "[projector] password: set in a file other users can read" -- "$agent" -c "$t/projector.conf" --check-config
chmod 600 "$t/projector.conf"
expect check-projector-password-private 0 "password = JBMIAProjectorLink" -- "$agent" -c "$t/projector.conf" --check-config
expect run-readable-password-file 1 "agent.password: other users can read this secret (mode 0644); make it private: chmod 600 $t/agent.password" -- "$agent" -c "$t/secret.conf"
expect probe 0 "== health ==" -- "$agent" -c "$t/ok.conf" --probe
expect probe-drivers 0 "== periph ==" -- "$agent" -c "$t/ok.conf" --probe
# The eGalax frame of tests/devices/egalax-0eef-0001-hid-pen-usage.device (udev: tablet),
# built by umockdev-run: --probe counts it as touch and says why.
expect probe-input-why 0 "why: BTN_TOOL_PEN without pressure, stylus button or eraser" -- \
    umockdev-run -d "$(dirname "$0")/fixtures/umockdev/egalax-hid.umockdev" -- "$agent" -c "$t/ok.conf" --probe
expect probe-input-class 0 'input: /dev/input/event30 touch "eGalax Inc. USB TouchController Touchscreen": readable' -- \
    umockdev-run -d "$(dirname "$0")/fixtures/umockdev/egalax-hid.umockdev" -- "$agent" -c "$t/ok.conf" --probe
expect run-bad-config 2 "expected 6 digits" -- "$agent" -c "$t/bad-county.conf"
[ -e "$t/spool" ] && fail probe-opens-nothing "--probe created the spool" || pass

# A configured projector that does not answer: a PROBLEM line, exit 3 (for scripts).
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cp "$t/ok.conf" "$t/projector.conf"
printf '[projector]\nhost = 127.0.0.1\nport = %s\ntimeout = 1s\n' "$port" >> "$t/projector.conf"
expect probe-projector-down 3 "PROBLEM: projector" -- "$agent" -c "$t/projector.conf" --probe
expect probe-counts-problems 3 "1 problem found" -- "$agent" -c "$t/projector.conf" --probe
expect probe-no-problem 0 "0 problems found" -- "$agent" -c "$t/ok.conf" --probe

# A first start with the default layout (the spool inside state_dir, neither
# there yet): both are created, 0700, and the agent runs (the broker is down).
cat > "$t/fresh.conf" <<CONF
[identity]
county = 510107
school = 3151010001
terminal = r101
[agent]
state_dir = $t/fresh/state
[spool]
dir = $t/fresh/state/spool
[broker]
host = 127.0.0.1
port = $port
[input]
enabled = false
[display]
enabled = false
[audio]
enabled = false
[peripherals]
enabled = false
CONF
mkdir "$t/fresh"
"$agent" -c "$t/fresh.conf" >"$t/fresh.log" 2>&1 &
pid=$!
i=0
while [ $i -lt 100 ] && ! grep -q "started: bbt-agent" "$t/fresh.log"; do
    kill -0 $pid 2>/dev/null || break
    sleep 0.05
    i=$((i + 1))
done
if grep -q "started: bbt-agent" "$t/fresh.log" && [ "$(stat -c %a "$t/fresh/state")" = 700 ] &&
    [ "$(stat -c %a "$t/fresh/state/spool")" = 700 ] && [ -e "$t/fresh/state/state" ]; then
    pass
else
    fail fresh-state-dir "first start with a missing state_dir: $(cat "$t/fresh.log")"
fi
kill -TERM $pid 2>/dev/null
wait $pid 2>/dev/null

finish

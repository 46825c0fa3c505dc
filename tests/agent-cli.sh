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
expect run-bad-config 2 "expected 6 digits" -- "$agent" -c "$t/bad-county.conf"
[ -e "$t/spool" ] && fail probe-opens-nothing "--probe created the spool" || pass

finish

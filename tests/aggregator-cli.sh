#!/bin/sh
# bbt-aggregator's command line: --help, --version, --check-config (good file, bad key, bad value, bad registry), bad usage.
# Usage: aggregator-cli.sh PATH_TO_bbt-aggregator
set -u
aggregator=$1
. "$(dirname "$0")/cli-lib.sh"

cat > "$t/ok.conf" <<CONF
[broker]
host = 127.0.0.1
port = 18830
[store]
path = $t/store/aggregator.db
batch_interval = 100ms
[ingest]
gap_grace = 500ms
[aggregator]
log_level = debug
CONF
printf '[store]\npath = %s/x.db\n\n[broker]\nhots = 127.0.0.1\n' "$t" > "$t/bad-key.conf"
printf '[store]\npath = %s/x.db\n[ingest]\ngap_grace = soon\n' "$t" > "$t/bad-value.conf"
printf '[store]\npath = %s/x.db\n[broker]\nbackoff_min = 5s\nbackoff_max = 2s\n' "$t" > "$t/bad-backoff.conf"
printf '[store]\npath = %s/x.db\n[aggregator]\nmetrics_listen = localhost:9811\n' "$t" > "$t/bad-listen.conf"
printf '[broker]\nport = 1\n[store]\npath = %s/no-such-dir/x.db\n[aggregator]\nmetrics_listen =\n' "$t" > "$t/bad-store.conf"
printf '[store]\npath = %s/x.db\n[aggregator]\nmetrics_listen =\n' "$t" > "$t/no-listen.conf"
printf 'county_code,school_code,school_name,type,area,students\n510107,3151010001,一小,primary,urban,800\n' > "$t/schools.csv"
printf 'county_code,school_code,school_name,type,area,students\n510107,3151010001,一小,primary,urban,800\n510107,3151010002,二小,primary,urban,many\n' > "$t/bad-schools.csv"
printf 'school_code,terminal_id,room,expected\n3151010001,r101,一年级1班,camera\n3151010001,r102,一年级2班,\n' > "$t/terminals.csv"
printf '[store]\npath = %s/x.db\n[registry]\nschools = %s/schools.csv\nterminals = %s/terminals.csv\n' "$t" "$t" "$t" > "$t/reg.conf"
printf '[store]\npath = %s/x.db\n[registry]\nschools = %s/bad-schools.csv\n' "$t" "$t" > "$t/bad-reg.conf"

expect help 0 "Usage: bbt-aggregator" -- "$aggregator" --help
expect help-short 0 "--check-config" -- "$aggregator" -h
expect version 0 "protocol v1" -- "$aggregator" --version
expect version-short 0 "bbt-aggregator " -- "$aggregator" -V
expect bad-option 2 "Usage" -- "$aggregator" --frobnicate
expect extra-arg 2 "unexpected argument" -- "$aggregator" stray
expect check-ok 0 "gap_grace = 500ms" -- "$aggregator" -c "$t/ok.conf" --check-config
expect check-ok-summary 0 "ok (0 schools, 0 terminals)" -- "$aggregator" -c "$t/ok.conf" --check-config
expect check-missing 2 "No such file or directory" -- "$aggregator" -c "$t/nope.conf" --check-config
expect check-bad-key 2 "bad-key.conf:5: [broker] hots: unknown key" -- "$aggregator" -c "$t/bad-key.conf" --check-config
expect check-bad-value 2 "bad-value.conf:4: [ingest] gap_grace:" -- "$aggregator" -c "$t/bad-value.conf" --check-config
expect check-cross-key 2 "[broker] backoff_max: must not be less than backoff_min" -- "$aggregator" -c "$t/bad-backoff.conf" --check-config
expect check-listen-default 0 "metrics_listen = 127.0.0.1:9811" -- "$aggregator" -c "$t/ok.conf" --check-config
if "$aggregator" -c "$t/no-listen.conf" --check-config 2>/dev/null | grep -qx 'metrics_listen = '; then
    pass
else
    fail check-listen-off "an empty metrics_listen is not dumped as empty"
fi
expect check-bad-listen 2 "bad-listen.conf: [aggregator] metrics_listen: expected ADDRESS:PORT" -- "$aggregator" -c "$t/bad-listen.conf" --check-config
expect check-registry 0 "ok (1 schools, 2 terminals)" -- "$aggregator" -c "$t/reg.conf" --check-config
expect check-bad-registry 2 "bad-schools.csv:3: column students" -- "$aggregator" -c "$t/bad-reg.conf" --check-config
expect run-bad-key 2 "bad-key.conf:5:" -- "$aggregator" -c "$t/bad-key.conf"
expect run-bad-store 1 "no-such-dir/x.db: unable to open database file" -- "$aggregator" -c "$t/bad-store.conf"
# [store] path: an absolute path or a postgresql:// URI, whose password is never shown.
printf '[store]\npath = store.db\n' > "$t/relative.conf"
printf '[store]\npath = postgresql://bbt:pw-in-uri@127.0.0.1:9/county?password=pw-in-param&sslmode=disable\n' > "$t/pg.conf"
expect check-relative-store 2 "[store] path: expected an absolute path or a postgresql:// URI" -- "$aggregator" -c "$t/relative.conf" --check-config
expect check-pg 0 "path = postgresql://bbt:***@127.0.0.1:9/county?password=***&sslmode=disable" -- "$aggregator" -c "$t/pg.conf" --check-config
expect run-pg-unreachable 1 "store: postgresql://bbt:***@127.0.0.1:9/county?password=***&sslmode=disable: connection" -- "$aggregator" -c "$t/pg.conf"
if "$aggregator" -c "$t/pg.conf" --check-config 2>&1 | grep -q "pw-in" || "$aggregator" -c "$t/pg.conf" 2>&1 | grep -q "pw-in"; then
    fail pg-password-shown "a password of the store URI was printed"
else
    pass
fi
if [ -e "$t/store" ] || [ -e "$t/x.db" ]; then
    fail check-opens-nothing "--check-config or a bad configuration created the store"
else
    pass
fi

finish

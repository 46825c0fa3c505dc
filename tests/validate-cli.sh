#!/bin/sh
# bbt-validate's command line: exit codes, messages, stdin, size limit.
# Usage: validate-cli.sh PATH_TO_bbt-validate CORPUS_DIR
set -u
v=$1 corpus=$2
. "$(dirname "$0")/cli-lib.sh"

topic=bbt/v1/510107/3151010001/r101
expect help 0 "Usage: bbt-validate" -- "$v" --help
expect version 0 "protocol v1" -- "$v" --version
expect no-args 2 "Usage" -- "$v"
expect bad-option 2 "Usage" -- "$v" --frobnicate hb
expect valid-file 0 "ok hb" -- "$v" "$topic/hb" "$corpus/valid/hb/full.json"
expect bare-channel 0 "ok hb" -- "$v" hb "$corpus/valid/hb/full.json"
expect wrong-channel 1 "usage." -- "$v" "$topic/usage" "$corpus/valid/hb/full.json"
expect stdin 0 "ok state" -- sh -c "printf '%s' '{\"v\":1,\"seq\":1,\"ts\":1,\"boot\":1,\"online\":false,\"reason\":\"lost\"}' | \"$v\" $topic/state -"
expect stdin-implicit 1 "state.reason: missing" -- sh -c "printf '%s' '{\"v\":1,\"seq\":1,\"ts\":1,\"boot\":1,\"online\":false}' | \"$v\" $topic/state"
expect bad-topic 1 "topic: county: expected 6 digits" -- "$v" bbt/v1/5101/s/t/hb "$corpus/valid/hb/full.json"
expect bad-channel-name 2 "not a topic or channel name" -- "$v" heartbeat "$corpus/valid/hb/full.json"
expect missing-file 2 "No such file or directory" -- "$v" hb "$t/nope.json"
head -c 20000 /dev/zero | tr '\0' ' ' > "$t/big"
expect too-big 1 "hb: payload of 16385 bytes exceeds 16384" -- "$v" hb "$t/big"

finish

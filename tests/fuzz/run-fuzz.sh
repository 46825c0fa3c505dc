#!/bin/sh
# Runs a libFuzzer target for SECONDS from the protocol corpus: each seed is one
# byte naming the channel followed by a corpus payload. Fails on any crash or leak.
# Usage: run-fuzz.sh FUZZER CORPUS_DIR SECONDS
set -eu
fuzzer=$1 corpus=$2 seconds=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
mkdir "$work/seeds" "$work/new"
i=0
for kind in valid invalid c-only; do
    for dir in "$corpus/$kind"/*/; do
        [ -d "$dir" ] || continue
        chan=$(basename "$dir")
        case $chan in
            state) b=0 ;; hb) b=1 ;; usage) b=2 ;; periph) b=3 ;;
            inventory) b=4 ;; alert) b=5 ;; cmd) b=6 ;; cmd-reply) b=7 ;;
            *) echo "run-fuzz: unknown channel folder $dir" >&2; exit 2 ;;
        esac
        for f in "$dir"*.json; do
            i=$((i + 1))
            { printf "\\$(printf '%03o' "$b")"; cat "$f"; } > "$work/seeds/$i"
        done
    done
done
echo "run-fuzz: $i seeds, $seconds s"
cd "$work"
"$fuzzer" -max_total_time="$seconds" -max_len=17000 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 "$work/new" "$work/seeds"

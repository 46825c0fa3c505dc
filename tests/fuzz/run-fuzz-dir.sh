#!/bin/sh
# Runs a libFuzzer target for SECONDS from a directory of seed files (any names),
# inputs up to MAX_LEN bytes. Fails on any crash, leak or timeout; the input that
# failed is left in the directory it was started from (crash-*, leak-*, timeout-*).
# Usage: run-fuzz-dir.sh FUZZER SEED_DIR SECONDS MAX_LEN
set -eu
fuzzer=$1 seeds=$2 seconds=$3 max_len=$4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
mkdir "$work/new"
echo "run-fuzz-dir: $(ls "$seeds" | wc -l) seeds from $seeds, $seconds s"
out=$(pwd)
cd "$work"
"$fuzzer" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$out/" "$work/new" "$seeds"

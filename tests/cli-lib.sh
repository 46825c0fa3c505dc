# Sourced by the *-cli.sh tests (after "set -u"): a temporary directory $t,
# removed at exit, and pass/fail counts kept by expect, pass and fail.

passed=0 failed=0
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT

# expect NAME WANT_EXIT WANT_OUTPUT_SUBSTRING -- COMMAND...
expect() {
    name=$1 want=$2 text=$3
    shift 4
    out=$("$@" 2>&1)
    got=$?
    if [ "$got" -eq "$want" ] && printf '%s' "$out" | grep -qF -- "$text"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL $name: exit $got (want $want), output: $out (want: $text)"
    fi
}

pass() {
    passed=$((passed + 1))
}

# fail NAME MESSAGE
fail() {
    failed=$((failed + 1))
    echo "FAIL $1: $2"
}

# The last command of a test: prints the counts; true only if nothing failed.
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

# lib.sh - what the shell tests share, sourced (POSIX sh) after setting TEST_NAME: a temporary
# directory $T (physical path, as memsnap passes them) removed at exit together with the
# background processes listed in $BG, the pass/fail/skip counters, the reports of each check,
# and finish, which prints "N passed, M failed, K skipped" and returns non-zero on a failure.

T=$(mktemp -d "${TMPDIR:-/tmp}/memsnap-${TEST_NAME:-test}.XXXXXX") || exit 1
T=$(cd "$T" && pwd -P)
BG=""
cleanup() {
    for p in $BG; do kill "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

passed=0
failed=0
skipped=0

ok() {
    passed=$((passed + 1))
    echo "ok   - $1"
}

# not_ok DESC [DETAIL]: counts a failure; DETAIL (and the stderr of the last memsnap run, in
# $T/err, when there is one) is indented below it.
not_ok() {
    failed=$((failed + 1))
    echo "FAIL - $1"
    if [ -n "${2:-}" ]; then printf '%s\n' "$2" | sed 's/^/       /'; fi
    if [ -s "$T/err" ]; then sed 's/^/       stderr: /' "$T/err" | head -5; fi
}

skip() {
    skipped=$((skipped + 1))
    echo "skip - $1"
}

# check DESC CMD...: passes when CMD succeeds.
check() {
    desc=$1
    shift
    if "$@"; then ok "$desc"; else not_ok "$desc" "failed: $*"; fi
}

finish() {
    echo "$passed passed, $failed failed, $skipped skipped"
    [ "$failed" -eq 0 ]
}

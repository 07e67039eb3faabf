# lib.sh - what the shell tests share, sourced (POSIX sh) after setting TEST_NAME: a temporary
# directory $T (physical path, as memsnap passes them) removed at exit together with the
# background processes listed in $BG, the pass/fail/skip counters, the reports of each check,
# the helpers that run memsnap ($BIN) and check what it printed, fixture_copy for a private copy
# of a fixture tree, and finish, which prints "N passed, M failed, K skipped" and returns
# non-zero on a failure.

T=$(mktemp -d "${TMPDIR:-/tmp}/memsnap-${TEST_NAME:-test}.XXXXXX") || exit 1
T=$(cd "$T" && pwd -P)
BG=""
cleanup() {
    for p in $BG; do kill "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# fixture_copy NAME DEST [PART...]: a private copy, for a test that changes it, of the fixture
# tree NAME ($MEMSNAP_FIXTURES/NAME) at DEST (created); with PARTs (proc, sys, ...) only those.
fixture_copy() {
    fc_src=${MEMSNAP_FIXTURES:?MEMSNAP_FIXTURES must name tests/fixtures}/$1
    fc_dest=$2
    shift 2
    mkdir -p "$fc_dest" || return 1
    if [ "$#" -eq 0 ]; then
        cp -R "$fc_src/." "$fc_dest/"
    else
        for fc_part in "$@"; do cp -R "$fc_src/$fc_part" "$fc_dest/" || return 1; done
    fi
}

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

# wait_for COND...: retries COND every 50 ms for up to 20 s; 1 when it never held.
wait_for() {
    i=0
    while ! "$@"; do
        i=$((i + 1))
        [ "$i" -ge 400 ] && return 1
        sleep 0.05
    done
    return 0
}

# ms ARGS...: runs memsnap; stdout in $T/out, stderr in $T/err, exit status in $rc.
ms() {
    "$BIN" "$@" >"$T/out" 2>"$T/err"
    rc=$?
}

# lines FILE: number of lines in FILE.
lines() {
    wc -l <"$1" | tr -d ' '
}

# mentions DESC FILE WORD...: FILE contains every WORD (fixed strings).
mentions() {
    desc=$1
    file=$2
    shift 2
    missing=""
    for w in "$@"; do
        grep -qF -- "$w" "$file" || missing="$missing $w"
    done
    if [ -z "$missing" ]; then ok "$desc"; else not_ok "$desc" "missing:$missing"; fi
}

# expect_error DESC WANT_RC WORD ARGS...: memsnap ARGS exits WANT_RC ("any" for any failure
# below 128), writes nothing on stdout and exactly one line on stderr, containing WORD.
expect_error() {
    desc=$1
    want=$2
    word=$3
    shift 3
    ms "$@"
    why=""
    if [ "$rc" -eq 0 ]; then
        why="exited 0"
    elif [ "$rc" -ge 128 ]; then
        why="crashed (exit $rc)"
    elif [ "$want" != any ] && [ "$rc" -ne "$want" ]; then
        why="exited $rc, not $want"
    elif [ "$(lines "$T/err")" != 1 ]; then
        why="$(lines "$T/err") lines on stderr, not 1"
    elif ! grep -qF -- "$word" "$T/err"; then
        why="stderr does not name '$word'"
    elif [ -s "$T/out" ]; then
        why="wrote on stdout"
    fi
    if [ -z "$why" ]; then ok "$desc"; else not_ok "$desc" "memsnap $*: $why"; fi
}

finish() {
    echo "$passed passed, $failed failed, $skipped skipped"
    [ "$failed" -eq 0 ]
}

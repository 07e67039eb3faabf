# common.sh - what the monitor tests share; sourced after ../lib.sh, with HERE set.

# fmt DESC FILE json|csv [--killed] [EXPR]: the file follows docs/monitor-format.md and EXPR
# (over recs, samples, kind(name)) holds (tests/monitor/check_format.py).
fmt() {
    desc=$1
    shift
    if python3 "$HERE/check_format.py" "$@" >"$T/why" 2>&1; then
        ok "$desc"
    else
        not_ok "$desc" "$(cat "$T/why")"
    fi
}

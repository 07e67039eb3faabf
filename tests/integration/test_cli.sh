#!/bin/sh
# test_cli.sh - end-to-end tests of the memsnap command (POSIX sh; runs under dash).
#
# Environment (set by meson): MEMSNAP_BIN the built memsnap, MEMSNAP_FIXTURES tests/fixtures,
# MEMSNAP_BUILD the build root. $1 (default $MEMSNAP_HOLD, then $MEMSNAP_BUILD/tests/hold):
# the `hold` helper (tests/integration/hold.c). Prints one line per check, ends with the line
# "N passed, M failed, K skipped" and exits non-zero when a check failed. JSON is parsed with python3,
# never grepped.

set -u

BIN=${MEMSNAP_BIN:?MEMSNAP_BIN must name the memsnap binary}
FIX=${MEMSNAP_FIXTURES:?MEMSNAP_FIXTURES must name tests/fixtures}
HOLD=${1:-${MEMSNAP_HOLD:-${MEMSNAP_BUILD:+$MEMSNAP_BUILD/tests/hold}}}
# Tests choose their roots; never inherit a developer's.
MEMSNAP_PROCFS=
MEMSNAP_SYSFS=
export MEMSNAP_PROCFS MEMSNAP_SYSFS
# Python reads and compares UTF-8 labels whatever the locale.
PYTHONUTF8=1
export PYTHONUTF8

PAGE=$(getconf PAGESIZE)
TEST_NAME=cli
. "$(dirname "$0")/../lib.sh"

# pyjson FILE EXPR [ARGS...]: true when the Python expression EXPR holds, with d the JSON
# document in FILE, a the list of ARGS and load(PATH) parsing another file. An unparsable FILE
# is false.
pyjson() {
    python3 - "$@" <<'EOF'
import json, sys
try:
    with open(sys.argv[1]) as fp:
        d = json.load(fp)
except (OSError, ValueError) as e:
    print("not JSON: %s" % e)
    sys.exit(1)
a = sys.argv[3:]
load = lambda path: json.load(open(path))
try:
    ok = eval("(" + sys.argv[2] + "\n)")
except Exception as e:
    print("%s: %r" % (" ".join(sys.argv[2].split())[:300], e))
    ok = False
if not ok:
    print("false: %s" % " ".join(sys.argv[2].split())[:300])
    print("for: %s" % json.dumps(d)[:600])
sys.exit(0 if ok else 1)
EOF
}

# pycheck DESC FILE EXPR [ARGS...]: a check that pyjson holds.
pycheck() {
    desc=$1
    shift
    if pyjson "$@" >"$T/why" 2>&1; then ok "$desc"; else not_ok "$desc" "$(cat "$T/why")"; fi
}

# expect_ok DESC ARGS...: memsnap ARGS exits 0 and writes nothing on stderr.
expect_ok() {
    desc=$1
    shift
    ms "$@"
    if [ "$rc" -eq 0 ] && [ ! -s "$T/err" ]; then
        ok "$desc"
    else
        not_ok "$desc" "memsnap $* exited $rc"
    fi
}


# sleeping PID: the process sleeps (state S in /proc/PID/stat, after the last ')').
sleeping() {
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
    [ "$st" = S ]
}

# statm PID: its 7 page counts, space-separated.
statm() {
    cat "/proc/$1/statm"
}

has_line() {
    grep -qx "$2" "$1" 2>/dev/null
}

# ---------------------------------------------------------------------------------------------
echo "# help and usage"

expect_ok "--help exits 0" --help
mentions "--help lists the commands and options" "$T/out" snapshot diff info bench --version
expect_ok "-h exits 0" -h
expect_ok "--version exits 0" --version
check "--version prints the version" grep -qE '^memsnap [0-9]+\.[0-9]+\.[0-9]+' "$T/out"
expect_ok "help snapshot exits 0" help snapshot
mentions "help snapshot shows the snapshot options" "$T/out" --pid --full --format --label \
    --output --procfs --sysfs
expect_ok "snapshot --help exits 0" snapshot --help
mentions "snapshot --help shows its options" "$T/out" --pid --full --format --label --output \
    --procfs --sysfs --help
expect_ok "diff --help exits 0" diff --help
mentions "diff --help shows its options" "$T/out" --format BEFORE AFTER --help
expect_ok "info --help exits 0" info --help
mentions "info --help shows its options" "$T/out" --pid --procfs --sysfs --help
expect_ok "bench --help exits 0" bench --help
mentions "bench --help shows its options" "$T/out" --pid --rounds --json --help
expect_error "memsnap without a command: usage error" 2 "--help"
expect_error "unknown command: usage error naming it" 2 "frobnicate" frobnicate
expect_error "unknown top-level option: usage error naming it" 2 "--frob" --frob

# what the option tables (src/cli/opts.c) take, as getopt_long does
ms snapshot --fo=json --no-gpu
pycheck "an unambiguous abbreviation and --opt=VALUE: --fo=json" "$T/out" \
    'd["schema"] == "memsnap.snapshot/1" and "gpus" not in d'
ms snapshot -fFjson --no-gpu
pycheck "short options clustered with a value: -fFjson (--full, --format json)" "$T/out" \
    'd["process"]["threads"] is not None'
expect_error "an ambiguous abbreviation (--f: --full or --format)" 2 "unknown option '--f'" \
    snapshot --f
expect_error "a value given to an option that takes none" 2 "option '--full' takes no value" \
    snapshot --full=yes
expect_error "--device with --no-gpu" 2 "exclude each other" snapshot --device 0 --no-gpu
ms snapshot --help
mentions "snapshot --help shows --device" "$T/out" "--device GPU"

# ---------------------------------------------------------------------------------------------
echo "# snapshot of a live process"

sleep 60 &
P=$!
BG="$BG $P"
if ! wait_for sleeping "$P"; then not_ok "sleep $P never settled"; fi
S1=$(statm "$P")
ms snapshot --pid "$P" --format json
SNAP_RC=$rc
cp "$T/out" "$T/live.json"
S2=$(statm "$P")
check "snapshot --pid P --format json exits 0" [ "$SNAP_RC" -eq 0 ]
check "statm of P did not move during the capture" [ "$S1" = "$S2" ]
# shellcheck disable=SC2086 # split the 7 page counts into $1..$7
set -- $S1
pycheck "json: schema, pid, label null" "$T/live.json" \
    'd["schema"] == "memsnap.snapshot/1" and d["pid"] == int(a[0]) and d["label"] is None' "$P"
pycheck "json: rss_bytes and vms_bytes agree with /proc/P/statm" "$T/live.json" \
    'd["process"]["rss_bytes"] == int(a[1]) * int(a[0]) and
     d["process"]["vms_bytes"] == int(a[2]) * int(a[0])' "$PAGE" "$2" "$1"
pycheck "json: shared, text, data agree with /proc/P/statm" "$T/live.json" \
    'd["process"]["shared_bytes"] == int(a[1]) * int(a[0]) and
     d["process"]["text_bytes"] == int(a[2]) * int(a[0]) and
     d["process"]["data_bytes"] == int(a[3]) * int(a[0])' "$PAGE" "$3" "$4" "$6"
pycheck "json: without --full, pss/uss/threads are null" "$T/live.json" \
    'all(d["process"][k] is None for k in ("pss_bytes", "uss_bytes", "peak_rss_bytes", "threads"))'
pycheck "json: the system section is filled" "$T/live.json" \
    'd["system"]["total_bytes"] > 0 and 0 <= d["system"]["available_bytes"] <= d["system"]["total_bytes"]'

ms snapshot --pid "$P" --full --format json
cp "$T/out" "$T/full.json"
check "snapshot --full exits 0" [ "$rc" -eq 0 ]
pycheck "json --full: pss and uss filled, uss <= pss <= rss" "$T/full.json" \
    'isinstance(d["process"]["pss_bytes"], int) and isinstance(d["process"]["uss_bytes"], int) and
     0 < d["process"]["uss_bytes"] <= d["process"]["pss_bytes"] <= d["process"]["rss_bytes"]'
pycheck "json --full: threads 1, faults counted" "$T/full.json" \
    'd["process"]["threads"] == 1 and d["process"]["minor_faults"] > 0 and
     d["pid"] == int(a[0])' "$P"

ms snapshot --pid "$P" --format csv
cp "$T/out" "$T/live.csv"
check "snapshot --format csv exits 0" [ "$rc" -eq 0 ]
check "csv: a header and exactly one row" [ "$(lines "$T/live.csv")" = 2 ]
CSVDESC="csv: same number of columns, pid and rss_bytes in place"
python3 - "$T/live.csv" "$P" >"$T/why" 2>&1 <<'EOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
if len(rows) != 2 or len(rows[0]) != len(rows[1]) or len(rows[0]) < 10:
    print("rows: %r" % rows)
    sys.exit(1)
row = dict(zip(rows[0], rows[1]))
sys.exit(0 if row.get("pid") == sys.argv[2] and int(row["process.rss_bytes"]) > 0 else 1)
EOF
# shellcheck disable=SC2181 # the heredoc keeps python3 out of the if
if [ $? -eq 0 ]; then ok "$CSVDESC"; else not_ok "$CSVDESC" "$(cat "$T/why")"; fi

ms snapshot --pid "$P" --format text
check "snapshot --format text exits 0" [ "$rc" -eq 0 ]
check "text: has the RSS line" grep -qE '^ +RSS +[0-9.]+ (B|KiB|MiB|GiB)$' "$T/out"
check "text: names the pid" grep -qF "pid $P" "$T/out"

ms snapshot --pid "$P" --format json --label 'step "1", ünïcode & more'
cp "$T/out" "$T/label.json"
pycheck "--label round-trips through JSON" "$T/label.json" \
    'd["label"] == "step \"1\", ünïcode & more"'

ms snapshot --pid "$P" --format json --output "$T/saved.json"
check "--output: exits 0" [ "$rc" -eq 0 ]
check "--output: nothing on stdout" [ ! -s "$T/out" ]
check "--output: the file is created with mode 600" [ "$(stat -c %a "$T/saved.json")" = 600 ]
pycheck "--output: the file holds the snapshot" "$T/saved.json" \
    'd["schema"] == "memsnap.snapshot/1" and d["pid"] == int(a[0])' "$P"

# ---------------------------------------------------------------------------------------------
echo "# diff"

if [ -n "$HOLD" ] && [ -x "$HOLD" ]; then
    "$HOLD" 64 >"$T/hold.out" &
    H=$!
    BG="$BG $H"
    wait_for has_line "$T/hold.out" ready && wait_for sleeping "$H"
    ms snapshot --pid "$H" --full --format json --label before --output "$T/before.json"
    check "diff: snapshot before the allocation" [ "$rc" -eq 0 ]
    kill -USR1 "$H"
    wait_for has_line "$T/hold.out" grown && wait_for sleeping "$H"
    ms snapshot --pid "$H" --full --format json --label after --output "$T/after.json"
    check "diff: snapshot after the allocation" [ "$rc" -eq 0 ]
else
    # No helper: two snapshots of different processes still make a delta.
    not_ok "hold helper missing ('$HOLD'): diff uses two different processes"
    cp "$T/live.json" "$T/before.json"
    "$BIN" snapshot --format json --output "$T/after.json"
fi

ms diff "$T/before.json" "$T/after.json"
cp "$T/out" "$T/diff.txt"
check "diff exits 0, silent" sh -c '[ "$1" -eq 0 ] && [ ! -s "$2" ]' _ "$rc" "$T/err"
"$BIN" snapshot --format json --output "$T/other.json"
ms diff "$T/before.json" "$T/other.json"
check "diff of two processes: exit 0 with a note naming both pids" sh -c \
    '[ "$1" -eq 0 ] && [ "$(wc -l <"$2")" -eq 1 ] && grep -q "two processes compared" "$2"' \
    _ "$rc" "$T/err"
ms diff "$T/after.json" "$T/before.json"
check "diff in the wrong order: exit 0 with a note" sh -c \
    '[ "$1" -eq 0 ] && [ "$(wc -l <"$2")" -eq 1 ] && grep -q "the order is BEFORE AFTER" "$2"' \
    _ "$rc" "$T/err"
check "diff: the one-line delta has RSS and ->" grep -qE 'RSS .* -> ' "$T/diff.txt"
check "diff: the table has before/after/delta columns" \
    grep -qE '^ +before +after +delta$' "$T/diff.txt"
check "diff: the table has an RSS row" grep -qE '^ +RSS +' "$T/diff.txt"

ms diff --format json "$T/before.json" "$T/after.json"
cp "$T/out" "$T/delta.json"
check "diff --format json exits 0" [ "$rc" -eq 0 ]
pycheck "diff json: schema memsnap.delta/1 and both labels" "$T/delta.json" \
    'd["schema"] == "memsnap.delta/1" and d["before_label"] == load(a[0])["label"] and
     d["after_label"] == load(a[1])["label"]' "$T/before.json" "$T/after.json"
pycheck "diff json: process.rss_bytes is after - before" "$T/delta.json" \
    'd["process"]["rss_bytes"] == load(a[1])["process"]["rss_bytes"] -
     load(a[0])["process"]["rss_bytes"]' "$T/before.json" "$T/after.json"
if [ -n "$HOLD" ] && [ -x "$HOLD" ]; then
    pycheck "diff json: the 64 MiB allocation shows (56..72 MiB)" "$T/delta.json" \
        '56 << 20 <= d["process"]["rss_bytes"] <= 72 << 20'
fi

# ---------------------------------------------------------------------------------------------
echo "# errors: non-zero exit, one line on stderr naming the problem"

NOPID=999999999
while [ -e "/proc/$NOPID" ]; do NOPID=$((NOPID - 1)); done
expect_error "snapshot --pid of a process that does not exist" 1 "$NOPID" snapshot --pid "$NOPID"
check "  ... and says it does not exist" grep -qF "does not exist" "$T/err"
expect_error "snapshot --pid abc" 2 "abc" snapshot --pid abc
expect_error "snapshot --pid 0" 2 "'0'" snapshot --pid 0
expect_error "snapshot --pid -5" 2 "-5" snapshot --pid -5
expect_error "snapshot --format xml" 2 "xml" snapshot --format xml
expect_error "snapshot --bogus" 2 "--bogus" snapshot --bogus
expect_error "snapshot -Z" 2 "-Z" snapshot -Z
expect_error "snapshot --pid without its value" 2 "--pid" snapshot --pid
expect_error "snapshot with a stray argument" 2 "stray" snapshot stray
expect_error "snapshot --procfs /nonexistent" 1 "/nonexistent" snapshot --procfs /nonexistent
expect_error "snapshot --procfs on a regular file" 1 "not a directory" \
    snapshot --procfs "$T/saved.json"
expect_error "snapshot on a procfs whose statm is malformed" 1 "statm" \
    snapshot --procfs "$FIX/cli-broken/proc" --pid 4242
check "  ... and says it is malformed" grep -qF "malformed" "$T/err"
expect_error "snapshot --output into a missing directory" 1 "$T/no/such.json" \
    snapshot --output "$T/no/such.json"
expect_error "diff on a missing file" 1 "$T/missing.json" diff "$T/missing.json" "$T/after.json"
printf 'this is not json\n' >"$T/notjson.txt"
expect_error "diff on a file that is not JSON" 1 "notjson.txt" diff "$T/notjson.txt" "$T/after.json"
check "  ... and says it is not JSON" grep -qF "JSON" "$T/err"
cp "$T/delta.json" "$T/wrongschema.json"
expect_error "diff on JSON with the wrong schema" 1 "schema" diff "$T/after.json" \
    "$T/wrongschema.json"
python3 -c 'import json,sys
d = json.load(open(sys.argv[1])); d["schema"] = "memsnap.snapshot/99"
json.dump(d, open(sys.argv[2], "w"))' "$T/after.json" "$T/future.json"
expect_error "diff on a snapshot of a future schema" 1 "memsnap.snapshot/99" diff \
    "$T/before.json" "$T/future.json"
expect_error "diff with one argument" 2 "two" diff "$T/before.json"
expect_error "diff with no argument" 2 "two" diff
expect_error "diff --format csv" 2 "csv" diff --format csv "$T/before.json" "$T/after.json"
expect_error "bench without snapshot" 2 "snapshot" bench
expect_error "bench with something else" 2 "snapshot" bench frob
expect_error "bench --rounds 0" 2 "'0'" bench --rounds 0 snapshot
expect_error "info --pid abc" 2 "abc" info --pid abc

# ---------------------------------------------------------------------------------------------
echo "# info"

expect_ok "info exits 0" info
mentions "info mentions the kernel and the page size" "$T/out" kernel "page size"
check "info shows this page size" grep -qE "^page size +$PAGE B$" "$T/out"
for probe in statm status stat smaps_rollup meminfo cgroup; do
    check "info lists the $probe probe with yes/no" grep -qE "^ +$probe +(yes|no)( |$)" "$T/out"
done

# ---------------------------------------------------------------------------------------------
echo "# bench"

ms bench snapshot --json --rounds 3
check "bench snapshot --json --rounds 3 exits 0" [ "$rc" -eq 0 ]
check "bench prints one line" [ "$(lines "$T/out")" = 1 ]
pycheck "bench json: basic_ns, raw_basic_ns, full_ns, raw_full_ns are numbers > 0" "$T/out" \
    'all(isinstance(d[k], (int, float)) and not isinstance(d[k], bool) and d[k] > 0
         for k in ("basic_ns", "raw_basic_ns", "full_ns", "raw_full_ns")) and d["rounds"] == 3'
ms bench snapshot --rounds 1 --pid "$$"
check "bench text names the pid and the rounds" \
    grep -qx "memsnap bench snapshot: pid $$, median of 1 rounds" "$T/out"
check "bench text has the basic and full ratio lines" \
    grep -qE '^  (basic|full) capture +[0-9.]+ [mun]?s/capture .* ratio [0-9.]+x$' "$T/out"

# ---------------------------------------------------------------------------------------------
echo "# fixture roots"

F="$FIX/cli-basic"
# The fixture's exact values (README in the fixture); statm counts pages of this host.
# fixture_exact DESC FILE: FILE holds the fixture's exact values (see cli-basic/README);
# statm counts pages of this host. Fields appended to the format later are not listed.
fixture_exact() {
    python3 - "$2" "$PAGE" >"$T/why" 2>&1 <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
P = int(sys.argv[2])
want = {
    "": {"pid": 4242, "schema": "memsnap.snapshot/1"},
    "process": {
        "rss_bytes": 1024 * P, "vms_bytes": 2560 * P, "shared_bytes": 256 * P,
        "text_bytes": 16 * P, "data_bytes": 512 * P,
        "peak_rss_bytes": 8192 * 1024, "peak_vms_bytes": 20480 * 1024, "swap_bytes": 128 * 1024,
        "rss_anon_bytes": 3072 * 1024, "rss_file_bytes": 1024 * 1024, "rss_shmem_bytes": 0,
        "pss_bytes": 2500 * 1024, "uss_bytes": 2000 * 1024,
        "minor_faults": 1234, "major_faults": 5, "threads": 3},
    "system": {
        "total_bytes": 8000000 * 1024, "available_bytes": 6000000 * 1024,
        "free_bytes": 2000000 * 1024, "swap_total_bytes": 1048576 * 1024,
        "swap_free_bytes": 524288 * 1024},
    "cgroup": {
        "version": 2, "path": "/app.slice/fixture.service", "unlimited": False,
        "current_bytes": 52428800, "max_bytes": 104857600, "peak_bytes": 62914560,
        "oom_kills": 1},
}
bad = []
for sec, fields in want.items():
    got = d if sec == "" else d.get(sec, {})
    for k, v in fields.items():
        if got.get(k, "<absent>") != v:
            bad.append("%s%s: got %r, want %r" % (sec + "." if sec else "", k,
                                                  got.get(k, "<absent>"), v))
for b in bad:
    print(b)
sys.exit(1 if bad else 0)
EOF
    # shellcheck disable=SC2181 # the heredoc keeps python3 out of the if
    if [ $? -eq 0 ]; then ok "$1"; else not_ok "$1" "$(cat "$T/why")"; fi
}

ms snapshot --procfs "$F/proc" --sysfs "$F/sys" --pid 4242 --full --format json
cp "$T/out" "$T/fixture.json"
check "snapshot --procfs/--sysfs on the fixture exits 0" [ "$rc" -eq 0 ]
fixture_exact "fixture via --procfs/--sysfs: exact values" "$T/fixture.json"

MEMSNAP_PROCFS="$F/proc" MEMSNAP_SYSFS="$F/sys" "$BIN" snapshot --pid 4242 --full --format json \
    >"$T/out" 2>"$T/err"
rc=$?
cp "$T/out" "$T/fixture-env.json"
check "snapshot with MEMSNAP_PROCFS/MEMSNAP_SYSFS exits 0" [ "$rc" -eq 0 ]
fixture_exact "fixture via MEMSNAP_PROCFS/MEMSNAP_SYSFS: exact values" \
    "$T/fixture-env.json"

ms snapshot --procfs "$F/proc" --sysfs "$F/sys" --pid 4242 --format json
cp "$T/out" "$T/fixture-basic.json"
pycheck "fixture without --full: status/smaps fields null, statm exact" "$T/fixture-basic.json" \
    'd["process"]["rss_bytes"] == 1024 * int(a[0]) and
     all(d["process"][k] is None for k in ("pss_bytes", "uss_bytes", "threads", "minor_faults"))' \
    "$PAGE"

MEMSNAP_PROCFS="$F/proc" MEMSNAP_SYSFS="$F/sys" "$BIN" info --pid 4242 >"$T/out" 2>"$T/err"
rc=$?
check "info on the fixture (env roots) exits 0" [ "$rc" -eq 0 ]
check "info on the fixture finds its v2 cgroup" \
    grep -qE '^cgroup +v2 /app.slice/fixture.service' "$T/out"

finish

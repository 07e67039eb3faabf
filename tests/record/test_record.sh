#!/bin/sh
# test_record.sh - end-to-end tests of `memsnap record` and of the tracker it injects,
# libmemsnap_preload.so, read back with `memsnap report FILE --stats --format json`
# (POSIX sh; runs under dash).
#
# $1: the build directory of tests/record, which holds the test programs (see each one's
# opening comment for the figures it produces) and liballoc.so. Environment (set by meson):
# MEMSNAP_BIN the built memsnap. Prints one line per check, ends with the line
# "N passed, M failed, K skipped" and exits non-zero when a check failed. JSON is parsed with
# python3, never grepped.
#
# Exactness: the programs use no stdio, so a single-threaded one allocates nothing but its
# pattern and its figures are checked absolutely (its K = 0 run records nothing). Where the C
# runtime allocates on its own (threads, dlopen, the C++ runtime) a run with K = N is compared
# with a run with K = 0, and the difference must be exact.

set -u

BIN=${MEMSNAP_BIN:?MEMSNAP_BIN must name the memsnap binary}
P=${1:?usage: test_record.sh BUILD_DIR_OF_TESTS_RECORD}
# Absolute: some checks run from other directories.
BIN=$(cd "$(dirname "$BIN")" && pwd -P)/$(basename "$BIN")
P=$(cd "$P" && pwd -P)
# The tracker of this build tree, found next to memsnap; never a developer's.
MEMSNAP_PRELOAD=
export MEMSNAP_PRELOAD
PYTHONUTF8=1
export PYTHONUTF8

TEST_NAME=record
. "$(dirname "$0")/../lib.sh"

# The JSON checker. `expect DESC NAME EXPR [ARGS...]` evaluates the Python expression EXPR
# with d the stats of $T/NAME.json, a the ARGS (as ints where they are numbers) and:
#   load(NAME)           another run's stats ($T/NAME.json, or a path with a '/')
#   want(**fields)       every field of d equals the value given
#   delta(BASE, **f)     every field of d minus the same field of load(BASE) equals the value
# A mismatch prints each field's value and what was wanted.
cat >"$T/check.py" <<'EOF'
import json, os, sys

T = os.path.dirname(os.path.abspath(sys.argv[0]))
why = []


def load(name):
    path = name if "/" in name else os.path.join(T, name + ".json")
    with open(path) as fp:
        return json.load(fp)


def want(**fields):
    good = True
    for k, v in fields.items():
        if d.get(k, "<absent>") != v:
            why.append("%s is %r, want %r" % (k, d.get(k, "<absent>"), v))
            good = False
    return good


def delta(base, **fields):
    b = load(base)
    good = True
    for k, v in fields.items():
        got = d[k] - b[k]
        if got != v:
            why.append("%s: %r - %r (%s) = %r, want %r" % (k, d[k], b[k], base, got, v))
            good = False
    return good


def num(s):
    try:
        return int(s)
    except ValueError:
        return s


try:
    d = load(sys.argv[1])
except (OSError, ValueError) as e:
    print("no stats: %s" % e)
    sys.exit(1)
a = [num(s) for s in sys.argv[3:]]
try:
    good = eval("(" + sys.argv[2] + "\n)")
except Exception as e:
    why.append("%r" % e)
    good = False
if not good:
    for w in why:
        print(w)
    print("false: %s" % " ".join(sys.argv[2].split())[:300])
    print("stats: %s" % json.dumps(d)[:700])
sys.exit(0 if good else 1)
EOF

expect() {
    desc=$1
    shift
    if python3 "$T/check.py" "$@" >"$T/why" 2>&1; then ok "$desc"; else not_ok "$desc" "$(cat "$T/why")"; fi
}

# record NAME WANT_RC [OPTIONS...] [--] PROGRAM [ARGS...]: memsnap record -o $T/NAME.mst, with
# the variables of $REC_ENV added to its environment; stdout in $T/NAME.out, stderr in
# $T/NAME.err. Checks the exit status, then writes the trace's stats to $T/NAME.json
# (memsnap report --stats --format json) and checks that report exits 0.
REC_ENV=""
record() {
    name=$1
    want=$2
    shift 2
    # shellcheck disable=SC2086 # REC_ENV holds VAR=VALUE words
    env $REC_ENV "$BIN" record -o "$T/$name.mst" "$@" >"$T/$name.out" 2>"$T/$name.err"
    rc=$?
    if [ "$rc" -eq "$want" ]; then
        ok "$name: record exits $want"
    else
        not_ok "$name: record exits $want" "exited $rc: memsnap record $*
$(sed 's/^/stderr: /' "$T/$name.err" | tail -5)"
    fi
    report_stats "$name" "$T/$name.mst"
}

# report_stats NAME TRACE: the stats of TRACE into $T/NAME.json; checks that report exits 0.
report_stats() {
    "$BIN" report "$2" --stats --format json >"$T/$1.json" 2>"$T/$1.rerr"
    src=$?
    if [ "$src" -eq 0 ]; then
        ok "$1: report --stats exits 0"
    else
        not_ok "$1: report --stats exits 0" "exited $src
$(sed 's/^/stderr: /' "$T/$1.rerr" | head -5)"
    fi
}

# The figures every clean, exact, single-image recording shares.
CLEAN='want(images=1, forked=False, complete=True, truncated=False, warning=None, sample_rate=0,
           unmatched_frees=0, mmaps=0, munmaps=0, mapped_bytes=0)'

if ! nm -D --defined-only "$(dirname "$BIN")/../preload/libmemsnap_preload.so" 2>/dev/null |
    grep -qE ' T malloc$'; then
    echo "# note: the tracker does not export malloc yet; its checks will fail"
fi

# ---------------------------------------------------------------------------------------------
echo "# the command line"

ms record --help
check "record --help exits 0" [ "$rc" -eq 0 ]
mentions "record --help shows the options, the environment, the exit status and an example" \
    "$T/out" --output --depth --unwind --sample-rate --mmap --no-follow --help MEMSNAP_PRELOAD \
    LD_PRELOAD 127 128+N "statically linked" example:
ms --help
mentions "memsnap --help lists record" "$T/out" "record "
ms help record
mentions "memsnap help record shows record's help" "$T/out" "memsnap record"

expect_error "record without a program: usage error" 2 "no program" record
expect_error "record -- without a program: usage error" 2 "no program" record --
expect_error "record --depth 0" 2 "--depth" record --depth 0 true
expect_error "record --depth 257" 2 "257" record --depth 257 true
expect_error "record --depth x" 2 "'x'" record --depth x true
expect_error "record --unwind frames" 2 "frames" record --unwind frames true
expect_error "record --sample-rate 12Q" 2 "12Q" record --sample-rate 12Q true
expect_error "record --sample-rate -1" 2 "-1" record --sample-rate -1 true
expect_error "record --bogus" 2 "--bogus" record --bogus true
expect_error "record -o without its value" 2 "-o" record -o
expect_error "record of a program not on PATH: 127" 127 \
    "cannot execute 'memsnap-no-such-program': No such file or directory" \
    record memsnap-no-such-program
expect_error "record of a missing path: 127" 127 "$T/missing" record -- "$T/missing"
printf 'not executable\n' >"$T/noexec"
expect_error "record of a file that is not executable: 127" 127 "Permission denied" \
    record "$T/noexec"
expect_error "a program name starting with '-' needs '--'" 127 "'-prog'" record -- -prog
if [ -x "$P/static_prog" ]; then
    expect_error "record of a statically linked program: refused" 1 "statically linked" \
        record -o "$T/static.mst" "$P/static_prog"
else
    skip "record of a statically linked program (no static C library to build one)"
fi
MEMSNAP_PRELOAD="$T/no-such-preload.so"
expect_error "MEMSNAP_PRELOAD naming a missing file" 1 "$T/no-such-preload.so" \
    record -o "$T/x.mst" true
MEMSNAP_PRELOAD=
expect_error "record -o into a missing directory" 1 "$T/no/such" \
    record -o "$T/no/such/x.mst" true

echo "# the environment the program gets"

# The environment exactly as memsnap passed it to sh (the tracker may edit what sh passes on),
# after a line pid=<sh's pid>.
# shellcheck disable=SC2016 # expanded by that sh
ENVDUMP='echo "pid=$$"; tr "\0" "\n" </proc/$$/environ'
# An ASan build of memsnap refuses to start when LD_PRELOAD puts a library before its runtime.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
export ASAN_OPTIONS
(cd "$T" && LD_PRELOAD="$P/liballoc.so" MEMSNAP_TRACE_ROOT=1 MEMSNAP_TRACE_FILE=/elsewhere \
    "$BIN" record -o env1.mst --depth 12 --unwind fp --sample-rate 64K --mmap --no-follow \
    sh -c "$ENVDUMP") >"$T/env1.txt" 2>"$T/env1.err"
check "record sh -c env exits 0" [ $? -eq 0 ]
cat >"$T/envcheck.py" <<'EOF'
import os, sys
env = dict(l.rstrip("\n").split("=", 1) for l in open(sys.argv[1]) if "=" in l)
want = dict(a.split("=", 1) for a in sys.argv[2:])
bad = []
for k, v in want.items():
    if v == "<unset>":
        if k in env:
            bad.append("%s=%s should not be set" % (k, env[k]))
    elif env.get(k) != v:
        bad.append("%s is %r, want %r" % (k, env.get(k), v))
pre = env.get("LD_PRELOAD", "").split(":")[0]
if not (os.path.isabs(pre) and pre.endswith("/libmemsnap_preload.so") and os.path.isfile(pre)):
    bad.append("LD_PRELOAD does not start with the tracker's absolute path: %r" % pre)
if env.get("MEMSNAP_TRACE_ROOT") != env.get("pid"):
    bad.append("MEMSNAP_TRACE_ROOT %r is not the program's pid %r"
               % (env.get("MEMSNAP_TRACE_ROOT"), env.get("pid")))
print("\n".join(bad))
sys.exit(1 if bad else 0)
EOF
# envcheck DESC FILE VAR=VALUE...: the environment printed in FILE has each VAR=VALUE
# (VALUE <unset>: no VAR), the tracker first in LD_PRELOAD and ROOT the program's pid.
envcheck() {
    desc=$1
    shift
    if python3 "$T/envcheck.py" "$@" >"$T/why" 2>&1; then ok "$desc"; else not_ok "$desc" "$(cat "$T/why")"; fi
}
envcheck "every option reaches the tracker; an existing LD_PRELOAD is kept after it" \
    "$T/env1.txt" MEMSNAP_TRACE_DEPTH=12 \
    MEMSNAP_TRACE_UNWIND=fp MEMSNAP_TRACE_SAMPLE_RATE=65536 MEMSNAP_TRACE_MMAP=1 \
    MEMSNAP_TRACE_NO_FOLLOW=1
# The tracker writes a temporary name beside -o, renamed over it when the program has ended.
tf=$(sed -n 's/^MEMSNAP_TRACE_FILE=//p' "$T/env1.txt")
check "the tracker writes a temporary name beside -o" \
    sh -c 'case "$1" in "$2"/.env1.mst.??????) exit 0 ;; esac; exit 1' _ "$tf" "$T"
check "... renamed over -o when the program has ended" \
    sh -c '[ -f "$1/env1.mst" ] && [ ! -e "$2" ]' _ "$T" "$tf"
pre=$(sed -n 's/^LD_PRELOAD=//p' "$T/env1.txt")
check "LD_PRELOAD is the tracker, then the previous LD_PRELOAD" [ "${pre#*:}" = "$P/liballoc.so" ]

(cd "$T" && env -u LD_PRELOAD MEMSNAP_TRACE_DEPTH=3 MEMSNAP_TRACE_UNWIND=dwarf \
    MEMSNAP_TRACE_APPEND="1:$T/elsewhere" \
    MEMSNAP_TRACE_SAMPLE_RATE=9 MEMSNAP_TRACE_MMAP=1 MEMSNAP_TRACE_NO_FOLLOW=1 \
    "$BIN" record -o env2.mst -- sh -c "$ENVDUMP") >"$T/env2.txt" 2>"$T/env2.err"
check "record -- sh -c env exits 0" [ $? -eq 0 ]
envcheck "memsnap's own MEMSNAP_TRACE_* settings never reach the program" "$T/env2.txt" \
    MEMSNAP_TRACE_DEPTH="<unset>" MEMSNAP_TRACE_UNWIND="<unset>" \
    MEMSNAP_TRACE_SAMPLE_RATE="<unset>" MEMSNAP_TRACE_MMAP="<unset>" \
    MEMSNAP_TRACE_NO_FOLLOW="<unset>" MEMSNAP_TRACE_APPEND="<unset>"
check "a relative -o is made absolute against the working directory" \
    grep -qx "MEMSNAP_TRACE_FILE=$T/\.env2\.mst\.[A-Za-z0-9]\{6\}" "$T/env2.txt"
check "without an LD_PRELOAD before, LD_PRELOAD is the tracker alone" \
    [ "$(grep -c '^LD_PRELOAD=[^:]*$' "$T/env2.txt")" = 1 ]
"$BIN" record -o "$T/env3.mst" --sample-rate 1M sh -c "$ENVDUMP" >"$T/env3.txt" 2>/dev/null
check "--sample-rate 1M is 1048576 bytes" grep -qx "MEMSNAP_TRACE_SAMPLE_RATE=1048576" "$T/env3.txt"
"$BIN" record -o "$T/env4.mst" --sample-rate 0 sh -c "$ENVDUMP" >"$T/env4.txt" 2>/dev/null
check "--sample-rate 0 is passed as 0" grep -qx "MEMSNAP_TRACE_SAMPLE_RATE=0" "$T/env4.txt"

echo "# exit status and signals"

ms record -o "$T/exit7.mst" sh -c 'exit 7'
check "the program's exit status is memsnap's" [ "$rc" -eq 7 ]
ms record -o "$T/term.mst" sh -c 'kill -TERM $$'
check "a program killed by SIGTERM: 143" [ "$rc" -eq 143 ]
mentions "  ... and memsnap says so" "$T/err" "sh killed by SIGTERM; the trace keeps what was flushed"

"$BIN" record -o "$T/fwd.mst" sh -c ": >'$T/ready'; exec sleep 30" >/dev/null 2>"$T/fwd.err" &
M=$!
BG="$BG $M"
wait_for test -e "$T/ready" || not_ok "the program under record got started"
kill -TERM "$M"
wait "$M"
rc=$?
check "SIGTERM to memsnap reaches the program: 143" [ "$rc" -eq 143 ]
mentions "  ... memsnap outlives it and reports the signal" "$T/fwd.err" "sh killed by SIGTERM"

echo "# the trace file"

mkdir "$T/dflt"
(cd "$T/dflt" && "$BIN" record sh -c 'echo $$') >"$T/dflt.out" 2>"$T/dflt.err"
check "record without -o exits 0" [ $? -eq 0 ]
cpid=$(cat "$T/dflt.out")
check "the default trace is memsnap.<program>.<pid>.mst in the working directory" \
    [ -f "$T/dflt/memsnap.sh.$cpid.mst" ]
check "  ... and memsnap names it with its size" grep -qxF \
    "memsnap record: trace written to memsnap.sh.$cpid.mst ($(stat -c %s "$T/dflt/memsnap.sh.$cpid.mst" 2>/dev/null) bytes)" \
    "$T/dflt.err"

printf 'stale junk\n' >"$T/st100.mst"
printf 'old child\n' >"$T/st100.mst.12345"
touch -d '2001-01-01' "$T/st100.mst.12345"
record st100 0 "$P/st_pattern" 100
check "st100: an existing trace is replaced" \
    python3 -c 'import sys; sys.exit(open(sys.argv[1], "rb").read(8) != b"MEMSNAPT")' "$T/st100.mst"
check "st100: the trace is created with mode 600" [ "$(stat -c %a "$T/st100.mst")" = 600 ]
check "st100: memsnap says where the trace is and how big" grep -qxF \
    "memsnap record: trace written to $T/st100.mst ($(stat -c %s "$T/st100.mst") bytes)" \
    "$T/st100.err"
check "st100: memsnap says how to read it" grep -qxF \
    "memsnap record: run 'memsnap report $T/st100.mst' for the heap at its peak (--stats: the summary)" "$T/st100.err"
check "st100: a stale child trace is left alone" [ -f "$T/st100.mst.12345" ]
check "st100: ... and is not listed as this run's" [ "$(grep -c "child trace" "$T/st100.err")" = 0 ]

# ---------------------------------------------------------------------------------------------
echo "# single-threaded: exact figures (st_pattern.c)"

record st0 0 "$P/st_pattern" 0
expect "st0: a program that allocates nothing records nothing" st0 \
    'want(allocations=0, frees=0, reallocations=0, allocated_bytes=0, peak_bytes=0,
          leaked_bytes=0, leaked_allocations=0, events=0) and '"$CLEAN"
# K = 100 rounds: 12 allocations, 6 frees, 1 realloc, 13500 bytes, 6000 leaked each.
ST100='want(allocations=1200, frees=600, reallocations=100, allocated_bytes=1350000,
            peak_bytes=604000, leaked_bytes=600000, leaked_allocations=600, events=1900,
            threads=1, markers=0)'
expect "st100: counts, bytes, peak and leaks are exact" st100 "$ST100 and $CLEAN"
expect "st100: the peak time lies within the run, stacks and modules are recorded" st100 \
    '0 < d["peak_time_ns"] <= d["duration_ns"] and d["stacks"] > 0 and d["modules"] > 0'
for how in fp dwarf auto; do
    record "st_$how" 0 --unwind "$how" "$P/st_pattern" 100
    expect "st_$how: --unwind $how records the same figures" "st_$how" "$ST100 and $CLEAN"
done
record st_depth1 0 --depth 1 "$P/st_pattern" 100
expect "st_depth1: --depth 1 records the same figures with fewer stacks" st_depth1 \
    "$ST100 and $CLEAN"' and d["stacks"] <= load("st100")["stacks"]'
record st_depth256 0 --depth 256 "$P/st_pattern" 100
expect "st_depth256: --depth 256 records the same figures" st_depth256 "$ST100 and $CLEAN"

echo "# how the program ends"

ST50='want(allocations=600, frees=300, reallocations=50, allocated_bytes=675000,
           peak_bytes=304000, leaked_bytes=300000, leaked_allocations=300, threads=1,
           truncated=False, warning=None)'
record st_exit 0 "$P/st_pattern" 50 exit
expect "st_exit: exit(): exact and complete" st_exit "$ST50"' and want(complete=True)'
record st__exit 0 "$P/st_pattern" 50 _exit
expect "st__exit: _exit(): exact and complete" st__exit "$ST50"' and want(complete=True)'
record st_abort 134 "$P/st_pattern" 50 abort
mentions "st_abort: memsnap reports SIGABRT" "$T/st_abort.err" "killed by SIGABRT"
expect "st_abort: abort(): exact and complete" st_abort "$ST50"' and want(complete=True)'
record st_kill 137 "$P/st_pattern" 50 kill
mentions "st_kill: memsnap reports SIGKILL" "$T/st_kill.err" \
    "st_pattern killed by SIGKILL; the trace keeps what was flushed before"
expect "st_kill: SIGKILL after the flush interval: exact, readable, not complete" st_kill \
    "$ST50"' and want(complete=False)'

# ---------------------------------------------------------------------------------------------
echo "# threads (mt_pattern.c)"

record mt0 0 "$P/mt_pattern" 4 0
record mt 0 "$P/mt_pattern" 4 500
# K = 500, T = 4: 11 K T allocations, 10 K T frees, K (484 T + 512 T (T + 1) / 2) bytes.
expect "mt: K rounds add exact counts, bytes and leaks (cross-thread frees included)" mt \
    'delta("mt0", allocations=22000, frees=20000, reallocations=0, allocated_bytes=3528000,
           leaked_bytes=200000, leaked_allocations=2000, unmatched_frees=0)'
expect "mt: the 4 threads and main are counted" mt "$CLEAN"' and want(threads=5)'

echo "# realloc chains (realloc_chain.c)"

record rc1000 0 "$P/realloc_chain" 1000
expect "rc1000: every realloc counted, moved or not; exact bytes and peak" rc1000 \
    'want(allocations=101, reallocations=1000, frees=101, leaked_bytes=0, leaked_allocations=0,
          allocated_bytes=16 + sum(16 + 24 * i for i in range(1, 1001)) + 3200,
          peak_bytes=16 + 24 * 1000 + 3200) and '"$CLEAN"

echo "# the aligned family, calloc and reallocarray (aligned.c)"

record al0 0 "$P/aligned" 0
expect "al0: nothing recorded" al0 'want(allocations=0, frees=0, allocated_bytes=0)'
record al 0 "$P/aligned" 100
expect "al: sizes as asked, failed calls not recorded" al \
    'want(allocations=700, reallocations=100, frees=600, allocated_bytes=1700100,
          leaked_bytes=7700, leaked_allocations=100, peak_bytes=24324) and '"$CLEAN"

echo "# C++ new and delete (cxx_new.cpp)"

if [ -x "$P/cxx_new" ]; then
    record cx0 0 "$P/cxx_new" 0
    record cx 0 "$P/cxx_new" 200
    expect "cx: new, new[] (with its cookie), nothrow new and delete, exactly" cx \
        'delta("cx0", allocations=1000, frees=800, reallocations=0, allocated_bytes=311200,
               leaked_bytes=1600, leaked_allocations=200, peak_bytes=8 * 199 + 1000) and '"$CLEAN"
else
    skip "C++ new/delete (no C++ compiler)"
fi

echo "# fork (fork_child.c)"

record fk 0 "$P/fork_child" 10
fkpid=$(cat "$T/fk.out")
expect "fk: the parent's trace holds only the parent's blocks" fk \
    'want(allocations=20, frees=0, allocated_bytes=44440, leaked_bytes=44440,
          leaked_allocations=20) and '"$CLEAN"
check "fk: the child's trace is FILE.<child pid>" [ -f "$T/fk.mst.$fkpid" ]
mentions "fk: memsnap lists the child's trace" "$T/fk.err" "child trace: $T/fk.mst.$fkpid"
report_stats fkchild "$T/fk.mst.$fkpid"
expect "fkchild: forked, its ppid the parent, exact; freeing an inherited block is unmatched" \
    fkchild 'want(pid=a[0], ppid=load("fk")["pid"], forked=True, complete=True, images=1,
                  allocations=50, frees=21, unmatched_frees=1, allocated_bytes=111100,
                  leaked_bytes=66660, leaked_allocations=30, truncated=False)' "$fkpid"

echo "# exec (fork_exec.c)"

record fxd 0 "$P/fork_exec" direct "$P/st_pattern" 10
expect "fxd: exec keeps recording into the same trace: two images, both counted" fxd \
    'want(images=2, forked=False, complete=True, allocations=122, frees=60, reallocations=10,
          allocated_bytes=136000, unmatched_frees=0)'
expect "fxd: the old image's heap ends at exec: only the new image's blocks leak" fxd \
    'want(leaked_bytes=60000, leaked_allocations=60)'
record fx 0 "$P/fork_exec" fork "$P/st_pattern" 10
fxpid=$(cat "$T/fx.out")
expect "fx: the parent's trace" fx \
    'want(images=1, allocations=1, frees=1, allocated_bytes=4321, leaked_bytes=0) and '"$CLEAN"
report_stats fxchild "$T/fx.mst.$fxpid"
expect "fxchild: the forked child's trace holds both of its images" fxchild \
    'want(pid=a[0], ppid=load("fx")["pid"], forked=True, images=2, allocations=122, frees=60,
          reallocations=10, allocated_bytes=136000, leaked_bytes=60000)' "$fxpid"
record fxn 0 --no-follow "$P/fork_exec" direct "$P/st_pattern" 10
expect "fxn: --no-follow: the exec'd image is not recorded" fxn \
    'want(images=1, allocations=2, frees=0, reallocations=0, allocated_bytes=1000)'
record fxnf 0 --no-follow "$P/fork_exec" fork "$P/st_pattern" 10
fxnpid=$(cat "$T/fxnf.out")
report_stats fxnfchild "$T/fxnf.mst.$fxnpid"
expect "fxnfchild: --no-follow: a forked child is recorded, its exec'd image is not" fxnfchild \
    'want(forked=True, images=1, allocations=2, allocated_bytes=1000, reallocations=0)'

for mode in spawn spawnp; do
    record "$mode" 0 "$P/fork_exec" "$mode" "$P/st_pattern" 10
    spid=$(cat "$T/$mode.out")
    expect "$mode: the parent's trace" "$mode" \
        'want(images=1, allocations=1, frees=1, allocated_bytes=4321, leaked_bytes=0) and '"$CLEAN"
    check "$mode: the spawned program's trace is FILE.<its pid>" [ -f "$T/$mode.mst.$spid" ]
    report_stats "${mode}child" "$T/$mode.mst.$spid"
    expect "${mode}child: the spawned program is recorded, not forked, exactly" "${mode}child" \
        'want(pid=a[0], ppid=load("'"$mode"'")["pid"], forked=False, images=1, allocations=120,
              frees=60, reallocations=10, allocated_bytes=135000, leaked_bytes=60000)' "$spid"
done

echo "# dlopen (dlopen_prog.c, liballoc.c)"

record dln 0 "$P/dlopen_prog" - 0
record dl0 0 "$P/dlopen_prog" "$P/liballoc.so" 0
record dl 0 "$P/dlopen_prog" "$P/liballoc.so" 100
expect "dl: allocations made in a dlopen'ed module count exactly" dl \
    'delta("dl0", allocations=200, frees=100, reallocations=0, allocated_bytes=201100,
           leaked_bytes=77700, leaked_allocations=100, unmatched_frees=0)'
expect "dl: the module is recorded: more modules than without dlopen" dl \
    'd["modules"] > load("dln")["modules"]'

echo "# the tracker API (markers.c)"

record mk 0 "$P/markers" 50
expect "mk: markers and MS_TRACE_ALLOC/FREE blocks count like malloc ones" mk \
    'want(markers=50, allocations=150, frees=50, allocated_bytes=15000, leaked_bytes=10000,
          leaked_allocations=100) and '"$CLEAN"
"$P/markers" 50 >/dev/null 2>&1
check "mk: the program runs without the tracker too (the API's symbols are weak)" [ $? -eq 0 ]

echo "# --mmap (mmap_prog.c)"

record mm0 0 --mmap "$P/mmap_prog" 0
expect "mm0: no mapping but the program's own is recorded" mm0 'want(mmaps=0, munmaps=0)'
record mm 0 --mmap "$P/mmap_prog" 2
expect "mm: 3 mmaps and 1 munmap per round, bytes exact" mm \
    'want(mmaps=6, munmaps=2, mapped_bytes=2252800, allocations=0)'
record mmn 0 "$P/mmap_prog" 2
expect "mmn: without --mmap nothing of it is recorded" mmn \
    'want(mmaps=0, munmaps=0, mapped_bytes=0)'

echo "# --sample-rate (sample.c)"

record sx 0 "$P/sample" 200000
expect "sx: the exact run" sx 'want(allocations=200000, frees=200000, sample_rate=0)'
REC_ENV="MEMSNAP_TRACE_SEED=1"
record ss 0 --sample-rate 4096 "$P/sample" 200000
REC_ENV=""
expect "ss: --sample-rate 4096: bytes estimated within 10%, far fewer events" ss \
    'want(sample_rate=4096) and abs(d["allocated_bytes"] - load("sx")["allocated_bytes"]) <=
     load("sx")["allocated_bytes"] // 10 and d["events"] * 3 < load("sx")["events"]'
record s64 0 --sample-rate 64K "$P/sample" 1000
expect "s64: --sample-rate 64K is 65536 bytes" s64 'want(sample_rate=65536)'

echo "# stress: 16 threads x 200000 malloc/free pairs (stress.c)"

record stress0 0 "$P/stress" 16 0
# timeout: a deadlock must fail, not hang the suite.
REC_ENV=""
timeout 400 "$BIN" record -o "$T/stress.mst" "$P/stress" 16 200000 >"$T/stress.out" 2>"$T/stress.err"
rc=$?
check "stress: finishes within 400 s and exits 0 (exit $rc)" [ "$rc" -eq 0 ]
report_stats stress "$T/stress.mst"
expect "stress: 3.2M pairs, exact counts and bytes, nothing leaked" stress \
    'd["allocations"] >= 3200000 and delta("stress0", allocations=3200000, frees=3200000,
     allocated_bytes=a[0], leaked_bytes=0, leaked_allocations=0, unmatched_frees=0) and
     want(threads=17, truncated=False, complete=True)' "$(cat "$T/stress.out")"

echo "# a real program: sqlite3"

if command -v sqlite3 >/dev/null 2>&1; then
    awk 'BEGIN {
        print "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, value REAL);"
        print "BEGIN;"
        for (i = 1; i <= 20000; i++)
            printf "INSERT INTO t VALUES(%d, %cname-%d-%d%c, %d.5);\n", i, 39, i, i * 7919 % 1000, 39, i
        print "COMMIT;"
        print "CREATE INDEX t_name ON t(name);"
        print "SELECT count(*) FROM t;"
    }' >"$T/script.sql"
    record sq 0 sqlite3 -batch "$T/db.sqlite" ".read $T/script.sql"
    check "sq: sqlite3 did its work" [ "$(cat "$T/sq.out")" = 20000 ]
    # The progress bar: only on a terminal (script(1) gives report a pty), only once loading
    # has taken longer than the delay (MEMSNAP_PROGRESS_AFTER_MS, 1000 by default), cleared at
    # the end; the report itself is unchanged.
    "$BIN" report "$T/sq.mst" --top 3 >"$T/plain.out" 2>"$T/plain.err"
    if command -v script >/dev/null 2>&1; then
        MEMSNAP_PROGRESS_AFTER_MS=0 script -qec "'$BIN' report '$T/sq.mst' --top 3" /dev/null \
            >"$T/tty.out" 2>&1
        mentions "report: a progress bar on a terminal once the delay has passed" "$T/tty.out" \
            "memsnap report: loading $T/sq.mst [" "%  " " of " "$(printf '\033[K')"
        tr -d '\r' <"$T/tty.out" | sed 's/^.*\x1b\[K//' | grep -v '^memsnap report: loading' \
            >"$T/tty.report"
        check "report: the bar leaves the report as it is" \
            cmp -s "$T/tty.report" "$T/plain.out"
        MEMSNAP_PROGRESS_AFTER_MS=600000 script -qec "'$BIN' report '$T/sq.mst' --top 3" \
            /dev/null >"$T/tty1.out" 2>&1
        check "report: no bar while loading takes less than the delay" \
            sh -c "! grep -q 'loading' '$T/tty1.out'"
    else
        skip "report progress bar (script(1) not installed)"
    fi
    check "report: no bar when stderr is not a terminal" [ ! -s "$T/plain.err" ]
    expect "sq: many allocations and frees, few leaks, stacks recorded" sq \
        'd["allocations"] > 1000 and d["frees"] > 1000 and d["threads"] >= 1 and
         d["leaked_bytes"] * 20 < d["allocated_bytes"] and d["stacks"] > 10 and
         want(complete=True, truncated=False, unmatched_frees=0)'

    echo "# the unwinders find libunwind's stacks (ASLR off: the same code addresses every run)"
    if setarch -R true 2>/dev/null; then
        # sites PROGRAM-NAME UNWIND CMD...: records CMD with --unwind UNWIND, ASLR off, and
        # lists its allocation sites (size, return addresses, count) in $T/NAME-UNWIND.sites.
        sites() {
            sname=$1
            sunwind=$2
            shift 2
            rm -f "$T/db.sqlite"
            setarch -R "$BIN" record -o "$T/$sname-$sunwind.mst" --unwind "$sunwind" -- "$@" \
                >/dev/null 2>&1
            "$P/trace_sites" "$T/$sname-$sunwind.mst" >"$T/$sname-$sunwind.sites"
        }
        for u in libunwind dwarf auto; do
            sites sq "$u" sqlite3 -batch "$T/db.sqlite" ".read $T/script.sql"
            sites mt "$u" "$P/mt_pattern" 4 50
        done
        n=$(lines "$T/sq-libunwind.sites")
        check "unwind: sqlite3 has many allocation sites ($n)" [ "$n" -gt 50 ]
        check "unwind: --unwind dwarf (cached CFI rules, stack cache) = libunwind, sqlite3" \
            cmp -s "$T/sq-libunwind.sites" "$T/sq-dwarf.sites"
        check "unwind: --unwind auto = libunwind on sqlite3 (no frame pointers)" \
            cmp -s "$T/sq-libunwind.sites" "$T/sq-auto.sites"
        check "unwind: --unwind dwarf = libunwind, 4 threads (mt_pattern)" \
            cmp -s "$T/mt-libunwind.sites" "$T/mt-dwarf.sites"
        check "unwind: --unwind auto = libunwind, 4 threads (mt_pattern)" \
            cmp -s "$T/mt-libunwind.sites" "$T/mt-auto.sites"
    else
        not_ok "unwind: setarch -R, needed to compare stacks across runs, does not work here"
    fi
else
    skip "sqlite3 (not installed)"
fi

# ---------------------------------------------------------------------------------------------
echo "# damaged traces"

big=$T/stress.mst
size=$(stat -c %s "$big")
head -c $((size / 2)) "$big" >"$T/cut.mst"
report_stats cut "$T/cut.mst"
expect "cut: a trace cut in half is read up to its last good chunk, with a warning" cut \
    'want(truncated=True, complete=False) and isinstance(d["warning"], str) and d["warning"] and
     0 < d["allocations"] < load("stress")["allocations"]'
head -c 40 "$big" >"$T/cut40.mst"
report_stats cut40 "$T/cut40.mst"
expect "cut40: a trace cut inside its first chunk: truncated, with a warning" cut40 \
    'want(truncated=True) and isinstance(d["warning"], str) and d["warning"]'
python3 -c 'import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[len(b) // 2] ^= 0x10
open(sys.argv[2], "wb").write(b)' "$big" "$T/flip.mst"
report_stats flip "$T/flip.mst"
expect "flip: a flipped bit stops reading at that chunk, with a warning" flip \
    'want(truncated=True) and isinstance(d["warning"], str) and d["warning"] and
     d["allocations"] < load("stress")["allocations"]'
expect_error "report of a file that is not a trace: exit 1, one line" 1 "$T/check.py" \
    report "$T/check.py" --stats --format json
: >"$T/empty.mst"
expect_error "report of an empty file: exit 1, one line" 1 "$T/empty.mst" \
    report "$T/empty.mst" --stats --format json


# ---------------------------------------------------------------------------------------------
echo "# report: heap views (--peak, --at, --leaks, --diff, --threads, --format folded)"

# view NAME ARGS...: memsnap report ARGS into $T/NAME.json; checks that it exits 0.
view() {
    vname=$1
    shift
    "$BIN" report "$@" >"$T/$vname.json" 2>"$T/$vname.rerr"
    vrc=$?
    if [ "$vrc" -eq 0 ]; then
        ok "$vname: report $* exits 0"
    else
        not_ok "$vname: report $* exits 0" "exited $vrc
$(sed 's/^/stderr: /' "$T/$vname.rerr" | head -5)"
    fi
}

# Sites with at least one function named (the symbolizer at work) and sorted by bytes.
SITES='all(set(s) == {"bytes", "count", "stack"} for s in d["sites"]) and
       [s["bytes"] for s in d["sites"]] == sorted((s["bytes"] for s in d["sites"]), reverse=True) and
       sum(s["bytes"] for s in d["sites"]) == d["live_bytes"] and
       all(set(f) == {"function", "file", "line", "module"} for s in d["sites"] for f in s["stack"])'
record snap 0 -- "$P/snap_pattern"
view snap_peak "$T/snap.mst" --peak --format json
expect "snap: the peak is 28000 bytes in 5 blocks, sites by bytes" snap_peak \
    'want(live_bytes=28000, live_allocations=5) and d["time_ns"] == load("snap")["peak_time_ns"] and
     [s["bytes"] for s in d["sites"]] == [20000, 5000, 3000] and '"$SITES"
view snap_default "$T/snap.mst" --format json
expect "snap: --peak is the default" snap_default 'd == load("snap_peak")'
view snap_three "$T/snap.mst" --at three --format json
expect "snap: --at a marker: 3000 bytes in 3 blocks" snap_three \
    'want(live_bytes=3000, live_allocations=3) and '"$SITES"
view snap_after "$T/snap.mst" --at after-peak --format json
expect "snap: --at after-peak: 8000 bytes in 4 blocks" snap_after \
    'want(live_bytes=8000, live_allocations=4)'
view snap_zero "$T/snap.mst" --at 0 --format json
expect "snap: --at 0 (seconds): nothing live yet" snap_zero \
    'want(time_ns=0, live_bytes=0, live_allocations=0, sites=[])'
view snap_leaks "$T/snap.mst" --leaks --format json
expect "snap: --leaks: 6000 bytes in 2 blocks, as --stats says, one from leak_here" snap_leaks \
    'want(live_bytes=6000, live_allocations=2) and load("snap")["leaked_bytes"] == 6000 and
     [s["bytes"] for s in d["sites"]] == [5000, 1000] and
     d["sites"][0]["stack"][0]["function"] == "leak_here" and
     d["sites"][0]["stack"][0]["file"].endswith("snap_pattern.c") and
     d["sites"][0]["stack"][0]["line"] > 0 and
     d["sites"][0]["stack"][0]["module"].endswith("/snap_pattern")'
view snap_diff "$T/snap.mst" --diff three after-peak --format json
expect "snap: --diff three after-peak: +5000 bytes, +1 block, from leak_here" snap_diff \
    'want(live_bytes=5000, live_allocations=1) and
     d["from_time_ns"] == load("snap_three")["time_ns"] and
     d["time_ns"] == load("snap_after")["time_ns"] and
     [(s["bytes"], s["count"]) for s in d["sites"]] == [(5000, 1)]'
view snap_diff2 "$T/snap.mst" --diff after-peak end --format json
expect "snap: --diff after-peak end: -2000 bytes, -2 blocks, signed" snap_diff2 \
    'want(live_bytes=-2000, live_allocations=-2) and
     [(s["bytes"], s["count"]) for s in d["sites"]] == [(-2000, -2)]'
view snap_top "$T/snap.mst" --peak --top 1 --format json
expect "snap: --top 1 keeps the largest site" snap_top \
    'want(live_bytes=28000) and [s["bytes"] for s in d["sites"]] == [20000]'
"$BIN" report "$T/snap.mst" --peak --format folded >"$T/snap.folded" 2>"$T/err"
check "snap: --format folded exits 0" [ "$?" -eq 0 ]
if python3 -c 'import re, sys
lines = open(sys.argv[1]).read().splitlines()
vals = []
for l in lines:
    m = re.fullmatch(r"([^ ].*) (\d+)", l)
    assert m, "bad line %r" % l
    assert all(m.group(1).split(";")), "empty frame in %r" % l
    vals.append(int(m.group(2)))
assert sum(vals) == 28000, vals
assert any(l.split(" ")[0].endswith(";main;leak_here") for l in lines), lines
' "$T/snap.folded" >"$T/why" 2>&1; then
    ok "snap: folded lines are 'outer;...;inner bytes', summing to the peak"
else
    not_ok "snap: folded lines are 'outer;...;inner bytes', summing to the peak" "$(tail -3 "$T/why")"
fi
ms report "$T/snap.mst"
check "snap: the text report has a header and frames" \
    sh -c 'head -1 "$1" | grep -q "^peak at .*28000 bytes.* 5 allocations" && grep -q "leak_here" "$1"' \
    sh "$T/out"
expect_error "report --at an unknown marker: exit 1, one line" 1 "no-such-label" \
    report "$T/snap.mst" --at no-such-label
expect_error "report --at a time past the end: exit 1, one line" 1 "past the end" \
    report "$T/snap.mst" --at 1000
expect_error "report --at a negative time: exit 2" 2 "before the trace start" \
    report "$T/snap.mst" --at -1
for w in " 1" "+1" "0x1" "1e-3"; do
    expect_error "report --at '$w' is not a time (plain decimal seconds only)" 1 \
        "no marker is labelled '$w'" report "$T/snap.mst" --at "$w"
done
expect_error "report --diff with one moment: exit 2" 2 "two moments" \
    report "$T/snap.mst" --diff three
expect_error "report with two modes: exit 2" 2 "exclude" \
    report "$T/snap.mst" --peak --leaks
expect_error "report --format csv: exit 2" 2 "unknown format" \
    report "$T/snap.mst" --format csv
expect_error "report --peak of a file that is not a trace: exit 1" 1 "$T/check.py" \
    report "$T/check.py" --peak
expect_error "report --peak of a missing file: exit 1" 1 "$T/none.mst" \
    report "$T/none.mst" --peak

record snapt 0 -- "$P/snap_pattern" threads
pid=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["pid"])' "$T/snapt.json")
view snapt_after "$T/snapt.mst" --at after-peak --threads --format json
expect "snapt: --threads at after-peak: the worker holds its 7000 bytes, main its 8000 and more" \
    snapt_after 'set(d) == {"time_ns", "live_bytes", "live_allocations", "threads"} and
     [(t["bytes"], t["count"]) for t in d["threads"] if t["tid"] != a[0]] == [(7000, 1)] and
     [t["bytes"] >= 8000 for t in d["threads"] if t["tid"] == a[0]] == [True] and
     all(isinstance(t["name"], str) for t in d["threads"])' "$pid"
view snapt_end "$T/snapt.mst" --at end --threads --format json
expect "snapt: after main frees the worker's block, the worker holds nothing, main lost 2000" \
    snapt_end '[t["tid"] for t in d["threads"]] == [a[0]] and
     d["threads"][0]["bytes"] == [t["bytes"] for t in load("snapt_after")["threads"]
                                   if t["tid"] == a[0]][0] - 2000' "$pid"
view snapt_diff "$T/snapt.mst" --diff after-peak end --threads --format json
expect "snapt: --diff --threads charges the worker -7000 and main -2000" snapt_diff \
    'sorted((t["tid"] == a[0], t["bytes"], t["count"]) for t in d["threads"]) ==
     [(False, -7000, -1), (True, -2000, -2)] and "from_time_ns" in d' "$pid"

finish

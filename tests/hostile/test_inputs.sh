#!/bin/sh
# test_inputs.sh - inputs that exist in real life (issue 13, items 10, 12, 14, 15): kernel
# threads and other tasks without an address space, a wall clock stepped during a monitored run,
# numbers too large to multiply, a command that ignores --duration's SIGTERM, sloppy numbers
# on the command line, and a procfs/sysfs root from the environment that is wrong.
#
# Environment (set by meson): MEMSNAP_BIN, MEMSNAP_FIXTURES.

set -u

BIN=${MEMSNAP_BIN:?MEMSNAP_BIN must name the memsnap binary}
FIX=${MEMSNAP_FIXTURES:?MEMSNAP_FIXTURES must name tests/fixtures}
HERE=$(cd "$(dirname "$0")" && pwd)
MEMSNAP_PROCFS=
MEMSNAP_SYSFS=
export MEMSNAP_PROCFS MEMSNAP_SYSFS

TEST_NAME=hostile-inputs
. "$HERE/../lib.sh"

V1="--procfs $FIX/v1-host/proc --sysfs $FIX/v1-host/sys"

# json_get FILE EXPR: evaluates the Python expression EXPR over the JSON document in FILE (d).
json_get() {
    python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# end_record FILE: the end record of JSON-lines monitor output, as "reason exit_status signal".
end_record() {
    python3 -c '
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["record"] == "end":
        print(r["reason"], r["exit_status"], r["signal"])' "$1"
}

# ---- item 10: tasks without an address space ------------------------------------------------

# A fixture kernel thread (pid 2 of v1-host: statm zeros, an empty smaps_rollup, PF_KTHREAD).
ms snapshot --full --pid 2 --format json $V1
if [ "$rc" -eq 0 ] &&
    [ "$(json_get "$T/out" '"%s %s" % (d["process"]["rss_bytes"], d["process"]["pss_bytes"])')" = "0 None" ]
then
    ok "fixture kernel thread: snapshot --full reports RSS 0 and PSS null"
else
    not_ok "fixture kernel thread: snapshot --full reports RSS 0 and PSS null" "exit $rc"
fi
if [ "$(lines "$T/err")" = 1 ] && grep -qF "no address space (kernel thread)" "$T/err"; then
    ok "fixture kernel thread: one note on stderr says why PSS is missing"
else
    not_ok "fixture kernel thread: one note on stderr says why PSS is missing"
fi
# A zombie has no address space either, but it has exited.
expect_error "fixture zombie: snapshot --full says it exited" 1 "process 7 exited" \
    snapshot --full --pid 7 $V1

# The live kernel thread, where pid 2 is one (kthreadd: PF_KTHREAD in its stat flags).
kthread=$(python3 -c '
try:
    f = open("/proc/2/stat").read().rsplit(")", 1)[1].split()
    print(1 if int(f[6]) & 0x00200000 else 0)
except Exception:
    print(0)')
if [ "$kthread" = 1 ]; then
    ms snapshot --full --pid 2 --format json
    if [ "$rc" -eq 0 ] && [ "$(json_get "$T/out" 'd["process"]["pss_bytes"]')" = None ] &&
        grep -qF "no address space (kernel thread)" "$T/err"; then
        ok "pid 2 (kthreadd): snapshot --full reports it, PSS null with a note"
    else
        not_ok "pid 2 (kthreadd): snapshot --full reports it, PSS null with a note" "exit $rc"
    fi
    ms monitor --pid 2 --interval 0.05 --duration 0.5 -o "$T/k.jsonl"
    end=$(end_record "$T/k.jsonl")
    samples=$(grep -c '"record":"sample"' "$T/k.jsonl")
    if [ "$rc" -eq 0 ] && [ "$end" = "duration None None" ] && [ "$samples" -ge 2 ]; then
        ok "pid 2 (kthreadd): monitor --pid samples it until --duration"
    else
        not_ok "pid 2 (kthreadd): monitor --pid samples it until --duration" \
            "exit $rc, end '$end', $samples samples"
    fi
else
    skip "pid 2 is not a kernel thread here: no live kernel-thread checks"
fi

# ---- item 12: a wall-clock step during a monitored run ---------------------------------------

# step IN OUT [SEQ [WHERE [HOURS]]]: the monitor output IN with the wall clock (time_ns, and a
# sample's timestamp_ns) of every record from the sample with seq SEQ (default 300) on, in file
# order, stepped back HOURS (default 1; negative: forward) as NTP or `date -s` would;
# monotonic_ns is unchanged. WHERE "after": the step comes just after sample SEQ instead, so
# that the records between it and the next sample are stepped with no stepped sample before them.
step() {
    python3 - "$1" "$2" "${3:-300}" "${4:-at}" "${5:-1}" <<'PY'
import csv, json, sys
src, dst, seq, where = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
H = int(float(sys.argv[5]) * 3600 * 10**9)
on = False
def stepped(kind, s):
    """Whether a record of kind (s: a sample's seq) is stepped; the step happens in file order."""
    global on
    on = on or (where == "at" and kind == "sample" and s >= seq)
    now = on
    on = on or (where == "after" and kind == "sample" and s == seq)
    return now
if src.endswith(".csv"):
    rows = list(csv.reader(open(src, newline="")))
    head = rows[0]
    for r in rows[1:]:
        if stepped(r[0], int(r[head.index("seq")] or -1)):
            for col in ("time_ns", "timestamp_ns"):
                if r[head.index(col)]:
                    r[head.index(col)] = str(int(r[head.index(col)]) - H)
    csv.writer(open(dst, "w", newline=""), lineterminator="\n").writerows(rows)
else:
    with open(dst, "w") as out:
        for line in open(src):
            r = json.loads(line)
            if stepped(r["record"], r.get("seq") if r["record"] == "sample" else -1):
                r["time_ns"] -= H
                if r["record"] == "sample":
                    r["snapshot"]["timestamp_ns"] -= H
            out.write(json.dumps(r, separators=(",", ":")) + "\n")
PY
}

# verdict FILE: analyze's duration and, per metric, the trend's duration, slope and severity
# and the peak's offset.
verdict() {
    "$BIN" analyze --format json "$1" 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
print("duration", d["duration_s"])
for k, m in sorted(d["metrics"].items()):
    t = m["trend"]
    print(k, t["duration_s"], round(t["slope_bytes_per_s"], 3), t["severity"], m["peak"]["offset_s"])'
}

for scenario in leak slowleak flat; do
    python3 "$HERE/../analyze/gen_monitor.py" $scenario "$T" >/dev/null ||
        not_ok "gen_monitor.py $scenario"
    for ext in jsonl csv; do
        step "$T/$scenario.$ext" "$T/$scenario-step.$ext"
        verdict "$T/$scenario.$ext" >"$T/v-plain"
        verdict "$T/$scenario-step.$ext" >"$T/v-step"
        if [ -s "$T/v-plain" ] && cmp -s "$T/v-plain" "$T/v-step" &&
            ! grep -q -- " -" "$T/v-step"; then
            ok "analyze $scenario.$ext: a wall-clock step back of an hour changes no duration or verdict"
        else
            not_ok "analyze $scenario.$ext: a wall-clock step back of an hour changes no duration or verdict" \
                "$(diff "$T/v-plain" "$T/v-step" | head -8)"
        fi
    done
done
# events FILE: the offsets analyze --format json gives the alerts, markers, OOM records and the
# end record of FILE, one per line.
events() {
    "$BIN" analyze --format json "$1" 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
for a in d["alerts"]:
    print("alert", a["seq"], a["level"], a["offset_s"])
for m in d["markers"]:
    print("marker", m["offset_s"])
for o in d["ooms"]:
    print("oom", o["reason"], o["offset_s"])
print("end", d["end"]["offset_s"])'
}

# gen_monitor's events file: alerts at samples 50, 120 and 150, a marker between samples 99 and
# 100, an OOM record before sample 180, the end record after sample 199. From sample 99 on, the
# wall clock of every record is an hour back: each is placed by the sample before it.
python3 "$HERE/../analyze/gen_monitor.py" events "$T" >/dev/null || not_ok "gen_monitor.py events"
for ext in jsonl csv; do
    step "$T/events.$ext" "$T/events-step.$ext" 99
    events "$T/events.$ext" >"$T/e-plain"
    events "$T/events-step.$ext" >"$T/e-step"
    if [ "$(lines "$T/e-plain")" = 6 ] && cmp -s "$T/e-plain" "$T/e-step"; then
        ok "analyze events.$ext: a wall-clock step back of an hour moves no alert, marker, OOM or end"
    else
        not_ok "analyze events.$ext: a wall-clock step back of an hour moves no alert, marker, OOM or end" \
            "$(diff "$T/e-plain" "$T/e-step" | head -8)"
    fi
done
# A step between sample 99 and the marker (back, or forward) leaves the marker between the two
# samples around it (offsets 100 s and 101 s), and moves nothing else.
for hours in 1 -1; do
    step "$T/events.jsonl" "$T/events-step.jsonl" 99 after $hours
    events "$T/events-step.jsonl" >"$T/e-step"
    marker=$(sed -n 's/^marker //p' "$T/e-step")
    if [ -n "$marker" ] && python3 -c "import sys; sys.exit(not 100 <= $marker <= 101)" &&
        [ "$(grep -v '^marker' "$T/e-plain")" = "$(grep -v '^marker' "$T/e-step")" ]; then
        ok "analyze events.jsonl: a step of $hours h just before the marker keeps it between its samples"
    else
        not_ok "analyze events.jsonl: a step of $hours h just before the marker keeps it between its samples" \
            "marker at '$marker' s; $(diff "$T/e-plain" "$T/e-step" | head -8)"
    fi
done
# Their wall time is still what is shown.
"$BIN" analyze --format json "$T/events.jsonl" >"$T/a.json" 2>"$T/err"
"$BIN" analyze --format json "$T/events-step.jsonl" >"$T/b.json" 2>"$T/err"
check "analyze: the wall time of the end record is kept for display" \
    [ "$(json_get "$T/b.json" 'd["end"]["time_ns"]')" = \
    "$(json_get "$T/a.json" 'd["end"]["time_ns"] + 3600 * 10**9')" ]
# The wall clock is still what is shown: the step's sample keeps its own time_ns.
"$BIN" analyze --format json "$T/leak-step.jsonl" >"$T/a.json" 2>"$T/err"
check "analyze: the wall time of samples is kept for display" \
    [ "$(json_get "$T/a.json" 'd["last_time_ns"] - d["first_time_ns"]')" = $((599 * 1000000000 - 3600 * 1000000000)) ]

# ---- item 14: numbers too large to multiply or add ------------------------------------------

# A procfs tree (v1-host's, copied) with a --tree of three processes of 2^63 bytes and a page
# each: their sum passes 2^64 and is saturated, never wrapped to a small number.
fixture_copy v1-host "$T/big"
page=$(getconf PAGESIZE)
pages=$(python3 -c "print(2**63 // $page + 1)")
for p in 300 301 302; do
    mkdir "$T/big/proc/$p"
    cp "$T/big/proc/4242/status" "$T/big/proc/4242/smaps_rollup" "$T/big/proc/4242/cgroup" \
        "$T/big/proc/$p/"
    printf '%s %s 0 0 0 0 0\n' "$pages" "$pages" >"$T/big/proc/$p/statm"
    parent=300
    [ $p = 300 ] && parent=1
    sed "s/^4242 ([^)]*) S [0-9]*/$p (app) S $parent/" "$T/big/proc/4242/stat" >"$T/big/proc/$p/stat"
done
ms monitor --pid 300 --tree --interval 0.05 --duration 0.3 --procfs "$T/big/proc" \
    --sysfs "$T/big/sys" -o "$T/big.jsonl"
sums=$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["record"] == "sample" and r.get("tree"):
        print(r["tree"]["processes"], r["tree"]["rss_bytes"])' "$T/big.jsonl" | sort -u)
if [ "$rc" -eq 0 ] && [ "$sums" = "3 18446744073709551615" ]; then
    ok "monitor --tree: RSS summed past 2^64 is saturated, not wrapped"
else
    not_ok "monitor --tree: RSS summed past 2^64 is saturated, not wrapped" "exit $rc, sums '$sums'"
fi
# One page count past 2^64 bytes is a malformed statm, named.
printf '%s 1 0 0 0 0 0\n' "$(python3 -c "print(2**64 // $page)")" >"$T/big/proc/301/statm"
expect_error "snapshot: a statm page count past 2^64 bytes is malformed" 1 "301/statm: malformed" \
    snapshot --pid 301 --procfs "$T/big/proc" --sysfs "$T/big/sys"

# ---- item 15: --duration and a command that ignores SIGTERM ---------------------------------

# The command ignores SIGTERM (so does the sleep it starts, which it names in sleep.pid).
start=$(date +%s)
ms monitor --interval 0.1 --duration 1 --kill-after 1 -o "$T/kill.jsonl" -- \
    sh -c 'trap "" TERM; sleep 60 & echo $! > "$1"; wait' sh "$T/sleep.pid"
took=$(($(date +%s) - start))
[ -s "$T/sleep.pid" ] && BG="$BG $(cat "$T/sleep.pid")"
end=$(end_record "$T/kill.jsonl")
if [ "$rc" -eq 137 ] && [ "$took" -le 6 ] && [ "$end" = "duration None 9" ]; then
    ok "--duration 1 --kill-after 1: a command that ignores SIGTERM is killed (exit 137)"
else
    not_ok "--duration 1 --kill-after 1: a command that ignores SIGTERM is killed (exit 137)" \
        "exit $rc after $took s, end '$end'"
fi
mentions "--kill-after: stderr says SIGKILL was sent" "$T/err" "sent SIGKILL"
if grep -qi "oom\|out of memory" "$T/err"; then
    not_ok "--kill-after's SIGKILL is not taken for the OOM killer's"
else
    ok "--kill-after's SIGKILL is not taken for the OOM killer's"
fi
# A command that ends on SIGTERM gets no SIGKILL.
ms monitor --interval 0.1 --duration 0.3 -o "$T/term.jsonl" -- sleep 30
if [ "$rc" -eq 143 ] && [ "$(end_record "$T/term.jsonl")" = "duration None 15" ] &&
    ! grep -q SIGKILL "$T/err"; then
    ok "--duration: a command that ends on SIGTERM exits 143, no SIGKILL"
else
    not_ok "--duration: a command that ends on SIGTERM exits 143, no SIGKILL" "exit $rc"
fi
ms monitor --help
mentions "monitor --help documents --kill-after" "$T/out" "--kill-after" "SIGKILL"
ms track --help
mentions "track --help documents --kill-after" "$T/out" "--kill-after"

# ---- item 15: sloppy numbers ------------------------------------------------------------------

for v in " 5" "5 " "+5" "0x5" "05x" "" "-5" "5.0" "1e3" " " "5,"; do
    expect_error "snapshot --pid '$v' is a usage error" 2 "invalid PID" snapshot --pid "$v"
    expect_error "monitor --pid '$v' is a usage error" 2 "invalid PID" monitor --pid "$v"
done
for v in " 1" "1 " "+1" "0x1" "1e0" "inf" "nan" "" "." "1..0" "-1"; do
    expect_error "monitor --interval '$v' is a usage error" 2 "--interval" \
        monitor --interval "$v" -- true
    expect_error "monitor --duration '$v' is a usage error" 2 "--duration" \
        monitor --duration "$v" -- true
    expect_error "monitor --kill-after '$v' is a usage error" 2 "--kill-after" \
        monitor --kill-after "$v" -- true
done
for v in " 50" "+50" "0x32" "5e1"; do
    expect_error "track --warning-threshold '$v' is a usage error" 2 "--warning-threshold" \
        track --warning-threshold "$v" -- true
done
for v in " 1" "+1" "0x1"; do
    expect_error "monitor --rank '$v' is a usage error" 2 "--rank" monitor --rank "$v" -- true
    expect_error "monitor --oom-buffer-size '$v' is a usage error" 2 "--oom-buffer-size" \
        monitor --oom-buffer-size "$v" -- true
    expect_error "analyze --top '$v' is a usage error" 2 "--top" analyze --top "$v" "$T/none"
done

# ---- item 15: a wrong root from the environment names the variable ----------------------------

: >"$T/file"
for var in MEMSNAP_PROCFS MEMSNAP_SYSFS; do
    for root in /nope "$T/file"; do
        want="$var=$root: "
        env "$var=$root" "$BIN" snapshot >"$T/out" 2>"$T/err"
        rc=$?
        if [ "$rc" -eq 1 ] && [ "$(lines "$T/err")" = 1 ] && grep -qF -- "$want" "$T/err"; then
            ok "$var=$root: snapshot fails naming the variable"
        else
            not_ok "$var=$root: snapshot fails naming the variable" "exit $rc"
        fi
        env "$var=$root" "$BIN" monitor --duration 0.1 -- true >"$T/out" 2>"$T/err"
        rc=$?
        if [ "$rc" -eq 1 ] && grep -qF -- "$want" "$T/err"; then
            ok "$var=$root: monitor fails naming the variable"
        else
            not_ok "$var=$root: monitor fails naming the variable" "exit $rc"
        fi
    done
done
grep -q "not a directory" "$T/err" && ok "a root that is a file: 'not a directory'" ||
    not_ok "a root that is a file: 'not a directory'"
# --procfs given: the environment's root is not looked at.
env MEMSNAP_PROCFS=/nope "$BIN" snapshot --pid 4242 --procfs "$FIX/v1-host/proc" \
    --sysfs "$FIX/v1-host/sys" >"$T/out" 2>"$T/err"
check "--procfs overrides a wrong MEMSNAP_PROCFS" [ $? -eq 0 ]

finish

#!/bin/sh
# test_oom.sh - memory limits and real OOM kills (POSIX sh): `memsnap run --memory-limit`, the
# same option on monitor and track, the OOM flight recorder's bundle, and --record.
#
# These make real memory cgroups (v1 or v2) and let the kernel's OOM killer work, so memsnap
# must be able to write its memory cgroup: as root, that must work, and a failure fails the
# test (loudly, never a skip). Only when not root (or MEMSNAP_TEST_NOT_ROOT=1 says so, for a
# container without a writable cgroup) are the checks skipped, with that reason.
#
# Environment (set by meson): MEMSNAP_BIN. $1: the mon_prog helper (tests/monitor/mon_prog.c).

set -u

BIN=${MEMSNAP_BIN:?MEMSNAP_BIN must name the memsnap binary}
PROG=${1:?usage: test_oom.sh MON_PROG}
HERE=$(cd "$(dirname "$0")" && pwd)
MEMSNAP_PROCFS=
MEMSNAP_SYSFS=
export MEMSNAP_PROCFS MEMSNAP_SYSFS
MIB=1048576

TEST_NAME=monitor-oom
. "$HERE/../lib.sh"
. "$HERE/common.sh"

# cg_dir LINE: the directory of a /proc/PID/cgroup line ("4:memory:/a/b" under the v1 memory
# controller's mount, "0::/a/b" under cgroup2's), from this host's mountinfo.
cg_dir() {
    python3 - "$1" <<'EOF'
import sys
line = sys.argv[1].strip()
hid, ctrl, path = line.split(":", 2)
for m in open("/proc/self/mountinfo"):
    pre, post = m.split(" - ", 1)
    f, p = pre.split(), post.split()
    if (ctrl == "" and p[0] == "cgroup2") or (ctrl and p[0] == "cgroup" and "memory" in p[2].split(",")):
        root, point = f[3], f[4]
        rel = path[len(root):] if path.startswith(root) else path
        print(point + rel)
        break
EOF
}

# memline FILE: the memory-controller line mon_prog printed (v1 "N:memory:..." or v2 "0::...").
memline() {
    grep ':memory:' "$1" | head -1 | grep . || grep '^0::' "$1" | head -1
}

if [ "$(id -u)" != 0 ] || [ "${MEMSNAP_TEST_NOT_ROOT:-0}" = 1 ]; then
    skip "memory limits need a writable memory cgroup: not root (uid $(id -u))"
    finish
    exit $?
fi

# ---------------------------------------------------------------------------------------------
echo "# memsnap run --memory-limit"

ms run --memory-limit 32M -- "$PROG" hog 256
check "a command that touches 256 MiB under a 32 MiB limit: exit 137 (SIGKILL)" [ "$rc" -eq 137 ]
check "one line names the OOM kill and the limit" \
    [ "$(cat "$T/err")" = "memsnap run: $PROG was killed by the OOM killer (memory limit 32.00 MiB)" ]
LINE=$(memline "$T/out")
case "$LINE" in
*/memsnap-*) ok "the command ran in a memsnap-PID-N cgroup" ;;
*) not_ok "the command ran in a memsnap-PID-N cgroup" "its /proc/self/cgroup: $(cat "$T/out")" ;;
esac
DIR=$(cg_dir "$LINE")
check "the cgroup directory ($DIR) is gone afterwards" sh -c '[ -n "$1" ] && [ ! -e "$1" ]' _ "$DIR"

ms run --memory-limit 64M -- "$PROG" hog 8
check "under the limit: exit 0, nothing on stderr" sh -c '[ "$1" -eq 0 ] && [ ! -s "$2" ]' _ "$rc" "$T/err"
DIR=$(cg_dir "$(memline "$T/out")")
check "... and its cgroup is gone too" sh -c '[ -n "$1" ] && [ ! -e "$1" ]' _ "$DIR"

ms run --memory-limit 64M -- "$PROG" alloc 1 0 5
check "run returns the command's exit status (5)" [ "$rc" -eq 5 ]
expect_error "run without --memory-limit: usage error" 2 "--memory-limit" run -- true
expect_error "a bad SIZE: usage error" 2 "--memory-limit" run --memory-limit 12Q -- true
expect_error "run: a command that cannot be executed: 127" 127 "cannot execute" \
    run --memory-limit 64M -- "$T/no-such-program"

# ---------------------------------------------------------------------------------------------
echo "# monitor and track with --memory-limit"

ms monitor --memory-limit 64M --interval 0.05 -o "$T/m.jsonl" -- "$PROG" alloc 8 0.5 0
check "monitor --memory-limit: exit 0" [ "$rc" -eq 0 ]
fmt "the start record and the samples see the 64 MiB cgroup" "$T/m.jsonl" json \
    "recs[0]['memory_limit_bytes'] == 64 * $MIB and \
     recs[0]['limits']['cgroup_max_bytes'] == 64 * $MIB and \
     all('/memsnap-' in s['snapshot']['cgroup']['path'] for s in samples)"

rm -rf "$T/dumps"
ms track --memory-limit 32M --oom-flight-recorder --oom-dump-dir "$T/dumps" --interval 0.02 \
    --critical-threshold 90 -o "$T/o.jsonl" -- "$PROG" hog 256
check "track: the OOM-killed command's status, 137" [ "$rc" -eq 137 ]
mentions "track names the OOM kill and the bundle" "$T/err" "killed by the OOM killer" \
    "flight recorder bundle"
fmt "an oom record names the bundle; end says signal 9" "$T/o.jsonl" json \
    "len(kind('oom')) == 1 and kind('oom')[0]['bundle'] is not None and \
     kind('oom')[0]['reason'] in ('cgroup_oom_kill', 'sigkill_at_limit') and \
     kind('oom')[0]['pid'] == recs[0]['pid'] and kind('end')[0]['signal'] == 9"
BUNDLE=$(python3 -c "import json
for l in open('$T/o.jsonl'):
    d = json.loads(l)
    if d['record'] == 'oom': print(d['bundle'])")
check "the bundle is a directory in --oom-dump-dir" \
    sh -c '[ -d "$1" ] && [ "$(dirname "$1")" = "$2" ]' _ "$BUNDLE" "$T/dumps"
for f in events.json metadata.json environment.json manifest.json; do
    check "the bundle holds $f, JSON, mode 0600" sh -c "[ \"\$(stat -c %a '$BUNDLE/$f')\" = 600 ] \
        && python3 -c 'import json,sys; json.load(open(sys.argv[1]))' '$BUNDLE/$f'"
done
# (The hog reaches the limit within a sample or two: a critical alert may or may not come first.)
check "its events: the start record, samples of the command, every alert of the output" \
    python3 -c "
import json, sys
ev = json.load(open('$BUNDLE/events.json'))
out = [json.loads(l) for l in open('$T/o.jsonl')]
pid = out[0]['pid']
snaps = [e for e in ev if e.get('schema') == 'memsnap.snapshot/1']
alerts = [(a['level'], a['time_ns']) for a in out if a['record'] == 'alert']
assert ev[0].get('record') == 'start' and ev[0]['thresholds']['critical_pct'] == 90, ev[0]
assert len(snaps) >= 1 and all(e['pid'] == pid for e in snaps), snaps[:1]
assert all(any(e.get('record') == 'alert' and (e['level'], e['time_ns']) == a for e in ev)
           for a in alerts), alerts"

rm -rf "$T/dumps2"
ms track --memory-limit 32M --oom-dump-dir "$T/dumps2" --record "$T/app.mst" --interval 0.02 \
    -o "$T/r.jsonl" -- "$PROG" hog 256
check "--record under an OOM kill: exit 137, a trace was written" \
    sh -c '[ "$1" -eq 137 ] && [ -s "$2" ]' _ "$rc" "$T/app.mst"
BUNDLE=$(ls -d "$T"/dumps2/oom_dump_* 2>/dev/null | head -1)
check "--record: the bundle gets trace_tail.json" sh -c '[ -n "$1" ] &&
    python3 -c "import json,sys; json.load(open(sys.argv[1]))" "$1/trace_tail.json"' _ "$BUNDLE"

ms monitor --record "$T/ok.mst" --interval 0.05 -o "$T/ok.jsonl" -- "$PROG" alloc 4 0 0
check "monitor --record: exit 0 and the trace reads back" \
    sh -c '[ "$1" -eq 0 ] && "$2" report "$3" --stats >"$4" 2>&1' _ "$rc" "$BIN" "$T/ok.mst" \
    "$T/stats"
mentions "... with the command's allocations" "$T/stats" allocations
fmt "the start record names the trace" "$T/ok.jsonl" json "recs[0]['trace'] == '$T/ok.mst'"

finish

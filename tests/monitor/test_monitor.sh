#!/bin/sh
# test_monitor.sh - `memsnap monitor` and `memsnap track` end to end (POSIX sh; runs under
# dash): the JSON-lines and CSV formats of docs/monitor-format.md, sample counts, a command's
# memory, --tree, exit statuses and signals, a killed monitor, thresholds and alerts on a
# fixture cgroup, --on-critical, the job identity, and the errors.
#
# Environment (set by meson): MEMSNAP_BIN, MEMSNAP_FIXTURES. $1: the mon_prog helper
# (tests/monitor/mon_prog.c). Every output is checked by check_format.py (next to this
# script), which parses it with Python's json and csv modules.

set -u

BIN=${MEMSNAP_BIN:?MEMSNAP_BIN must name the memsnap binary}
FIX=${MEMSNAP_FIXTURES:?MEMSNAP_FIXTURES must name tests/fixtures}
PROG=${1:?usage: test_monitor.sh MON_PROG}
HERE=$(cd "$(dirname "$0")" && pwd)
MEMSNAP_PROCFS=
MEMSNAP_SYSFS=
export MEMSNAP_PROCFS MEMSNAP_SYSFS
# The job identity comes from these when the options do not give it: start from none.
unset RANK WORLD_SIZE SLURM_JOB_ID SLURM_PROCID SLURM_NTASKS PBS_JOBID OMPI_COMM_WORLD_RANK \
    OMPI_COMM_WORLD_SIZE PMI_RANK PMI_SIZE
MIB=1048576

TEST_NAME=monitor
. "$HERE/../lib.sh"
. "$HERE/common.sh"


# samples_in FILE N: FILE holds at least N sample records.
# stop_monitor: SIGTERM to the background monitor $MON, its exit status into rc.
stop_monitor() {
    kill -TERM "$MON"
    wait "$MON"
    rc=$?
}

samples_in() {
    [ "$(grep -c '"record":"sample"' "$1" 2>/dev/null)" -ge "$2" ]
}

# ---------------------------------------------------------------------------------------------
echo "# help"

for c in monitor track run; do
    ms $c --help
    check "$c --help exits 0" [ "$rc" -eq 0 ]
done
ms monitor --help
mentions "monitor --help lists its options" "$T/out" --pid --interval --duration --output \
    --format --tree --memory-limit --record --oom-flight-recorder --oom-dump-dir \
    --oom-buffer-size --oom-max-dumps --oom-max-total-mb --job-id --rank --world-size
ms track --help
mentions "track --help lists the thresholds and the hook's environment" "$T/out" \
    --warning-threshold --critical-threshold --on-critical MEMSNAP_ALERT_LEVEL _PERCENT _JOB_ID \
    "never through a shell"
ms run --help
mentions "run --help shows --memory-limit and the OOM line" "$T/out" --memory-limit \
    "killed by the OOM killer" --oom-dump-dir

# ---------------------------------------------------------------------------------------------
echo "# a running process, JSON lines and CSV"

sleep 3600 &
SLEEPER=$!
BG="$BG $SLEEPER"
sleeping() { [ "$(cat "/proc/$1/comm" 2>/dev/null)" = sleep ]; }
wait_for sleeping "$SLEEPER" || not_ok "the watched process became sleep"

ms monitor --pid "$SLEEPER" --interval 0.05 --duration 1 --output "$T/p.jsonl"
check "monitor --pid --duration exits 0, silent" sh -c '[ "$1" -eq 0 ] && [ ! -s "$2" ]' _ "$rc" "$T/err"
fmt "JSON lines follow docs/monitor-format.md" "$T/p.jsonl" json
fmt "about duration/interval samples (20, with the ticks a stalled machine missed)" \
    "$T/p.jsonl" json "14 <= len(samples) + lost(0.05) and len(samples) <= 21 and \
         kind('end')[0]['reason'] == 'duration'"
fmt "every sample is of the watched pid, start names it, no command" "$T/p.jsonl" json \
    "all(s['snapshot']['pid'] == $SLEEPER for s in samples) and recs[0]['pid'] == $SLEEPER \
     and recs[0]['command'] is None and recs[0]['interval_s'] == 0.05"
fmt "every sample holds RSS, PSS, system and cgroup figures" "$T/p.jsonl" json \
    "all(s['snapshot']['process']['rss_bytes'] > 0 and \
         s['snapshot']['process']['pss_bytes'] is not None and \
         s['snapshot']['system']['total_bytes'] > 0 and \
         s['snapshot']['cgroup']['current_bytes'] is not None for s in samples)"
fmt "at 0.05 s, about every other sample is full (--full-interval 0.1 s), the first too" \
    "$T/p.jsonl" json "full_schedule(0.1) and 3 <= sum(s['full'] for s in samples) and \
         sum(s['full'] for s in samples) <= (len(samples) + lost(0.05)) / 2 + 2"
fmt "a small process is walked for PSS at once (age 0); the others say the PSS's age" \
    "$T/p.jsonl" json "samples[0]['pss_age_ns'] == 0 and \
         all(0 < s['pss_age_ns'] < 10**9 for s in samples if not s['full'])"
fmt "samples follow each other on the monotonic clock" "$T/p.jsonl" json \
    "all(a['snapshot']['monotonic_ns'] < b['snapshot']['monotonic_ns'] \
         for a, b in zip(samples, samples[1:]))"
fmt "without identity options, job_id, rank and world_size are null" "$T/p.jsonl" json \
    "all(r['job_id'] is None and r['rank'] is None and r['world_size'] is None for r in recs)"
check "the output file is created 0600" [ "$(stat -c %a "$T/p.jsonl")" = 600 ]

ms monitor --pid "$SLEEPER" --interval 0.05 --duration 0.5 --format csv
cp "$T/out" "$T/p.csv"
ms snapshot --pid "$SLEEPER" --format csv --no-gpu
SNAPHDR=$(head -1 "$T/out")
fmt "CSV: the header is the documented one (snapshot columns from memsnap snapshot)" \
    "$T/p.csv" csv --snapshot-header "$SNAPHDR"
fmt "CSV: start, about 10 samples of the pid, end" "$T/p.csv" csv \
    "6 <= len(samples) + lost(0.05) and len(samples) <= 11 and \
     all(s['pid'] == '$SLEEPER' for s in samples) and \
     int(samples[0]['process.rss_bytes']) > 0 and recs[-1]['record'] == 'end'"

ms monitor --pid "$SLEEPER" --interval 0.002 --full-interval 0.02 --duration 0.3 -o "$T/f.jsonl"
fmt "--full-interval: a full sample about every 10th, statm-only ones in between" "$T/f.jsonl" \
    json "full_schedule(0.02) and \
          0 < sum(s['full'] for s in samples) < (len(samples) + lost(0.002)) / 3 and \
          all(s['snapshot']['process']['rss_bytes'] > 0 for s in samples)"

# The budget counts the walks, not --tree's scan of /proc: a small process stays walked.
ms monitor --pid "$SLEEPER" --interval 0.002 --duration 0.5 --tree -o "$T/tw.jsonl"
fmt "--tree on a small process: its full samples walk for PSS (the /proc scan is not a walk)" \
    "$T/tw.jsonl" json "len([s for s in samples if s['full']]) >= 3 and \
         sum(s['pss_age_ns'] != 0 for s in samples if s['full']) <= 1"

# statm-only JSON samples are put together from their full sample's text: the same record
# but for the fresh figures, in compact JSON (a job id to escape, --tree's null).
ms monitor --pid "$SLEEPER" --interval 0.002 --duration 0.3 --tree --rank 2 \
    --job-id 'j "x", \ é' -o "$T/l.jsonl"
if python3 "$HERE/check_light.py" "$T/l.jsonl" >"$T/why" 2>&1; then
    ok "statm-only samples: their full sample's record with fresh statm figures and times"
else
    not_ok "statm-only samples: their full sample's record with fresh statm figures and times" \
        "$(cat "$T/why")"
fi

# PSS needs a walk of the page tables (~4 ms per GiB here): by default the walks are held to
# 1% of a core, so a 1 GiB process (4 KiB pages: no THP) is walked on fewer full samples. It
# has a small child, for --tree.
python3 -c "
import mmap, os, sys, time
m = mmap.mmap(-1, 1 << 30)
m.madvise(mmap.MADV_NOHUGEPAGE)
for i in range(0, 1 << 30, 4096): m[i] = 1
if os.fork() == 0:
    m.close(); os.execvp('sleep', ['sleep', '60'])
open(sys.argv[1], 'w').close()
time.sleep(60)" "$T/big.ready" &
BIG=$!
BG="$BG $BIG"
wait_for test -e "$T/big.ready" || not_ok "the 1 GiB process got ready"
wait_for sleeping "$(pgrep -P "$BIG" | head -1)" || not_ok "the 1 GiB process's child is sleep"
# Until it has walked twice (the second walk waits 100 times the first's CPU time).
"$BIN" monitor --pid "$BIG" --interval 0.01 --no-gpu --tree -o "$T/big.jsonl" &
MON=$!
BG="$BG $MON"
walked_twice() { [ "$(grep -c '"pss_age_ns":0,' "$T/big.jsonl")" -ge 2 ]; }
wait_for walked_twice || not_ok "the 1 GiB process was walked twice in 20 s"
stop_monitor
fmt "1 GiB process: the default walks for PSS on fewer full samples (1% of a core)" \
    "$T/big.jsonl" json "2 <= sum(s['pss_age_ns'] == 0 for s in samples) < \
         sum(s['full'] for s in samples) and \
         samples[0]['snapshot']['process']['pss_bytes'] >= 2**30"
fmt "... a full sample that did not walk keeps the last PSS and says its age" \
    "$T/big.jsonl" json "all(s['pss_age_ns'] > 0 and s['snapshot']['process']['pss_bytes'] \
         == max((p for p in samples if p['pss_age_ns'] == 0 and p['seq'] < s['seq']), \
                key=lambda p: p['seq'])['snapshot']['process']['pss_bytes'] \
         for s in samples if s['full'] and s['pss_age_ns'] != 0)"
fmt "... --tree: so do its members (the child's PSS of the last walk)" "$T/big.jsonl" json \
    "all(s['tree']['processes'] == 2 and s['tree']['members'][1]['pss_bytes'] is not None \
         and s['tree']['members'][1]['pss_bytes'] == max((p for p in samples \
             if p['pss_age_ns'] == 0 and p['seq'] < s['seq']), key=lambda p: p['seq'])\
             ['tree']['members'][1]['pss_bytes'] for s in samples \
         if s['full'] and s['pss_age_ns'] != 0)"
ms monitor --pid "$BIG" --interval 0.01 --duration 1 --no-gpu --full-interval 0.1 \
    -o "$T/big2.jsonl"
fmt "... and a given --full-interval is followed as is: every full sample walks" \
    "$T/big2.jsonl" json "all((s['pss_age_ns'] == 0) == s['full'] for s in samples)"
pkill -P "$BIG" 2>/dev/null
kill "$BIG" 2>/dev/null

# ---------------------------------------------------------------------------------------------
echo "# a command"

ms monitor --interval 0.05 -o "$T/c.jsonl" -- "$PROG" alloc 64 1 3
check "the command's exit status (3) is memsnap's" [ "$rc" -eq 3 ]
fmt "a command's run follows the format; end says exit_status 3" "$T/c.jsonl" json \
    "kind('end')[0]['exit_status'] == 3 and kind('end')[0]['signal'] is None and \
     kind('end')[0]['reason'] == 'command_exited' and \
     recs[0]['command'] == ['$PROG', 'alloc', '64', '1', '3']"
fmt "the child's 64 MiB show in its RSS" "$T/c.jsonl" json \
    "max(s['snapshot']['process']['rss_bytes'] for s in samples) >= 64 * $MIB and \
     all(s['snapshot']['pid'] == recs[0]['pid'] for s in samples)"

ms monitor --tree --interval 0.1 -o "$T/t.jsonl" -- "$PROG" tree 16 32 48 2.5
check "--tree: the tree's command exits 0" [ "$rc" -eq 0 ]
fmt "--tree: a sample sums the parent and its 2 children (16 + 32 + 48 MiB)" "$T/t.jsonl" json \
    "any(s['tree']['processes'] == 3 and s['tree']['rss_bytes'] >= 96 * $MIB and \
         [m['pid'] for m in s['tree']['members']][0] == recs[0]['pid'] and \
         all(m['ppid'] == recs[0]['pid'] for m in s['tree']['members'][1:]) and \
         sorted(m['rss_bytes'] // $MIB for m in s['tree']['members'])[0] >= 16 and \
         sorted(m['rss_bytes'] // $MIB for m in s['tree']['members'])[1] >= 32 and \
         sorted(m['rss_bytes'] // $MIB for m in s['tree']['members'])[2] >= 48 and \
         sorted(m['rss_bytes'] // $MIB for m in s['tree']['members'])[2] < 48 + 16 \
         for s in samples if s['tree'])"

"$BIN" monitor --interval 0.05 -o "$T/s.jsonl" -- "$PROG" alloc 1 30 0 2>"$T/err" &
MON=$!
BG="$BG $MON"
wait_for samples_in "$T/s.jsonl" 2
CHILD=$(python3 -c "import json; print(json.loads(open('$T/s.jsonl').readline())['pid'])")
stop_monitor
check "SIGTERM is passed on: the command dies of it, memsnap exits 143" [ "$rc" -eq 143 ]
check "the command is gone" sh -c "! kill -0 $CHILD 2>/dev/null"
fmt "end records signal 15, no exit status" "$T/s.jsonl" json \
    "kind('end')[0]['signal'] == 15 and kind('end')[0]['exit_status'] is None"

ms monitor --interval 0.05 --duration 0.5 -o "$T/d.jsonl" -- "$PROG" alloc 1 30 0
check "--duration with a command: SIGTERM at the end, like timeout (143)" [ "$rc" -eq 143 ]
fmt "... the end record says duration and signal 15" "$T/d.jsonl" json \
    "kind('end')[0]['reason'] == 'duration' and kind('end')[0]['signal'] == 15 and \
     6 <= len(samples) <= 11"

"$BIN" monitor --pid "$SLEEPER" --interval 0.005 -o "$T/k.jsonl" 2>"$T/err" &
MON=$!
BG="$BG $MON"
wait_for samples_in "$T/k.jsonl" 30
kill -KILL "$MON"
wait "$MON" 2>/dev/null
fmt "a monitor killed by SIGKILL leaves only whole, parseable lines" "$T/k.jsonl" json --killed \
    "len(samples) >= 30"

sleep 3600 &
SHORT=$!
"$BIN" monitor --pid "$SHORT" --interval 0.05 -o "$T/x.jsonl" >"$T/out" 2>"$T/err" &
MON=$!
wait_for samples_in "$T/x.jsonl" 3
kill "$SHORT"
wait "$MON"
rc=$?
check "a --pid that exits ends the monitor: exit 0" [ "$rc" -eq 0 ]
mentions "... with one note on stderr" "$T/err" "pid $SHORT exited"
fmt "... and an end record with reason pid_exited" "$T/x.jsonl" json \
    "kind('end')[0]['reason'] == 'pid_exited' and len(samples) >= 3"
wait "$SHORT" 2>/dev/null

# An exec is not an exit: the PSS of the new image is read (smaps_rollup must be reopened).
# The process is Python when the monitor starts, and execs sleep when told to.
rm -f "$T/exec.ready" "$T/exec.go"
python3 -c "import os, sys, time
open(sys.argv[1], 'w').close()
while not os.path.exists(sys.argv[2]): time.sleep(0.01)
os.execvp('sleep', ['sleep', '30'])" "$T/exec.ready" "$T/exec.go" &
EXECS=$!
BG="$BG $EXECS"
wait_for test -e "$T/exec.ready"
"$BIN" monitor --pid "$EXECS" --interval 0.02 --no-gpu -o "$T/exec.jsonl" 2>"$T/err" &
MON=$!
BG="$BG $MON"
wait_for samples_in "$T/exec.jsonl" 10
touch "$T/exec.go"
is_sleep() { [ "$(cat "/proc/$EXECS/comm" 2>/dev/null)" = sleep ]; }
wait_for is_sleep
n=$(grep -c '"record":"sample"' "$T/exec.jsonl")
wait_for samples_in "$T/exec.jsonl" $((n + 20))
stop_monitor
check "a --pid that execs is followed through the exec: exit 0, silent" \
    sh -c '[ "$1" -eq 0 ] && [ ! -s "$2" ]' _ "$rc" "$T/err"
fmt "... until stopped, PSS read before and after (python, then sleep)" "$T/exec.jsonl" json \
    "kind('end')[0]['reason'] == 'interrupted' and \
     all(s['snapshot']['process']['pss_bytes'] for s in samples if s['full']) and \
     samples[0]['snapshot']['process']['pss_bytes'] > \
         2 * [s for s in samples if s['full']][-1]['snapshot']['process']['pss_bytes']"
kill "$EXECS" 2>/dev/null
wait "$EXECS" 2>/dev/null

# Another user's process: statm, status and stat are readable, smaps_rollup (PSS, USS) is not.
# memsnap, as nobody, watches root's processes: everything but PSS and USS, with one note.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
    mkdir "$T/nb"
    cp "$BIN" "$T/nb/memsnap"
    chmod 755 "$T"
    chown nobody "$T/nb"
    as_nobody() {
        setpriv --reuid=nobody --regid=nogroup --clear-groups "$T/nb/memsnap" "$@" \
            >"$T/out" 2>"$T/err"
        rc=$?
    }
    sh -c 'sleep 3600 & wait' &
    ROOTS=$!
    BG="$BG $ROOTS"
    has_child() { [ -n "$(pgrep -P "$ROOTS")" ]; }
    wait_for has_child
    as_nobody snapshot --pid "$SLEEPER" --full --no-gpu --format json
    check "snapshot --full of another user's process: exit 0 (exit $rc)" [ "$rc" -eq 0 ]
    mentions "... one note: PSS and USS left out, and why" "$T/err" "PSS and USS left out" \
        "smaps_rollup: permission denied"
    check "... the rest is there, PSS null" python3 -c "
import json, sys
p = json.load(open(sys.argv[1]))['process']
assert p['rss_bytes'] > 0 and p['peak_rss_bytes'] > 0 and p['threads'] == 1 and \\
    p['pss_bytes'] is None and p['uss_bytes'] is None, p" "$T/out"
    as_nobody monitor --pid "$ROOTS" --tree --no-gpu --interval 0.05 --duration 0.5 \
        -o "$T/nb/o.jsonl"
    check "monitor of another user's process: exit 0 (exit $rc), one line on stderr" \
        sh -c '[ "$1" -eq 0 ] && [ "$(wc -l <"$2")" -eq 1 ]' _ "$rc" "$T/err"
    mentions "... that says PSS and USS are left out" "$T/err" "PSS and USS left out"
    fmt "... every sample, with RSS, PSS null; --tree members keep their RSS" "$T/nb/o.jsonl" \
        json "len(samples) >= 5 and all(s['snapshot']['process']['rss_bytes'] > 0 and \
              s['snapshot']['process']['pss_bytes'] is None and s['pss_age_ns'] is None \
              for s in samples) and all(s['tree']['processes'] == 2 and \
              all(m['rss_bytes'] > 0 and m['pss_bytes'] is None for m in s['tree']['members']) \
              for s in samples if s['full'])"
    pkill -P "$ROOTS"
    kill "$ROOTS" 2>/dev/null
    wait "$ROOTS" 2>/dev/null
else
    skip "another user's process (needs root and setpriv to become nobody)"
fi

RANK=5 WORLD_SIZE=6 SLURM_JOB_ID=77 "$BIN" monitor --pid "$SLEEPER" --interval 0.05 \
    --duration 0.2 -o "$T/env.jsonl" 2>"$T/err"
fmt "job identity from RANK, WORLD_SIZE, SLURM_JOB_ID in every record" "$T/env.jsonl" json \
    "all(r['job_id'] == '77' and r['rank'] == 5 and r['world_size'] == 6 for r in recs)"

# ---------------------------------------------------------------------------------------------
echo "# thresholds on a fixture cgroup (memory.max 1000000000)"

fixture_copy v2-host "$T/fx" proc sys
CG="$T/fx/sys/fs/cgroup/user.slice/user-1000.slice/session-1.scope"
echo 1000000000 >"$CG/memory.max"
# set_current BYTES: rewrites memory.current in place at a fixed width (one write, no
# truncation), so that a read racing it never sees an empty file.
set_current() {
    printf '%012d\n' "$1" | dd of="$CG/memory.current" conv=notrunc status=none
}
# saw_current BYTES: a sample read that usage.
saw_current() {
    python3 - "$T/th.jsonl" "$1" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    if d["record"] == "sample" and d["snapshot"]["cgroup"]["current_bytes"] == int(sys.argv[2]):
        sys.exit(0)
sys.exit(1)
EOF
}
cat >"$T/hook.sh" <<'EOF'
#!/bin/sh
env | grep '^MEMSNAP_ALERT_' | sort >"$1.tmp" && mv "$1.tmp" "$1"
echo "hook ran"
EOF
chmod +x "$T/hook.sh"

set_current 500000000
"$BIN" track --pid 4242 --procfs "$T/fx/proc" --sysfs "$T/fx/sys" --interval 0.02 \
    --warning-threshold 80 --critical-threshold 90 --on-critical "$T/hook.sh $T/hook.env" \
    --job-id job-7 --rank 3 --world-size 8 -o "$T/th.jsonl" 2>"$T/th.err" &
MON=$!
BG="$BG $MON"
steps_ok=true
for v in 500000000 850000000 870000000 950000000 960000000 400000000; do
    set_current $v
    wait_for saw_current $v || steps_ok=false
done
stop_monitor
check "track --pid: every usage step was sampled; SIGTERM ends it with exit 0" \
    sh -c '[ "$1" = true ] && [ "$2" -eq 0 ]' _ "$steps_ok" "$rc"
fmt "track output follows the format, end reason interrupted" "$T/th.jsonl" json \
    "kind('end')[0]['reason'] == 'interrupted' and \
     recs[0]['thresholds'] == {'warning_pct': 80, 'critical_pct': 90} and \
     recs[0]['limits']['cgroup_max_bytes'] == 1000000000"
fmt "alerts: warning at 85%, critical at 95%, ok at 40% - once each, on the cgroup" \
    "$T/th.jsonl" json \
    "[(a['level'], a['metric'], a['percent'], a['used_bytes'], a['limit_bytes']) \
      for a in kind('alert')] == [('warning', 'cgroup', 85.0, 850000000, 1000000000), \
                                  ('critical', 'cgroup', 95.0, 950000000, 1000000000), \
                                  ('ok', 'cgroup', 40.0, 400000000, 1000000000)]"
fmt "each alert carries the seq of the sample that raised it" "$T/th.jsonl" json \
    "all(any(s['seq'] == a['seq'] and \
             s['snapshot']['cgroup']['current_bytes'] == a['used_bytes'] for s in samples) \
         for a in kind('alert'))"
fmt "job identity (--job-id, --rank, --world-size) in every record" "$T/th.jsonl" json \
    "all(r['job_id'] == 'job-7' and r['rank'] == 3 and r['world_size'] == 8 for r in recs)"
check "three alert lines on stderr (and the hook's output)" \
    [ "$(grep -c 'memsnap track: \(warning\|critical\|ok\): cgroup at' "$T/th.err")" -eq 3 ]
mentions "the critical line names the usage, the limit, the pid and the job" "$T/th.err" \
    "critical: cgroup at 95.0% of its limit (905.99 MiB of 953.67 MiB), pid 4242 [job job-7, rank 3]" \
    "hook ran"
wait_for test -s "$T/hook.env"
cat >"$T/hook.want" <<'EOF'
MEMSNAP_ALERT_JOB_ID=job-7
MEMSNAP_ALERT_LEVEL=critical
MEMSNAP_ALERT_LIMIT_BYTES=1000000000
MEMSNAP_ALERT_METRIC=cgroup
MEMSNAP_ALERT_PERCENT=95.00
MEMSNAP_ALERT_PID=4242
MEMSNAP_ALERT_RANK=3
EOF
grep -v -e _SEQ= -e _TIME_NS= -e _USED_BYTES= -e _WORLD_SIZE= "$T/hook.env" >"$T/hook.got"
check "--on-critical ran once with the alert in its environment" \
    cmp -s "$T/hook.want" "$T/hook.got"
check "... MEMSNAP_ALERT_USED_BYTES, _WORLD_SIZE too" \
    sh -c "grep -qx MEMSNAP_ALERT_USED_BYTES=950000000 '$T/hook.env' && \
           grep -qx MEMSNAP_ALERT_WORLD_SIZE=8 '$T/hook.env'"

ms track --pid 4242 --procfs "$T/fx/proc" --sysfs "$T/fx/sys" --interval 0.05 --duration 0.3 \
    --critical-threshold 30 --format csv
fmt "CSV: an alert row fills the event columns" "$T/out" csv \
    "[(a['event.level'], a['event.metric'], a['event.percent']) for a in kind('alert')] == \
     [('critical', 'cgroup', '40.00')]"

# --tree finds members through the kernel's children lists (task/TID/children of every
# thread), or, where there are none, by one scan of every stat. A fixture tree holds both:
# 4242 (4 threads) has children 4343 (listed by thread 4245) and 4444 (by thread 4242) and a
# process 4555 whose stat names 4242 but no list does; 4444 (one thread) has a child 4666.
# (RSS comes from statm: stat says 9 pages, an approximate count that memsnap does not use.)
fixture_copy v2-host "$T/ft" proc sys
for c in 4343:4242:1111 4444:4242:2222 4555:4242:3333 4666:4444:4444; do
    IFS=: read -r pid ppid rss <<EOF_C
$c
EOF_C
    mkdir -p "$T/ft/proc/$pid"
    echo "$pid (kid$pid) S $ppid $pid $pid 0 -1 4194560 10 0 0 0 1 1 0 0 20 0 1 0 100 \
1048576 9 18446744073709551615 1 1 1 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 1 1 1 1 1 1 1 0" \
        >"$T/ft/proc/$pid/stat"
    echo "2000 $rss 100 10 0 500 0" >"$T/ft/proc/$pid/statm"
    cp "$T/ft/proc/4242/smaps_rollup" "$T/ft/proc/$pid/"
    cp "$T/ft/proc/4242/cgroup" "$T/ft/proc/$pid/"
done
tree_pids="sorted(m['pid'] for m in s['tree']['members'])"
PAGE=$(getconf PAGESIZE)
ms monitor --pid 4242 --tree --procfs "$T/ft/proc" --sysfs "$T/ft/sys" --interval 0.02 \
    --duration 0.25 -o "$T/ft-scan.jsonl"
fmt "--tree without children lists: a scan of every stat, by ppid (4343, 4444, 4555, 4666)" \
    "$T/ft-scan.jsonl" json "all($tree_pids == [4242, 4343, 4444, 4555, 4666] \
         for s in samples if s['full'])"
mkdir -p "$T/ft/proc/4242/task/4242" "$T/ft/proc/4242/task/4243" "$T/ft/proc/4242/task/4245"
echo "4444 " >"$T/ft/proc/4242/task/4242/children"
: >"$T/ft/proc/4242/task/4243/children"
echo "4343 " >"$T/ft/proc/4242/task/4245/children"
mkdir -p "$T/ft/proc/4444/task/4444"
printf '4666' >"$T/ft/proc/4444/task/4444/children"
ms monitor --pid 4242 --tree --procfs "$T/ft/proc" --sysfs "$T/ft/sys" --interval 0.02 \
    --duration 0.25 -o "$T/ft-list.jsonl"
fmt "--tree with children lists: every thread's list, not the ppid of 4555 (4343, 4444, 4666)" \
    "$T/ft-list.jsonl" json "all($tree_pids == [4242, 4343, 4444, 4666] \
         for s in samples if s['full'])"
fmt "... and each member's RSS is its own statm's" \
    "$T/ft-list.jsonl" json "len([s for s in samples if s['full']]) >= 2 and all( \
         {m['pid']: m['rss_bytes'] for m in s['tree']['members'][1:]} == \
         {4343: 1111 * $PAGE, 4444: 2222 * $PAGE, 4666: 4444 * $PAGE} \
         for s in samples if s['full'])"

# On the real /proc: a child started by a second thread is in that thread's list.
rm -f "$T/thr.ready"
python3 -c "import subprocess, sys, threading, time
t = threading.Thread(target=lambda: subprocess.Popen(['sleep', '3600']))
t.start(); t.join()
threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()
open(sys.argv[1], 'w').close()
time.sleep(3600)" "$T/thr.ready" &
THR=$!
BG="$BG $THR"
wait_for test -e "$T/thr.ready" || not_ok "the threaded process got ready"
ms monitor --pid "$THR" --tree --no-gpu --interval 0.05 --duration 0.3 -o "$T/thr.jsonl"
fmt "--tree: a child forked by a thread other than the main one is a member" "$T/thr.jsonl" json \
    "all(s['tree']['processes'] == 2 and s['tree']['members'][1]['comm'] == 'sleep' \
         for s in samples if s['full'])"
pkill -P "$THR"
kill "$THR" 2>/dev/null
wait "$THR" 2>/dev/null

# A device is not a file memsnap writes (a full disk while sampling, on a small tmpfs, is in
# tests/hostile/test_outputs.sh).
expect_error "-o naming a device is refused" 1 "refusing to write /dev/full: it is a device" \
    monitor --interval 0.01 --no-gpu -o /dev/full -- sh -c 'exit 3'
# The reader of standard output goes away (| head): EPIPE, not death by SIGPIPE.
{ "$BIN" monitor --interval 0.01 --no-gpu -- sh -c 'sleep 0.5; exit 3' 2>"$T/err"
  echo $? >"$T/rc"; } | head -c 1 >/dev/null
check "| head: memsnap outlives the pipe and returns the command's status ($(cat "$T/rc"))" \
    [ "$(cat "$T/rc")" -eq 3 ]
check "... with one line on stderr" sh -c '[ "$(wc -l <"$1")" -eq 1 ]' _ "$T/err"
mentions "... that names the broken pipe" "$T/err" "writing standard output failed: Broken pipe"
sigign() { sed -n 's/^SigIgn:[[:space:]]*//p' "/proc/$1/status"; }
ms monitor --no-gpu -o "$T/sp.jsonl" -- sh -c "sed -n 's/^SigIgn:[[:space:]]*//p' /proc/\$\$/status >'$T/sigign'"
check "... and the command gets SIGPIPE as memsnap got it (ignored or not)" \
    [ "$(cat "$T/sigign")" = "$(sigign $$)" ]

# ---------------------------------------------------------------------------------------------
echo "# errors: one line, an exit status, nothing started"

expect_error "a PID that does not exist: exit 1" 1 "no such process" monitor --pid 999999999
expect_error "a PID that is not a number: usage error" 2 "invalid PID" monitor --pid abc
expect_error "a command that cannot be executed: exit 127" 127 "cannot execute" \
    monitor -- "$T/no-such-program"
expect_error "an unwritable output: exit 1" 1 "cannot create" \
    monitor -o "$T/no/such/dir/x.jsonl" -- sh -c "touch $T/started"
check "... and the command was not started" [ ! -e "$T/started" ]
expect_error "a bad threshold: usage error" 2 "--warning-threshold" \
    track --warning-threshold 150 --pid "$SLEEPER"
expect_error "warning above critical: usage error" 2 "below --critical-threshold" \
    track --warning-threshold 90 --critical-threshold 80 --pid "$SLEEPER"
expect_error "thresholds are track's: monitor refuses them" 2 "--critical-threshold" \
    monitor --critical-threshold 80 --pid "$SLEEPER"
expect_error "--on-critical without a critical threshold" 2 "--on-critical" \
    track --on-critical true --pid "$SLEEPER"
expect_error "--on-critical with a program that does not exist" 2 "cannot execute" \
    track --critical-threshold 50 --on-critical "$T/nope arg" --pid "$SLEEPER"
expect_error "a zero interval: usage error" 2 "--interval" monitor --interval 0 --pid 1
expect_error "a bad format: usage error" 2 "unknown format" monitor --format text --pid 1
expect_error "--pid and a command: usage error" 2 "not both" monitor --pid 1 -- true
expect_error "nothing to watch: usage error" 2 "--pid" monitor
expect_error "--memory-limit with --pid: usage error" 2 "--memory-limit" \
    monitor --memory-limit 64M --pid "$SLEEPER"
expect_error "a bad --rank: usage error" 2 "--rank" monitor --rank -1 --pid "$SLEEPER"

finish

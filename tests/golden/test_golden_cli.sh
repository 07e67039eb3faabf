#!/bin/sh
# test_golden_cli.sh - the CLI's outputs against golden files in tests/golden/cli: every
# --help, every report format on the seed traces of tests/fuzz/corpus-trace, analyze on the
# monitor files of tests/fuzz/corpus-analyze, and monitor/track records (both formats) from a
# fixture run with their clocks pinned. These hold the outputs byte-identical while code moves
# between the CLI and the library. MEMSNAP_UPDATE_GOLDEN=1 rewrites the files; review the diff.
set -u
TEST_NAME=golden-cli
. "$(dirname "$0")/../lib.sh"
G=$MEMSNAP_GOLDEN/cli
# Inputs by paths relative to tests/, so that outputs naming them do not depend on where the
# source tree is.
cd "$(dirname "$0")/.." || exit 1
TR=fuzz/corpus-trace
AN=fuzz/corpus-analyze

# golden NAME CMD...: stdout, stderr and the exit status of CMD against $G/NAME.
golden() {
    name=$1
    shift
    "$@" >"$T/g.out" 2>"$T/g.err"
    rc=$?
    { cat "$T/g.out"; echo "--- stderr"; sed "s|$T|TMP|g" "$T/g.err"; echo "--- exit $rc"; } >"$T/got"
    if [ "${MEMSNAP_UPDATE_GOLDEN:-}" = 1 ]; then
        cp "$T/got" "$G/$name"
        ok "$name (rewritten)"
    elif cmp -s "$T/got" "$G/$name"; then
        ok "$name"
    else
        not_ok "$name differs from its golden file" "$(diff "$G/$name" "$T/got" | head -20)"
    fi
}

golden help.txt "$MEMSNAP_BIN" --help
for c in analyze bench diff gpu info monitor record report run snapshot track; do
    golden "help-$c.txt" "$MEMSNAP_BIN" "$c" --help
done
golden help-gpu-ps.txt "$MEMSNAP_BIN" gpu ps --help
golden usage-unknown.txt "$MEMSNAP_BIN" report --no-such-option x
golden usage-monitor.txt "$MEMSNAP_BIN" monitor --interval nope -- true
# The usage errors of the option tables (src/cli/opts.c): an unknown option, a missing value
# and a bad value for each command whose options are declared in one.
golden usage-snapshot-unknown.txt "$MEMSNAP_BIN" snapshot --no-such-option
golden usage-snapshot-missing.txt "$MEMSNAP_BIN" snapshot --pid
golden usage-snapshot-bad.txt "$MEMSNAP_BIN" snapshot --format xml
golden usage-snapshot-device.txt "$MEMSNAP_BIN" snapshot --device ''
golden usage-snapshot-flag-value.txt "$MEMSNAP_BIN" snapshot --full=yes
golden usage-diff-unknown.txt "$MEMSNAP_BIN" diff -x a b
golden usage-diff-missing.txt "$MEMSNAP_BIN" diff -F
golden usage-diff-bad.txt "$MEMSNAP_BIN" diff --format csv a b
golden usage-gpu-unknown.txt "$MEMSNAP_BIN" gpu --pid 1 ps
golden usage-gpu-missing.txt "$MEMSNAP_BIN" gpu ps --sysfs
golden usage-gpu-bad.txt "$MEMSNAP_BIN" gpu --format csv ps
golden usage-info-unknown.txt "$MEMSNAP_BIN" info --format json
golden usage-info-missing.txt "$MEMSNAP_BIN" info -p
golden usage-info-bad.txt "$MEMSNAP_BIN" info --pid 0
golden usage-record-unknown.txt "$MEMSNAP_BIN" record --bogus true
golden usage-record-missing.txt "$MEMSNAP_BIN" record --depth
golden usage-record-bad.txt "$MEMSNAP_BIN" record --depth 257 true
golden usage-record-unwind.txt "$MEMSNAP_BIN" record --unwind sideways true
golden usage-record-rate.txt "$MEMSNAP_BIN" record --sample-rate 1X true
golden usage-record-empty.txt "$MEMSNAP_BIN" record -o '' true
golden usage-bench-unknown.txt "$MEMSNAP_BIN" bench --format json snapshot
golden usage-bench-missing.txt "$MEMSNAP_BIN" bench snapshot --rounds
golden usage-bench-bad.txt "$MEMSNAP_BIN" bench --rounds 1001 snapshot
golden usage-report-missing.txt "$MEMSNAP_BIN" report x --at
golden usage-report-bad.txt "$MEMSNAP_BIN" report x --format svg
golden usage-report-top.txt "$MEMSNAP_BIN" report x --top 0
golden usage-report-diff.txt "$MEMSNAP_BIN" report x --diff 1
golden usage-analyze-unknown.txt "$MEMSNAP_BIN" analyze -x f
golden usage-analyze-missing.txt "$MEMSNAP_BIN" analyze f --html
golden usage-analyze-bad.txt "$MEMSNAP_BIN" analyze f --top -3
# monitor, track and run share one table, each taking its subset (an option of another one is
# unknown to it); then the checks across options, after parsing.
golden usage-monitor-unknown.txt "$MEMSNAP_BIN" monitor --warning-threshold 80 -- true
golden usage-monitor-short.txt "$MEMSNAP_BIN" monitor -x --pid 1
golden usage-monitor-missing.txt "$MEMSNAP_BIN" monitor --pid
golden usage-monitor-bad.txt "$MEMSNAP_BIN" monitor --format text --pid 1
golden usage-monitor-flag-value.txt "$MEMSNAP_BIN" monitor --tree=yes --pid 1
golden usage-monitor-output.txt "$MEMSNAP_BIN" monitor -o '' --pid 1
golden usage-monitor-duration.txt "$MEMSNAP_BIN" monitor -d 0 -- true
golden usage-monitor-full.txt "$MEMSNAP_BIN" monitor --full-interval -1 --pid 1
golden usage-monitor-kill-after.txt "$MEMSNAP_BIN" monitor --kill-after 1e3 -- true
golden usage-monitor-rank.txt "$MEMSNAP_BIN" monitor --rank x --pid 1
golden usage-monitor-world.txt "$MEMSNAP_BIN" monitor --world-size 0 --pid 1
golden usage-monitor-job.txt "$MEMSNAP_BIN" monitor --job-id '' --pid 1
golden usage-monitor-record.txt "$MEMSNAP_BIN" monitor --record '' -- true
golden usage-monitor-oom-buffer.txt "$MEMSNAP_BIN" monitor --oom-buffer-size 0 -- true
golden usage-monitor-oom-dir.txt "$MEMSNAP_BIN" monitor --oom-dump-dir '' -- true
golden usage-monitor-both.txt "$MEMSNAP_BIN" monitor --pid 1 -- true
golden usage-monitor-nothing.txt "$MEMSNAP_BIN" monitor
golden usage-monitor-limit-pid.txt "$MEMSNAP_BIN" monitor --memory-limit 1M --pid 1
golden usage-monitor-rank-world.txt "$MEMSNAP_BIN" monitor --rank 4 --world-size 4 --pid 1
golden usage-track-unknown.txt "$MEMSNAP_BIN" track --bogus
golden usage-track-missing.txt "$MEMSNAP_BIN" track --critical-threshold
golden usage-track-bad.txt "$MEMSNAP_BIN" track --warning-threshold 101 --pid 1
golden usage-track-order.txt "$MEMSNAP_BIN" track --warning-threshold 90 \
    --critical-threshold 80 --pid 1
golden usage-track-hook.txt "$MEMSNAP_BIN" track --on-critical true --pid 1
golden usage-track-hook-empty.txt "$MEMSNAP_BIN" track --on-critical ' ' --pid 1
golden usage-track-hook-exec.txt "$MEMSNAP_BIN" track --on-critical /nonexistent/hook --pid 1
golden usage-track-limit.txt "$MEMSNAP_BIN" track --memory-limit 0 -- true
golden usage-track-oom-dumps.txt "$MEMSNAP_BIN" track --oom-max-dumps 4294967296 -- true
golden usage-run-unknown.txt "$MEMSNAP_BIN" run --pid 1 -- true
golden usage-run-format.txt "$MEMSNAP_BIN" run -F json --memory-limit 1M -- true
golden usage-run-missing.txt "$MEMSNAP_BIN" run --memory-limit
golden usage-run-bad.txt "$MEMSNAP_BIN" run --memory-limit 12X -- true
golden usage-run-interval.txt "$MEMSNAP_BIN" run -i 0.00001 --memory-limit 1M -- true
golden usage-run-no-limit.txt "$MEMSNAP_BIN" run -- true
golden usage-run-nothing.txt "$MEMSNAP_BIN" run --memory-limit 1M

for t in basic-zstd exec-mmap process-twice lost-saturates; do
    golden "report-$t-peak.txt" "$MEMSNAP_BIN" report "$TR/$t"
    golden "report-$t-peak.json" "$MEMSNAP_BIN" report "$TR/$t" --format json
    golden "report-$t-peak.folded" "$MEMSNAP_BIN" report "$TR/$t" --format folded
    golden "report-$t-leaks.txt" "$MEMSNAP_BIN" report "$TR/$t" --leaks
    golden "report-$t-threads.json" "$MEMSNAP_BIN" report "$TR/$t" --threads --format json
    golden "report-$t-stats.txt" "$MEMSNAP_BIN" report "$TR/$t" --stats
    golden "report-$t-stats.json" "$MEMSNAP_BIN" report "$TR/$t" --stats --format json
    golden "report-$t-threads-stats.txt" "$MEMSNAP_BIN" report "$TR/$t" --stats --threads
    golden "report-$t-threads-stats.json" "$MEMSNAP_BIN" report "$TR/$t" --stats --threads \
        --format json
    golden "report-$t-diff.txt" "$MEMSNAP_BIN" report "$TR/$t" --diff 0 0.000001
    golden "analyze-$t.txt" "$MEMSNAP_BIN" analyze "$TR/$t"
    golden "analyze-$t.json" "$MEMSNAP_BIN" analyze "$TR/$t" --format json
done
for f in monitor.jsonl monitor.csv clock-step.jsonl odd.jsonl cut.jsonl; do
    golden "analyze-$f.txt" "$MEMSNAP_BIN" analyze "$AN/$f"
    golden "analyze-$f.json" "$MEMSNAP_BIN" analyze "$AN/$f" --format json
done
"$MEMSNAP_BIN" analyze "$AN/monitor.jsonl" --html "$T/a.html" >/dev/null 2>&1
golden analyze-monitor.html cat "$T/a.html"

# Monitor records from the fixture tree: the first sample and the start and end records, with
# every clock, duration and age set to 0 (a full sample, then a light one).
fixture_copy cli-basic "$T/fx"
pin() {
    /usr/bin/python3 -c '
import re, sys
lines = sys.stdin.read().splitlines()
keep = lines[:3] + lines[-1:] if not lines[0].startswith("record,") else lines[:3]
for l in keep:
    l = re.sub(r"\"(time_ns|timestamp_ns|monotonic_ns|pss_age_ns)\":[0-9]+", r"\"\1\":0", l)
    l = re.sub(r"\"samples\":[0-9]+", "\"samples\":0", l)
    if l.startswith(("start,", "sample,", "end,", "alert,")):
        f = l.split(",")
        for i in (2, 6, 7):
            if len(f) > i and f[i]:
                f[i] = "0"
        if f[0] == "sample":
            f[-1] = "0"
        l = ",".join(f)
    print(l)'
}
for kind in monitor track; do
    for fmt in json csv; do
        "$MEMSNAP_BIN" $kind --pid 4242 --procfs "$T/fx/proc" --sysfs "$T/fx/sys" --no-gpu \
            --interval 0.05 --duration 0.12 --format $fmt >"$T/mon" 2>/dev/null
        golden "$kind.$fmt" pin <"$T/mon"
    done
done

finish

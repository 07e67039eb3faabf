#!/usr/bin/env python3
"""make bench, part 3: reading a trace back, memsnap's engine against heaptrack_print.

Usage: engine_bench.py MEMSNAP BUILD_DIR [BASELINE_MEMSNAP]

Records sqlite3 building and indexing SQL_ROWS rows (default 230000: over 10 million events)
once with `memsnap record` and once with `heaptrack`, then times, in the same run (wall clock,
median of ROUNDS runs, default 3):
  - `memsnap report TRACE --peak` (load, replay, peak, symbolized top sites) against
    `heaptrack_print -p 1 -a 0 -T 0 -l 0 FILE` (its peak report alone);
  - `memsnap report TRACE --at T` at a random time, and `--diff T1 T2`;
  - in one process after one load (`memsnap bench engine TRACE`): the replay rate and the cost
    of a snapshot at random times.
Goals (issue 5): the peak report at least 3x faster than heaptrack_print, a snapshot at any
time under 100 ms after the first load, replay at 30M events/s or more.
With BASELINE_MEMSNAP (another build, e.g. before a change), the same reports and the in-process
probe run with it too, on the same trace, the two builds taking turns in every round, and each
line shows both: a before/after comparison from one run.
"""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

memsnap, build = sys.argv[1], sys.argv[2]
baseline = sys.argv[3] if len(sys.argv) > 3 else None
rows = int(os.environ.get("SQL_ROWS", "230000"))
tmp = tempfile.mkdtemp(prefix="memsnap-engine-bench-")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The same workload and timing as the recording bench.
from record_bench import make_sql, median_time, rounds, run  # noqa: E402


def paired(args):
    """Medians of memsnap ARGS and (with a baseline) BASELINE ARGS, the two taking turns."""
    ours, base = [], []
    for r in range(rounds):
        if baseline and r % 2:  # which goes first alternates: neither always finds a warm cache
            base.append(run([baseline] + args))
        ours.append(run([memsnap] + args))
        if baseline and not r % 2:
            base.append(run([baseline] + args))
    med = lambda xs: sorted(xs)[len(xs) // 2] if xs else None  # noqa: E731
    return med(ours), med(base)


def probe_of(binary, trace):
    return json.loads(subprocess.run([binary, "bench", "engine", trace, "--json"],
                                     capture_output=True, text=True, check=True).stdout)


def line(label, ours, base, unit="s", scale=1.0, fmt="%7.3f"):
    text = "  %-44s " % label + fmt % (ours * scale) + " " + unit
    if base is not None:
        text += "   baseline " + fmt % (base * scale) + " " + unit + "   (%+.1f%%)" % (
            (ours / base - 1) * 100 if base else 0)
    print(text)


def main():
    if not shutil.which("heaptrack") or not shutil.which("heaptrack_print"):
        print("engine benchmark: needs heaptrack (make deps installs it)")
        return 1
    sql = os.path.join(tmp, "load.sql")
    make_sql(sql, rows)
    db = os.path.join(tmp, "bench.db")
    trace = os.path.join(tmp, "sqlite.mst")
    run([memsnap, "record", "-o", trace, "--", "sqlite3", db], sql)
    os.unlink(db)
    run(["heaptrack", "-o", os.path.join(tmp, "ht"), "sqlite3", db], sql)
    ht = [os.path.join(tmp, f) for f in os.listdir(tmp) if f.startswith("ht.")][0]
    stats = json.loads(subprocess.run([memsnap, "report", trace, "--stats", "--format", "json"],
                                      capture_output=True, text=True, check=True).stdout)
    events, duration = stats["events"], stats["duration_ns"] / 1e9
    rnd = random.Random(7)
    t_at = rnd.uniform(0.1, 0.9) * duration
    t1, t2 = sorted(rnd.uniform(0.05, 0.95) * duration for _ in range(2))

    peak, peak_b = paired(["report", trace, "--peak"])
    htp = median_time(["heaptrack_print", "-p", "1", "-a", "0", "-T", "0", "-l", "0", ht])
    at, at_b = paired(["report", trace, "--at", "%.6f" % t_at])
    diff, diff_b = paired(["report", trace, "--diff", "%.6f" % t1, "%.6f" % t2])
    probe = probe_of(memsnap, trace)
    pb = probe_of(baseline, trace) if baseline else None

    print("engine benchmark: sqlite3 trace of %.1fM events (%.2f s recorded), median of %d"
          % (events / 1e6, duration, rounds))
    if baseline:
        print("  (baseline: %s)" % baseline)
    print("  %-44s %7.3f s" % ("heaptrack_print, peak report only", htp))
    line("memsnap report --peak", peak, peak_b)
    print("  %-44s %7.1fx faster than heaptrack_print (goal >= 3x)" % ("", htp / peak))
    line("memsnap report --at %.2f s" % t_at, at, at_b)
    line("memsnap report --diff %.2f %.2f" % (t1, t2), diff, diff_b)
    g = (lambda k: pb[k]) if pb else (lambda k: None)
    line("load (in process)", probe["load_ns"] / 1e9, g("load_ns") and g("load_ns") / 1e9)
    line("load + replay pass, whole trace (goal >= 30M)", probe["replay_events_per_s"],
         g("replay_events_per_s"), "M events/s", 1e-6, "%7.1f")
    line("snapshot at a random T, median (goal < 100)", probe["snapshot_ns_median"],
         g("snapshot_ns_median"), "ms", 1e-6, "%7.2f")
    line("snapshot at a random T, worst", probe["snapshot_ns_max"], g("snapshot_ns_max"), "ms",
         1e-6, "%7.2f")
    return 0


try:
    sys.exit(main())
finally:
    shutil.rmtree(tmp, ignore_errors=True)

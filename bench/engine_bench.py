#!/usr/bin/env python3
"""make bench, part 3: reading a trace back, memsnap's engine against heaptrack_print.

Usage: engine_bench.py MEMSNAP BUILD_DIR

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
"""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

memsnap, build = sys.argv[1], sys.argv[2]
rows = int(os.environ.get("SQL_ROWS", "230000"))
tmp = tempfile.mkdtemp(prefix="memsnap-engine-bench-")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The same workload and timing as the recording bench.
from record_bench import make_sql, median_time, rounds, run  # noqa: E402


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

    peak = median_time([memsnap, "report", trace, "--peak"])
    htp = median_time(["heaptrack_print", "-p", "1", "-a", "0", "-T", "0", "-l", "0", ht])
    at = median_time([memsnap, "report", trace, "--at", "%.6f" % t_at])
    diff = median_time([memsnap, "report", trace, "--diff", "%.6f" % t1, "%.6f" % t2])
    probe = json.loads(subprocess.run([memsnap, "bench", "engine", trace, "--json"],
                                      capture_output=True, text=True, check=True).stdout)

    print("engine benchmark: sqlite3 trace of %.1fM events (%.2f s recorded), median of %d"
          % (events / 1e6, duration, rounds))
    print("  %-44s %7.3f s" % ("heaptrack_print, peak report only", htp))
    print("  %-44s %7.3f s   %.1fx faster (goal >= 3x)" % ("memsnap report --peak", peak, htp / peak))
    print("  %-44s %7.3f s" % ("memsnap report --at %.2f s" % t_at, at))
    print("  %-44s %7.3f s" % ("memsnap report --diff %.2f %.2f" % (t1, t2), diff))
    print("  %-44s %7.3f s" % ("load (in process)", probe["load_ns"] / 1e9))
    print("  %-44s %7.1fM events/s (goal >= 30M)" % ("load + replay pass, whole trace", probe["replay_events_per_s"] / 1e6))
    print("  %-44s %7.2f ms (max %.2f ms, goal < 100 ms)"
          % ("snapshot at a random T, after the load", probe["snapshot_ns_median"] / 1e6,
             probe["snapshot_ns_max"] / 1e6))
    return 0


try:
    sys.exit(main())
finally:
    shutil.rmtree(tmp, ignore_errors=True)

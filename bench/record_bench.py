#!/usr/bin/env python3
"""make bench, part 2: the cost of recording every allocation, memsnap against heaptrack.

Usage: record_bench.py MEMSNAP BUILD_DIR

For each workload, in one run: the untracked program, `heaptrack -o FILE prog` and
`memsnap record -o FILE -- prog` are each timed (wall clock, median of ROUNDS runs, default 3).
Printed: the wall time and its ratio to the untracked run, the overhead in ns per event (events
as counted by `memsnap report --stats`, the same program for both tools), the trace's size in
bytes and bytes per event, and the two goals of the allocation-tracking issue: memsnap's
overhead at most a third of heaptrack's, and a smaller trace.

Workloads: sqlite3 (Debian's) inserting SQL_ROWS rows (default 200000) in one transaction and
building two indexes, and bench/alloc_stress (4 threads x 1M malloc/free pairs), the latter also
with --unwind fp and --unwind dwarf to show what each unwinder costs.
"""
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

rounds = int(os.environ.get("ROUNDS", "3"))
rows = int(os.environ.get("SQL_ROWS", "200000"))
memsnap = build = tmp = None  # set by main()


def make_sql(path, rows):
    """The workload: one table, rows inserts in one transaction, two indexes, a query."""
    rnd = random.Random(1)
    with open(path, "w") as f:
        f.write("create table t(id integer primary key, a text, b integer, c real);\nbegin;\n")
        for _ in range(rows):
            text = "".join(rnd.choice("abcdefghij") for _ in range(rnd.randint(5, 40)))
            f.write("insert into t(a, b, c) values('%s', %d, %f);\n"
                    % (text, rnd.randint(0, 10 ** 6), rnd.random()))
        f.write("commit;\ncreate index ia on t(a);\ncreate index ib on t(b);\n"
                "select count(*), sum(b) from t where a like 'abc%';\n")


def run(cmd, stdin_path=None, setup=None):
    """Wall seconds of one run of cmd."""
    if setup:
        setup()
    stdin = open(stdin_path) if stdin_path else subprocess.DEVNULL
    try:
        t0 = time.perf_counter()
        subprocess.run(cmd, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=True)
        return time.perf_counter() - t0
    finally:
        if stdin_path:
            stdin.close()


def median_time(cmd, stdin_path=None, setup=None):
    return statistics.median(run(cmd, stdin_path, setup) for _ in range(rounds))


def stats(trace):
    out = subprocess.run([memsnap, "report", trace, "--stats", "--format", "json"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def heaptrack_version():
    out = subprocess.run(["heaptrack", "--version"], capture_output=True, text=True).stdout
    return out.strip().split()[-1] if out.strip() else "?"


def bench(title, cmd, stdin_path=None, setup=None, unwinders=("auto",)):
    ht_base = os.path.join(tmp, "ht")
    ms_file = os.path.join(tmp, "trace.mst")

    def clean_ht():
        for f in os.listdir(tmp):
            if f.startswith("ht."):
                os.unlink(os.path.join(tmp, f))
        if setup:
            setup()

    base = median_time(cmd, stdin_path, setup)
    ht = median_time(["heaptrack", "-o", ht_base] + cmd, stdin_path, clean_ht)
    ht_files = [f for f in os.listdir(tmp) if f.startswith("ht.")]
    ht_size = os.path.getsize(os.path.join(tmp, ht_files[0])) if ht_files else 0
    ms = {}
    for u in unwinders:
        ms[u] = median_time([memsnap, "record", "-o", ms_file, "--unwind", u, "--"] + cmd,
                            stdin_path, setup)
        if u == "auto":
            st = stats(ms_file)
            ms_size = os.path.getsize(ms_file)
    events = st["events"]
    print("  %s: %.1fM events" % (title, events / 1e6))

    def row(name, t, size=None):
        line = "    %-26s %7.2f s  %6.2fx" % (name, t, t / base)
        if t is not base:
            line += "  %6.0f ns/event" % ((t - base) * 1e9 / events)
        if size is not None:
            line += "  %10d B trace  %6.3f B/event" % (size, size / events)
        print(line)

    row("untracked", base)
    row("heaptrack " + heaptrack_version(), ht, ht_size)
    for u in unwinders:
        row("memsnap record" + ("" if u == "auto" else " --unwind " + u), ms[u],
            ms_size if u == "auto" else None)
    over = (ms["auto"] - base) / (ht - base) if ht > base else float("nan")
    print("    memsnap's overhead is %.2f of heaptrack's (goal <= 0.33); its trace is %.2fx "
          "heaptrack's (goal < 1)" % (over, ms_size / ht_size if ht_size else float("nan")))


def main():
    global memsnap, build, tmp
    memsnap, build = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp(prefix="memsnap-bench-")
    try:
        return run_all()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_all():
    if not shutil.which("heaptrack") or not shutil.which("sqlite3"):
        print("recording benchmark: needs heaptrack and sqlite3 (make deps installs them)")
        return 1
    sql = os.path.join(tmp, "load.sql")
    make_sql(sql, rows)
    db = os.path.join(tmp, "bench.db")

    def fresh_db():
        if os.path.exists(db):
            os.unlink(db)

    print("recording benchmark: wall time, median of %d rounds" % rounds)
    bench("sqlite3, %d rows and 2 indexes" % rows, ["sqlite3", db], sql, fresh_db)
    stress = os.path.join(build, "bench", "alloc_stress")
    bench("alloc_stress, 4 threads x 1M malloc/free pairs", [stress, "4", "1000000"],
          unwinders=("auto", "fp", "dwarf"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""make bench: how fast `memsnap analyze` reads monitor output.

Usage: analyze_bench.py MEMSNAP [SAMPLES] [BASELINE]

Writes SAMPLES samples (default 1,000,000; env SAMPLES too) of monitor output in both formats
with tests/analyze/gen_monitor.py (the 'big' scenario: a full snapshot per sample, a slow leak
under noise), then times, in the same run, `memsnap analyze FILE --format json` (everything:
reading, the summary, the trend and the spikes of every metric; wall clock, median of ROUNDS
runs, default 3), `wc -l FILE` (reading the file once, the floor), and Python's own readers of
the same file, json.loads per line and csv.reader (one run each, in this process), and prints
samples per second, MB per second and the ratios. The goal: a million samples in under a
second. With BASELINE (another memsnap binary, env BASELINE too: a build before a change),
the same files are analyzed by it too, in the same run, and the ratio is printed.
"""
import csv
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "analyze"))
from record_bench import median_time, rounds  # noqa: E402
import gen_monitor  # noqa: E402


def python_json(path):
    t0 = time.perf_counter()
    n = 0
    with open(path) as fp:
        for line in fp:
            if json.loads(line)["record"] == "sample":
                n += 1
    return time.perf_counter() - t0


def python_csv(path):
    t0 = time.perf_counter()
    with open(path, newline="") as fp:
        n = sum(1 for row in csv.reader(fp) if row[0] == "sample")
    assert n
    return time.perf_counter() - t0


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    memsnap = sys.argv[1]
    samples = int(sys.argv[2] if len(sys.argv) > 2 else os.environ.get("SAMPLES", "1000000"))
    baseline = sys.argv[3] if len(sys.argv) > 3 else os.environ.get("BASELINE")
    with tempfile.TemporaryDirectory(prefix="memsnap-analyze-bench.") as tmp:
        t0 = time.perf_counter()
        gen_monitor.big(tmp, samples)
        print("analyze benchmark: %d samples written in %.1f s, median of %d rounds"
              % (samples, time.perf_counter() - t0, rounds))
        for fmt, peer_name, peer in (("csv", "python3 csv.reader", python_csv),
                                     ("jsonl", "python3 json.loads per line", python_json)):
            path = os.path.join(tmp, "big." + fmt)
            size = os.path.getsize(path)
            out = os.path.join(tmp, "out.json")
            t_ms = median_time(["sh", "-c", '"$0" analyze "$1" --format json > "$2"', memsnap,
                                path, out])
            with open(out) as fp:
                got = json.load(fp)["samples"]
            if got != samples:
                sys.exit("analyze read %d samples of %s, not %d" % (got, path, samples))
            t_base = None
            if baseline:
                t_base = median_time(["sh", "-c", '"$0" analyze "$1" --format json > "$2"',
                                      baseline, path, out])
            t_wc = median_time(["wc", "-l", path])
            t_py = peer(path)
            print("  %s: %.0f MB, %d bytes/sample" % (fmt, size / 1e6, size // samples))
            print("    memsnap analyze               %7.3f s  %6.2f M samples/s  %6.0f MB/s  "
                  "(goal < 1 s per million)" % (t_ms, samples / t_ms / 1e6, size / t_ms / 1e6))
            if t_base is not None:
                print("    baseline %-20s %7.3f s  this build takes %.2fx its time"
                      % (os.path.basename(os.path.dirname(os.path.dirname(os.path.dirname(
                          os.path.abspath(baseline))))) or "binary", t_base, t_ms / t_base))
            print("    wc -l (reading it once)       %7.3f s  analyze is %.1fx that"
                  % (t_wc, t_ms / t_wc))
            print("    %-29s %7.3f s  analyze is %.1fx faster" % (peer_name, t_py, t_py / t_ms))


if __name__ == "__main__":
    main()

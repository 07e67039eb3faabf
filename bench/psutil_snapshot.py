"""Times psutil's memory_info() and memory_full_info() on one PID, the peer of
`memsnap bench snapshot`. Prints JSON: {"psutil_basic_ns": ..., "psutil_full_ns": ...}.

Usage: python3 bench/psutil_snapshot.py PID [ROUNDS]
Median of ROUNDS rounds, each about 40 ms per measured call, like memsnap's own bench.
"""
import json
import statistics
import sys
import time

import psutil


def per_call_ns(fn, target_ns=40e6):
    """Calibrates an iteration count, then returns the ns per call of one round."""
    n = 100
    t0 = time.perf_counter_ns()
    for _ in range(n):
        fn()
    per = (time.perf_counter_ns() - t0) / n
    n = max(100, int(target_ns / max(per, 1.0)))
    t0 = time.perf_counter_ns()
    for _ in range(n):
        fn()
    return (time.perf_counter_ns() - t0) / n


def main():
    pid = int(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    proc = psutil.Process(pid)
    basic = [per_call_ns(proc.memory_info) for _ in range(rounds)]
    full = [per_call_ns(proc.memory_full_info) for _ in range(rounds)]
    print(json.dumps({
        "psutil_version": psutil.__version__,
        "psutil_basic_ns": statistics.median(basic),
        "psutil_full_ns": statistics.median(full),
    }))


if __name__ == "__main__":
    main()

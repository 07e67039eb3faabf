"""make bench: the Python extension's capture against psutil, in one interpreter, on this
process: memsnap.capture_memory_snapshot(include_gpu=False) against psutil's
Process().memory_info() (both read /proc/self/statm), and full=True against
memory_full_info(). Prints both times, the ratios and how many figures each returns (the full capture also reads
status, stat, meminfo and the cgroup: 10 files to psutil's 2). Also the cost of one sample of
memsnap.Sampler (the library's sampler, statm only between full samples) run flat out.

Usage: /usr/bin/python3 bench/python_bench.py BUILD [ROUNDS]
(/usr/bin/python3: Debian's, with python3-psutil, the interpreter the extension is built for.)
The median of ROUNDS rounds (default 7), the two sides alternating within each round.
"""
import os
import platform
import statistics
import sys

from psutil_snapshot import per_call_ns  # the calibrated loop of bench/run.sh's psutil side

import psutil


def figures(snap):
    """The figures a snapshot holds: its non-None numbers, gc counts one per generation."""
    n = 0
    for key, value in snap.to_dict().items():
        if key.endswith("_mb") or key in ("label", "full", "timestamp") or value is None:
            continue
        n += len(value) if isinstance(value, (tuple, list)) else 1
    return n


def main():
    build = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    sys.path.insert(0, os.path.join(build, "bindings", "python"))
    import memsnap

    proc = psutil.Process()
    capture = memsnap.capture_memory_snapshot

    def basic():
        return capture(include_gpu=False)

    def full():
        return capture(include_gpu=False, full=True)

    # the library's sampler flat out (1 ns interval: every sample is due), full figures once a
    # minute: what one light sample costs a Python caller, the MemorySnapshot included
    sampler = memsnap.Sampler(0, 1e-9, 60, gpu=False)

    def sample():
        return next(sampler)

    sample()  # the first, full, sample
    cases = [basic, proc.memory_info, full, proc.memory_full_info, sample]
    times = {c: [] for c in cases}
    for _ in range(rounds):
        for c in cases:
            times[c].append(per_call_ns(c))
    med = {c: statistics.median(t) / 1000.0 for c, t in times.items()}

    print("python benchmark: this process, median of %d rounds (Python %s, psutil %s)"
          % (rounds, platform.python_version(), psutil.__version__))
    rows = [
        ("memsnap capture (include_gpu=False)", basic, figures(basic()), None),
        ("psutil memory_info()", proc.memory_info, len(proc.memory_info()), basic),
        ("memsnap capture (full=True)", full, figures(full()), None),
        ("psutil memory_full_info()", proc.memory_full_info, len(proc.memory_full_info()), full),
        ("memsnap Sampler next() (statm sample)", sample, figures(sample()), None),
    ]
    for label, fn, nfig, peer in rows:
        line = "  %-38s %8.2f us   %2d figures" % (label, med[fn], nfig)
        if peer is not None:
            ratio = med[fn] / med[peer]
            if ratio >= 1:
                line += "   memsnap is %.1fx faster" % ratio
            else:
                line += "   memsnap is %.1fx slower" % (1 / ratio)
            if peer is basic:
                line += " (goal >= 4x)"
        print(line)
    sampler.close()


if __name__ == "__main__":
    main()

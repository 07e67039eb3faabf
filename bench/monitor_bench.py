"""make bench: what `memsnap monitor` costs at a 1 ms interval, against its peers in the same run.

Usage: python3 bench/monitor_bench.py MEMSNAP [SECONDS] [ROUNDS] [--baseline OTHER_MEMSNAP]

Each contender samples one target process every millisecond for SECONDS (default 5), ROUNDS
times (default 3, the contenders taking turns so that the machine's noise falls on all of
them); its own CPU time (user + system, from wait4's rusage: the kernel's exact runtime)
divided by the wall time is one measure, and the median of the rounds is printed. On an idle
`sleep`:

  floor          a C loop that only sleeps on the same absolute 1 ms schedule
                 (clock_nanosleep TIMER_ABSTIME, compiled here with cc; the wakeups alone,
                 the least any 1 ms sampler can cost; a Python loop when there is no cc)
  minimum        the same loop that also preads the target's statm and writes a 1 KB line
                 each tick: the least a sampler can do that keeps every sample (no parsing,
                 no formatting)
  memsnap        memsnap monitor --interval 0.001 (the default: full figures every 100 ms,
                 statm between, PSS walks held to 1% of a core)
  memsnap full   memsnap monitor --interval 0.001 --full-interval 0 (every file every sample)
  psutil         a Python loop doing what memsnap's default does with psutil: memory_info()
                 every sample, memory_full_info() + virtual_memory() every 100th, one JSON
                 line each

and on a process holding 1 GiB in 4 KiB pages, where the kernel's page-table walk for PSS
(smaps_rollup) takes milliseconds:

  memsnap 1G     the default
  memsnap 1G 10ms  --full-interval 0.01: a walk every 10 ms, as memsnap did before the walk
                 budget

With --baseline, another build of memsnap (the one before a change) takes the same turns as
"baseline" and "baseline full" (and the 1G rows), so that the two are compared in one run.

memsnap's goal is under 2% of one core. The wakeups are a property of the machine: on a VM
with expensive timer interrupts and system calls, the floor and the minimum alone may come
close to 2%, so the script prints memsnap's cost above both.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

FLOOR_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv)
{
    char path[64], buf[256], line[1024];
    int in = -1, out = -1;
    if (argc > 3) { /* the minimum sampler: pread statm, write a 1 KB line */
        snprintf(path, sizeof(path), "/proc/%s/statm", argv[1]);
        in = open(path, O_RDONLY);
        out = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (in < 0 || out < 0)
            return 1;
        memset(line, 'x', sizeof(line));
        line[sizeof(line) - 1] = '\n';
    }
    struct timespec t, end;
    clock_gettime(CLOCK_MONOTONIC, &t);
    double s = atof(argv[2]);
    end.tv_sec = t.tv_sec + (time_t)s;
    end.tv_nsec = t.tv_nsec + (long)((s - (double)(time_t)s) * 1e9);
    for (;;) {
        t.tv_nsec += 1000000;
        if (t.tv_nsec >= 1000000000) {
            t.tv_nsec -= 1000000000;
            t.tv_sec++;
        }
        if (t.tv_sec > end.tv_sec || (t.tv_sec == end.tv_sec && t.tv_nsec >= end.tv_nsec))
            return 0;
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL);
        if (in >= 0 && (pread(in, buf, sizeof(buf), 0) < 0 || write(out, line, sizeof(line)) < 0))
            return 1;
    }
}
"""

# The peers, as small Python programs: argv[1] the target pid, argv[2] seconds, argv[3] the
# output file.
FLOOR = r"""
import sys, time
end = time.monotonic() + float(sys.argv[2]); nxt = time.monotonic()
while True:
    nxt += 0.001
    if nxt >= end: break
    d = nxt - time.monotonic()
    if d > 0: time.sleep(d)
"""

PSUTIL = r"""
import json, sys, time, psutil
p = psutil.Process(int(sys.argv[1])); out = open(sys.argv[3], "w")
end = time.monotonic() + float(sys.argv[2]); nxt = time.monotonic(); n = 0; full = {}
while True:
    if n % 100 == 0:
        full = p.memory_full_info()._asdict(); full.update(
            {"sys_" + k: v for k, v in psutil.virtual_memory()._asdict().items()})
    rec = {"record": "sample", "seq": n, "time_ns": time.time_ns(), "basic": p.memory_info()._asdict(),
           "full": full}
    out.write(json.dumps(rec) + "\n"); out.flush(); n += 1
    nxt += 0.001
    if nxt >= end: break
    d = nxt - time.monotonic()
    if d > 0: time.sleep(d)
"""


def measure(argv, seconds, out_path):
    """Runs argv, returns (cpu percent of one core, lines written to out_path, wall s)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    if status != 0:
        raise SystemExit("monitor_bench: %s failed (status %d)" % (argv[:3], status))
    lines = 0
    if out_path and os.path.exists(out_path):
        with open(out_path, "rb") as fp:
            lines = sum(1 for _ in fp)
    return 100.0 * (ru.ru_utime + ru.ru_stime) / max(wall, seconds), lines, wall


BIG = r"""
import mmap, sys, time
m = mmap.mmap(-1, 1 << 30)
m.madvise(mmap.MADV_NOHUGEPAGE)
for i in range(0, 1 << 30, 4096): m[i] = 1
open(sys.argv[1], "w").close()
time.sleep(float(sys.argv[2]))
"""


def median(v):
    v = sorted(v)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


def main():
    args = sys.argv[1:]
    baseline = None
    if "--baseline" in args:
        i = args.index("--baseline")
        if i + 1 >= len(args):
            raise SystemExit("monitor_bench: --baseline needs a memsnap binary")
        baseline = args[i + 1]
        del args[i:i + 2]
    if not args:
        raise SystemExit(__doc__.split("\n\n")[1])
    memsnap = args[0]
    seconds = float(args[1]) if len(args) > 1 else 5.0
    rounds = int(args[2]) if len(args) > 2 else 3
    tmp = tempfile.mkdtemp(prefix="memsnap-monbench.")
    target = subprocess.Popen(["sleep", "100000"])  # killed at the end
    ready = os.path.join(tmp, "big.ready")
    big = subprocess.Popen([PY, "-c", BIG, ready, "100000"])
    try:
        floor = [PY, "-c", FLOOR]
        src, exe = os.path.join(tmp, "floor.c"), os.path.join(tmp, "floor")
        with open(src, "w") as fp:
            fp.write(FLOOR_C)
        if subprocess.run(["cc", "-O2", "-o", exe, src], stderr=subprocess.DEVNULL).returncode == 0:
            floor = [exe]
        else:
            print("monitor_bench: no C compiler: the floor is a Python loop (an overestimate)")
        have_psutil = subprocess.run([PY, "-c", "import psutil"],
                                     stderr=subprocess.DEVNULL).returncode == 0
        if not have_psutil:
            print("monitor_bench: psutil is not installed (make deps): no psutil row")
        while big.poll() is None and not os.path.exists(ready):
            time.sleep(0.1)

        def mon(pid, extra, binary=memsnap):
            return lambda out: [binary, "monitor", "--pid", str(pid), "--interval", "0.001",
                                "--duration", str(seconds), "--no-gpu", "-o", out] + extra

        rows = [("floor", lambda out: floor + [str(target.pid), str(seconds)], False)]
        if floor[0] == exe:
            rows.append(("minimum", lambda out: [exe, str(target.pid), str(seconds), out], True))
        rows += [("memsnap", mon(target.pid, []), True),
                 ("memsnap full", mon(target.pid, ["--full-interval", "0"]), True)]
        if baseline:
            rows += [("baseline", mon(target.pid, [], baseline), True),
                     ("baseline full", mon(target.pid, ["--full-interval", "0"], baseline), True)]
        if have_psutil:
            rows.append(("psutil", lambda out: [PY, "-c", PSUTIL, str(target.pid), str(seconds),
                                                out], True))
        if big.poll() is None:
            rows += [("memsnap 1G", mon(big.pid, []), True),
                     ("memsnap 1G 10ms", mon(big.pid, ["--full-interval", "0.01"]), True)]
            if baseline:
                rows.append(("baseline 1G", mon(big.pid, [], baseline), True))
        else:
            print("monitor_bench: the 1 GiB target did not start: no 1G rows")
        res = {name: [] for name, _, _ in rows}
        for _ in range(rounds):
            for name, argv, writes in rows:
                out = os.path.join(tmp, "out") if writes else None
                res[name].append(measure(argv(out), seconds, out))
    finally:
        for p in (target, big):
            p.kill()
            p.wait()
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)

    pct = {k: median([r[0] for r in v]) for k, v in res.items()}
    print("monitor benchmark: a target sampled every 1 ms for %g s, %d rounds; CPU of one core "
          "(median, then every round)" % (seconds, rounds))
    for name, runs in res.items():
        lines, wall = runs[-1][1], runs[-1][2]
        rate = "" if name == "floor" else "%6d records (%.0f/s)" % (lines, lines / wall)
        print("  %-16s %6.2f%%  [%s]  %s" % (name, pct[name],
                                              " ".join("%.2f" % r[0] for r in runs), rate))
    ms = pct["memsnap"]
    print("  memsnap at 1 ms: %.2f%% of a core (goal < 2%%: %s); %.2f%% above the floor"
          % (ms, "under" if ms < 2.0 else "over", ms - pct["floor"]))
    if "minimum" in pct:
        print("  memsnap above the minimum sampler: %.2f%% of a core" % (ms - pct["minimum"]))
    if "baseline" in pct:
        print("  memsnap / baseline: %.2f%% / %.2f%% (default), %.2f%% / %.2f%% (full)"
              % (ms, pct["baseline"], pct["memsnap full"], pct["baseline full"]))
    if "psutil" in pct:
        print("  psutil-equivalent / memsnap: %.1fx the CPU" % (pct["psutil"] / ms))
    if "memsnap 1G" in pct:
        print("  1 GiB target: the walk budget takes memsnap from %.2f%% to %.2f%% (%.1fx)"
              % (pct["memsnap 1G 10ms"], pct["memsnap 1G"],
                 pct["memsnap 1G 10ms"] / pct["memsnap 1G"]))
    print(json.dumps({k: round(v, 3) for k, v in pct.items()}))


if __name__ == "__main__":
    main()

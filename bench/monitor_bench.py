"""make bench: what `memsnap monitor` costs at a 1 ms interval, against its peers in the same run.

Usage: python3 bench/monitor_bench.py MEMSNAP [SECONDS]

One idle target process (a sleeping `sleep`) is sampled every millisecond for SECONDS (default
10) by each contender, and each contender's own CPU time (user + system, from wait4's rusage:
the kernel's exact runtime) is divided by the wall time:

  floor          a C loop that only sleeps on the same absolute 1 ms schedule
                 (clock_nanosleep TIMER_ABSTIME, compiled here with cc; the wakeups alone,
                 the least any 1 ms sampler can cost; a Python loop when there is no cc)
  minimum        the same loop that also preads the target's statm and writes a 1 KB line
                 each tick: the least a sampler can do that keeps every sample (no parsing,
                 no formatting)
  memsnap        memsnap monitor --interval 0.001 (full figures every 10 ms, statm between:
                 the default)
  memsnap full   memsnap monitor --interval 0.001 --full-interval 0 (every file every sample)
  psutil         a Python loop doing what the default does with psutil: memory_info() every
                 sample, memory_full_info() + virtual_memory() every 10th, one JSON line each

memsnap's goal is under 2% of one core. The wakeups are a property of the machine: on a VM
with expensive timer interrupts the floor alone may pass 2%, so the script prints memsnap's
cost above the floor too.
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
    if n % 10 == 0:
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


def main():
    memsnap = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    target = subprocess.Popen(["sleep", str(int(seconds * 6 + 60))])
    tmp = tempfile.mkdtemp(prefix="memsnap-monbench.")
    try:
        res = {}
        floor = [PY, "-c", FLOOR]
        src, exe = os.path.join(tmp, "floor.c"), os.path.join(tmp, "floor")
        with open(src, "w") as fp:
            fp.write(FLOOR_C)
        if subprocess.run(["cc", "-O2", "-o", exe, src], stderr=subprocess.DEVNULL).returncode == 0:
            floor = [exe]
        else:
            print("monitor_bench: no C compiler: the floor is a Python loop (an overestimate)")
        res["floor"] = measure(floor + [str(target.pid), str(seconds)], seconds, None)
        if floor[0] == exe:
            out = os.path.join(tmp, "minimum.txt")
            res["minimum"] = measure([exe, str(target.pid), str(seconds), out], seconds, out)
        for name, extra in (("memsnap", []), ("memsnap full", ["--full-interval", "0"])):
            out = os.path.join(tmp, name.replace(" ", "_") + ".jsonl")
            res[name] = measure([memsnap, "monitor", "--pid", str(target.pid), "--interval",
                                 "0.001", "--duration", str(seconds), "--no-gpu", "-o", out]
                                + extra, seconds, out)
        try:
            subprocess.run([PY, "-c", "import psutil"], check=True, stderr=subprocess.DEVNULL)
            out = os.path.join(tmp, "psutil.jsonl")
            res["psutil"] = measure([PY, "-c", PSUTIL, str(target.pid), str(seconds), out],
                                    seconds, out)
        except subprocess.CalledProcessError:
            print("monitor_bench: psutil is not installed (make deps): no psutil row")
    finally:
        target.kill()
        target.wait()
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)

    floor = res["floor"][0]
    ms = res["memsnap"][0]
    print("monitor benchmark: one target sampled every 1 ms for %g s; CPU of one core" % seconds)
    for name, (pct, lines, wall) in res.items():
        rate = "" if name == "floor" else "%6d records (%.0f/s)" % (lines, lines / wall)
        print("  %-14s %6.2f%%   %5.2f%% above the floor   %s" % (name, pct, pct - floor, rate))
    verdict = "under" if ms < 2.0 else ("over; %.2f%% above the floor" % (ms - floor))
    print("  memsnap at 1 ms: %.2f%% of a core (goal < 2%%: %s)" % (ms, verdict))
    if "minimum" in res:
        print("  memsnap above the minimum sampler: %.2f%% of a core"
              % (ms - res["minimum"][0]))
    if "psutil" in res:
        print("  psutil-equivalent / memsnap: %.1fx the CPU (%.1fx above the floor)"
              % (res["psutil"][0] / ms, (res["psutil"][0] - floor) / max(ms - floor, 0.01)))
    print(json.dumps({k: round(v[0], 3) for k, v in res.items()}))


if __name__ == "__main__":
    main()

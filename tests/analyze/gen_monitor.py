#!/usr/bin/env python3
"""gen_monitor.py - monitor output (docs/monitor-format.md) with exactly known figures, for the
`memsnap analyze` tests and bench/analyze_bench.py.

usage: gen_monitor.py SCENARIO OUTDIR [N]

Writes OUTDIR/SCENARIO.csv and OUTDIR/SCENARIO.jsonl, the same records in both formats, and
OUTDIR/SCENARIO.expect.json: what analyze must find, computed here on its own (nearest-rank
percentiles, the first sample at the maximum, the planted spikes, the true slope and the
severity the documented rules give). Scenarios:

  known     100 samples whose process RSS is a permutation of 1..100 MiB, every metric present
  leak      600 samples, RSS growing 100 KiB/s under +-2 MiB of noise: a high leak
  slowleak  600 samples, RSS growing 5 KiB/s under +-2 MiB of noise: a low leak
  steady    600 samples, RSS growing by 4 KiB every sample, no noise: medium (steady growth)
  flat      600 samples, 100 MiB +-2 MiB of noise: no leak
  spikes    400 samples, 200 MiB +-1 MiB with +80 MiB spikes at samples 50, 123 and 300
  staircase 300 samples, 100 MiB +-256 KiB growing 10 MiB every 5 samples (10 MiB every 50 ms
            at a 10 ms interval) for 55 samples, then released back to 100 MiB: no spikes
            (a lasting step is growth, however it ends)
  excursions 400 samples, 200 MiB +-1 MiB with excursions of 1, 2, 3 and 5 samples that
            rise 50 MiB and more and come back down: one spike each, at its highest sample
  events    200 samples with a start record (limits, thresholds), alerts, a marker, an OOM
            record and an end record
  big       N samples (default 1000000) like leak, written fast, for the benchmark

The JSON lines use the key order of a fixed writer; the CSV has every column of the format.
"""
import json
import os
import random
import sys

MiB = 1 << 20
GiB = 1 << 30
T0 = 1795400000000000000  # the start record's time_ns; sample i is at T0 + (i + 1) s

PROCESS = ["rss_bytes", "vms_bytes", "shared_bytes", "text_bytes", "data_bytes",
           "peak_rss_bytes", "peak_vms_bytes", "swap_bytes", "rss_anon_bytes", "rss_file_bytes",
           "rss_shmem_bytes", "pss_bytes", "uss_bytes", "minor_faults", "major_faults", "threads"]
SYSTEM = ["total_bytes", "available_bytes", "free_bytes", "swap_total_bytes", "swap_free_bytes"]
CGROUP = ["current_bytes", "max_bytes", "peak_bytes", "oom_kills"]
CSV_HEADER = (["record", "seq", "time_ns", "job_id", "rank", "world_size",
               "timestamp_ns", "monotonic_ns", "label", "pid"] +
              ["process." + f for f in PROCESS] + ["system." + f for f in SYSTEM] +
              ["cgroup.version", "cgroup.path", "cgroup.unlimited"] +
              ["cgroup." + f for f in CGROUP] +
              ["gpu.count", "gpu.total_bytes", "gpu.used_bytes", "gpu.process_used_bytes",
               "tree.processes", "tree.rss_bytes", "tree.pss_bytes",
               "event.level", "event.metric", "event.used_bytes", "event.limit_bytes",
               "event.percent", "event.text", "full"])
SYS_TOTAL = 16 * GiB
PID = 4242


def sample(i, rss, pss=None, cgroup=None, cg_max=None, sys_used=None, gpus=None, tree=None):
    """One sample: the metrics analyze reads, the rest derived."""
    return {"seq": i, "time_ns": T0 + (i + 1) * 10**9, "rss": rss, "pss": pss, "cgroup": cgroup,
            "cg_max": cg_max, "sys_used": sys_used, "gpus": gpus or [], "tree": tree}


def snapshot(s):
    """The snapshot object, as `memsnap snapshot --format json --full` writes it."""
    rss = s["rss"]
    proc = {f: None for f in PROCESS}
    proc.update(rss_bytes=rss, vms_bytes=rss * 3, shared_bytes=rss // 8, text_bytes=4096,
                data_bytes=rss // 2, swap_bytes=0, pss_bytes=s["pss"], threads=1,
                minor_faults=s["seq"] * 10, major_faults=0)
    used = s["sys_used"]
    system = {"total_bytes": SYS_TOTAL,
              "available_bytes": SYS_TOTAL - used if used is not None else None,
              "free_bytes": SYS_TOTAL // 2, "swap_total_bytes": 0, "swap_free_bytes": 0}
    cg = {"version": 2, "path": "/user.slice/test", "unlimited": s["cg_max"] is None,
          "current_bytes": s["cgroup"], "max_bytes": s["cg_max"], "peak_bytes": None,
          "oom_kills": 0}
    gpus = [{"index": k, "backend": "nvml", "name": "Fake GPU", "uuid": "GPU-%d" % k,
             "pci_bus_id": "00000000:0%d:00.0" % k, "total_bytes": total, "free_bytes":
             total - used_g, "used_bytes": used_g, "reserved_bytes": None,
             "process_used_bytes": None, "is_per_process": False, "processes": []}
            for k, (used_g, total) in enumerate(s["gpus"])]
    return {"schema": "memsnap.snapshot/1", "timestamp_ns": s["time_ns"],
            "monotonic_ns": 5 * 10**12 + s["time_ns"] - T0, "label": None, "pid": PID,
            "process": proc, "system": system, "cgroup": cg, "gpus": gpus}


def ident():
    return {"job_id": None, "rank": None, "world_size": None}


def sample_json(s):
    o = {"record": "sample", "time_ns": s["time_ns"]}
    o.update(ident())
    o["seq"] = s["seq"]
    o["snapshot"] = snapshot(s)
    if s["tree"] is not None:
        o["tree"] = {"processes": 2, "rss_bytes": s["tree"], "pss_bytes": None,
                     "members": [{"pid": PID, "ppid": 1, "comm": "app", "rss_bytes": s["rss"],
                                  "pss_bytes": None}]}
    return o


def cell(v):
    if v is None:
        return ""
    if v is True or v is False:
        return "true" if v else "false"
    v = str(v)
    if any(c in v for c in ',"\n\r'):
        return '"' + v.replace('"', '""') + '"'
    return v


def sample_csv(s):
    snap = snapshot(s)
    row = {"record": "sample", "seq": s["seq"], "time_ns": s["time_ns"],
           "timestamp_ns": snap["timestamp_ns"], "monotonic_ns": snap["monotonic_ns"],
           "label": None, "pid": PID}
    for sec in ("process", "system"):
        for k, v in snap[sec].items():
            row[sec + "." + k] = v
    for k, v in snap["cgroup"].items():
        row["cgroup." + k] = v
    if s["gpus"]:
        row["gpu.count"] = len(s["gpus"])
        row["gpu.total_bytes"] = sum(t for _, t in s["gpus"])
        row["gpu.used_bytes"] = sum(u for u, _ in s["gpus"])
    else:
        row["gpu.count"] = 0
    if s["tree"] is not None:
        row.update({"tree.processes": 2, "tree.rss_bytes": s["tree"]})
    return ",".join(cell(row.get(c)) for c in CSV_HEADER)


def event_json(e):
    o = {"record": e["record"], "time_ns": e["time_ns"]}
    o.update(ident())
    o.update({k: v for k, v in e.items() if k not in ("record", "time_ns", "csv")})
    return o


def event_csv(e):
    row = {"record": e["record"], "time_ns": e["time_ns"]}
    row.update(e.get("csv", {}))
    return ",".join(cell(row.get(c)) for c in CSV_HEADER)


def write(outdir, name, samples, events, expect):
    """Writes both formats, every record in time order (events before samples at a tie)."""
    records = [(e["time_ns"], 0, e) for e in events] + [(s["time_ns"], 1, s) for s in samples]
    records.sort(key=lambda r: (r[0], r[1]))
    with open(os.path.join(outdir, name + ".jsonl"), "w") as js, \
            open(os.path.join(outdir, name + ".csv"), "w") as cs:
        cs.write(",".join(CSV_HEADER) + "\n")
        for _, is_sample, r in records:
            js.write(json.dumps(sample_json(r) if is_sample else event_json(r),
                                separators=(",", ":")) + "\n")
            cs.write((sample_csv(r) if is_sample else event_csv(r)) + "\n")
    with open(os.path.join(outdir, name + ".expect.json"), "w") as fp:
        json.dump(expect, fp, indent=1)


def summary(samples, key):
    """min, max, mean, nearest-rank percentiles and the first peak, over the samples with key."""
    vals = [(s[key], s) for s in samples if s[key] is not None]
    xs = sorted(v for v, _ in vals)
    n = len(xs)
    rank = lambda p: xs[max(1, -(-p * n // 100)) - 1]  # ceil(p * n / 100), 1-based
    peak = max(vals, key=lambda v: v[0])  # max() keeps the first of equal values
    return {"samples": n, "min": xs[0], "max": xs[-1], "mean": sum(xs) / n, "p50": rank(50),
            "p90": rank(90), "p99": rank(99), "peak_seq": peak[1]["seq"],
            "peak_time_ns": peak[1]["time_ns"], "peak_offset_s": (peak[1]["time_ns"] - T0) / 1e9}


def start_event(cg_max=None, warning=None, critical=None):
    """The start record; in CSV its fields are event.text's key=value pairs."""
    limits = {"cgroup_max_bytes": cg_max, "system_total_bytes": SYS_TOTAL,
              "gpu_total_bytes": None}
    th = {"warning_pct": warning, "critical_pct": critical}
    kv = [("pid", PID), ("interval_s", 1), ("full_interval_s", 1), ("tree", "true")]
    kv += list(limits.items()) + list(th.items())
    kv += [("memory_limit_bytes", None), ("trace", None), ("command", "app --serve")]
    text = ";".join("%s=%s" % (k, "" if v is None else v) for k, v in kv)
    return {"record": "start", "time_ns": T0, "schema": "memsnap.monitor/1", "pid": PID,
            "command": ["app", "--serve"], "interval_s": 1.0, "full_interval_s": 1.0,
            "tree": True, "limits": limits, "thresholds": th, "memory_limit_bytes": None,
            "trace": None, "csv": {"event.text": text}}


def known(outdir, n):
    samples = []
    for i in range(100):
        rss = ((i * 37) % 100 + 1) * MiB
        samples.append(sample(i, rss, pss=rss // 2 + 12345, cgroup=rss + 10 * MiB, cg_max=GiB,
                              sys_used=4 * GiB + rss, gpus=[(GiB + i * MiB, 80 * GiB),
                                                            (2 * GiB, 80 * GiB)],
                              tree=rss + 5 * MiB))
    keys = {"process_rss": "rss", "process_pss": "pss", "cgroup_current": "cgroup",
            "system_used": "sys_used", "tree_rss": "tree"}
    for s in samples:
        s["gpu_used"] = sum(u for u, _ in s["gpus"])
    keys["gpu_used"] = "gpu_used"
    expect = {"samples": 100,
              "metrics": {k: summary(samples, v) for k, v in keys.items()}}
    write(outdir, "known", samples, [start_event(cg_max=GiB)], expect)


def trend_case(outdir, name, n, base, slope_per_s, noise, severity, step=None):
    rnd = random.Random(name)
    samples = []
    for i in range(n):
        t = i + 1
        v = base + (step * i if step else slope_per_s * t) + \
            (rnd.randint(-noise, noise) if noise else 0)
        samples.append(sample(i, v, cgroup=v + 10 * MiB, sys_used=4 * GiB + v))
    slope = step if step else slope_per_s
    write(outdir, name, samples, [start_event()],
          {"samples": n, "slope": slope, "severity": severity,
           "metrics": {"process_rss": summary(samples, "rss")}})


def spikes(outdir, n):
    rnd = random.Random("spikes")
    planted = [50, 123, 300]
    samples = []
    for i in range(400):
        v = 200 * MiB + rnd.randint(-MiB, MiB) + (80 * MiB if i in planted else 0)
        samples.append(sample(i, v))
    write(outdir, "spikes", samples, [start_event()],
          {"samples": 400, "spikes": planted, "metrics": {"process_rss": summary(samples, "rss")}})


def staircase(outdir, n):
    rnd = random.Random("staircase")
    samples = []
    for i in range(300):
        step = (i - 100) // 5 + 1 if 100 <= i < 155 else 0
        samples.append(sample(i, 100 * MiB + step * 10 * MiB + rnd.randint(-256 * 1024, 256 * 1024)))
    write(outdir, "staircase", samples, [start_event()],
          {"samples": 300, "spikes": [], "metrics": {"process_rss": summary(samples, "rss")}})


def excursions(outdir, n):
    rnd = random.Random("excursions")
    starts = {60: 1, 140: 2, 220: 3, 300: 5}  # first sample: samples it lasts
    rise = {}
    for a, length in starts.items():
        for j in range(length):
            rise[a + j] = 50 * MiB + 5 * MiB * j  # rising: its last sample is its highest
    samples = [sample(i, 200 * MiB + rnd.randint(-MiB, MiB) + rise.get(i, 0)) for i in range(400)]
    write(outdir, "excursions", samples, [start_event()],
          {"samples": 400, "spikes": [a + length - 1 for a, length in sorted(starts.items())],
           "metrics": {"process_rss": summary(samples, "rss")}})


def events(outdir, n):
    samples = [sample(i, 500 * MiB + i * MiB, cgroup=700 * MiB + i * MiB, cg_max=GiB)
               for i in range(200)]
    at = lambda seq: T0 + (seq + 1) * 10**9
    alerts = [(50, "warning", "cgroup", 870 * MiB, 85.0), (120, "critical", "cgroup", 985 * MiB,
                                                           96.2),
              (150, "ok", "cgroup", 700 * MiB, 68.4)]
    evs = [start_event(cg_max=GiB, warning=80, critical=95)]
    for seq, level, metric, used, pct in alerts:
        evs.append({"record": "alert", "time_ns": at(seq), "seq": seq, "level": level,
                    "metric": metric, "used_bytes": used, "limit_bytes": GiB, "percent": pct,
                    "csv": {"seq": seq, "event.level": level, "event.metric": metric,
                            "event.used_bytes": used, "event.limit_bytes": GiB,
                            "event.percent": pct}})
    evs.append({"record": "marker", "time_ns": at(100) - 5 * 10**8, "label": "phase, \"two\"",
                "csv": {"event.text": "phase, \"two\""}})
    evs.append({"record": "oom", "time_ns": at(180) - 10**8, "reason": "cgroup_oom_kill",
                "backend": "cgroup", "pid": PID, "bundle": "/tmp/oom_dump_x",
                "csv": {"event.metric": "cgroup",
                        "event.text": "reason=cgroup_oom_kill;pid=%d;bundle=/tmp/oom_dump_x" % PID}})
    evs.append({"record": "end", "time_ns": at(199) + 10**8, "samples": 200, "exit_status": 0,
                "signal": None, "reason": "command_exited",
                "csv": {"event.text": "reason=command_exited;samples=200;exit_status=0;signal="}})
    expect = {"samples": 200, "thresholds": {"warning_pct": 80, "critical_pct": 95},
              "alerts": [{"seq": s, "time_ns": at(s), "level": lv, "metric": m, "used_bytes": u,
                          "limit_bytes": GiB, "percent": p} for s, lv, m, u, p in alerts],
              "markers": ["phase, \"two\""], "ooms": ["cgroup_oom_kill"]}
    write(outdir, "events", samples, evs, expect)


def big(outdir, n):
    """n samples like 'leak', formatted from templates (json.dumps is too slow for 10^6)."""
    rnd = random.Random("big")
    snap = snapshot(sample(0, 1, pss=1, cgroup=1, sys_used=1))
    js_tmpl = json.dumps(sample_json(dict(sample(0, 1, pss=2, cgroup=3, sys_used=4), seq=0)),
                         separators=(",", ":"))
    # placeholders: every varying number
    for k, ph in (('"seq":0', '"seq":%(seq)d'), ('"rss_bytes":1', '"rss_bytes":%(rss)d'),
                  ('"pss_bytes":2', '"pss_bytes":%(pss)d'),
                  ('"current_bytes":3', '"current_bytes":%(cg)d'),
                  ('"available_bytes":%d' % (SYS_TOTAL - 4), '"available_bytes":%(avail)d')):
        assert k in js_tmpl, k
        js_tmpl = js_tmpl.replace(k, ph)
    js_tmpl = js_tmpl.replace('"time_ns":%d' % (T0 + 10**9), '"time_ns":%(t)d')
    js_tmpl = js_tmpl.replace('"timestamp_ns":%d' % (T0 + 10**9), '"timestamp_ns":%(t)d')
    assert '%(t)d' in js_tmpl
    del snap
    with open(os.path.join(outdir, "big.jsonl"), "w") as js, \
            open(os.path.join(outdir, "big.csv"), "w") as cs:
        cs.write(",".join(CSV_HEADER) + "\n")
        first = sample_csv(sample(0, 1, pss=2, cgroup=3, sys_used=4)).split(",")
        idx = {c: i for i, c in enumerate(CSV_HEADER)}
        for c, ph in (("seq", "%(seq)d"), ("time_ns", "%(t)d"), ("timestamp_ns", "%(t)d"),
                      ("process.rss_bytes", "%(rss)d"), ("process.pss_bytes", "%(pss)d"),
                      ("cgroup.current_bytes", "%(cg)d"),
                      ("system.available_bytes", "%(avail)d")):
            first[idx[c]] = ph
        cs_tmpl = ",".join(first)
        jl, cl = [], []
        for i in range(n):
            rss = 100 * MiB + 1024 * i + rnd.randint(-MiB, MiB)
            d = {"seq": i, "t": T0 + (i + 1) * 10**9, "rss": rss, "pss": rss // 2,
                 "cg": rss + 10 * MiB, "avail": SYS_TOTAL - 4 * GiB - rss}
            jl.append(js_tmpl % d)
            cl.append(cs_tmpl % d)
            if len(jl) == 10000:
                js.write("\n".join(jl) + "\n")
                cs.write("\n".join(cl) + "\n")
                jl, cl = [], []
        if jl:
            js.write("\n".join(jl) + "\n")
            cs.write("\n".join(cl) + "\n")


SCENARIOS = {
    "known": known,
    "leak": lambda d, n: trend_case(d, "leak", 600, 100 * MiB, 100 * 1024, 2 * MiB, "high"),
    "slowleak": lambda d, n: trend_case(d, "slowleak", 600, 100 * MiB, 5 * 1024, 2 * MiB, "low"),
    "steady": lambda d, n: trend_case(d, "steady", 600, 100 * MiB, 0, 0, "medium", step=4096),
    "flat": lambda d, n: trend_case(d, "flat", 600, 100 * MiB, 0, 2 * MiB, "none"),
    "spikes": spikes,
    "staircase": staircase,
    "excursions": excursions,
    "events": events,
    "big": big,
}

if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in SCENARIOS:
        sys.exit("usage: gen_monitor.py {%s} OUTDIR [N]" % "|".join(SCENARIOS))
    SCENARIOS[sys.argv[1]](sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1000000)

"""Checks a `memsnap monitor` / `memsnap track` output file against docs/monitor-format.md,
then, optionally, a Python expression over its records.

Usage: python3 check_format.py FILE json|csv [--killed] [--snapshot-header H] [EXPR]

json: every line is one JSON object with "record" in start/sample/alert/oom/end (marker too),
time_ns and the job identity; the fields of each kind have their documented types; samples
are numbered 0, 1, ... and hold a memsnap.snapshot/1 object; the file opens with start and
closes with end (unless --killed: then only whole lines are required, and no end).
csv: the header is record,seq,time_ns,job_id,rank,world_size, then H (the snapshot CSV
header, from `memsnap snapshot --format csv`, when given), then the GPU, tree and event
columns, full and pss_age_ns; every row has as many cells.

EXPR is evaluated with recs (the records, as dicts: CSV rows keyed by column), samples,
kind(name) (the records of one kind), lost(interval) and full_schedule(full_interval) (below);
it must be true. Prints why not and exits 1.
"""
import csv
import json
import sys

TAIL = ("gpu.count,gpu.total_bytes,gpu.used_bytes,gpu.process_used_bytes,tree.processes,"
        "tree.rss_bytes,tree.pss_bytes,event.level,event.metric,event.used_bytes,"
        "event.limit_bytes,event.percent,event.text,full,pss_age_ns").split(",")
HEAD = "record,seq,time_ns,job_id,rank,world_size".split(",")
KINDS = {"start", "sample", "alert", "marker", "oom", "end"}


def mono(s):
    return int(s["snapshot"]["monotonic_ns"] if "snapshot" in s else s["monotonic_ns"]) / 1e9


def lost(samples, interval):
    """The ticks missed between the samples (a loaded machine stalls the monitor): counts that
    hold "samples + lost ~ duration / interval" stay true under load."""
    return sum(max(0, round((mono(b) - mono(a)) / interval) - 1)
               for a, b in zip(samples, samples[1:]))


def full_schedule(samples, full_s):
    """The first sample is full, full ones are at least about full_s apart and a statm-only one
    comes within about full_s of the last full one (slack for a capture that was preempted)."""
    if not samples or str(samples[0]["full"]).lower() != "true":
        return False
    last = None
    for s in samples:
        t = mono(s)
        if str(s["full"]).lower() == "true":
            if last is not None and t - last < full_s / 2:
                return False
            last = t
        elif t - last >= 2 * full_s + 0.05:
            return False
    return True


def fail(msg):
    print("check_format: " + msg)
    sys.exit(1)


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def opt_int(v):
    return v is None or is_int(v)


def is_num(v):
    return (isinstance(v, (int, float))) and not isinstance(v, bool)


def check_json_record(i, d):
    where = "line %d (%s)" % (i + 1, d.get("record"))
    if d.get("record") not in KINDS:
        fail("line %d: unknown record %r" % (i + 1, d.get("record")))
    if not is_int(d.get("time_ns")) or d["time_ns"] <= 0:
        fail(where + ": time_ns is not a positive integer")
    for k in ("job_id", "rank", "world_size"):
        if k not in d:
            fail(where + ": no " + k)
    if not (d["job_id"] is None or isinstance(d["job_id"], str)):
        fail(where + ": job_id is not a string or null")
    if not opt_int(d["rank"]) or not opt_int(d["world_size"]):
        fail(where + ": rank/world_size are not integers or null")
    r = d["record"]
    if r == "start":
        if d.get("schema") != "memsnap.monitor/1":
            fail(where + ": schema is %r" % d.get("schema"))
        if not is_int(d.get("pid")) or not is_num(d.get("interval_s")):
            fail(where + ": pid / interval_s")
        if not (d.get("command") is None or
                (isinstance(d["command"], list) and all(isinstance(a, str) for a in d["command"]))):
            fail(where + ": command is not an argv array or null")
        if not isinstance(d.get("tree"), bool):
            fail(where + ": tree is not a bool")
        lim = d.get("limits")
        if not isinstance(lim, dict) or set(lim) != {"cgroup_max_bytes", "system_total_bytes",
                                                      "gpu_total_bytes"}:
            fail(where + ": limits %r" % lim)
        if not all(opt_int(v) for v in lim.values()):
            fail(where + ": a limit is not an integer or null")
        th = d.get("thresholds")
        if not isinstance(th, dict) or set(th) != {"warning_pct", "critical_pct"}:
            fail(where + ": thresholds %r" % th)
    elif r == "sample":
        if not is_int(d.get("seq")) or not isinstance(d.get("full"), bool):
            fail(where + ": seq / full")
        if not (d.get("pss_age_ns") is None or (is_int(d["pss_age_ns"]) and d["pss_age_ns"] >= 0)):
            fail(where + ": pss_age_ns is not a non-negative integer or null")
        s = d.get("snapshot")
        if not isinstance(s, dict) or s.get("schema") != "memsnap.snapshot/1":
            fail(where + ": snapshot is not a memsnap.snapshot/1 object")
        for sec in ("process", "system", "cgroup"):
            if not isinstance(s.get(sec), dict):
                fail(where + ": snapshot has no " + sec)
        if s["timestamp_ns"] != d["time_ns"]:
            fail(where + ": time_ns is not the snapshot's timestamp_ns")
        if "tree" in d and d["tree"] is not None:
            t = d["tree"]
            if not is_int(t.get("processes")) or t["processes"] != len(t.get("members", [])):
                fail(where + ": tree.processes is not the number of members")
            if t["rss_bytes"] != sum(m["rss_bytes"] or 0 for m in t["members"]):
                fail(where + ": tree.rss_bytes is not the members' sum")
            for m in t["members"]:
                if set(m) != {"pid", "ppid", "comm", "rss_bytes", "pss_bytes"}:
                    fail(where + ": tree member %r" % m)
    elif r == "alert":
        if d.get("level") not in ("warning", "critical", "ok"):
            fail(where + ": level %r" % d.get("level"))
        if not isinstance(d.get("metric"), str) or not is_int(d.get("seq")):
            fail(where + ": metric / seq")
        if not is_int(d.get("used_bytes")) or not is_int(d.get("limit_bytes")) or \
                not is_num(d.get("percent")):
            fail(where + ": used_bytes / limit_bytes / percent")
    elif r == "oom":
        if d.get("reason") not in ("cgroup_oom_kill", "sigkill_at_limit", "cuda_oom"):
            fail(where + ": reason %r" % d.get("reason"))
        if not isinstance(d.get("backend"), str) or not is_int(d.get("pid")):
            fail(where + ": backend / pid")
        if not (d.get("bundle") is None or isinstance(d["bundle"], str)):
            fail(where + ": bundle")
    elif r == "end":
        if d.get("reason") not in ("command_exited", "pid_exited", "duration", "interrupted"):
            fail(where + ": reason %r" % d.get("reason"))
        if not is_int(d.get("samples")) or not opt_int(d.get("exit_status")) or \
                not opt_int(d.get("signal")):
            fail(where + ": samples / exit_status / signal")


def load_json(path, killed):
    recs = []
    with open(path, encoding="utf-8") as fp:
        text = fp.read()
    if text and not text.endswith("\n"):
        fail("the last line is cut (no newline)")
    for i, line in enumerate(text.splitlines()):
        try:
            d = json.loads(line)
        except ValueError as e:
            fail("line %d is not JSON: %s: %r" % (i + 1, e, line[:200]))
        if not isinstance(d, dict):
            fail("line %d is not an object" % (i + 1))
        check_json_record(i, d)
        recs.append(d)
    check_order(recs, killed)
    return recs


def check_order(recs, killed):
    if not recs or recs[0]["record"] != "start":
        fail("the first record is not start")
    if [r for r in recs if r["record"] == "start"][1:]:
        fail("more than one start record")
    seqs = [int(r["seq"]) for r in recs if r["record"] == "sample"]
    if seqs != list(range(len(seqs))):
        fail("samples are not numbered 0, 1, ...: %r" % seqs[:20])
    if not killed:
        if recs[-1]["record"] != "end":
            fail("the last record is not end")
        if int(recs[-1]["samples"]) != len(seqs):
            fail("end.samples %s is not the %d samples written" % (recs[-1]["samples"], len(seqs)))


def load_csv(path, killed, snap_header):
    with open(path, newline="", encoding="utf-8") as fp:
        text = fp.read()
    if text and not text.endswith("\n"):
        fail("the last line is cut (no newline)")
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        fail("empty file")
    header = rows[0]
    if header[:6] != HEAD or header[-len(TAIL):] != TAIL:
        fail("header does not start with %s and end with the GPU/tree/event columns: %r" %
             (",".join(HEAD), header))
    if snap_header is not None and header[6:-len(TAIL)] != snap_header.split(","):
        fail("the snapshot columns are not those of `memsnap snapshot --format csv`")
    recs = []
    for i, row in enumerate(rows[1:]):
        if len(row) != len(header):
            fail("row %d has %d cells, the header %d" % (i + 2, len(row), len(header)))
        d = dict(zip(header, row))
        if d["record"] not in KINDS:
            fail("row %d: unknown record %r" % (i + 2, d["record"]))
        if d["record"] == "sample":
            d["seq"] = int(d["seq"])
            if d["time_ns"] != d["timestamp_ns"]:
                fail("row %d: time_ns is not the snapshot's timestamp_ns" % (i + 2))
        if d["record"] == "end":
            kv = dict(p.split("=", 1) for p in d["event.text"].split(";"))
            d["samples"] = int(kv["samples"])
        recs.append(d)
    check_order(recs, killed)
    return recs


def main():
    args = sys.argv[1:]
    killed = "--killed" in args
    args = [a for a in args if a != "--killed"]
    snap_header = None
    if "--snapshot-header" in args:
        i = args.index("--snapshot-header")
        snap_header = args[i + 1]
        del args[i:i + 2]
    path, fmt = args[0], args[1]
    recs = load_json(path, killed) if fmt == "json" else load_csv(path, killed, snap_header)
    if len(args) > 2:
        samples = [r for r in recs if r["record"] == "sample"]
        env = {"recs": recs, "samples": samples,
               "kind": lambda k: [r for r in recs if r["record"] == k],
               "lost": lambda interval: lost(samples, interval),
               "full_schedule": lambda full_s: full_schedule(samples, full_s)}
        try:
            ok = eval("(" + args[2] + "\n)", env)
        except Exception as e:  # noqa: BLE001 - the expression is the test's
            fail("%s: %r" % (" ".join(args[2].split())[:300], e))
        if not ok:
            fail("false: %s\nrecords: %s" % (" ".join(args[2].split())[:300],
                                              json.dumps([r for r in recs
                                                          if r["record"] != "sample"])[:800]))


main()

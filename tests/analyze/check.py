#!/usr/bin/env python3
"""check.py - the checks of the `memsnap analyze` tests: each compares what analyze printed
(its --format json object, docs/analyze-format.md) with what gen_monitor.py planted, and
prints why on a mismatch (exit status 1).

usage: check.py summary ANALYSIS.json EXPECT.json     every metric of EXPECT: samples, min,
                                                      max, mean, p50/p90/p99, the peak sample
       check.py trend ANALYSIS.json EXPECT.json       process RSS: the slope within 10% of the
                                                      planted one, inside Sen's interval, and
                                                      the planted severity
       check.py spikes ANALYSIS.json EXPECT.json      process RSS: exactly the planted spikes
       check.py events ANALYSIS.json EXPECT.json      the thresholds, alerts, markers, OOMs
       check.py same A.json B.json                    the same analysis but for file and format
       check.py png FILE.png R,G,B X0,Y0,X1,Y1 MIN    at least MIN pixels within 40 of colour
                                                      R,G,B in that rectangle (a tiny PNG
                                                      decoder: zlib and the five filters)
"""
import json
import struct
import sys
import zlib

why = []


def eq(name, got, want):
    if got != want:
        why.append("%s is %r, want %r" % (name, got, want))


def load(path):
    with open(path) as fp:
        return json.load(fp)


def summary(a, e):
    eq("samples", a["samples"], e["samples"])
    for key, w in e["metrics"].items():
        m = a["metrics"].get(key)
        if m is None:
            why.append("no metric %s" % key)
            continue
        for f in ("samples", "min", "max", "p50", "p90", "p99"):
            eq(key + "." + f, m[f], w[f])
        if abs(m["mean"] - w["mean"]) > 1e-6 * max(1, abs(w["mean"])):
            why.append("%s.mean is %r, want %r" % (key, m["mean"], w["mean"]))
        eq(key + ".peak.seq", m["peak"]["seq"], w["peak_seq"])
        eq(key + ".peak.time_ns", m["peak"]["time_ns"], w["peak_time_ns"])
        eq(key + ".peak.offset_s", m["peak"]["offset_s"], w["peak_offset_s"])


def trend(a, e):
    t = a["metrics"]["process_rss"]["trend"]
    slope, lo, hi = t["slope_bytes_per_s"], t["ci95_bytes_per_s"][0], t["ci95_bytes_per_s"][1]
    want = e["slope"]
    if want == 0:
        if not lo <= 0 <= hi:
            why.append("the 95%% interval %r..%r excludes a zero slope" % (lo, hi))
    else:
        if abs(slope - want) > 0.1 * want:
            why.append("slope %r B/s is not within 10%% of %r" % (slope, want))
        if not lo <= want <= hi:
            why.append("the 95%% interval %r..%r excludes the slope %r" % (lo, hi, want))
    eq("severity", t["severity"], e["severity"])
    eq("leak.severity", a["leak"]["severity"], e["severity"])


def spikes(a, e):
    s = a["metrics"]["process_rss"]["spikes"]
    eq("spike samples", [x["seq"] for x in s["list"]], e["spikes"])
    eq("spike count", s["count"], len(e["spikes"]))
    for key, m in a["metrics"].items():
        if key != "process_rss" and m["spikes"]["count"]:
            why.append("%s has %d spikes, want none" % (key, m["spikes"]["count"]))


def events(a, e):
    eq("samples", a["samples"], e["samples"])
    got = [{k: x[k] for k in ("seq", "time_ns", "level", "metric", "used_bytes", "limit_bytes",
                              "percent")} for x in a["alerts"]]
    eq("alerts", got, e["alerts"])
    eq("markers", [m["label"] for m in a["markers"]], e["markers"])
    eq("ooms", [o["reason"] for o in a["ooms"]], e["ooms"])
    eq("thresholds", a["start"]["thresholds"], e["thresholds"])
    lines = {(t["metric"], t["level"]): t["bytes"] for t in a["thresholds"]}
    lim = a["limits"]["cgroup_max_bytes"]
    eq("threshold lines", lines.get(("cgroup_current", "warning")), round(lim * 0.8))
    eq("critical line", lines.get(("cgroup_current", "critical")), round(lim * 0.95))


def same(a, b):
    for d in (a, b):
        for k in ("file", "format"):
            d.pop(k, None)
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            why.append("%s differs: %s vs %s" % (k, json.dumps(a.get(k))[:300],
                                                 json.dumps(b.get(k))[:300]))


def png_pixels(path):
    """(width, height, rows of (r, g, b) tuples) of an 8-bit RGB or RGBA PNG."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, w = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or ctype not in (2, 6) or interlace:
                raise ValueError("unsupported PNG (depth %d, colour type %d)" % (depth, ctype))
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return w, h, [[tuple(r[x * bpp:x * bpp + 3]) for x in range(w)] for r in rows]


def png(path, colour, rect, least):
    w, h, px = png_pixels(path)
    r, g, b = (int(v) for v in colour.split(","))
    x0, y0, x1, y1 = (int(v) for v in rect.split(","))
    count = sum(1 for y in range(max(0, y0), min(h, y1)) for x in range(max(0, x0), min(w, x1))
                if abs(px[y][x][0] - r) + abs(px[y][x][1] - g) + abs(px[y][x][2] - b) <= 40)
    if count < int(least):
        why.append("%d pixels of colour %s in %s, want at least %s" % (count, colour, rect, least))


if __name__ == "__main__":
    what = sys.argv[1]
    try:
        if what == "png":
            png(*sys.argv[2:6])
        else:
            a, e = load(sys.argv[2]), load(sys.argv[3])
            {"summary": summary, "trend": trend, "spikes": spikes, "events": events,
             "same": same}[what](a, e)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as ex:
        why.append("%s: %r" % (type(ex).__name__, ex))
    for w in why:
        print(w)
    sys.exit(1 if why else 0)

"""memsnap.Heap and memsnap.analyze against traces written by `memsnap record` of the record
suite's programs (exactly known figures: tests/record/st_pattern.c, markers.c, mt_pattern.c),
the seed traces of tests/fuzz/corpus-trace and monitor output from tests/analyze/
gen_monitor.py, each compared with what the memsnap command prints for the same file."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import warnings

import memsnap

CLI = os.environ["MEMSNAP_CLI"]
PROGS = os.environ["MEMSNAP_RECORD_PROGS"]
CORPUS = os.environ["MEMSNAP_TRACE_CORPUS"]
GEN_MONITOR = os.environ["MEMSNAP_GEN_MONITOR"]

# The commands run without the sanitizer runtime this interpreter may have preloaded.
ENV = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "PYTHONMALLOC")}


def memsnap_cli(*args):
    r = subprocess.run([CLI] + list(args), env=ENV, capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError("memsnap %s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr))
    return r.stdout


def cli_json(*args):
    return json.loads(memsnap_cli(*args))


TMP = None


def setUpModule():
    global TMP
    TMP = tempfile.mkdtemp(prefix="memsnap-pyheap-")
    for name, argv in (("st", ["st_pattern", "3"]), ("mk", ["markers", "5"]),
                       ("mt", ["mt_pattern", "4", "10"])):
        memsnap_cli("record", "-o", os.path.join(TMP, name + ".mst"),
                    os.path.join(PROGS, argv[0]), *argv[1:])
    subprocess.run([sys.executable, GEN_MONITOR, "known", TMP], env=ENV, check=True)


def tearDownModule():
    shutil.rmtree(TMP, True)


def trace(name):
    return os.path.join(TMP, name + ".mst")


def stack(frames):
    """A stack as the JSON report prints it."""
    return [{k: f[k] for k in ("function", "file", "line", "module")} for f in frames]


class HeapFigures(unittest.TestCase):
    """st_pattern 3: per round 12 allocations, 6 frees, 1 reallocation, 13500 bytes, 6 blocks
    (6000 bytes) leaked; the live bytes peak at 6000 * 3 + 4000."""

    def setUp(self):
        self.h = memsnap.Heap(trace("st"))
        self.addCleanup(self.h.close)

    def test_peak_and_leaks(self):
        p = self.h.peak()
        self.assertEqual((p.bytes, p.count, p.is_diff), (22000, 22, False))
        leaks = self.h.leaks()
        self.assertEqual((leaks.bytes, leaks.count), (18000, 18))
        rows = self.h.group(p)
        self.assertEqual([(r["bytes"], r["count"]) for r in rows], [(22000, 22)])
        self.assertEqual(rows[0]["frames"][0]["function"], "main")
        self.assertTrue(rows[0]["frames"][0]["file"].endswith("st_pattern.c"))
        self.assertGreater(rows[0]["frames"][0]["line"], 0)
        self.assertTrue(rows[0]["frames"][0]["module"].endswith("/st_pattern"))
        self.assertIsNone(rows[0]["name"])
        self.assertIsNone(rows[0]["tid"])
        self.assertEqual(set(rows[0]["frames"][0]),
                         {"ip", "function", "file", "line", "module", "offset", "inlined"})

    def test_rows_are_the_reports(self):
        for view, flag in ((self.h.peak(), "--peak"), (self.h.leaks(), "--leaks")):
            want = cli_json("report", flag, "--format", "json", trace("st"))
            self.assertEqual(view.time_ns, want["time_ns"])
            self.assertEqual(view.bytes, want["live_bytes"])
            self.assertEqual(view.count, want["live_allocations"])
            got = [{"bytes": r["bytes"], "count": r["count"], "stack": stack(r["frames"])}
                   for r in self.h.group(view, top=10)]
            self.assertEqual(got, want["sites"])

    def test_at_and_diff(self):
        p = self.h.peak()
        # every event at or before the moment counts: `report --at` of the same moment
        at = self.h.at(p.time_ns)
        want = cli_json("report", "--at", "%d.%09d" % divmod(p.time_ns, 10**9), "--format",
                        "json", trace("st"))
        self.assertEqual((at.time_ns, at.bytes, at.count),
                         (want["time_ns"], want["live_bytes"], want["live_allocations"]))
        self.assertEqual(self.h.at(0).bytes, 0)
        d = self.h.diff(p, self.h.leaks())
        self.assertTrue(d.is_diff)
        self.assertEqual((d.bytes, d.count), (-4000, -4))
        self.assertEqual([(r["bytes"], r["count"]) for r in self.h.group(d)], [(-4000, -4)])
        with self.assertRaises(ValueError):
            self.h.blocks(d)
        with self.assertRaises(ValueError):
            self.h.diff(d, p)

    def test_groupings(self):
        p = self.h.peak()
        (t,) = self.h.group(p, by="thread")
        self.assertEqual((t["bytes"], t["count"], t["name"]), (22000, 22, "st_pattern"))
        self.assertGreater(t["tid"], 0)
        self.assertEqual(t["frames"], [])
        self.assertEqual([(r["name"], r["bytes"]) for r in self.h.group(p, by="function")],
                         [("main", 22000)])
        incl = {r["name"]: r["bytes"] for r in self.h.group(p, by="function_inclusive")}
        self.assertEqual(incl["main"], 22000)
        self.assertEqual(incl["__libc_start_main"], 22000)
        (m,) = self.h.group(p, by="module", order="count", top=1)
        self.assertTrue(m["name"].endswith("/st_pattern"))
        self.assertEqual(m["count"], 22)
        for bad in ({"by": "file"}, {"order": "size"}, {"top": -1}):
            with self.assertRaises(ValueError):
                self.h.group(p, **bad)

    def test_blocks(self):
        blocks = self.h.blocks(self.h.leaks())
        self.assertEqual(len(blocks), 18)
        self.assertEqual(sum(b["size"] for b in blocks), 18000)
        self.assertEqual({b["size"] for b in blocks}, {1000})
        ids = [b["id"] for b in blocks]
        self.assertEqual(ids, sorted(ids))  # oldest first
        self.assertEqual(blocks[0]["frames"][0]["function"], "main")
        self.assertEqual(set(blocks[0]), {"id", "size", "time_ns", "tid", "stack", "frames"})
        self.assertEqual(self.h.blocks(self.h.at(0)), [])

    def test_totals(self):
        t = self.h.totals()
        stats = cli_json("report", "--stats", "--format", "json", trace("st"))
        want = {"allocations": 36, "reallocations": 3, "frees": 18, "allocated_bytes": 40500,
                "freed_bytes": 22500, "peak_bytes": 22000, "leaked_bytes": 18000,
                "leaked_allocations": 18, "unmatched_frees": 0, "threads": 1,
                "lost_events": 0, "sampled": False, "truncated": False, "complete": True,
                "peak_time_ns": stats["peak_time_ns"], "duration_ns": stats["duration_ns"]}
        self.assertEqual({k: t[k] for k in want}, want)
        (th,) = t["per_thread"]
        self.assertEqual(th, {"tid": stats["pid"], "image": 0, "name": "st_pattern",
                              "allocations": 36, "reallocations": 3, "allocated_bytes": 40500,
                              "frees": 18, "freed_bytes": 22500, "peak_bytes": 22000,
                              "peak_time_ns": stats["peak_time_ns"]})
        self.assertEqual(self.h.threads(), t["per_thread"])
        self.assertIsNone(self.h.warning)

    def test_views_of_another_heap(self):
        with memsnap.Heap(trace("st")) as other:
            with self.assertRaises(ValueError):
                self.h.group(other.peak())
        with self.assertRaises(TypeError):
            self.h.group("peak")


class HeapMore(unittest.TestCase):
    def test_markers(self):
        # markers 5: each round a marker, then 3 blocks of 100 bytes, one of them freed
        with memsnap.Heap(trace("mk")) as h:
            v = h.at("round")
            self.assertEqual((v.bytes, v.count), (0, 0))
            self.assertEqual((h.leaks().bytes, h.leaks().count), (1000, 10))
            t = h.totals()
            self.assertEqual((t["allocations"], t["frees"], t["allocated_bytes"]), (15, 5, 1500))
            with self.assertRaisesRegex(memsnap.Error, "no marker is labelled 'nope'"):
                h.at("nope")
            with self.assertRaisesRegex(memsnap.Error, "past the end of the trace"):
                h.at(10**15)
            with self.assertRaises(ValueError):
                h.at(-1)
            with self.assertRaises(TypeError):
                h.at(1.5)

    def test_threads_are_the_reports(self):
        want = cli_json("report", "--threads", "--stats", "--format", "json", trace("mt"))
        with memsnap.Heap(trace("mt")) as h:
            got = h.totals()
            self.assertEqual(got["threads"], want["threads_total"])
            self.assertEqual(got["allocated_bytes"], want["allocated_bytes"])
            self.assertEqual(got["freed_bytes"], want["freed_bytes"])
            key = lambda t: (t["image"], t["tid"])
            self.assertEqual(sorted(got["per_thread"], key=key),
                             sorted(want["threads"], key=key))
            # by thread, at the peak, as `report --threads --format json` lists them
            rep = cli_json("report", "--threads", "--top", "100", "--format", "json", trace("mt"))
            rows = h.group(h.peak(), by="thread")
            self.assertEqual([{"tid": r["tid"], "name": r["name"], "bytes": r["bytes"],
                               "count": r["count"]} for r in rows], rep["threads"])

    def test_close(self):
        h = memsnap.Heap(trace("st"))
        v = h.peak()
        h.close()
        self.assertTrue(h.closed)
        for call in (h.peak, h.leaks, h.totals, lambda: h.group(v), lambda: h.at(0)):
            with self.assertRaisesRegex(memsnap.Error, "the heap is closed"):
                call()
        self.assertEqual(v.bytes, 22000)  # a view outlives close(): the engine goes with it
        del v
        h.close()

    def test_bad_input(self):
        with self.assertRaisesRegex(memsnap.Error, "no-such.mst: No such file or directory"):
            memsnap.Heap(os.path.join(TMP, "no-such.mst"))
        with self.assertRaisesRegex(memsnap.Error, "not a memsnap trace"):
            memsnap.Heap(os.path.join(TMP, "known.csv"))
        with self.assertRaises(TypeError):
            memsnap.Heap(42)


class Corpus(unittest.TestCase):
    """Every seed trace: memsnap.analyze agrees with `memsnap analyze --format json` and
    memsnap.Heap with `memsnap report --peak/--leaks --format json`, or both fail alike."""

    def test_seed_traces(self):
        for name in sorted(os.listdir(CORPUS)):
            path = os.path.join(CORPUS, name)
            with self.subTest(trace=name):
                r = subprocess.run([CLI, "analyze", "--format", "json", path], env=ENV,
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    with warnings.catch_warnings(), self.assertRaises(memsnap.Error) as cm:
                        warnings.simplefilter("ignore")
                        memsnap.analyze(path)
                    self.assertIn(str(cm.exception), r.stderr)
                    continue
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    self.assertEqual(memsnap.analyze(path), json.loads(r.stdout))
                notes = [l.split(": ", 1)[1] for l in r.stderr.splitlines()]
                self.assertEqual([str(w.message) for w in caught], notes)
                with memsnap.Heap(path) as h:
                    for view, flag in ((h.peak(), "--peak"), (h.leaks(), "--leaks")):
                        want = cli_json("report", flag, "--top", "1000", "--format", "json",
                                        path)
                        self.assertEqual((view.time_ns, view.bytes, view.count),
                                         (want["time_ns"], want["live_bytes"],
                                          want["live_allocations"]))
                        got = [{"bytes": r["bytes"], "count": r["count"],
                                "stack": stack(r["frames"])} for r in h.group(view)]
                        self.assertEqual(got, want["sites"])
                    threads = cli_json("report", "--threads", "--stats", "--format", "json",
                                       path)
                    t = h.totals()
                    self.assertEqual(len(t["per_thread"]), threads["threads_total"])
                    # (past 2**63 the JSON holds a float: jansson's integers are signed)
                    self.assertEqual(float(t["allocated_bytes"]),
                                     float(threads["allocated_bytes"]))


class Analyze(unittest.TestCase):
    def test_trace(self):
        for top in (10, 1):
            self.assertEqual(memsnap.analyze(trace("mt"), top=top),
                             cli_json("analyze", "--format", "json", "--top", str(top),
                                      trace("mt")))
        a = memsnap.analyze(trace("st"))
        self.assertEqual(a["kind"], "trace")
        self.assertEqual(a["peak"]["live_bytes"], 22000)
        self.assertEqual(a["leaks"]["live_bytes"], 18000)

    def test_monitor_output(self):
        with open(os.path.join(TMP, "known.expect.json")) as fp:
            expect = json.load(fp)
        for ext in ("csv", "jsonl"):
            path = os.path.join(TMP, "known." + ext)
            a = memsnap.analyze(path)
            self.assertEqual(a, cli_json("analyze", "--format", "json", path))
            self.assertEqual(a["kind"], "monitor")
            self.assertEqual(a["samples"], expect["samples"])
            rss = a["metrics"]["process_rss"]
            for k in ("min", "max", "p50", "p90", "p99"):
                self.assertEqual(rss[k], expect["metrics"]["process_rss"][k], k)

    def test_bad_input(self):
        with self.assertRaisesRegex(memsnap.Error, "nothing-here: No such file or directory"):
            memsnap.analyze(os.path.join(TMP, "nothing-here"))
        bad = os.path.join(TMP, "bad.jsonl")
        with open(bad, "w") as fp:
            fp.write("hello\n")
        r = subprocess.run([CLI, "analyze", "--format", "json", bad], env=ENV,
                           capture_output=True, text=True)
        with self.assertRaises(memsnap.Error) as cm:
            memsnap.analyze(bad)
        self.assertEqual("memsnap analyze: %s\n" % cm.exception, r.stderr)
        with self.assertRaises(ValueError):
            memsnap.analyze(bad, top=0)


if __name__ == "__main__":
    unittest.main(verbosity=2)

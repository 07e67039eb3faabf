"""memsnap's gc tools: GCDebugger, force_collection, get_top_objects, freeze_gc_heap,
unfreeze_gc_heap, gc_stats."""
import gc
import logging
import unittest

import memsnap


class Node:
    def __init__(self):
        self.other = None


def make_cycles(n):
    """n unreachable two-object cycles (each Node and its __dict__ ... refer to each other)."""
    for _ in range(n):
        a, b = Node(), Node()
        a.other, b.other = b, a


class Debugger(unittest.TestCase):
    def test_counts_a_forced_collection_of_a_cycle(self):
        gc.collect()
        with memsnap.GCDebugger() as dbg:
            make_cycles(10)
            r = dbg.force_collection(2)
        self.assertEqual(set(r), {"generation", "collected", "elapsed_ms"})
        self.assertEqual(r["generation"], 2)
        self.assertGreaterEqual(r["collected"], 20)
        self.assertGreaterEqual(r["elapsed_ms"], 0)
        rep = dbg.report()
        self.assertGreaterEqual(rep["total_collections"], 1)
        self.assertGreaterEqual(rep["total_collected"], 20)
        self.assertEqual(rep["total_uncollectable"], 0)
        self.assertGreaterEqual(rep["total_time_ms"], 0)
        self.assertAlmostEqual(rep["avg_collection_time_ms"],
                               rep["total_time_ms"] / rep["total_collections"], places=2)
        last = rep["collection_log"][-1]
        self.assertEqual(last["generation"], 2)
        self.assertEqual(last["collected"], r["collected"])
        self.assertEqual(rep["current_gc_counts"][1:], gc.get_count()[1:])
        self.assertGreater(rep["total_objects"], 1000)

    def test_stop_stops_counting(self):
        dbg = memsnap.GCDebugger()
        dbg.start()
        dbg.start()  # twice: one callback
        self.assertEqual(gc.callbacks.count(dbg._callback), 1)
        gc.collect()
        dbg.stop()
        self.assertNotIn(dbg._callback, gc.callbacks)
        n = dbg.report()["total_collections"]
        self.assertGreaterEqual(n, 1)
        gc.collect()
        self.assertEqual(dbg.report()["total_collections"], n)

    def test_log_keeps_the_last_ten(self):
        with memsnap.GCDebugger() as dbg:
            for g in (0, 1, 2) * 5:
                dbg.force_collection(g)
        log = dbg.report()["collection_log"]
        self.assertEqual(len(log), 10)
        self.assertEqual([e["generation"] for e in log[-3:]], [0, 1, 2])
        self.assertGreaterEqual(dbg.report()["total_collections"], 15)

    def test_log_collections_logs(self):
        with self.assertLogs("memsnap.gc", logging.DEBUG) as logs:
            with memsnap.GCDebugger(log_collections=True) as dbg:
                dbg.force_collection(1)
        self.assertTrue(any("gc generation 1" in line for line in logs.output))

    def test_bad_generation(self):
        dbg = memsnap.GCDebugger()
        for g in (3, -1):
            with self.assertRaises(ValueError):
                dbg.force_collection(g)
        with self.assertRaises(TypeError):
            dbg.force_collection("2")

    def test_top_objects(self):
        class Marker:
            pass

        keep = [Marker() for _ in range(20000)]
        top = memsnap.GCDebugger().get_top_objects(5)
        self.assertEqual(len(top), 5)
        counts = [c for _, c in top]
        self.assertEqual(counts, sorted(counts, reverse=True))
        names = dict(top)
        name = __name__ + ".Debugger.test_top_objects.<locals>.Marker"
        self.assertIn(name, names)
        self.assertGreaterEqual(names[name], 20000)
        self.assertEqual(memsnap.GCDebugger.get_top_objects(0), [])
        with self.assertRaises(ValueError):
            memsnap.GCDebugger.get_top_objects(-1)
        del keep


class Freeze(unittest.TestCase):
    def tearDown(self):
        gc.unfreeze()

    def test_freeze_and_unfreeze(self):
        keep = [[] for _ in range(1000)]
        n = memsnap.freeze_gc_heap()
        self.assertGreater(n, 1000)
        self.assertEqual(n, gc.get_freeze_count())
        self.assertEqual(memsnap.gc_stats()["frozen"], n)
        self.assertEqual(gc.get_count()[1:], (0, 0))  # every generation was collected first
        memsnap.unfreeze_gc_heap()
        self.assertEqual(gc.get_freeze_count(), 0)
        del keep

    def test_gc_stats(self):
        s = memsnap.gc_stats()
        self.assertEqual(s["enabled"], gc.isenabled())
        self.assertEqual(s["thresholds"], gc.get_threshold())
        self.assertEqual(len(s["counts"]), 3)
        self.assertEqual(len(s["generations"]), 3)
        self.assertIn("collections", s["generations"][0])
        self.assertEqual(s["frozen"], 0)
        self.assertGreater(s["total_objects"], 1000)


if __name__ == "__main__":
    unittest.main(verbosity=2)

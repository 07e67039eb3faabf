"""memsnap's profilers: MemoryProfiler, memory_profile, profile_context, profile_function and
the sampler thread behind their peaks."""
import mmap
import os
import time
import tracemalloc
import unittest

import memsnap

MiB = 1 << 20
PAGE = os.sysconf("SC_PAGE_SIZE")


def touched(nbytes):
    buf = bytearray(nbytes)
    buf[::PAGE] = b"\x01" * len(range(0, nbytes, PAGE))
    return buf


def spike(nbytes):
    """nbytes of anonymous memory, every page written; .close() unmaps it, so RSS drops under
    any allocator (ASan's quarantine keeps freed heap blocks resident)."""
    m = mmap.mmap(-1, nbytes)
    for off in range(0, nbytes, PAGE):
        m[off] = 1
    return m


def wait_for_samples(n):
    """Returns once the sampler has taken n more samples (it runs while a window is open)."""
    start = memsnap.sampler_samples()
    deadline = time.monotonic() + 30
    while memsnap.sampler_samples() < start + n:
        if time.monotonic() > deadline:
            raise AssertionError("the sampler took no sample in 30 s")
        time.sleep(0.001)


class Profiler(unittest.TestCase):
    def test_memory_profiler(self):
        prof = memsnap.MemoryProfiler("load", include_gpu=False)
        self.assertIsNone(prof.delta())
        with prof as p:
            self.assertIs(p, prof)
            buf = touched(32 * MiB)
        d = prof.delta()
        self.assertGreaterEqual(d["rss_bytes"], 30 * MiB)
        r = prof.report()
        self.assertEqual(set(r), {"name", "start", "end", "delta"})
        self.assertEqual(r["name"], "load")
        self.assertEqual(r["start"]["label"], "load:start")
        self.assertEqual(r["end"]["rss_bytes"] - r["start"]["rss_bytes"], d["rss_bytes"])
        self.assertEqual(r["delta"], d)
        del buf

    def test_report_before_the_end(self):
        prof = memsnap.MemoryProfiler("x", include_gpu=False)
        self.assertEqual(prof.report(), {"name": "x", "start": None, "end": None, "delta": None})

    def test_memory_profile_full_and_gpu(self):
        with memsnap.memory_profile("step", full=True) as prof:
            pass
        self.assertIsInstance(prof.delta()["pss_bytes"], int)
        self.assertIsInstance(prof.end.gpus, list)
        with memsnap.memory_profile("step", include_gpu=False) as prof:
            pass
        self.assertIsNone(prof.end.gpus)

    def test_trace_python(self):
        with memsnap.MemoryProfiler("t", include_gpu=False, trace_python=True) as prof:
            self.assertTrue(tracemalloc.is_tracing())
            keep = [bytes(1000) for _ in range(1000)]
        self.assertFalse(tracemalloc.is_tracing())
        self.assertGreaterEqual(prof.delta()["python_current_bytes"], 1000 * 1000)
        with memsnap.MemoryProfiler("u", include_gpu=False) as prof:
            pass
        self.assertIsNone(prof.delta()["python_current_bytes"])
        del keep

    def test_exception_still_ends(self):
        prof = memsnap.MemoryProfiler("boom", include_gpu=False)
        with self.assertRaises(KeyError):
            with prof:
                raise KeyError("x")
        self.assertIsNotNone(prof.end)

    def test_bad_name(self):
        with self.assertRaises(TypeError):
            memsnap.MemoryProfiler(3)
        with self.assertRaises(TypeError):
            memsnap.profile_context(None)
        with self.assertRaises(TypeError):
            memsnap.profile_function(42)


class Accumulate(unittest.TestCase):
    def setUp(self):
        memsnap.reset_profile_results()

    def test_decorator_accumulates(self):
        @memsnap.profile_function
        def work(n):
            return sum(range(n))

        self.assertEqual(work.__name__, "work")
        for _ in range(3):
            self.assertEqual(work(1000), 499500)
        res = memsnap.get_profile_results()
        (name,) = res
        self.assertTrue(name.endswith("test_decorator_accumulates.<locals>.work"), name)
        r = res[name]
        self.assertEqual(r["calls"], 3)
        self.assertGreater(r["total_time_s"], 0)
        self.assertLessEqual(r["min_time_s"], r["max_time_s"])
        self.assertAlmostEqual(r["avg_time_ms"], r["total_time_s"] * 1000 / 3)
        # per call, allocated - freed = (peak - before) - (peak - after) = after - before: the
        # three totals must add up over the calls
        self.assertEqual(r["allocated_bytes"] - r["freed_bytes"], r["net_bytes"])

    def test_named_forms(self):
        @memsnap.profile_function("first")
        def a():
            pass

        @memsnap.profile_function(name="second")
        def b():
            pass

        a(), b(), b()
        with memsnap.profile_context("third") as ctx:
            pass
        res = memsnap.get_profile_results()
        self.assertEqual({k: v["calls"] for k, v in res.items()},
                         {"first": 1, "second": 2, "third": 1})
        self.assertEqual(set(ctx.result), {"time_s", "rss_before_bytes", "rss_after_bytes",
                                           "peak_rss_bytes", "allocated_bytes", "freed_bytes",
                                           "samples"})
        memsnap.reset_profile_results()
        self.assertEqual(memsnap.get_profile_results(), {})

    def test_sampled_peak(self):
        # 64 MiB live only in the middle of the call: the ends do not see it, the sampler does
        @memsnap.profile_function(name="spike")
        def work():
            m = spike(64 * MiB)
            wait_for_samples(2)
            m.close()

        work()
        work()
        r = memsnap.get_profile_results()["spike"]
        self.assertEqual(r["calls"], 2)
        self.assertGreaterEqual(r["samples"], 4)
        self.assertGreaterEqual(r["peak_rss_bytes"] - r["rss_before_bytes"], 60 * MiB)
        self.assertGreaterEqual(r["allocated_bytes"], 2 * 60 * MiB)
        # freed before returning: given back, and the net stays small
        self.assertGreaterEqual(r["freed_bytes"], 2 * 60 * MiB)
        self.assertLess(abs(r["net_bytes"]), 16 * MiB)

    def test_nested_windows(self):
        with memsnap.profile_context("outer") as outer:
            m = spike(32 * MiB)
            wait_for_samples(2)
            m.close()
            with memsnap.profile_context("inner") as inner:
                wait_for_samples(2)
        self.assertGreaterEqual(outer.result["allocated_bytes"], 30 * MiB)
        self.assertLess(inner.result["allocated_bytes"], 16 * MiB)
        self.assertGreaterEqual(outer.result["samples"], inner.result["samples"])

    def test_exception_is_recorded_and_raised(self):
        @memsnap.profile_function(name="fails")
        def fails():
            raise ValueError("no")

        with self.assertRaises(ValueError):
            fails()
        self.assertEqual(memsnap.get_profile_results()["fails"]["calls"], 1)


class Sampler(unittest.TestCase):
    def test_interval(self):
        old = memsnap.sampler_interval()
        self.assertEqual(old, 0.001)
        try:
            self.assertAlmostEqual(memsnap.sampler_interval(0.0005), 0.0005)
        finally:
            memsnap.sampler_interval(old)
        for bad in (0, -1, 100, float("nan")):
            with self.assertRaises(ValueError):
                memsnap.sampler_interval(bad)
        with self.assertRaises(TypeError):
            memsnap.sampler_interval("fast")

    def test_idle_without_windows(self):
        with memsnap.profile_context("wake"):
            wait_for_samples(1)
        n = memsnap.sampler_samples()
        time.sleep(0.05)  # no window open: the thread waits, takes no sample
        self.assertLessEqual(memsnap.sampler_samples() - n, 1)

    # Under ASan a loaded `make check` once saw the child of this fork hang outside its 30 s
    # sample wait (suspected: the sanitizer runtime's own locks, held by the sampler thread at
    # the fork); the normal build keeps the test.
    @unittest.skipIf("libasan" in os.environ.get("LD_PRELOAD", ""),
                     "fork() with a running sampler thread under the ASan runtime")
    def test_fork_inside_a_window(self):
        # the child has no sampler thread: the parent's window closes there with no figures,
        # and a new window starts the child's own sampler
        w = memsnap._memsnap._window_open()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                inherited = memsnap._memsnap._window_close(w)
                with memsnap.profile_context("child") as c:
                    wait_for_samples(1)
                code = 0 if inherited == (None, 0) and c.result["samples"] >= 1 else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        wait_for_samples(1)
        peak, samples = memsnap._memsnap._window_close(w)
        self.assertGreater(peak, 0)
        self.assertGreaterEqual(samples, 1)

    def test_bad_window(self):
        with self.assertRaises(ValueError):
            memsnap._memsnap._window_close(10**6)


if __name__ == "__main__":
    unittest.main(verbosity=2)

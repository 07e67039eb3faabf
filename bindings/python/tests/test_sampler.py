"""memsnap.Sampler: libmemsnap's sampler (ms_sampler_next) as an iterator of MemorySnapshot."""
import os
import subprocess
import sys
import threading
import time
import unittest

import memsnap

MiB = 1 << 20


class SamplerTest(unittest.TestCase):
    def test_increasing_seq_and_time(self):
        t0 = time.monotonic_ns()
        snaps = list(memsnap.Sampler(0, 0.005, 0.02, count=12))
        self.assertEqual([s.seq for s in snaps], list(range(12)))
        mono = [s.monotonic_ns for s in snaps]
        self.assertEqual(mono, sorted(set(mono)))
        self.assertGreaterEqual(mono[0], t0)
        # an absolute schedule: 11 intervals of 5 ms at least (late ticks are skipped)
        self.assertGreaterEqual(mono[-1] - mono[0], 11 * 5000000 - 1000000)
        real = [s.timestamp_ns for s in snaps]
        self.assertEqual(real, sorted(real))
        for s in snaps:
            self.assertIsInstance(s, memsnap.MemorySnapshot)
            self.assertEqual(s.pid, os.getpid())
            self.assertGreater(s.rss_bytes, MiB)
            self.assertTrue(s.full)  # the figures of a full sample: statm on top of them
            self.assertIsNotNone(s.system_total_bytes)
            self.assertIsNotNone(s.gc_counts)  # this interpreter's own figures too
        # the first sample is a full one, then one at most every 20 ms
        self.assertTrue(snaps[0].fresh)
        fresh = [s.seq for s in snaps if s.fresh]
        self.assertLess(len(fresh), 12)
        for a, b in zip(fresh, fresh[1:]):
            gap = snaps[b].monotonic_ns - snaps[a].monotonic_ns
            # (a capture's own time in its tick may differ by some ms under load)
            self.assertGreaterEqual(gap, 20000000 - 5000000)

    def test_every_sample_full(self):
        snaps = list(memsnap.Sampler(0, 0.002, 0, count=4))
        self.assertEqual([s.fresh for s in snaps], [True] * 4)
        self.assertTrue(all(s.pss_bytes is not None for s in snaps))

    def test_sees_growth(self):
        it = memsnap.Sampler(interval=0.001, full_interval=1)
        before = next(it).rss_bytes
        buf = bytearray(64 * MiB)
        buf[::4096] = b"\x01" * len(range(0, len(buf), 4096))
        after = next(it)
        self.assertFalse(after.fresh)  # statm re-read only, within the full interval
        self.assertGreaterEqual(after.rss_bytes - before, 60 * MiB)
        it.close()
        del buf

    def test_another_process_ends_the_iteration(self):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
        try:
            seqs = [s.seq for s in memsnap.Sampler(child.pid, 0.01, 0.05)]
            for s in memsnap.Sampler(child.pid, 0.01):  # a zombie: nothing more to sample
                self.fail("sampled an ended process")
        except memsnap.ProcessNotFoundError:
            pass
        finally:
            child.wait()
        self.assertGreaterEqual(len(seqs), 5)
        self.assertEqual(seqs, list(range(len(seqs))))

    def test_close_and_context_manager(self):
        with memsnap.Sampler(0, 0.001) as it:
            self.assertEqual(next(it).seq, 0)
            self.assertEqual(next(it).seq, 1)
        self.assertEqual(list(it), [])
        it.close()  # again: nothing
        self.assertEqual(list(memsnap.Sampler(0, 0.001, count=0)), [])

    def test_one_thread_at_a_time(self):
        it = memsnap.Sampler(0, 1.0)
        next(it)
        errors = []

        def second():
            try:
                next(it)
            except memsnap.Error as e:
                errors.append(str(e))

        t = threading.Thread(target=lambda: next(it))
        t.start()
        time.sleep(0.3)  # the first thread sleeps in next() until the tick is due
        second()
        t.join()
        self.assertEqual(errors, ["the sampler is in use by another thread"])

    def test_bad_input(self):
        with self.assertRaisesRegex(memsnap.Error, "^ms_sampler_open: invalid pid -1$"):
            memsnap.Sampler(-1)
        with self.assertRaisesRegex(memsnap.ProcessNotFoundError, "no /proc/2147483647/"):
            next(memsnap.Sampler(2147483647, 0.01))
        for bad in ({"interval": 0}, {"interval": -1}, {"full_interval": -1},
                    {"count": -1}):
            with self.assertRaises(ValueError):
                memsnap.Sampler(**bad)
        with self.assertRaises(TypeError):
            memsnap.Sampler("self")


if __name__ == "__main__":
    unittest.main(verbosity=2)

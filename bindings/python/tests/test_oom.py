"""memsnap.OOMFlightRecorder: a CUDA out-of-memory error escaping the block writes a bundle
through libmemsnap's flight recorder (the error here is a stand-in class of the same name as
PyTorch's; the device test raises the real one)."""
import json
import os
import shutil
import sys
import tempfile
import time
import types
import unittest

import memsnap


class OutOfMemoryError(RuntimeError):  # torch.cuda.OutOfMemoryError's name
    pass


class OOMTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="memsnap-oom-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def bundles(self):
        return sorted(d for d in os.listdir(self.dir) if d.startswith("oom_dump_"))

    def test_a_cuda_oom_writes_a_bundle_and_is_reraised(self):
        with self.assertRaises(OutOfMemoryError) as cm:
            with memsnap.OOMFlightRecorder(self.dir, interval=0.01):
                time.sleep(0.5)  # 50 ticks: the test needs one, whatever the load
                raise OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        path = cm.exception.memsnap_bundle
        self.assertEqual(self.bundles(), [os.path.basename(path)])
        name = os.path.basename(path)
        self.assertRegex(name, r"^oom_dump_\d{8}T\d{6}Z_%d_cuda_\d+$" % os.getpid())
        for f in ("events.json", "metadata.json", "environment.json", "manifest.json"):
            self.assertTrue(os.path.isfile(os.path.join(path, f)), f)
        with open(os.path.join(path, "metadata.json")) as fp:
            meta = json.load(fp)
        self.assertEqual(meta["reason"], "cuda_oom")
        self.assertEqual(meta["backend"], "cuda")
        self.assertEqual(meta["pid"], os.getpid())
        self.assertEqual(meta["exception"], "OutOfMemoryError")
        self.assertIn("Tried to allocate", meta["message"])
        with open(os.path.join(path, "events.json")) as fp:
            events = json.load(fp)
        samples = [e for e in events if e.get("schema") == "memsnap.snapshot/1"]
        self.assertGreaterEqual(len(samples), 3)  # the first, some of the 10 ms ones, the last
        self.assertEqual(samples[-1]["pid"], os.getpid())
        self.assertGreater(samples[-1]["process"]["rss_bytes"], 1 << 20)
        self.assertTrue(any(e.get("record") == "oom" for e in events))

    def test_other_errors_write_nothing(self):
        with self.assertRaises(ValueError):
            with memsnap.OOMFlightRecorder(self.dir, interval=0.01):
                raise ValueError("not memory")
        with memsnap.OOMFlightRecorder(self.dir, interval=0.01):
            pass
        self.assertEqual(self.bundles(), [])
        self.assertFalse(memsnap.is_cuda_oom(ValueError("x")))
        self.assertTrue(memsnap.is_cuda_oom(RuntimeError("CUDA out of memory. Tried")))

    def test_retention_keeps_the_newest(self):
        rec = memsnap.OOMFlightRecorder(self.dir, max_dumps=2)
        paths = [rec.report(OutOfMemoryError("x")) for _ in range(3)]
        self.assertEqual(self.bundles(), sorted(os.path.basename(p) for p in paths[1:]))
        rec.close()
        with self.assertRaises(memsnap.Error):
            rec.report()

    def test_a_bundle_that_cannot_be_written_does_not_hide_the_oom(self):
        with self.assertWarns(RuntimeWarning):
            with self.assertRaises(OutOfMemoryError) as cm:
                with memsnap.OOMFlightRecorder(self.dir, interval=0.01):
                    shutil.rmtree(self.dir)  # the dump directory is gone
                    raise OutOfMemoryError("CUDA out of memory.")
        self.assertIsNone(cm.exception.memsnap_bundle)

    def test_torch_allocator_figures_in_the_metadata(self):
        stats = {"allocated_bytes.all.current": 1, "reserved_bytes.all.current": 2,
                 "allocated_bytes.all.peak": 3, "reserved_bytes.all.peak": 4}
        cuda = types.SimpleNamespace(is_available=lambda: True, memory_stats=lambda: stats,
                                     current_device=lambda: 0)
        sys.modules["torch"] = types.SimpleNamespace(cuda=cuda, __version__="0-fake")
        self.addCleanup(sys.modules.pop, "torch", None)
        path = memsnap.OOMFlightRecorder(self.dir).report(OutOfMemoryError("x"))
        with open(os.path.join(path, "metadata.json")) as fp:
            meta = json.load(fp)
        self.assertEqual(meta["torch"], {"allocated_bytes": 1, "reserved_bytes": 2,
                                         "max_allocated_bytes": 3, "max_reserved_bytes": 4,
                                         "device": 0})

    def test_start_samples_into_the_ring(self):
        rec = memsnap.FlightRecorder(self.dir, buffer_size=500)
        rec.start(0.005)
        rec.start(0.005)  # started already: nothing
        time.sleep(0.2)
        rec.stop()
        rec.stop()
        path = rec.dump("cpu", "test", None)
        with open(os.path.join(path, "events.json")) as fp:
            n = len(json.load(fp))
        self.assertGreaterEqual(n, 5)
        time.sleep(0.05)  # stopped: the ring stays as it was
        with open(os.path.join(rec.dump("cpu", "test", None), "events.json")) as fp:
            self.assertEqual(len(json.load(fp)), n)
        rec.start(0.005)
        rec.close()  # stops the sampling first
        with self.assertRaises(memsnap.Error):
            rec.start()
        with self.assertRaises(ValueError):
            memsnap.FlightRecorder(self.dir).start(0)

    def test_bad_arguments(self):
        with self.assertRaisesRegex(memsnap.Error, "^cannot open the flight recorder: .*"
                                    "/proc/no-such-dir"):
            memsnap.FlightRecorder("/proc/no-such-dir/oom")
        with self.assertRaises(ValueError):
            memsnap.OOMFlightRecorder(self.dir, interval=0)
        with self.assertRaises(ValueError):
            memsnap.FlightRecorder(self.dir, buffer_size=0)


if __name__ == "__main__":
    unittest.main()

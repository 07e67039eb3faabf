"""memsnap.capture_memory_snapshot and MemorySnapshot: figures against /proc, another
process, errors, full captures, delta, to_dict, Python's own figures, torch, helpers."""
import gc
import json
import os
import re
import signal
import subprocess
import sys
import tracemalloc
import types
import unittest

import memsnap

PAGE = os.sysconf("SC_PAGE_SIZE")
MiB = 1 << 20


def statm(pid="self"):
    """(size, resident, shared, text, lib, data, dt) in bytes."""
    with open("/proc/%s/statm" % pid) as f:
        return [int(x) * PAGE for x in f.read().split()]


def touched(nbytes):
    """A bytearray of nbytes with every page written, so that it is resident."""
    buf = bytearray(nbytes)
    buf[::PAGE] = b"\x01" * len(range(0, nbytes, PAGE))
    return buf


def capture(**kw):
    kw.setdefault("include_gpu", False)
    return memsnap.capture_memory_snapshot(**kw)


class Basic(unittest.TestCase):
    def test_64mib_shows_in_rss(self):
        before = capture()
        buf = touched(64 * MiB)
        after = capture()
        self.assertGreaterEqual(after.rss_bytes - before.rss_bytes, 60 * MiB)
        self.assertGreaterEqual(after.delta(before)["rss_bytes"], 60 * MiB)
        del buf

    def test_matches_statm(self):
        for _ in range(3):
            size, resident, shared, text, _lib, data, _dt = statm()
            s = capture()
            # nothing is allocated between the two reads but the snapshot object itself
            self.assertLess(abs(s.rss_bytes - resident), MiB)
            self.assertLess(abs(s.vms_bytes - size), MiB)
            self.assertLess(abs(s.shared_bytes - shared), MiB)
            self.assertEqual(s.text_bytes, text)
            self.assertLess(abs(s.data_bytes - data), MiB)
        self.assertEqual(s.pid, os.getpid())

    def test_default_reads_statm_only(self):
        s = capture()
        for name in ("rss_bytes", "vms_bytes", "shared_bytes", "text_bytes", "data_bytes"):
            self.assertIsInstance(getattr(s, name), int, name)
        for name in ("pss_bytes", "uss_bytes", "peak_rss_bytes", "swap_bytes", "minor_faults",
                     "threads", "system_total_bytes", "cgroup_current_bytes",
                     "allocated_blocks", "gc_objects", "python_current_bytes"):
            self.assertIsNone(getattr(s, name), name)
        self.assertIsNone(s.cgroup_version)
        self.assertFalse(s.full)
        self.assertIsNone(s.gpus)  # include_gpu=False: not read, not "no GPU"
        self.assertEqual(len(s.gc_counts), 3)

    def test_full(self):
        s = capture(full=True)
        self.assertTrue(s.full)
        for name in ("pss_bytes", "uss_bytes", "peak_rss_bytes", "peak_vms_bytes", "swap_bytes",
                     "rss_anon_bytes", "rss_file_bytes", "minor_faults", "major_faults",
                     "threads", "system_total_bytes", "system_available_bytes",
                     "system_free_bytes", "allocated_blocks"):
            self.assertIsInstance(getattr(s, name), int, name)
        self.assertGreaterEqual(s.peak_rss_bytes, s.rss_bytes - MiB)
        self.assertLessEqual(s.uss_bytes, s.pss_bytes)
        self.assertLessEqual(s.pss_bytes, s.rss_bytes + MiB)
        self.assertGreater(s.system_total_bytes, s.rss_bytes)
        self.assertGreaterEqual(s.threads, 1)
        with open("/proc/meminfo") as f:
            total = int(f.readline().split()[1]) * 1024
        self.assertEqual(s.system_total_bytes, total)
        self.assertIn(s.cgroup_version, (1, 2, None))
        if s.cgroup_version is not None:
            self.assertIsInstance(s.cgroup_current_bytes, int)
            self.assertIsInstance(s.cgroup_unlimited, bool)

    def test_other_process_matches_its_statm(self):
        env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
        child = subprocess.Popen(["sleep", "60"], env=env)
        try:
            # the child may still be mapping its libraries: read statm on both sides of the
            # capture until the two reads agree
            for _ in range(1000):
                a = statm(child.pid)
                s = capture(pid=child.pid)
                b = statm(child.pid)
                if a == b:
                    break
            self.assertEqual(a, b)
            self.assertEqual(s.pid, child.pid)
            self.assertEqual(s.rss_bytes, a[1])
            self.assertEqual(s.vms_bytes, a[0])
            self.assertEqual(s.text_bytes, a[3])
            # Python's figures describe this interpreter only
            self.assertIsNone(s.gc_counts)
            self.assertIsNone(s.python_current_bytes)
            f = capture(pid=child.pid, full=True, gc_objects=True, allocated_blocks=True)
            self.assertIsInstance(f.pss_bytes, int)
            self.assertIsNone(f.gc_objects)
            self.assertIsNone(f.allocated_blocks)
            self.assertEqual(f.threads, 1)
        finally:
            child.kill()
            child.wait()

    def test_own_pid_is_self(self):
        s = capture(pid=os.getpid())
        self.assertEqual(s.pid, os.getpid())
        self.assertIsNotNone(s.gc_counts)


class Errors(unittest.TestCase):
    def test_missing_pid(self):
        with open("/proc/sys/kernel/pid_max") as f:
            pid = int(f.read()) + 1
        with self.assertRaises(ProcessLookupError) as cm:
            capture(pid=pid)
        self.assertIsInstance(cm.exception, memsnap.Error)
        self.assertIsInstance(cm.exception, memsnap.ProcessNotFoundError)
        self.assertIn(str(pid), str(cm.exception))

    def test_exited_child(self):
        child = subprocess.Popen(["true"])
        child.wait()
        with self.assertRaises(memsnap.ProcessNotFoundError):
            capture(pid=child.pid)

    def test_bad_arguments(self):
        for pid in (0, -1, 2**31, 2**70):
            with self.assertRaises(ValueError, msg=pid):
                capture(pid=pid)
        for pid in ("1", 1.0, True):
            with self.assertRaises(TypeError, msg=pid):
                capture(pid=pid)
        with self.assertRaises(TypeError):
            capture(full="yes")
        with self.assertRaises(TypeError):
            capture(label=3)
        with self.assertRaises(TypeError):
            capture(nonsense=1)
        with self.assertRaises(TypeError):
            memsnap.capture_memory_snapshot(False, None, False, False)
        with self.assertRaises(TypeError):
            memsnap.capture_memory_snapshot(False, pid=1, include_gpu=False)
        with self.assertRaises(TypeError):
            memsnap.MemorySnapshot()
        with self.assertRaises(TypeError):
            capture().delta({})

    def test_positional(self):
        s = memsnap.capture_memory_snapshot(False, os.getpid(), True)
        self.assertIsNone(s.gpus)
        self.assertIsInstance(s.pss_bytes, int)


PF_KTHREAD = 0x00200000
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "tests",
                        "fixtures")


def kernel_thread(pid):
    """Whether /proc/PID is a kernel thread (PF_KTHREAD in its stat flags)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return int(fields[6]) & PF_KTHREAD != 0


class KernelThread(unittest.TestCase):
    """A task without an address space (kthreadd, pid 2) is reported, not "exited"."""

    def check(self, s):
        self.assertEqual(s.pid, 2)
        self.assertEqual(s.rss_bytes, 0)
        self.assertEqual(s.vms_bytes, 0)
        self.assertIsNone(s.pss_bytes)
        self.assertIsNone(s.uss_bytes)
        self.assertTrue(s.full)
        self.assertIn("no address space (kernel thread)", s.note)

    @unittest.skipUnless(kernel_thread(2), "pid 2 is not a kernel thread here (a container?)")
    def test_live_pid_2(self):
        self.check(capture(pid=2, full=True))
        s = capture(pid=2)
        self.assertEqual(s.rss_bytes, 0)
        self.assertIsNone(s.note)

    def test_fixture_kernel_thread(self):
        """tests/fixtures/v1-host pid 2: statm zeros, an empty smaps_rollup, PF_KTHREAD."""
        root = os.path.join(FIXTURES, "v1-host")
        code = ("import memsnap; s = memsnap.capture_memory_snapshot(pid=2, full=True, "
                "include_gpu=False); print(s.rss_bytes, s.pss_bytes, s.uss_bytes, s.full); "
                "print(s.note)")
        env = dict(os.environ, MEMSNAP_PROCFS=os.path.join(root, "proc"),
                   MEMSNAP_SYSFS=os.path.join(root, "sys"))
        out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                             capture_output=True, text=True).stdout.splitlines()
        self.assertEqual(out, ["0 None None True",
                               "process 2 has no address space (kernel thread)"])

    def test_a_process_has_no_note(self):
        self.assertIsNone(capture(full=True).note)


class WrongRoot(unittest.TestCase):
    def test_a_wrong_memsnap_procfs_is_named(self):
        code = ("import memsnap\ntry:\n    memsnap.capture_memory_snapshot(include_gpu=False)\n"
                "except memsnap.Error as e:\n    print(e)")
        for root, why in (("/nonexistent-memsnap-root", "No such file or directory"),
                          ("/dev/null", "not a directory")):
            env = dict(os.environ, MEMSNAP_PROCFS=root)
            out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                 capture_output=True, text=True).stdout
            self.assertIn("MEMSNAP_PROCFS=%s: %s" % (root, why), out)


class DeltaAndDict(unittest.TestCase):
    def test_delta(self):
        a = capture(label="a")
        buf = touched(32 * MiB)
        b = capture(label="b")
        d = b.delta(a)
        self.assertGreaterEqual(d["rss_bytes"], 30 * MiB)
        self.assertEqual(d["rss_mb"], round(d["rss_bytes"] / MiB, 2))
        self.assertEqual(d["text_bytes"], 0)
        self.assertIsNone(d["pss_bytes"])  # in neither basic capture
        self.assertIsNone(d["pss_mb"])
        self.assertEqual(d["elapsed_ns"], b.monotonic_ns - a.monotonic_ns)
        self.assertGreaterEqual(d["elapsed_ns"], 0)
        self.assertEqual((d["label"], d["before_label"]), ("b", "a"))
        self.assertIsNone(d["gpus"])
        back = a.delta(b)
        self.assertEqual(back["rss_bytes"], -d["rss_bytes"])
        self.assertEqual(back["rss_mb"], round(-d["rss_bytes"] / MiB, 2))
        del buf

    def test_delta_full_needs_both(self):
        basic, full = capture(), capture(full=True)
        self.assertIsNone(full.delta(basic)["pss_bytes"])
        self.assertIsInstance(capture(full=True).delta(full)["pss_bytes"], int)
        self.assertIsInstance(capture(full=True).delta(full)["system_free_bytes"], int)

    def test_python_figures_delta(self):
        tracemalloc.start()
        try:
            a = capture()
            keep = [bytes(1000) for _ in range(1000)]
            b = capture()
        finally:
            tracemalloc.stop()
        d = b.delta(a)
        self.assertGreaterEqual(d["python_current_bytes"], 1000 * 1000)
        self.assertEqual(d["python_current_mb"], round(d["python_current_bytes"] / MiB, 2))
        del keep

    def test_to_dict(self):
        s = capture(full=True, gc_objects=True, label="t")
        d = s.to_dict()
        self.assertEqual(d["label"], "t")
        self.assertEqual(d["pid"], os.getpid())
        self.assertEqual(d["timestamp_ns"], s.timestamp_ns)
        self.assertIsNone(d["gpus"])
        mb_keys = [k for k in d if k.endswith("_mb")]
        self.assertIn("rss_mb", mb_keys)
        self.assertIn("system_total_mb", mb_keys)
        self.assertIn("cgroup_peak_mb", mb_keys)
        self.assertNotIn("minor_faults_mb", d)
        self.assertNotIn("gc_objects_mb", d)
        for k in mb_keys:
            exact = d[k[:-3] + "_bytes"]
            self.assertEqual(d[k], None if exact is None else round(exact / MiB, 2), k)
            self.assertEqual(getattr(s, k[:-3] + "_bytes"), exact)
        for k, v in d.items():
            if k.endswith("_bytes") or k in ("minor_faults", "threads", "gc_objects"):
                self.assertEqual(getattr(s, k), v, k)

    def test_repr(self):
        r = repr(capture(label="here"))
        self.assertIn("pid=%d" % os.getpid(), r)
        self.assertIn("'here'", r)
        self.assertIn("MiB", r)


class Formats(unittest.TestCase):
    """format_delta and format_before_after: the library's report strings (ms_report_line_buf,
    ms_report_table_buf), exact on the v2-host fixture's pid 4242."""

    CODE = ("import json, memsnap\n"
            "a = memsnap.capture_memory_snapshot(pid=4242, label='a', include_gpu=False)\n"
            "b = memsnap.capture_memory_snapshot(pid=4242, label='b', include_gpu=False, full=True)\n"
            "u = memsnap.capture_memory_snapshot(pid=4242, include_gpu=False)\n"
            "print(json.dumps([b.format_delta(a), b.format_before_after(a), u.format_delta(u),\n"
            "                  a.format_before_after(u)]))")

    def run_fixture(self):
        root = os.path.join(FIXTURES, "v2-host")
        env = dict(os.environ, MEMSNAP_PROCFS=os.path.join(root, "proc"),
                   MEMSNAP_SYSFS=os.path.join(root, "sys"))
        out = subprocess.run([sys.executable, "-c", self.CODE], env=env, check=True,
                             capture_output=True, text=True).stdout
        # the one figure that is not the fixture's: the time between two captures
        return [re.sub(r"-?\d+\.\d{3} s\b", "T s", x)
                for x in json.loads(out)]

    def test_exact_strings(self):
        line, table, unlabelled, basic = self.run_fixture()
        self.assertEqual(line, "[b] RSS 64.00 MiB -> 64.00 MiB (0 B) in T s")
        self.assertEqual(unlabelled, "RSS 64.00 MiB -> 64.00 MiB (0 B) in T s")
        self.assertEqual(basic, "\n".join([
            "memory report: a (T s)",
            "                           before          after          delta",
            "process",
            "  RSS                   64.00 MiB      64.00 MiB            0 B",
            "  VMS                  200.00 MiB     200.00 MiB            0 B",
            "  shared                 8.00 MiB       8.00 MiB            0 B",
            "  text                   2.00 MiB       2.00 MiB            0 B",
            "  data                  32.00 MiB      32.00 MiB            0 B"]))
        rows = table.split("\n")
        self.assertEqual(rows[0], "memory report: b (T s)")
        self.assertIn("  PSS                           -      48.00 MiB              -", rows)
        self.assertIn("  limit                         -      unlimited              -", rows)
        self.assertIn("  OOM kills                     -              3              -", rows)
        self.assertEqual(rows[-1], "  OOM kills                     -              3              -")
        self.assertGreater(len(table), 512)  # past the binding's first buffer

    def test_live_and_bad_arguments(self):
        a = capture(label="x")
        buf = touched(16 * MiB)
        b = capture()
        line = b.format_delta(a)
        self.assertTrue(line.startswith("[x] RSS "), line)
        self.assertNotIn("\n", line)
        self.assertTrue(b.format_before_after(a).startswith("memory report: x ("))
        with self.assertRaisesRegex(TypeError, "format_delta\\(\\) needs a MemorySnapshot, not int"):
            b.format_delta(1)
        with self.assertRaisesRegex(TypeError, "format_before_after\\(\\) needs a MemorySnapshot"):
            b.format_before_after(None)
        del buf


class PythonFigures(unittest.TestCase):
    def test_tracemalloc(self):
        self.assertFalse(tracemalloc.is_tracing())
        s = capture()
        self.assertIsNone(s.python_current_bytes)
        self.assertIsNone(s.python_peak_bytes)
        tracemalloc.start()
        try:
            keep = [bytes(100) for _ in range(10000)]
            s = capture()
            cur, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        self.assertGreaterEqual(s.python_current_bytes, 10000 * 100)
        self.assertLessEqual(s.python_current_bytes, s.python_peak_bytes)
        self.assertLess(abs(s.python_current_bytes - cur), 64 * 1024)
        self.assertIsNone(capture().python_current_bytes)
        del keep

    def test_gc_objects_only_when_asked(self):
        self.assertIsNone(capture().gc_objects)
        self.assertIsNone(capture(full=True).gc_objects)
        keep = [[] for _ in range(5000)]
        s = capture(gc_objects=True)
        n = len(gc.get_objects())
        self.assertGreater(s.gc_objects, 5000)
        self.assertLess(abs(s.gc_objects - n), 500)
        del keep

    def test_allocated_blocks(self):
        self.assertIsNone(capture().allocated_blocks)
        s = capture(allocated_blocks=True)
        self.assertLess(abs(s.allocated_blocks - sys.getallocatedblocks()), 1000)
        self.assertIsInstance(capture(full=True).allocated_blocks, int)

    def test_gc_counts(self):
        gc.collect()
        a = capture().gc_counts
        keep = [[] for _ in range(50)]
        b = capture().gc_counts
        self.assertEqual(a[1:], b[1:])
        self.assertGreaterEqual(b[0] - a[0], 40)  # 50 lists (fewer if a collection ran)
        self.assertEqual(tuple(gc.get_count())[1:], b[1:])
        del keep


def fake_torch(available=True, stats=None, fail=False):
    torch = types.ModuleType("torch")

    def memory_stats():
        if fail:
            raise RuntimeError("CUDA error: initialization error")
        return stats

    torch.cuda = types.SimpleNamespace(is_available=lambda: available, memory_stats=memory_stats)
    return torch


class Torch(unittest.TestCase):
    STATS = {
        "allocated_bytes.all.current": 3 * MiB,
        "reserved_bytes.all.current": 8 * MiB,
        "allocated_bytes.all.peak": 5 * MiB,
        "reserved_bytes.all.peak": 10 * MiB,
        "active_bytes.all.current": 4 * MiB,
        "inactive_split_bytes.all.current": 1 * MiB,
        "num_alloc_retries": 0,
    }
    FIELDS = ("torch_allocated_bytes", "torch_reserved_bytes", "torch_max_allocated_bytes",
              "torch_max_reserved_bytes", "torch_active_bytes", "torch_inactive_bytes")

    def tearDown(self):
        sys.modules.pop("torch", None)

    def test_never_imports_torch(self):
        self.assertNotIn("torch", sys.modules)
        s = memsnap.capture_memory_snapshot()
        self.assertNotIn("torch", sys.modules)
        for f in self.FIELDS:
            self.assertIsNone(getattr(s, f))

    def test_fake_torch(self):
        sys.modules["torch"] = fake_torch(stats=self.STATS)
        s = memsnap.capture_memory_snapshot()
        self.assertEqual([getattr(s, f) for f in self.FIELDS],
                         [3 * MiB, 8 * MiB, 5 * MiB, 10 * MiB, 4 * MiB, 1 * MiB])
        self.assertEqual(s.to_dict()["torch_reserved_mb"], 8.0)
        # GPU figures only with include_gpu
        s = memsnap.capture_memory_snapshot(include_gpu=False)
        self.assertIsNone(s.torch_allocated_bytes)

    def test_fake_torch_partial_unavailable_failing(self):
        sys.modules["torch"] = fake_torch(stats={"allocated_bytes.all.current": 7})
        s = memsnap.capture_memory_snapshot()
        self.assertEqual(s.torch_allocated_bytes, 7)
        self.assertIsNone(s.torch_reserved_bytes)
        sys.modules["torch"] = fake_torch(available=False, stats=self.STATS)
        self.assertIsNone(memsnap.capture_memory_snapshot().torch_allocated_bytes)
        sys.modules["torch"] = fake_torch(fail=True)
        self.assertIsNone(memsnap.capture_memory_snapshot().torch_allocated_bytes)

    def test_delta(self):
        sys.modules["torch"] = fake_torch(stats=dict(self.STATS))
        a = memsnap.capture_memory_snapshot()
        sys.modules["torch"].cuda.memory_stats = lambda: dict(
            self.STATS, **{"allocated_bytes.all.current": 7 * MiB})
        b = memsnap.capture_memory_snapshot()
        d = b.delta(a)
        self.assertEqual(d["torch_allocated_bytes"], 4 * MiB)
        self.assertEqual(d["torch_allocated_mb"], 4.0)
        self.assertEqual(d["torch_reserved_bytes"], 0)


class Helpers(unittest.TestCase):
    def test_format_memory(self):
        self.assertEqual(memsnap.format_memory(0), "0 B")
        self.assertEqual(memsnap.format_memory(512), "512 B")
        self.assertEqual(memsnap.format_memory(1536), "1.50 KiB")
        self.assertEqual(memsnap.format_memory(64 * MiB), "64.00 MiB")
        self.assertEqual(memsnap.format_memory(3 * (1 << 30) + (1 << 28)), "3.25 GiB")
        self.assertEqual(memsnap.format_memory(-MiB), "-1.00 MiB")
        self.assertEqual(memsnap.format_memory(2**64 - 1), "16.00 EiB")
        with self.assertRaises(TypeError):
            memsnap.format_memory(1.5)
        with self.assertRaises(TypeError):
            memsnap.format_memory("1")
        with self.assertRaises(OverflowError):
            memsnap.format_memory(2**64)
        with self.assertRaises(OverflowError):
            memsnap.format_memory(-(2**64))

    def test_system_info(self):
        info = memsnap.get_system_info()
        self.assertEqual(info["memsnap_version"], memsnap.__version__)
        self.assertEqual(info["python_version"].split(".")[:2],
                         [str(x) for x in sys.version_info[:2]])
        self.assertEqual(info["procfs"], "/proc")
        names = [b["name"] for b in info["gpu_backends"]]
        self.assertEqual(names, ["nvml", "nvidia-smi", "drm"])
        available = [b["name"] for b in info["gpu_backends"] if b["available"]]
        self.assertEqual(info["backend"], available[0] if available else None)
        self.assertIsInstance(info["gpus"], list)
        with open("/proc/meminfo") as f:
            total = int(f.readline().split()[1]) * 1024
        self.assertEqual(info["memory"]["total_bytes"], total)
        self.assertEqual(info["memory"]["total_mb"], round(total / MiB, 2))
        self.assertIn("version", info["cgroup"])
        self.assertIsNone(info["torch_version"])
        self.assertEqual(info["page_size"], PAGE)

    def test_fork_keeps_working(self):
        memsnap.capture_memory_snapshot(include_gpu=False)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: its own pid, not the parent's descriptors
            os.close(r)
            try:
                ok = memsnap.capture_memory_snapshot(include_gpu=False).pid == os.getpid()
            except BaseException:
                ok = False
            os.write(w, b"1" if ok else b"0")
            os._exit(0)
        os.close(w)
        got = os.read(r, 1)
        os.close(r)
        os.waitpid(pid, 0)
        self.assertEqual(got, b"1")

    def test_fork_while_another_thread_captures(self):
        # A thread in a GPU capture holds the session lock while it waits for the GIL; a
        # child forked then must not inherit it held (before the fix, 190 of 200 children hung).
        import threading
        stop = threading.Event()

        def loop():
            while not stop.is_set():
                memsnap.capture_memory_snapshot()  # include_gpu: the lock-holding path

        t = threading.Thread(target=loop)
        t.start()
        hung = 0
        try:
            for _ in range(20):
                pid = os.fork()
                if pid == 0:
                    signal.alarm(10)  # a hang ends in SIGALRM (a capture takes ms)
                    try:
                        memsnap.capture_memory_snapshot()
                    finally:
                        os._exit(0)
                _, status = os.waitpid(pid, 0)
                hung += os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGALRM
        finally:
            stop.set()
            t.join()
        self.assertEqual(hung, 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)

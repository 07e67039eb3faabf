"""GPUs in memsnap snapshots through the library's real NVML code path, against the test
suite's fake libnvidia-ml.so.1 (tests/gpu/fake_nvml.c). meson runs this file twice:
MEMSNAP_PY_EXPECT_GPUS=fake (the fake's three devices, the scenario 'several') and
MEMSNAP_PY_EXPECT_GPUS=none (the fake's init fails: no GPU, an empty list)."""
import os
import unittest

import memsnap

GiB = 1 << 30
MiB = 1 << 20
EXPECT = os.environ.get("MEMSNAP_PY_EXPECT_GPUS")


class FakeNvml(unittest.TestCase):
    def test_gpus_are_the_fakes_devices(self):
        s = memsnap.capture_memory_snapshot()
        gpus = s.gpus
        self.assertEqual([g["name"] for g in gpus], ["Fake H100", "Fake A100", "Fake L4"])
        self.assertEqual([g["index"] for g in gpus], [0, 1, 2])
        self.assertEqual([g["backend"] for g in gpus], ["nvml"] * 3)
        self.assertEqual([g["uuid"] for g in gpus],
                         ["GPU-fake-0000", "GPU-fake-0001", "GPU-fake-0002"])
        self.assertEqual([g["pci_bus_id"] for g in gpus],
                         ["00000000:01:00.0", "00000000:41:00.0", "00000000:81:00.0"])
        self.assertEqual([g["total_bytes"] for g in gpus], [80 * GiB, 40 * GiB, 24 * GiB])
        self.assertEqual([g["used_bytes"] for g in gpus], [10 * GiB, 1 * GiB, 2 * GiB])
        self.assertEqual([g["reserved_bytes"] for g in gpus], [512 * MiB, 256 * MiB, 128 * MiB])
        for g in gpus:
            self.assertEqual(g["free_bytes"], g["total_bytes"] - g["used_bytes"]
                             - g["reserved_bytes"])
            self.assertTrue(g["is_per_process"])
        # this process: 1 GiB on GPU 0 (compute and graphics lists, the same memory), 256 MiB
        # on GPU 2, nothing on GPU 1
        self.assertEqual([g["process_used_bytes"] for g in gpus], [1 * GiB, 0, 256 * MiB])
        procs0 = {p["pid"]: p["used_bytes"] for p in gpus[0]["processes"]}
        self.assertEqual(procs0, {1: 3 * GiB, os.getpid(): 1 * GiB, 4242: 512 * MiB})
        self.assertEqual(gpus[1]["processes"], [])
        self.assertEqual(gpus[2]["processes"], [{"pid": os.getpid(), "used_bytes": 256 * MiB}])

    def test_to_dict_and_delta(self):
        a = memsnap.capture_memory_snapshot()
        b = memsnap.capture_memory_snapshot()
        g = b.to_dict()["gpus"][0]
        self.assertEqual(g["total_mb"], 81920.0)
        self.assertEqual(g["process_used_mb"], 1024.0)
        d = b.delta(a)
        self.assertEqual([x["index"] for x in d["gpus"]], [0, 1, 2])
        self.assertEqual([x["used_bytes"] for x in d["gpus"]], [0, 0, 0])
        self.assertEqual(d["gpus"][0]["used_mb"], 0.0)
        self.assertIsNone(b.delta(memsnap.capture_memory_snapshot(include_gpu=False))["gpus"])
        self.assertIn("gpus=3", repr(b))

    def test_other_process_sees_the_devices(self):
        s = memsnap.capture_memory_snapshot(pid=1)
        self.assertEqual(len(s.gpus), 3)
        self.assertEqual(s.gpus[0]["process_used_bytes"], 3 * GiB)

    def test_device_picks_one_gpu(self):
        # an index, a UUID (case-insensitive) or a PCI bus id: ms_options.device
        for device in (1, "1", "GPU-fake-0001", "gpu-FAKE-0001", "00000000:41:00.0"):
            with self.subTest(device=device):
                (g,) = memsnap.capture_memory_snapshot(device=device).gpus
                self.assertEqual((g["index"], g["name"]), (1, "Fake A100"))
        (g,) = memsnap.capture_memory_snapshot(device=2, full=True).gpus
        self.assertEqual(g["process_used_bytes"], 256 * MiB)
        self.assertEqual(len(memsnap.capture_memory_snapshot().gpus), 3)  # no device: all

    def test_device_errors(self):
        for device in (3, "GPU-fake-0009"):
            with self.assertRaisesRegex(memsnap.Error, "3 GPUs found \\(index 0 to 2") as cm:
                memsnap.capture_memory_snapshot(device=device)
            self.assertIn(str(device), str(cm.exception))
        with self.assertRaisesRegex(memsnap.Error, "empty"):
            memsnap.capture_memory_snapshot(device="")
        with self.assertRaises(ValueError):
            memsnap.capture_memory_snapshot(include_gpu=False, device=0)
        with self.assertRaises(TypeError):
            memsnap.capture_memory_snapshot(device=1.0)

    def test_sampler_full_samples_read_the_gpus(self):
        snaps = list(memsnap.Sampler(0, 0.001, 0, count=2))
        self.assertEqual([len(s.gpus) for s in snaps], [3, 3])
        self.assertEqual(list(memsnap.Sampler(0, 0.001, 0, gpu=False, count=1))[0].gpus, None)

    def test_system_info(self):
        info = memsnap.get_system_info()
        self.assertEqual(info["backend"], "nvml")
        (nvml,) = [b for b in info["gpu_backends"] if b["name"] == "nvml"]
        self.assertTrue(nvml["available"])
        self.assertEqual(nvml["device_count"], 3)
        self.assertTrue(nvml["per_process"])
        self.assertEqual([g["name"] for g in info["gpus"]], ["Fake H100", "Fake A100", "Fake L4"])


class NoGpu(unittest.TestCase):
    def test_empty_list(self):
        s = memsnap.capture_memory_snapshot()
        self.assertEqual(s.gpus, [])
        self.assertEqual(s.to_dict()["gpus"], [])
        self.assertEqual(s.delta(s)["gpus"], [])
        self.assertIsNone(memsnap.capture_memory_snapshot(include_gpu=False).gpus)
        info = memsnap.get_system_info()
        self.assertIsNone(info["backend"])
        self.assertEqual(info["gpus"], [])

    def test_device_not_found(self):
        with self.assertRaisesRegex(memsnap.Error, "capture of pid %d failed: " % os.getpid()):
            memsnap.capture_memory_snapshot(device=0)


def load_tests(loader, tests, pattern):
    """Only the scenario meson set up; none at all is an error, not a silent pass."""
    cases = {"fake": FakeNvml, "none": NoGpu}
    if EXPECT not in cases:
        raise SystemExit("test_gpu.py: MEMSNAP_PY_EXPECT_GPUS must be 'fake' or 'none' "
                         "(meson test sets it, with the fake libnvidia-ml.so.1)")
    return loader.loadTestsFromTestCase(cases[EXPECT])


if __name__ == "__main__":
    unittest.main(verbosity=2)

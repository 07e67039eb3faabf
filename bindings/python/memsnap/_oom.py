"""The OOM flight recorder for Python code: when a CUDA out-of-memory error escapes a block,
write what memory looked like just before it.

    with memsnap.OOMFlightRecorder("/tmp/oom-dumps"):
        train()          # torch.cuda.OutOfMemoryError -> oom_dump_<UTC>_<pid>_cuda_<seq>/

libmemsnap's sampler, on a thread of its own (plain C, never the GIL), samples this process
(full figures and every GPU) into libmemsnap's flight recorder (memsnap.FlightRecorder:
FlightRecorder.start) every `interval` seconds; the
bundle holds the last `buffer_size` samples and events, metadata.json (reason "cuda_oom",
backend "cuda", the exception and PyTorch's allocator figures), environment.json and
manifest.json (docs/monitor-format.md, "OOM bundles"). The exception is re-raised with the
bundle's path in its `memsnap_bundle` attribute.
"""
import json
import sys
import warnings

from ._memsnap import FlightRecorder
from ._runtime import _torch_figures as _allocator_figures


def is_cuda_oom(exc):
    """True for PyTorch's torch.cuda.OutOfMemoryError (or a RuntimeError saying "CUDA out of
    memory", as older PyTorch raised it)."""
    if exc is None:
        return False
    return type(exc).__name__ == "OutOfMemoryError" or "CUDA out of memory" in str(exc)


# The names the bundle gives the first four of _runtime's allocator figures.
_TORCH_NAMES = ("allocated_bytes", "reserved_bytes", "max_allocated_bytes", "max_reserved_bytes")


def _torch_figures():
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    figures = _allocator_figures(torch)  # None when CUDA is unavailable or fails to answer
    if figures is None:
        return None
    out = dict(zip(_TORCH_NAMES, figures))
    try:
        out["device"] = torch.cuda.current_device()
    except Exception:  # the figures are a bonus: never hide the OOM behind them
        pass
    return out


class OOMFlightRecorder:
    """Samples this process every `interval` s into a ring of `buffer_size` entries while the
    block runs; writes a bundle into `dump_dir` when a CUDA OOM escapes it (or when report() is
    called), keeping at most `max_dumps` bundles and `max_total_mb` MiB (0: no limit)."""

    def __init__(self, dump_dir, interval=0.1, buffer_size=1000, max_dumps=0, max_total_mb=0):
        if not interval > 0:
            raise ValueError("interval must be > 0")
        self.interval = interval
        self.bundles = []
        self._rec = FlightRecorder(dump_dir, buffer_size, max_dumps, max_total_mb)

    def __enter__(self):
        self._rec.start(self.interval)  # its first sample at once, then every interval
        return self

    def __exit__(self, et, exc, tb):
        self._rec.stop()
        if is_cuda_oom(exc):
            try:
                path = self.report(exc)
            except Exception as e:  # a bundle that cannot be written must not hide the OOM
                warnings.warn("memsnap: the OOM bundle was not written: %s" % e, RuntimeWarning)
                path = None
            try:
                exc.memsnap_bundle = path
            except AttributeError:
                pass
        return False

    def report(self, exc=None):
        """Writes a bundle now (reason "cuda_oom", backend "cuda"); returns its path."""
        self._rec.sample()
        message = str(exc) if exc is not None else None
        self._rec.event(json.dumps({"record": "oom", "reason": "cuda_oom", "backend": "cuda",
                                    "message": message}))
        extra = {"exception": type(exc).__name__ if exc is not None else None,
                 "message": message, "torch": _torch_figures()}
        path = self._rec.dump("cuda", "cuda_oom", json.dumps(extra))
        self.bundles.append(path)
        return path

    def close(self):
        self._rec.close()

"""Profilers over memsnap snapshots.

MemoryProfiler and memory_profile() watch one block: a snapshot before, one after, and their
delta. profile_function and profile_context watch code that runs many times and accumulate,
per name, the calls, the time, the RSS before and after, the peak RSS while it ran (sampled
by the extension's sampler thread, every sampler_interval() seconds, 1 ms by default), the
memory taken (peak - before) and given back (peak - after); get_profile_results() returns
them.
"""
import functools
import threading
import time
import tracemalloc

from . import _memsnap


class MemoryProfiler:
    """Snapshots at the start and the end of a with block.

        with MemoryProfiler("load") as prof:
            model = load()
        prof.delta()["rss_bytes"], prof.report()

    include_gpu and full are capture_memory_snapshot()'s; trace_python=True starts
    tracemalloc for the block when it is not tracing already (every allocation is then traced:
    slow), so that the delta has python_current_bytes.
    """

    def __init__(self, name="profile", include_gpu=True, full=False, trace_python=False):
        if not isinstance(name, str):
            raise TypeError("MemoryProfiler() needs a str name, not %s" % type(name).__name__)
        self.name = name
        self.include_gpu = bool(include_gpu)
        self.full = bool(full)
        self.trace_python = bool(trace_python)
        self.start = None
        self.end = None
        self._started_tracing = False

    def _capture(self, when):
        return _memsnap.capture_memory_snapshot(
            include_gpu=self.include_gpu, full=self.full, label="%s:%s" % (self.name, when)
        )

    def __enter__(self):
        if self.trace_python and not tracemalloc.is_tracing():
            tracemalloc.start()
            self._started_tracing = True
        self.end = None
        self.start = self._capture("start")
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            self.end = self._capture("end")
        finally:
            if self._started_tracing:
                tracemalloc.stop()
                self._started_tracing = False
        return False

    def delta(self):
        """end.delta(start) (see MemorySnapshot.delta), or None before the block ended."""
        if self.start is None or self.end is None:
            return None
        return self.end.delta(self.start)

    def report(self):
        """{name, start, end, delta}: the two snapshots' to_dict() and their delta (None for
        what has not happened yet)."""
        return {
            "name": self.name,
            "start": self.start.to_dict() if self.start is not None else None,
            "end": self.end.to_dict() if self.end is not None else None,
            "delta": self.delta(),
        }


def memory_profile(name="profile", include_gpu=True, **options):
    """with memory_profile("step") as prof: ... -- a MemoryProfiler (same options)."""
    return MemoryProfiler(name, include_gpu, **options)


_results = {}
_results_lock = threading.Lock()


def _record(name, call):
    """Adds one call's figures to the totals of name."""
    with _results_lock:
        s = _results.get(name)
        if s is None:
            s = _results[name] = {
                "calls": 0,
                "total_time_s": 0.0,
                "min_time_s": call["time_s"],
                "max_time_s": call["time_s"],
                "rss_before_bytes": call["rss_before_bytes"],
                "rss_after_bytes": call["rss_after_bytes"],
                "peak_rss_bytes": call["peak_rss_bytes"],
                "allocated_bytes": 0,
                "freed_bytes": 0,
                "net_bytes": 0,
                "samples": 0,
            }
        s["calls"] += 1
        s["total_time_s"] += call["time_s"]
        s["min_time_s"] = min(s["min_time_s"], call["time_s"])
        s["max_time_s"] = max(s["max_time_s"], call["time_s"])
        s["rss_after_bytes"] = call["rss_after_bytes"]
        s["peak_rss_bytes"] = max(s["peak_rss_bytes"], call["peak_rss_bytes"])
        s["allocated_bytes"] += call["allocated_bytes"]
        s["freed_bytes"] += call["freed_bytes"]
        s["net_bytes"] += call["rss_after_bytes"] - call["rss_before_bytes"]
        s["samples"] += call["samples"]


class profile_context:
    """with profile_context("step"): ... -- adds this run to get_profile_results()["step"].

    After the block, .result holds this run's own figures: time_s, rss_before_bytes,
    rss_after_bytes, peak_rss_bytes (the largest of the sampler's samples and the two ends),
    allocated_bytes (peak - before), freed_bytes (peak - after) and samples.
    """

    def __init__(self, name):
        if not isinstance(name, str):
            raise TypeError("profile_context() needs a str name, not %s" % type(name).__name__)
        self.name = name
        self.result = None
        self._window = None

    def __enter__(self):
        self._before = _memsnap.capture_memory_snapshot(include_gpu=False).rss_bytes
        self._window = _memsnap._window_open()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, exc_type, exc, tb):
        elapsed = time.perf_counter() - self._t0
        sampled, samples = _memsnap._window_close(self._window)
        after = _memsnap.capture_memory_snapshot(include_gpu=False).rss_bytes
        before = self._before
        peak = max(v for v in (sampled, before, after) if v is not None)
        self.result = {
            "time_s": elapsed,
            "rss_before_bytes": before,
            "rss_after_bytes": after,
            "peak_rss_bytes": peak,
            "allocated_bytes": peak - before,
            "freed_bytes": peak - after,
            "samples": samples,
        }
        _record(self.name, self.result)
        return False


def profile_function(func=None, *, name=None):
    """Decorator: every call runs in profile_context(name), name defaulting to the function's
    module.qualname. Use as @profile_function, @profile_function("name") or
    @profile_function(name="name")."""
    if isinstance(func, str) and name is None:
        func, name = None, func
    if func is None:
        return functools.partial(profile_function, name=name)
    if not callable(func):
        raise TypeError("profile_function() decorates a callable, not %s" % type(func).__name__)
    label = name or "%s.%s" % (func.__module__, func.__qualname__)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with profile_context(label):
            return func(*args, **kwargs)

    return wrapper


def get_profile_results():
    """{name: totals} of every profiled name: calls, total/min/max/avg time, rss_before_bytes
    (first call's start), rss_after_bytes (last call's end), peak_rss_bytes (over all calls),
    allocated_bytes and freed_bytes (summed over calls), net_bytes (sum of after - before),
    samples."""
    with _results_lock:
        out = {name: dict(s) for name, s in _results.items()}
    for s in out.values():
        s["avg_time_ms"] = s["total_time_s"] * 1000.0 / s["calls"]
    return out


def reset_profile_results():
    """Forgets every accumulated result."""
    with _results_lock:
        _results.clear()

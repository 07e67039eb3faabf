"""memsnap for Python: where did the memory go?

Memory snapshots of this process (or any other) through libmemsnap, linked into the C
extension memsnap._memsnap: the process's RSS, VMS, peaks, PSS/USS, swap and faults, the
system's memory, the memory cgroup and every GPU, with Python's own figures (gc, tracemalloc,
allocated blocks, PyTorch's CUDA allocator) for this interpreter. Around it, in Python, only
what is about Python's own runtime: profilers, a gc debugger, the torch reader.

    import memsnap
    before = memsnap.capture_memory_snapshot()
    data = bytearray(64 << 20)
    after = memsnap.capture_memory_snapshot()
    print(after.delta(before)["rss_mb"])

Traces written by `memsnap record` through the library's heap engine (memsnap.Heap), the
analysis of `memsnap analyze` (memsnap.analyze) and the library's sampler as an iterator
(memsnap.Sampler). See docs/bindings-python.md.
"""
from ._memsnap import (
    AccessDeniedError,
    Error,
    FlightRecorder,
    Heap,
    HeapView,
    MemorySnapshot,
    ProcessNotFoundError,
    Sampler,
    __version__,
    capture_memory_snapshot,
    format_memory,
    gpu_backends,
    sampler_interval,
    sampler_samples,
)
from ._gc import GCDebugger, freeze_gc_heap, gc_stats, unfreeze_gc_heap
from ._oom import OOMFlightRecorder, is_cuda_oom
from ._profile import (
    MemoryProfiler,
    get_profile_results,
    memory_profile,
    profile_context,
    profile_function,
    reset_profile_results,
)
from ._runtime import get_system_info
from ._trace import analyze

__all__ = [
    "AccessDeniedError",
    "Error",
    "FlightRecorder",
    "GCDebugger",
    "Heap",
    "HeapView",
    "MemoryProfiler",
    "MemorySnapshot",
    "OOMFlightRecorder",
    "ProcessNotFoundError",
    "Sampler",
    "analyze",
    "capture_memory_snapshot",
    "format_memory",
    "freeze_gc_heap",
    "gc_stats",
    "get_profile_results",
    "get_system_info",
    "gpu_backends",
    "is_cuda_oom",
    "memory_profile",
    "profile_context",
    "profile_function",
    "reset_profile_results",
    "sampler_interval",
    "sampler_samples",
    "unfreeze_gc_heap",
]

"""What memsnap reads of the Python runtime itself: PyTorch's CUDA allocator, and the
description of this interpreter and host that get_system_info() returns."""
import os
import platform
import sys

from . import _memsnap

# torch.cuda.memory_stats() keys, in the order of the snapshot's torch_* fields:
# allocated, reserved, max allocated, max reserved, active, inactive.
_TORCH_KEYS = (
    "allocated_bytes.all.current",
    "reserved_bytes.all.current",
    "allocated_bytes.all.peak",
    "reserved_bytes.all.peak",
    "active_bytes.all.current",
    "inactive_split_bytes.all.current",
)


def _torch_figures(torch):
    """The CUDA caching allocator's figures of the current device as a 6-tuple (None for a key
    torch does not report), or None when CUDA is not available. Called by
    capture_memory_snapshot(include_gpu=True) only when 'torch' is already in sys.modules:
    memsnap never imports torch. A torch that fails to answer gives None, not an error."""
    try:
        cuda = torch.cuda
        if not cuda.is_available():
            return None
        stats = cuda.memory_stats()
    except Exception:  # a half-initialised CUDA must not break a memory snapshot
        return None
    return tuple(stats.get(key) for key in _TORCH_KEYS)


_memsnap._set_torch_reader(_torch_figures)


def _section(snapshot_dict, prefix):
    """The keys of a snapshot's to_dict() that start with prefix, without it."""
    return {k[len(prefix):]: v for k, v in snapshot_dict.items() if k.startswith(prefix)}


def get_system_info():
    """This host and interpreter: memsnap's, Python's and the kernel's versions, the GPU
    backends and which one was detected, every GPU, the system's memory and this process's
    memory cgroup. Loads the GPU backends on first use."""
    snap = _memsnap.capture_memory_snapshot(include_gpu=True, full=True).to_dict()
    backends = _memsnap.gpu_backends()
    detected = [b["name"] for b in backends if b["available"]]
    torch = sys.modules.get("torch")
    uname = os.uname()
    info = {
        "memsnap_version": _memsnap.__version__,
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "python_executable": sys.executable,
        "kernel": "%s %s" % (uname.sysname, uname.release),
        "machine": uname.machine,
        "cpu_count": os.cpu_count(),
        "page_size": os.sysconf("SC_PAGE_SIZE"),
        "backend": detected[0] if detected else None,
        "gpu_backends": backends,
        "gpus": snap["gpus"],
        "memory": _section(snap, "system_"),
        "cgroup": _section(snap, "cgroup_"),
        "torch_version": getattr(torch, "__version__", None) if torch is not None else None,
    }
    info.update(_memsnap.session_roots())
    return info

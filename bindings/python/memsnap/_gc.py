"""The garbage collector seen from memsnap: GCDebugger (every collection through
gc.callbacks: how many, how long, what they freed), a forced collection, the most common
object types, and freezing the heap that exists after start-up (gc.freeze) so that later
collections skip it."""
import collections
import gc
import logging
import time

_log = logging.getLogger("memsnap.gc")


def _generation(generation):
    if not isinstance(generation, int) or isinstance(generation, bool):
        raise TypeError("generation must be an int, not %s" % type(generation).__name__)
    if not 0 <= generation <= 2:
        raise ValueError("generation must be 0, 1 or 2, not %d" % generation)
    return generation


class GCDebugger:
    """Counts and times every collection while started (start()/stop() or a with block).

    report() gives total_collections, total_collected, total_uncollectable, total_time_ms,
    avg_collection_time_ms, current_gc_counts, total_objects and collection_log (the last 10
    collections: generation, collected, uncollectable, elapsed_ms, timestamp).
    log_collections=True also logs each collection to the 'memsnap.gc' logger (DEBUG).
    """

    LOG_SIZE = 10

    def __init__(self, log_collections=False):
        self.log_collections = bool(log_collections)
        self.total_collections = 0
        self.total_collected = 0
        self.total_uncollectable = 0
        self.total_time_ms = 0.0
        self._collection_log = collections.deque(maxlen=self.LOG_SIZE)
        self._t0 = None
        self._running = False

    # Collections never overlap (the gc runs one at a time under the GIL), so the callback
    # needs no lock; taking one here could deadlock with a collection that starts while its
    # holder allocates.
    def _callback(self, phase, info):
        if phase == "start":
            self._t0 = time.perf_counter()
            return
        if phase != "stop" or self._t0 is None:
            return
        elapsed_ms = (time.perf_counter() - self._t0) * 1000.0
        self._t0 = None
        self.total_collections += 1
        self.total_collected += info.get("collected", 0)
        self.total_uncollectable += info.get("uncollectable", 0)
        self.total_time_ms += elapsed_ms
        entry = {
            "generation": info.get("generation"),
            "collected": info.get("collected", 0),
            "uncollectable": info.get("uncollectable", 0),
            "elapsed_ms": round(elapsed_ms, 3),
            "timestamp": time.time(),
        }
        self._collection_log.append(entry)
        if self.log_collections:
            _log.debug("gc generation %s: %d collected, %d uncollectable, %.3f ms",
                       entry["generation"], entry["collected"], entry["uncollectable"],
                       elapsed_ms)

    def start(self):
        """Registers the callback (again a no-op while started)."""
        if not self._running:
            gc.callbacks.append(self._callback)
            self._running = True

    def stop(self):
        """Unregisters the callback; the totals stay."""
        if self._running:
            gc.callbacks.remove(self._callback)
            self._running = False
            self._t0 = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        self.stop()
        return False

    def force_collection(self, generation=2):
        """Collects generation (0, 1 or 2, default all) now: {generation, collected,
        elapsed_ms}."""
        generation = _generation(generation)
        t0 = time.perf_counter()
        collected = gc.collect(generation)
        return {
            "generation": generation,
            "collected": collected,
            "elapsed_ms": round((time.perf_counter() - t0) * 1000.0, 3),
        }

    @staticmethod
    def get_top_objects(n=10):
        """The n most common types among the objects the gc tracks: [(type name, count)],
        largest first (walks every object)."""
        if not isinstance(n, int) or isinstance(n, bool):
            raise TypeError("n must be an int, not %s" % type(n).__name__)
        if n < 0:
            raise ValueError("n must be >= 0, not %d" % n)
        counts = collections.Counter(_type_name(type(o)) for o in gc.get_objects())
        return counts.most_common(n)

    def report(self):
        """The totals since construction, the gc's counts now and the last collections."""
        n = self.total_collections
        return {
            "total_collections": n,
            "total_collected": self.total_collected,
            "total_uncollectable": self.total_uncollectable,
            "total_time_ms": round(self.total_time_ms, 3),
            "avg_collection_time_ms": round(self.total_time_ms / n, 3) if n else 0.0,
            "current_gc_counts": gc.get_count(),
            "total_objects": len(gc.get_objects()),
            "collection_log": list(self._collection_log),
        }


def _type_name(t):
    """'dict' for builtins, 'module.Qualname' for the rest."""
    if t.__module__ == "builtins":
        return t.__qualname__
    return "%s.%s" % (t.__module__, t.__qualname__)


def freeze_gc_heap():
    """Collects every generation, then moves every object left to the permanent generation
    (gc.freeze), where later collections ignore it; returns gc.get_freeze_count(). Call it
    after start-up, before a fork or a long-lived steady state."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def unfreeze_gc_heap():
    """Moves the frozen objects back into the oldest generation (gc.unfreeze)."""
    gc.unfreeze()


def gc_stats():
    """The gc now: enabled, counts and thresholds per generation, the frozen count,
    gc.get_stats() per generation (collections, collected, uncollectable) and total_objects
    (walks every object)."""
    return {
        "enabled": gc.isenabled(),
        "counts": gc.get_count(),
        "thresholds": gc.get_threshold(),
        "frozen": gc.get_freeze_count(),
        "generations": gc.get_stats(),
        "total_objects": len(gc.get_objects()),
    }

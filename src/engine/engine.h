/*
 * engine.h - the snapshot engine of `memsnap report`, internal to libmemsnap: the live heap of
 * a trace at any moment, its peak, its leaks and the difference between two moments, grouped
 * by call site, function, thread or module.
 *
 * Opening streams the trace once (ms__trace_load_fd_stream) and makes one pass over each chunk's
 * events as it is decoded: a 32-bit op per event (+info, -info or nothing), the time index,
 * the peak, temporaries, unmatched frees, and every N events a checkpoint holding the live
 * count of each info; the decoded events themselves are not kept. A snapshot at any moment
 * then costs one checkpoint copy and a replay of at most N ops, and queries never change the
 * engine's state (they may run in any order, any number of times).
 *
 * A moment is an event index E: the heap after event slots [0, E) of the trace. A time T (ns from
 * the trace start) is the index of the first event later than T (events at T are included).
 * Blocks of an image end at the EXEC that follows it (they are not leaks); a realloc ends its
 * old block (REALLOC_OLD, RELEASE) and starts a new one. A FREE, REALLOC_OLD or RELEASE of a
 * block that is not live (a double free) counts as an unmatched free and changes nothing.
 *
 * Figures are charged to the info of the block: its size, stack and the thread that ALLOCATED
 * it, whichever thread frees it. In a sampled trace a recorded block of an info stands for
 * ms__trace_sample_weight() blocks: bytes and counts of views are weighted and rounded.
 */
#ifndef MS_ENGINE_ENGINE_H
#define MS_ENGINE_ENGINE_H

#include "../trace/reader.h"
#include "symbolize.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ms__engine;

struct ms__engine_opts {
    size_t checkpoint_every;  /* events between checkpoints (N) at first; 0: 1 << 20 */
    size_t checkpoint_budget; /* bytes of checkpoints past which N doubles (and every other
                                 checkpoint goes); 0: 256 MiB */
    /* Called after each chunk while loading, with the bytes of the file read and its size
     * (from the loading thread); may be NULL. */
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    void *progress_ctx;
};

/* Figures of the whole trace, from the pass at open. */
struct ms__engine_totals {
    uint64_t slots;              /* event slots */
    uint64_t allocations;        /* ALLOC events */
    uint64_t reallocations;      /* REALLOC events */
    uint64_t frees;              /* FREE events that ended a live block */
    uint64_t unmatched_frees;    /* frees and realloc old blocks of no live block */
    uint64_t temporaries;        /* frees of the block allocated last (no ALLOC in between) */
    uint64_t temporary_bytes;    /* their bytes */
    uint64_t peak_event;         /* the peak: the heap after events [0, peak_event) */
    uint64_t peak_time_ns;       /* the time of the event that first reached it */
    uint64_t peak_bytes;         /* (weighted when sampled) */
    uint64_t leaked_bytes;       /* live at the end of the last image */
    uint64_t leaked_allocations; /* (weighted when sampled) */
    uint64_t allocated_bytes;    /* blocks started: ALLOC and REALLOC (weighted when sampled) */
    uint64_t freed_bytes;        /* live blocks ended: FREE, REALLOC_OLD, RELEASE (weighted) */
    size_t checkpoint_every;     /* N */
    size_t checkpoints;          /* how many */
    bool sampled;                /* an image was recorded with a sample rate */
};

/* One info of a view: its live figures, or for a diff the change. */
struct ms__view_site {
    uint32_t info; /* index into td->infos */
    int64_t bytes;
    int64_t count;
};

/* The heap at a moment, per info: sites with a non-zero count, by info index. */
struct ms__heap_view {
    uint64_t time_ns;      /* the moment (for a diff: the second one) */
    uint64_t from_time_ns; /* a diff: the first moment; otherwise equal to time_ns */
    uint64_t event;        /* the event index E (a diff: of the second moment) */
    uint32_t image;        /* the image whose heap it is */
    bool diff;             /* bytes and counts are differences */
    int64_t live_bytes;
    int64_t live_allocations;
    struct ms__view_site *sites;
    size_t nsites;
};

/* Opens an engine on the trace read from fd; returns 0 or a negative MS_E* code with one line
 * in err (those of ms__trace_load_fd, MS_ENOMEM). A truncated trace opens: see td->truncated. */
int ms__engine_open_fd(struct ms__engine **out, int fd, const struct ms__engine_opts *opts,
                       char *err, size_t errlen);
/* The same on trace data loaded whole (ms__trace_load_fd/_mem), which the engine then owns;
 * td is freed on failure too. */
int ms__engine_open_data(struct ms__engine **out, struct ms__trace_data *td,
                         const struct ms__engine_opts *opts, char *err, size_t errlen);
void ms__engine_close(struct ms__engine *e);

const struct ms__trace_data *ms__engine_trace(const struct ms__engine *e);
const struct ms__engine_totals *ms__engine_totals(const struct ms__engine *e);
/* Events replayed from a checkpoint by the last snapshot (for tests and benchmarks). */
uint64_t ms__engine_last_replayed(const struct ms__engine *e);

/* The time of event slot (ns from the trace start). */
uint64_t ms__engine_slot_ns(const struct ms__engine *e, uint64_t slot);
/* The event index of time ns: the first event later than ns (td->nslots past the last). */
uint64_t ms__engine_event_at(const struct ms__engine *e, uint64_t ns);
/* The time of the first marker labelled label; MS_ENOENT when none is. */
int ms__engine_marker_time(const struct ms__engine *e, const char *label, uint64_t *ns);

/* The heap after events [0, event) (event clamped to td->nslots), of the image of the last of
 * those events. Returns 0 or MS_ENOMEM; free the view with ms__heap_view_free. */
int ms__engine_snapshot(struct ms__engine *e, uint64_t event, struct ms__heap_view *out);
/* The heap at time ns: every event at or before ns; time_ns is ns. */
int ms__engine_snapshot_time(struct ms__engine *e, uint64_t ns, struct ms__heap_view *out);
/* The heap when live bytes were highest (the first time); an empty view of time 0 when the
 * trace allocates nothing. */
int ms__engine_peak(struct ms__engine *e, struct ms__heap_view *out);
/* What is live at the end of the last image; time_ns is td->end_time. */
int ms__engine_leaks(struct ms__engine *e, struct ms__heap_view *out);
/* b - a per info (sites whose count or bytes changed), time_ns of b, from_time_ns of a. */
int ms__engine_diff(const struct ms__heap_view *a, const struct ms__heap_view *b,
                    struct ms__heap_view *out);
void ms__heap_view_free(struct ms__heap_view *v);
/* Calls fn, in allocation order, for each block that view v (not a diff) counts: live after
 * events [0, v->event) in image v->image. Gives its number in the image, its info and the
 * event that allocated it. The pass at open keeps no per-block state, so this reads the trace
 * again up to the moment (tens of ms per 10M events). Stops at a non-zero return of fn and
 * returns it; else 0, or an MS_E* code. */
int ms__engine_blocks(struct ms__engine *e, const struct ms__heap_view *v,
                      int (*fn)(void *ctx, uint64_t block, uint32_t info, uint64_t alloc_slot),
                      void *ctx);

/* One thread's figures over the whole trace, charged like the views: to the thread that
 * allocated the block, whichever thread freed it (the trace does not say which thread frees). */
struct ms__thread_stats {
    uint64_t allocations;     /* ALLOC blocks (weighted when sampled) */
    uint64_t reallocations;   /* REALLOC new blocks */
    uint64_t frees;           /* its live blocks a FREE ended */
    uint64_t allocated_bytes; /* bytes of its ALLOC and REALLOC blocks */
    uint64_t freed_bytes;     /* bytes of its live blocks that ended: FREE, REALLOC_OLD, RELEASE */
    uint64_t peak_bytes;      /* the most bytes of its blocks live at once */
    uint64_t peak_time_ns;    /* when first reached (0 when it never allocated) */
};

/* The figures of every thread of td->threads (out[i] is td->threads[i]), from a pass that
 * reads the trace again (the pass at open keeps no per-event kinds: tens of ms per 10M
 * events). Returns 0 or an MS_E* code; free *out. */
int ms__engine_threads(struct ms__engine *e, struct ms__thread_stats **out);

enum ms__group_by {
    MS__GROUP_STACK,         /* the call site: one row per distinct stack of an image */
    MS__GROUP_THREAD,        /* the allocating thread */
    MS__GROUP_MODULE,        /* the module of the innermost frame */
    MS__GROUP_FUNCTION_SELF, /* the function of the innermost frame */
    MS__GROUP_FUNCTION_INCL, /* every function on the stack (once per stack) */
};

/* One row of a grouped view. */
struct ms__group_row {
    int64_t bytes;
    int64_t count;
    uint32_t image;
    uint32_t stack;  /* MS__GROUP_STACK: the stack id (0: none) */
    uint32_t thread; /* MS__GROUP_THREAD: index into td->threads */
    char *name;      /* module or function (module+0xoffset when unresolved), else NULL */
};

/* Groups the sites of v; rows are sorted by bytes (largest first: growth first in a diff),
 * then count. sym may be NULL (functions are then named module+0xoffset). Returns 0 or
 * MS_ENOMEM; free the rows with ms__group_rows_free. */
int ms__engine_group(struct ms__engine *e, const struct ms__heap_view *v, enum ms__group_by by,
                     struct ms__symbolizer *sym, struct ms__group_row **rows, size_t *nrows);
void ms__group_rows_free(struct ms__group_row *rows, size_t n);

/* The frames of stack id `stack` of image im, innermost first, at most max: symbolized by sym
 * (inlined frames included), or, when sym is NULL, module+offset. Returns how many. */
size_t ms__engine_stack_frames(const struct ms__engine *e, struct ms__symbolizer *sym, uint32_t im,
                               uint32_t stack, struct ms__sym_frame *frames, size_t max);

/* The module of return address ip in image, as the symbolizer finds it (ms__mod_find at
 * ip - 1), or NULL. */
const struct ms__trace_module *ms__engine_module_of(const struct ms__engine *e, uint32_t image,
                                                    uint64_t ip);

#endif /* MS_ENGINE_ENGINE_H */

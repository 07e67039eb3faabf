/*
 * reader.h - the decoded form of a trace file, internal to libmemsnap.
 *
 * ms__trace_load_fd() and ms__trace_load_mem() read a whole trace (src/trace/format.h,
 * docs/trace-format.md) into one struct ms__trace_data: every heap and mmap event in time
 * order in one compact array of 24-byte slots, and the tables the other records build
 * (allocation infos, threads, stack trie nodes, modules, markers, RSS samples, CLOCK pairs,
 * one entry per process image). Event times are ticks, as the file gives them
 * (ms__trace_event_ns() maps them); every other time here is ns from the trace start. The
 * stats of `memsnap report --stats` (stats.c) and the snapshot engine replay it.
 *
 * The file names heap blocks by number, not by address: blocks are numbered 0, 1, 2, ... in
 * allocation order within an image, so a replay keeps its live set in an array indexed by
 * block number (the image's nblocks long).
 *
 * A cut or corrupt chunk is not an error: loading keeps every earlier good chunk, sets
 * td->truncated and explains it in td->warning. Errors (not a trace, a newer major version,
 * out of memory) return a negative MS_E* code with one line in the caller's buffer.
 */
#ifndef MEMSNAP_TRACE_READER_H
#define MEMSNAP_TRACE_READER_H

#include "memsnap.h"
/* the loader's tools, which the engine and the symbolizer use through this header too */
#include "../util/grow.h"
#include "../util/ptrmap.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * What an event slot holds. A realloc is two slots at the same time: REALLOC_OLD (the old
 * block ends; only when the trace knows it) and REALLOC (the new block). MREMAP likewise:
 * MREMAP_OLD, then MREMAP.
 */
enum ms__trace_kind {
    MS__EV_ALLOC = 1,           /* id = the new block, info */
    MS__EV_FREE = 2,            /* id = the block freed */
    MS__EV_REALLOC = 3,         /* id = the new block, info */
    MS__EV_MMAP = 4,            /* id = the address, info (size, stack, thread) */
    MS__EV_MUNMAP = 5,          /* id = the address, info (size, thread) */
    MS__EV_MREMAP = 6,          /* id = the new address, info (new size, stack, thread) */
    MS__EV_REALLOC_OLD = 7,     /* id = the old block of the REALLOC after it, which ends */
    MS__EV_MREMAP_OLD = 8,      /* id = the old address, info (old size, thread) */
    MS__EV_RELEASE = 9,         /* id = a block that ends without a free of its own: the old
                                   block of a REALLOC written before its ALLOC was */
    MS__EV_UNMATCHED_FREE = 10, /* a free of memory the trace never saw allocated */
    MS__EV_UNMATCHED_OLD = 11,  /* a realloc's old block the trace never saw allocated */
};

#define MS__TRACE_NO_INFO UINT32_MAX

/* One event slot: 24 bytes. */
struct ms__trace_event {
    uint64_t time; /* ticks (ms__trace_event_ns() gives ns from the trace start) */
    uint64_t id;   /* a block number (of the event's image) or an address: see the kinds */
    uint32_t info; /* index into td->infos, or MS__TRACE_NO_INFO */
    uint8_t kind;  /* enum ms__trace_kind */
};

/* Whether a slot of this kind is a call of its own (what ms_trace_stats.events counts). */
static inline bool ms__trace_kind_is_event(unsigned kind)
{
    return kind <= MS__EV_MREMAP || kind == MS__EV_UNMATCHED_FREE;
}

/* What an ALLOC or REALLOC names (an INFO record), or what an mmap call was. */
struct ms__trace_info {
    uint64_t size;   /* bytes */
    uint32_t stack;  /* stack id in the trie of the image, 0 for none */
    uint32_t thread; /* index into td->threads */
};

/* A string of the trace: bytes at td->strings + off, len of them, followed by a NUL (the bytes
 * themselves may hold NULs: cmdline, build ids). {0, 0} is the empty string. */
struct ms__trace_str {
    uint32_t off;
    uint32_t len;
};

/* One process image: the PROCESS record, then one per EXEC record. Block numbers, info ids,
 * thread serials and stack ids start again in each. */
struct ms__trace_image {
    uint32_t pid;
    uint32_t ppid;
    uint64_t unix_ns;     /* wall-clock time when the image started recording */
    uint64_t flags;       /* MS_PROC_* */
    uint64_t sample_rate; /* bytes; 0: every allocation recorded */
    uint64_t max_depth;   /* frames per stack */
    struct ms__trace_str exe;
    struct ms__trace_str cmdline; /* arguments separated by NUL */
    bool described;               /* a PROCESS or EXEC record gave the fields above */
    size_t first_event;           /* its slots are [first_event, end_event) of td->events */
    size_t end_event;
    uint64_t nblocks;      /* heap blocks allocated (numbered 0 .. nblocks - 1) */
    uint32_t ninfos;       /* infos its INFO records defined */
    uint32_t first_thread; /* its threads are [first_thread, first_thread + nthreads) */
    uint32_t nthreads;
};

/* One thread of one image: the format names threads by a serial number, unique within an
 * image, and a THREAD record gives its kernel tid (which may be reused by a later serial). */
struct ms__trace_thread {
    uint32_t serial;           /* as in the trace: 1, 2, ... in order of first allocation */
    uint32_t tid;              /* from its THREAD record; 0 when the trace has none */
    uint32_t image;            /* index into td->images */
    struct ms__trace_str name; /* the last name its THREAD records gave */
    uint64_t first_time;       /* ns: its first THREAD record (its first allocator call) */
    uint64_t last_time;        /* ns: its THREAD_END record (or its last THREAD record) */
    bool announced;            /* a THREAD record named it */
    bool ended;                /* a THREAD_END record closed it */
};

/* One node of an image's stack trie. Walking parent ids from an event's stack id to 0 gives
 * the frames; an id may be defined after its first use, or never (a cut trace). */
struct ms__trace_stack {
    uint64_t ip;
    uint32_t id;
    uint32_t parent; /* 0: a root */
    uint32_t image;
};

struct ms__trace_module {
    uint32_t id;
    uint32_t image;
    uint64_t load_bias;
    uint64_t start;
    uint64_t end;
    struct ms__trace_str build_id; /* raw bytes */
    struct ms__trace_str path;
    uint64_t unload_time; /* ns, UINT64_MAX while loaded */
};

struct ms__trace_marker {
    uint64_t time;   /* ns */
    uint32_t thread; /* index into td->threads */
    struct ms__trace_str label;
};

struct ms__trace_rss {
    uint64_t time;  /* ns */
    uint64_t bytes; /* resident set size */
};

/* A CLOCK record, as written. */
struct ms__trace_clock {
    uint64_t ticks;
    uint64_t monotonic_ns;
};

/* ticks -> ns from the trace start: (ticks - start_ticks) * (mul_int + mul_frac / 2^64),
 * rounded to nearest; 0 for ticks before the start. */
struct ms__trace_timebase {
    uint64_t start_ticks;
    uint64_t mul_int;
    uint64_t mul_frac;
};

struct ms__trace_data {
    struct ms__trace_event *events; /* in time order (the order of the file): slots
                                       [slot_base, nslots), events[i - slot_base] */
    size_t nslots;                  /* slots in the trace */
    size_t slot_base;               /* 0, but for a streaming load (the current chunk's first) */
    uint64_t nevents;               /* calls: the slots of ms__trace_kind_is_event() kinds */
    struct ms__trace_info *infos;   /* one per INFO record (of any image) and per mmap call */
    size_t ninfos;
    struct ms__trace_image *images; /* at least one */
    size_t nimages;
    struct ms__trace_thread *threads;
    size_t nthreads;
    struct ms__trace_stack *stacks; /* distinct (image, id), in definition order */
    size_t nstacks;
    struct ms__trace_module *modules; /* in definition order */
    size_t nmodules;
    struct ms__trace_marker *markers; /* in time order */
    size_t nmarkers;
    struct ms__trace_rss *rss; /* in time order */
    size_t nrss;
    struct ms__trace_clock *clocks; /* in file order */
    size_t nclocks;
    char *strings; /* every ms__trace_str points here */
    size_t strings_len;
    bool complete;       /* an END record was read */
    uint64_t end_time;   /* ns: the END record's time, or the last time seen */
    uint64_t exit_kind;  /* END: 0 exit, 1 _exit, 2 abort, 3 quick_exit */
    uint64_t lost;       /* events the tracker could not record (LOST records) */
    uint64_t file_bytes; /* the file's size (bytes read for a non-regular file) */
    uint64_t file_read;  /* bytes read through the last good chunk (grows while loading) */
    uint64_t chunks;     /* good chunks read */
    struct ms__trace_timebase timebase;
    bool truncated;    /* reading stopped at a bad or cut chunk */
    char warning[320]; /* why, when truncated */
    /* lookup tables for ms__trace_stack_find(), built by the loader */
    uint32_t *stack_index; /* open addressing: index + 1 into stacks, 0 empty */
    size_t stack_index_mask;
};

/* Checks a file header (at least MS_TRACE_HEADER_SIZE bytes at p, len of them available).
 * Returns 0 and the header size, or MS_EPARSE with the reason in err. */
int ms__trace_header_check(const uint8_t *p, size_t len, uint32_t *header_size, char *err,
                           size_t errlen);

/* Loads the whole trace read from fd (from offset 0, with pread), or from len bytes at buf.
 * Returns 0 and *out (free it with ms__trace_data_free), or a negative MS_E* code with one line
 * in err: MS_EPARSE (empty, not a trace, newer major), MS_ENOMEM, MS_EIO. */
int ms__trace_load_fd(struct ms__trace_data **out, int fd, char *err, size_t errlen);
/* Hands the slots [from, to) of each good chunk to fn as soon as the chunk is decoded, and
 * then drops them: events[] never holds more than one chunk's slots (slot_base says which),
 * so a trace of any length loads in the memory of its largest chunk. A non-zero return of fn
 * stops the load with that code. Slot times are ticks: td->timebase is set only at the end. */
typedef int (*ms__trace_chunk_fn)(void *ctx, const struct ms__trace_data *td, size_t from,
                                  size_t to);
int ms__trace_load_fd_stream(struct ms__trace_data **out, int fd, ms__trace_chunk_fn fn, void *ctx,
                             char *err, size_t errlen);
int ms__trace_load_mem(struct ms__trace_data **out, const void *buf, size_t len, char *err,
                       size_t errlen);
void ms__trace_data_free(struct ms__trace_data *td);

/* Maps ticks (as written in the trace) to ns from the trace start. */
uint64_t ms__trace_ticks_ns(const struct ms__trace_timebase *tb, uint64_t ticks);

static inline uint64_t ms__trace_event_ns(const struct ms__trace_data *td,
                                          const struct ms__trace_event *e)
{
    return ms__trace_ticks_ns(&td->timebase, e->time);
}

/* The node (image, id) of a stack trie, or NULL when the trace never defined it. */
const struct ms__trace_stack *ms__trace_stack_find(const struct ms__trace_data *td, uint32_t image,
                                                   uint32_t id);
/* Writes up to max instruction pointers of stack id in image, from the node id towards the
 * root (innermost frame first); stops at a node the trace does not define, and after max
 * (which also ends a cycle in a corrupt trie). Returns the number written. */
size_t ms__trace_stack_walk(const struct ms__trace_data *td, uint32_t image, uint32_t id,
                            uint64_t *ips, size_t max);

static inline const char *ms__trace_str_ptr(const struct ms__trace_data *td, struct ms__trace_str s)
{
    return td->strings ? td->strings + s.off : "";
}

/* A module's address range, for lookups by address: ranges sorted by image, then start. */
struct ms__mod_range {
    uint32_t image;
    uint32_t mod; /* index in td->modules */
    uint64_t start, end;
};
/* The ranges of td's modules (empty ones and those of no image left out), sorted; *out is NULL
 * when there are none. Returns 0 or MS_ENOMEM. */
int ms__mod_ranges(const struct ms__trace_data *td, struct ms__mod_range **out, size_t *n);
/* The range of r[0, n) of image that holds addr: the last one starting at or below addr that
 * holds it (a module unloaded and another loaded over it are not told apart), or NULL. The
 * engine and the symbolizer both look modules up with it, at ip - 1 for a return address. */
const struct ms__mod_range *ms__mod_find(const struct ms__mod_range *r, size_t n, uint32_t image,
                                         uint64_t addr);

/* The summary of loaded trace data (the semantics of ms_trace_stats in memsnap.h). Fills every
 * field of *st (st->size is set to sizeof). Returns 0 or MS_ENOMEM. */
int ms__trace_stats_compute(const struct ms__trace_data *td, ms_trace_stats *st);

/* Sampling weight of a recorded block of size bytes at sample rate rate (> 0): 1 / (1 -
 * exp(-size / rate)), 1 for size 0 and for size >= 40 * rate. */
double ms__trace_sample_weight(uint64_t size, uint64_t rate);

#endif /* MEMSNAP_TRACE_READER_H */

/*
 * trace_writer.h - a small trace writer for the tests (test_trace, test_engine, test_heap,
 * test_flight): traces built by hand from src/trace/format.h, record by record, with chunks
 * in either codec; tw_start() writes the usual start of a trace from a description.
 */
#ifndef MS_TEST_TRACE_WRITER_H
#define MS_TEST_TRACE_WRITER_H

#include "trace/format.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The old block of ev_realloc() when the trace does not know it (written as UNMATCHED). */
#define NO_BLOCK UINT64_MAX

struct bytes {
    uint8_t *p;
    size_t len, cap;
};

/*
 * A trace being written: the file so far, the records of the open chunk, and what the
 * tracker's writer keeps per image to write events (block numbers, infos, the running time).
 */
struct tw {
    struct bytes file;
    struct bytes chunk;
    uint64_t next_block; /* blocks allocated in this image */
    uint64_t now;        /* ticks of the last TIME record */
    bool time_started;
    size_t ninfos;
    struct {
        uint64_t size;
        uint32_t stack, serial;
    } infos[2048];
};

void b_put(struct bytes *b, const void *d, size_t n);
void b_u8(struct bytes *b, uint8_t v);
void b_v(struct bytes *b, uint64_t v);
void b_s(struct bytes *b, const char *s);
/*
 * The start of a trace, as data: tw_start() writes the file header, then (into the open
 * chunk) the PROCESS record (unless pid is 0), the first CLOCK pair (unless no_clock), and
 * each thread, module and stack listed, in that order. The lists end at an entry whose first
 * field is 0; TW_THREADS(...), TW_MODULES(...) and TW_STACKS(...) write them in place:
 *
 *     tw_start(&w, &(struct tw_start){.pid = 7, .ppid = 1,
 *                                     .threads = TW_THREADS({1, 7, 0, "main"}),
 *                                     .stacks = TW_STACKS({1, 0, 0x1100})});
 */
struct tw_thread {
    uint32_t serial, tid;
    uint64_t ticks; /* of the THREAD record */
    const char *name;
};
struct tw_module {
    uint32_t id;
    uint64_t start, end;
    const char *path;
};
struct tw_stack {
    uint32_t id, parent;
    uint64_t ip;
};
struct tw_start {
    uint32_t pid, ppid;             /* the PROCESS record; pid 0: none */
    uint64_t flags, rate;           /* its MS_PROC_* flags and sampling rate */
    bool no_clock;                  /* no first CLOCK record */
    uint64_t clock_ticks, clock_ns; /* the first CLOCK pair */
    const struct tw_thread *threads;
    const struct tw_module *modules;
    const struct tw_stack *stacks;
};
#define TW_THREADS(...) ((const struct tw_thread[]){__VA_ARGS__, {0}})
#define TW_MODULES(...) ((const struct tw_module[]){__VA_ARGS__, {0}})
#define TW_STACKS(...)  ((const struct tw_stack[]){__VA_ARGS__, {0}})

void tw_start(struct tw *w, const struct tw_start *s);
/* Writes the trace so far (the file, without the open chunk) to path. */
void tw_save(const struct tw *w, const char *path);

void tw_begin_version(struct tw *w, uint16_t major, uint16_t minor);
void tw_begin(struct tw *w);
void tw_free(struct tw *w);
size_t tw_chunk(struct tw *w, unsigned codec);
void rec_process(struct tw *w, uint8_t type, uint32_t pid, uint32_t ppid, uint64_t flags,
                 uint64_t rate);
void rec_clock(struct tw *w, uint64_t ticks, uint64_t ns);
void rec_thread(struct tw *w, uint32_t serial, uint32_t tid, uint64_t ticks, const char *name);
void rec_thread_end(struct tw *w, uint32_t serial, uint64_t ticks);
void rec_stack(struct tw *w, uint32_t id, uint32_t parent, uint64_t ip);
void rec_module(struct tw *w, uint32_t id, uint64_t start, uint64_t end, const char *path);
void rec_unload(struct tw *w, uint32_t id, uint64_t ticks);
void rec_rss(struct tw *w, uint64_t ticks, uint64_t bytes);
void rec_marker(struct tw *w, uint32_t serial, uint64_t ticks, const char *label);
void rec_end(struct tw *w, uint64_t ticks, uint64_t kind);
void at(struct tw *w, uint64_t ticks);
uint64_t info(struct tw *w, uint64_t size, uint32_t stack, uint32_t serial);
uint64_t ev_alloc(struct tw *w, uint64_t ticks, uint64_t size, uint32_t stack, uint32_t serial);
void ev_free(struct tw *w, uint64_t ticks, uint64_t block);
uint64_t ev_realloc(struct tw *w, uint64_t ticks, uint64_t old, uint64_t size, uint32_t stack,
                    uint32_t serial);
void ev_unmatched_free(struct tw *w, uint64_t ticks);
void ev_release(struct tw *w, uint64_t block);
void ev_mmap(struct tw *w, uint64_t ticks, uint64_t addr, uint64_t size, uint32_t stack,
             uint32_t serial);
void ev_munmap(struct tw *w, uint64_t ticks, uint64_t addr, uint64_t size, uint32_t serial);
void ev_mremap(struct tw *w, uint64_t ticks, uint64_t old_addr, uint64_t old_size, uint64_t addr,
               uint64_t size, uint32_t stack, uint32_t serial);

#endif

/*
 * trace_writer.h - a small trace writer for the tests (test_trace, test_engine): traces built
 * by hand from src/trace/format.h, record by record, with chunks in either codec.
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

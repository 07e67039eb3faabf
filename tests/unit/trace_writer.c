/*
 * trace_writer.c - the tests' trace writer (trace_writer.h): what the tracker's writer would
 * produce, written by hand: the header, chunk frames (codec none or zstd, with their CRC),
 * records, and events with the running block numbers, infos and TIME records.
 */
#include "trace_writer.h"

#include "helpers.h"

#include <stdlib.h>
#include <string.h>
#include <zstd.h>

void b_put(struct bytes *b, const void *d, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        assert_non_null(b->p);
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, d, n);
    b->len += n;
}

void b_u8(struct bytes *b, uint8_t v)
{
    b_put(b, &v, 1);
}

void b_v(struct bytes *b, uint64_t v)
{
    uint8_t tmp[MS_VARINT_MAX];
    b_put(b, tmp, (size_t)(ms_put_varint(tmp, v) - tmp));
}

void b_s(struct bytes *b, const char *s)
{
    b_v(b, strlen(s));
    b_put(b, s, strlen(s));
}

void tw_begin_version(struct tw *w, uint16_t major, uint16_t minor)
{
    memset(w, 0, sizeof(*w));
    uint8_t h[MS_TRACE_HEADER_SIZE];
    memcpy(h, MS_TRACE_MAGIC, 8);
    h[8] = (uint8_t)major;
    h[9] = (uint8_t)(major >> 8);
    h[10] = (uint8_t)minor;
    h[11] = (uint8_t)(minor >> 8);
    ms_put_u32(h + 12, MS_TRACE_HEADER_SIZE);
    b_put(&w->file, h, sizeof(h));
}

void tw_begin(struct tw *w)
{
    tw_begin_version(w, MS_TRACE_VERSION_MAJOR, MS_TRACE_VERSION_MINOR);
}

void tw_start(struct tw *w, const struct tw_start *s)
{
    tw_begin(w);
    if (s->pid)
        rec_process(w, MS_REC_PROCESS, s->pid, s->ppid, s->flags, s->rate);
    if (!s->no_clock)
        rec_clock(w, s->clock_ticks, s->clock_ns);
    for (const struct tw_thread *t = s->threads; t && t->serial; t++)
        rec_thread(w, t->serial, t->tid, t->ticks, t->name);
    for (const struct tw_module *m = s->modules; m && m->id; m++)
        rec_module(w, m->id, m->start, m->end, m->path);
    for (const struct tw_stack *k = s->stacks; k && k->id; k++)
        rec_stack(w, k->id, k->parent, k->ip);
}

void tw_save(const struct tw *w, const char *path)
{
    write_bytes(path, w->file.p, w->file.len);
}

void tw_free(struct tw *w)
{
    free(w->file.p);
    free(w->chunk.p);
}

/* Frames the open chunk into the file with codec; returns the frame's offset. */
size_t tw_chunk(struct tw *w, unsigned codec)
{
    size_t off = w->file.len;
    const uint8_t *payload = w->chunk.p ? w->chunk.p : (const uint8_t *)"";
    size_t stored = w->chunk.len;
    void *z = NULL;
    if (codec == MS_CHUNK_CODEC_ZSTD) {
        size_t bound = ZSTD_compressBound(w->chunk.len);
        z = malloc(bound);
        assert_non_null(z);
        stored = ZSTD_compress(z, bound, payload, w->chunk.len, 1);
        assert_false(ZSTD_isError(stored));
        payload = z;
    }
    uint8_t f[MS_CHUNK_FRAME_SIZE];
    ms_put_u32(f, MS_CHUNK_MAGIC);
    ms_put_u32(f + 4, codec);
    ms_put_u32(f + 8, (uint32_t)stored);
    ms_put_u32(f + 12, (uint32_t)w->chunk.len);
    ms_put_u32(f + 16, ms_chunk_crc(f, payload, stored));
    b_put(&w->file, f, sizeof(f));
    b_put(&w->file, payload, stored);
    free(z);
    w->chunk.len = 0;
    return off;
}

void rec_process(struct tw *w, uint8_t type, uint32_t pid, uint32_t ppid, uint64_t flags,
                 uint64_t rate)
{
    b_u8(&w->chunk, type);
    b_v(&w->chunk, pid);
    b_v(&w->chunk, ppid);
    b_v(&w->chunk, UINT64_C(1700000000000000000));
    b_v(&w->chunk, flags);
    b_v(&w->chunk, rate);
    b_v(&w->chunk, 64);
    b_s(&w->chunk, "/usr/bin/prog");
    b_v(&w->chunk, 9);
    b_put(&w->chunk, "prog\0-x\0y", 9);
    if (type == MS_REC_EXEC) { /* a new image: blocks, infos and time start again */
        w->next_block = 0;
        w->ninfos = 0;
        w->now = 0;
        w->time_started = false;
    }
}

void rec_clock(struct tw *w, uint64_t ticks, uint64_t ns)
{
    b_u8(&w->chunk, MS_REC_CLOCK);
    b_v(&w->chunk, ticks);
    b_v(&w->chunk, ns);
}

void rec_thread(struct tw *w, uint32_t serial, uint32_t tid, uint64_t ticks, const char *name)
{
    b_u8(&w->chunk, MS_REC_THREAD);
    b_v(&w->chunk, serial);
    b_v(&w->chunk, tid);
    b_v(&w->chunk, ticks);
    b_s(&w->chunk, name);
}

void rec_thread_end(struct tw *w, uint32_t serial, uint64_t ticks)
{
    b_u8(&w->chunk, MS_REC_THREAD_END);
    b_v(&w->chunk, serial);
    b_v(&w->chunk, ticks);
}

void rec_stack(struct tw *w, uint32_t id, uint32_t parent, uint64_t ip)
{
    b_u8(&w->chunk, MS_REC_STACK);
    b_v(&w->chunk, id);
    b_v(&w->chunk, parent);
    b_v(&w->chunk, ip);
}

void rec_module(struct tw *w, uint32_t id, uint64_t start, uint64_t end, const char *path)
{
    b_u8(&w->chunk, MS_REC_MODULE);
    b_v(&w->chunk, id);
    b_v(&w->chunk, start);
    b_v(&w->chunk, start);
    b_v(&w->chunk, end);
    b_v(&w->chunk, 4);
    b_put(&w->chunk, "\x01\x02\x00\xff", 4);
    b_s(&w->chunk, path);
}

void rec_unload(struct tw *w, uint32_t id, uint64_t ticks)
{
    b_u8(&w->chunk, MS_REC_UNLOAD);
    b_v(&w->chunk, id);
    b_v(&w->chunk, ticks);
}

void rec_rss(struct tw *w, uint64_t ticks, uint64_t bytes)
{
    b_u8(&w->chunk, MS_REC_RSS);
    b_v(&w->chunk, ticks);
    b_v(&w->chunk, bytes);
}

void rec_marker(struct tw *w, uint32_t serial, uint64_t ticks, const char *label)
{
    b_u8(&w->chunk, MS_REC_MARKER);
    b_v(&w->chunk, serial);
    b_v(&w->chunk, ticks);
    b_s(&w->chunk, label);
}

void rec_end(struct tw *w, uint64_t ticks, uint64_t kind)
{
    b_u8(&w->chunk, MS_REC_END);
    b_v(&w->chunk, ticks);
    b_v(&w->chunk, kind);
}

/* The event stream: a TIME record when the time moved (a delta, from 0 in a new image). */
void at(struct tw *w, uint64_t ticks)
{
    if (w->time_started && ticks == w->now)
        return;
    assert_true(ticks >= w->now);
    b_u8(&w->chunk, MS_REC_TIME);
    b_v(&w->chunk, ticks - w->now);
    w->now = ticks;
    w->time_started = true;
}

/* The info id of (size, stack, serial), defined by an INFO record on first use. */
uint64_t info(struct tw *w, uint64_t size, uint32_t stack, uint32_t serial)
{
    for (size_t i = 0; i < w->ninfos; i++)
        if (w->infos[i].size == size && w->infos[i].stack == stack && w->infos[i].serial == serial)
            return i;
    assert_true(w->ninfos < sizeof(w->infos) / sizeof(w->infos[0]));
    w->infos[w->ninfos].size = size;
    w->infos[w->ninfos].stack = stack;
    w->infos[w->ninfos].serial = serial;
    b_u8(&w->chunk, MS_REC_INFO);
    b_v(&w->chunk, size);
    b_v(&w->chunk, stack);
    b_v(&w->chunk, serial);
    return w->ninfos++;
}

/* malloc() in thread `serial`; returns the block's number. */
uint64_t ev_alloc(struct tw *w, uint64_t ticks, uint64_t size, uint32_t stack, uint32_t serial)
{
    at(w, ticks);
    uint64_t id = info(w, size, stack, serial);
    b_u8(&w->chunk, MS_REC_ALLOC);
    b_v(&w->chunk, id);
    return w->next_block++;
}

void ev_free(struct tw *w, uint64_t ticks, uint64_t block)
{
    at(w, ticks);
    b_u8(&w->chunk, MS_REC_FREE);
    b_v(&w->chunk, w->next_block - block);
}

/* realloc() of block old (NO_BLOCK: one the trace does not know, written as UNMATCHED) into a
 * new block of size bytes; returns the new block's number. */
uint64_t ev_realloc(struct tw *w, uint64_t ticks, uint64_t old, uint64_t size, uint32_t stack,
                    uint32_t serial)
{
    at(w, ticks);
    if (old == NO_BLOCK) {
        b_u8(&w->chunk, MS_REC_UNMATCHED);
        b_v(&w->chunk, 1);
    }
    uint64_t id = info(w, size, stack, serial);
    b_u8(&w->chunk, MS_REC_REALLOC);
    b_v(&w->chunk, old == NO_BLOCK ? 0 : w->next_block - old);
    b_v(&w->chunk, id);
    return w->next_block++;
}

/* free() of memory the trace never saw allocated. */
void ev_unmatched_free(struct tw *w, uint64_t ticks)
{
    at(w, ticks);
    b_u8(&w->chunk, MS_REC_UNMATCHED);
    b_v(&w->chunk, 0);
}

void ev_release(struct tw *w, uint64_t block)
{
    b_u8(&w->chunk, MS_REC_RELEASE);
    b_v(&w->chunk, w->next_block - block);
}

void ev_mmap(struct tw *w, uint64_t ticks, uint64_t addr, uint64_t size, uint32_t stack,
             uint32_t serial)
{
    at(w, ticks);
    b_u8(&w->chunk, MS_REC_MMAP);
    b_v(&w->chunk, addr);
    b_v(&w->chunk, size);
    b_v(&w->chunk, stack);
    b_v(&w->chunk, serial);
}

void ev_munmap(struct tw *w, uint64_t ticks, uint64_t addr, uint64_t size, uint32_t serial)
{
    at(w, ticks);
    b_u8(&w->chunk, MS_REC_MUNMAP);
    b_v(&w->chunk, addr);
    b_v(&w->chunk, size);
    b_v(&w->chunk, serial);
}

void ev_mremap(struct tw *w, uint64_t ticks, uint64_t old_addr, uint64_t old_size, uint64_t addr,
               uint64_t size, uint32_t stack, uint32_t serial)
{
    at(w, ticks);
    b_u8(&w->chunk, MS_REC_MREMAP);
    b_v(&w->chunk, old_addr);
    b_v(&w->chunk, old_size);
    b_v(&w->chunk, addr);
    b_v(&w->chunk, size);
    b_v(&w->chunk, stack);
    b_v(&w->chunk, serial);
}

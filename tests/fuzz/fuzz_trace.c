/*
 * fuzz_trace.c - a fuzz target for the trace reader (src/trace/reader.c): any bytes are loaded
 * with ms__trace_load_mem() and summed up with ms__trace_stats_compute(), which must neither
 * crash nor fail but with MS_EPARSE (not a trace) or MS_ENOMEM, and whatever loads must hold
 * together (every event names an info, a block and a thread that exist; stack walks end).
 *
 * Chunks carry a CRC, so almost every mutation would only exercise the CRC check: each input
 * is also loaded a second time with the CRC of every chunk frame made right, which lets the
 * mutations reach the records.
 *
 * The snapshot engine then opens the same bytes both ways, streamed from a file chunk by chunk
 * (as `memsnap report` does) and on the whole load, and the two must agree, down to the blocks
 * live at the peak; every grouping of the peak must add up to it.
 *
 * Built as a libFuzzer binary with clang (-Dfuzz=enabled: build-fuzz/tests/fuzz/fuzz_trace
 * tests/fuzz/corpus-trace), and always as fuzz_trace_replay, which runs the target over the
 * files and directories named on its command line (the checked-in seed traces).
 */
#include "engine/engine.h"
#include "trace/format.h"
#include "trace/reader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Checks what a load produced; aborts on anything inconsistent. */
static void check(const struct ms__trace_data *td)
{
    if (td->nimages < 1 || td->nevents > td->nslots)
        abort();
    for (size_t i = 0; i < td->nimages; i++) {
        const struct ms__trace_image *im = &td->images[i];
        if (im->first_event > im->end_event || im->end_event > td->nslots)
            abort();
        for (size_t k = im->first_event; k < im->end_event; k++) {
            const struct ms__trace_event *e = &td->events[k];
            if (e->info != MS__TRACE_NO_INFO &&
                (e->info >= td->ninfos || td->infos[e->info].thread >= td->nthreads))
                abort();
            bool heap = e->kind == MS__EV_ALLOC || e->kind == MS__EV_FREE ||
                        e->kind == MS__EV_REALLOC || e->kind == MS__EV_REALLOC_OLD ||
                        e->kind == MS__EV_RELEASE;
            if (heap && e->id >= im->nblocks)
                abort();
            if (e->kind < MS__EV_ALLOC || e->kind > MS__EV_UNMATCHED_OLD)
                abort();
        }
    }
    for (size_t i = 0; i < td->nthreads; i++)
        if (td->threads[i].image >= td->nimages || td->threads[i].name.off > td->strings_len)
            abort();
    uint64_t ips[64];
    for (size_t i = 0; i < td->ninfos; i++) {
        const struct ms__trace_info *in = &td->infos[i];
        if (in->thread >= td->nthreads)
            abort();
        if (ms__trace_stack_walk(td, td->threads[in->thread].image, in->stack, ips, 64) > 64)
            abort();
    }
    for (size_t i = 1; i < td->nmarkers; i++)
        if (td->markers[i - 1].time > td->markers[i].time)
            abort();
}

static void one(const uint8_t *data, size_t size)
{
    struct ms__trace_data *td = NULL;
    char err[256];
    int rc = ms__trace_load_mem(&td, data, size, err, sizeof(err));
    if (rc == MS_EPARSE || rc == MS_ENOMEM)
        return;
    if (rc != 0 || !td)
        abort();
    check(td);
    ms_trace_stats st;
    rc = ms__trace_stats_compute(td, &st);
    if (rc != 0 && rc != MS_ENOMEM)
        abort();
    bool sampled = false; /* then counts are rounded estimates, each on its own */
    for (size_t i = 0; i < td->nimages; i++)
        sampled |= td->images[i].sample_rate != 0;
    if (rc == 0 && (st.events != td->nevents || st.truncated != td->truncated ||
                    (!sampled && st.leaked_allocations > st.allocations + st.reallocations)))
        abort();
    ms__trace_data_free(td);
}

/* What ms__engine_blocks listed: how many, and a hash of (block, info, allocating event). */
struct block_list {
    uint64_t n, hash;
};

static int list_block(void *ctx, uint64_t block, uint32_t info, uint64_t alloc_slot)
{
    struct block_list *l = ctx;
    l->n++;
    l->hash = (l->hash ^ block ^ (uint64_t)info << 40 ^ alloc_slot << 20) * 0x100000001b3ull;
    return 0;
}

/* The blocks of view v, listed by e; 0 or an MS_E* code. */
static int blocks_of(struct ms__engine *e, const struct ms__heap_view *v, struct block_list *l)
{
    *l = (struct block_list){0};
    return ms__engine_blocks(e, v, list_block, l);
}

/* Every grouping of view v: the rows add up to the view (but by function inclusive, where a
 * site counts once per function on its stack; and but for rounding in a sampled trace). */
static void groups_add_up(struct ms__engine *e, const struct ms__heap_view *v)
{
    for (int by = MS__GROUP_STACK; by <= MS__GROUP_FUNCTION_INCL; by++) {
        struct ms__group_row *rows = NULL;
        size_t n = 0;
        int rc = ms__engine_group(e, v, (enum ms__group_by)by, NULL, &rows, &n);
        if (rc == MS_ENOMEM)
            continue;
        if (rc != 0)
            abort();
        int64_t bytes = 0, count = 0;
        for (size_t i = 0; i < n; i++) {
            bytes += rows[i].bytes;
            count += rows[i].count;
            if ((by == MS__GROUP_MODULE || by >= MS__GROUP_FUNCTION_SELF) && !rows[i].name)
                abort();
        }
        /* sampled: each row and the total are estimates rounded on their own */
        int64_t slack = ms__engine_totals(e)->sampled ? (int64_t)(v->nsites + 1) / 2 : 0;
        if (by != MS__GROUP_FUNCTION_INCL &&
            (llabs(bytes - v->live_bytes) > slack || llabs(count - v->live_allocations) > slack))
            abort();
        ms__group_rows_free(rows, n);
    }
}

/* The engine streamed from a file and on the whole load: both open or neither, with the same
 * totals, the same heap at the peak, the same blocks in it, and groupings that add up. */
static void engine_both(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz-trace", 0);
    if (fd < 0)
        return;
    bool written = write(fd, data, size) == (ssize_t)size;
    struct ms__engine *a = NULL, *b = NULL;
    struct ms__trace_data *td = NULL;
    char err[256];
    int ra = written ? ms__engine_open_fd(&a, fd, NULL, err, sizeof(err)) : -1;
    close(fd);
    int rb = ms__trace_load_mem(&td, data, size, err, sizeof(err));
    if (rb == 0)
        rb = ms__engine_open_data(&b, td, NULL, err, sizeof(err));
    if (written && (ra == 0) != (rb == 0))
        abort();
    if (a && b) {
        const struct ms__engine_totals *x = ms__engine_totals(a), *y = ms__engine_totals(b);
        if (x->peak_bytes != y->peak_bytes || x->peak_event != y->peak_event ||
            x->leaked_bytes != y->leaked_bytes || x->unmatched_frees != y->unmatched_frees ||
            x->temporaries != y->temporaries)
            abort();
        struct ms__heap_view va = {0}, vb = {0};
        if (ms__engine_peak(a, &va) == 0 && ms__engine_peak(b, &vb) == 0) {
            if (va.live_bytes != vb.live_bytes || va.nsites != vb.nsites ||
                va.time_ns != vb.time_ns)
                abort();
            struct block_list la, lb;
            int ba = blocks_of(a, &va, &la), bb = blocks_of(b, &vb, &lb);
            if ((ba != 0 && ba != MS_ENOMEM) || (bb != 0 && bb != MS_ENOMEM) ||
                (ba == 0 && bb == 0 && (la.n != lb.n || la.hash != lb.hash)))
                abort();
            groups_add_up(b, &vb);
            ms__heap_view_free(&vb);
        }
        ms__heap_view_free(&va);
    }
    ms__engine_close(a);
    ms__engine_close(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(data, size);
    engine_both(data, size);
    /* again with every frame's CRC made right */
    if (size < MS_TRACE_HEADER_SIZE + MS_CHUNK_FRAME_SIZE)
        return 0;
    uint8_t *copy = malloc(size);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    size_t off = ms_get_u32(copy + 12);
    bool changed = false;
    while (off >= MS_TRACE_HEADER_SIZE && off + MS_CHUNK_FRAME_SIZE <= size) {
        uint8_t *f = copy + off;
        size_t stored = ms_get_u32(f + 8);
        if (stored > size - off - MS_CHUNK_FRAME_SIZE)
            break;
        uint32_t crc = ms_chunk_crc(f, f + MS_CHUNK_FRAME_SIZE, stored);
        if (ms_get_u32(f + 16) != crc) {
            ms_put_u32(f + 16, crc);
            changed = true;
        }
        off += MS_CHUNK_FRAME_SIZE + stored;
    }
    if (changed) {
        one(copy, size);
        engine_both(copy, size);
    }
    free(copy);
    return 0;
}

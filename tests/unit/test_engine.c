/*
 * test_engine.c - the snapshot engine (src/engine/engine.c) on traces written by hand: exact
 * peak, leaks, live sets at times and markers, per-thread and per-site figures, diffs,
 * temporaries and unmatched frees; exec ending an image's heap; snapshots against a reference
 * replay of random workloads at every moment; and regression tests for the pitfalls of
 * memscope-rs' engine: a realloc that loses its old block, frees charged to the freeing
 * thread, snapshots that replay the whole trace, and queries that disturb each other. Cut
 * traces open with what the reader read.
 *
 * Traces are written with the tests' writer (trace_writer.h).
 */
#include "helpers.h"

#include "engine/engine.h"
#include "trace/format.h"
#include "trace/reader.h"
#include "trace_writer.h"

#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

/* ---------------------------------------------------------------------------------------- */
/* Helpers                                                                                  */
/* ---------------------------------------------------------------------------------------- */

/* Opens an engine as `memsnap report` does: streaming the trace from a file, chunk by chunk. */
static struct ms__engine *open_opts(const struct tw *w, const struct ms__engine_opts *o)
{
    int fd = memfd_create("trace", 0);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, w->file.p, w->file.len), (ssize_t)w->file.len);
    struct ms__engine *e;
    char err[256] = "";
    int rc = ms__engine_open_fd(&e, fd, o, err, sizeof(err));
    close(fd);
    if (rc)
        fail_msg("opening the engine failed: %s (%s)", err, ms_err_name(rc));
    return e;
}

static struct ms__engine *open_every(const struct tw *w, size_t every)
{
    struct ms__engine_opts o = {.checkpoint_every = every};
    return open_opts(w, &o);
}

static struct ms__engine *open_tw(const struct tw *w)
{
    return open_every(w, 0);
}

/* The live count of the site with stack `stack` in view v (summed over its infos). */
static int64_t stack_count(struct ms__engine *e, const struct ms__heap_view *v, uint32_t stack)
{
    const struct ms__trace_data *td = ms__engine_trace(e);
    int64_t n = 0;
    for (size_t i = 0; i < v->nsites; i++)
        if (td->infos[v->sites[i].info].stack == stack)
            n += v->sites[i].count;
    return n;
}

static void assert_views_equal(const struct ms__heap_view *a, const struct ms__heap_view *b)
{
    assert_int_equal(a->time_ns, b->time_ns);
    assert_int_equal(a->event, b->event);
    assert_int_equal(a->live_bytes, b->live_bytes);
    assert_int_equal(a->live_allocations, b->live_allocations);
    assert_int_equal(a->nsites, b->nsites);
    for (size_t i = 0; i < a->nsites; i++) { /* field by field: the struct has padding */
        assert_int_equal(a->sites[i].info, b->sites[i].info);
        assert_int_equal(a->sites[i].bytes, b->sites[i].bytes);
        assert_int_equal(a->sites[i].count, b->sites[i].count);
    }
}

/*
 * One image, two threads, markers:
 *   t=10  T1 alloc A 100 (stack 1)       t=20 T1 alloc B 200 (stack 2)
 *   t=25  marker "two"
 *   t=30  T2 alloc C 1000 (stack 1)      t=40 T1 free A     -> live 1200: the peak was 1300
 *   t=45  marker "after-free"
 *   t=50  T2 free B (B stays T1's)       t=60 T1 alloc D 50 (stack 2), t=70 T1 free D (a
 *   temporary)
 *   end: C (1000, T2) leaks.
 */
static void write_basic(struct tw *w)
{
    tw_start(w, &(struct tw_start){.pid = 7,
                                   .ppid = 1,
                                   .threads = TW_THREADS({1, 7, 0, "main"}, {2, 8, 0, "worker"}),
                                   .modules = TW_MODULES({1, 0x1000, 0x2000, "/usr/bin/prog"},
                                                         {2, 0x10000, 0x20000, "/lib/libc.so.6"}),
                                   .stacks = TW_STACKS({1, 0, 0x1100}, {2, 0, 0x10100})});
    rec_marker(w, 1, 25, "two");
    rec_marker(w, 2, 45, "after-free");
    uint64_t a = ev_alloc(w, 10, 100, 1, 1);
    uint64_t b = ev_alloc(w, 20, 200, 2, 1);
    ev_alloc(w, 30, 1000, 1, 2);
    ev_free(w, 40, a);
    ev_free(w, 50, b);
    uint64_t d = ev_alloc(w, 60, 50, 2, 1);
    ev_free(w, 70, d);
    tw_chunk(w, MS_CHUNK_CODEC_ZSTD);
}

/* ---------------------------------------------------------------------------------------- */
/* Tests                                                                                    */
/* ---------------------------------------------------------------------------------------- */

static void peak_leaks_and_markers_are_exact(void **state)
{
    (void)state;
    struct tw w;
    write_basic(&w);
    struct ms__engine *e = open_tw(&w);
    const struct ms__engine_totals *t = ms__engine_totals(e);
    assert_int_equal(t->allocations, 4);
    assert_int_equal(t->frees, 3);
    assert_int_equal(t->peak_bytes, 1300);
    assert_int_equal(t->peak_time_ns, 30);
    assert_int_equal(t->leaked_bytes, 1000);
    assert_int_equal(t->leaked_allocations, 1);
    assert_int_equal(t->temporaries, 1);
    assert_int_equal(t->temporary_bytes, 50);
    assert_int_equal(t->unmatched_frees, 0);

    struct ms__heap_view v;
    assert_int_equal(ms__engine_peak(e, &v), 0);
    assert_int_equal(v.time_ns, 30);
    assert_int_equal(v.live_bytes, 1300);
    assert_int_equal(v.live_allocations, 3);
    assert_int_equal(stack_count(e, &v, 1), 2);
    assert_int_equal(stack_count(e, &v, 2), 1);
    ms__heap_view_free(&v);

    uint64_t ns;
    assert_int_equal(ms__engine_marker_time(e, "two", &ns), 0);
    assert_int_equal(ns, 25);
    assert_int_equal(ms__engine_marker_time(e, "nope", &ns), MS_ENOENT);
    assert_int_equal(ms__engine_snapshot_time(e, 25, &v), 0);
    assert_int_equal(v.time_ns, 25);
    assert_int_equal(v.live_bytes, 300);
    assert_int_equal(v.live_allocations, 2);
    ms__heap_view_free(&v);
    assert_int_equal(ms__engine_marker_time(e, "after-free", &ns), 0);
    assert_int_equal(ms__engine_snapshot_time(e, ns, &v), 0);
    assert_int_equal(v.live_bytes, 1200);
    ms__heap_view_free(&v);
    /* events at T are included; before the first event the heap is empty */
    assert_int_equal(ms__engine_snapshot_time(e, 40, &v), 0);
    assert_int_equal(v.live_bytes, 1200);
    ms__heap_view_free(&v);
    assert_int_equal(ms__engine_snapshot_time(e, 9, &v), 0);
    assert_int_equal(v.live_bytes, 0);
    assert_int_equal(v.nsites, 0);
    ms__heap_view_free(&v);

    assert_int_equal(ms__engine_leaks(e, &v), 0);
    assert_int_equal(v.live_bytes, 1000);
    assert_int_equal(v.live_allocations, 1);
    assert_int_equal(v.nsites, 1);
    assert_int_equal(ms__engine_trace(e)->infos[v.sites[0].info].size, 1000);
    ms__heap_view_free(&v);
    ms__engine_close(e);
    tw_free(&w);
}

static void diffs_put_growth_first(void **state)
{
    (void)state;
    struct tw w;
    write_basic(&w);
    struct ms__engine *e = open_tw(&w);
    struct ms__heap_view a, b, d;
    assert_int_equal(ms__engine_snapshot_time(e, 25, &a), 0); /* A 100, B 200 */
    assert_int_equal(ms__engine_snapshot_time(e, 80, &b), 0); /* C 1000 */
    assert_int_equal(ms__engine_diff(&a, &b, &d), 0);
    assert_true(d.diff);
    assert_int_equal(d.from_time_ns, 25);
    assert_int_equal(d.time_ns, 80);
    assert_int_equal(d.live_bytes, 700);
    assert_int_equal(d.live_allocations, -1);
    struct ms__group_row *rows;
    size_t n;
    assert_int_equal(ms__engine_group(e, &d, MS__GROUP_STACK, NULL, &rows, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(rows[0].stack, 1); /* +1000 - 100 */
    assert_int_equal(rows[0].bytes, 900);
    assert_int_equal(rows[0].count, 0);
    assert_int_equal(rows[1].stack, 2);
    assert_int_equal(rows[1].bytes, -200);
    assert_int_equal(rows[1].count, -1);
    ms__group_rows_free(rows, n);
    /* a diff with itself is empty */
    struct ms__heap_view z;
    assert_int_equal(ms__engine_diff(&b, &b, &z), 0);
    assert_int_equal(z.nsites, 0);
    assert_int_equal(z.live_bytes, 0);
    ms__heap_view_free(&z);
    ms__heap_view_free(&a);
    ms__heap_view_free(&b);
    ms__heap_view_free(&d);
    ms__engine_close(e);
    tw_free(&w);
}

static void groups_by_stack_module_and_function(void **state)
{
    (void)state;
    struct tw w;
    tw_start(&w, &(struct tw_start){.pid = 7,
                                    .ppid = 1,
                                    .threads = TW_THREADS({1, 7, 0, "main"}),
                                    .modules = TW_MODULES({1, 0x1000, 0x2000, "/usr/bin/prog"},
                                                          {2, 0x10000, 0x20000, "/lib/libc.so.6"}),
                                    .stacks = TW_STACKS({1, 0, 0x1100},  /* main */
                                                        {2, 1, 0x10100}, /* main -> libc */
                                                        {3, 1, 0x1200} /* main -> prog+0x200 */)});
    ev_alloc(&w, 10, 100, 2, 1); /* two sizes at stack 2: one call site */
    ev_alloc(&w, 11, 300, 2, 1);
    ev_alloc(&w, 12, 50, 3, 1);
    ev_alloc(&w, 13, 7, 0, 1); /* no stack */
    tw_chunk(&w, MS_CHUNK_CODEC_NONE);
    struct ms__engine *e = open_tw(&w);
    struct ms__heap_view v;
    assert_int_equal(ms__engine_leaks(e, &v), 0);
    assert_int_equal(v.nsites, 4);
    struct ms__group_row *rows;
    size_t n;
    assert_int_equal(ms__engine_group(e, &v, MS__GROUP_STACK, NULL, &rows, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(rows[0].stack, 2);
    assert_int_equal(rows[0].bytes, 400);
    assert_int_equal(rows[0].count, 2);
    assert_int_equal(rows[1].stack, 3);
    assert_int_equal(rows[2].stack, 0);
    ms__group_rows_free(rows, n);

    assert_int_equal(ms__engine_group(e, &v, MS__GROUP_MODULE, NULL, &rows, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(rows[0].name, "/lib/libc.so.6");
    assert_int_equal(rows[0].bytes, 400);
    assert_string_equal(rows[1].name, "/usr/bin/prog");
    assert_int_equal(rows[1].bytes, 50);
    assert_string_equal(rows[2].name, "?");
    ms__group_rows_free(rows, n);

    /* without a symbolizer, functions are module+offset */
    assert_int_equal(ms__engine_group(e, &v, MS__GROUP_FUNCTION_SELF, NULL, &rows, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(rows[0].name, "libc.so.6+0x100");
    assert_string_equal(rows[1].name, "prog+0x200");
    ms__group_rows_free(rows, n);
    assert_int_equal(ms__engine_group(e, &v, MS__GROUP_FUNCTION_INCL, NULL, &rows, &n), 0);
    assert_int_equal(n, 4);
    assert_string_equal(rows[0].name, "prog+0x100"); /* every stack passes through main */
    assert_int_equal(rows[0].bytes, 450);
    assert_string_equal(rows[1].name, "libc.so.6+0x100");
    ms__group_rows_free(rows, n);
    ms__heap_view_free(&v);
    ms__engine_close(e);
    tw_free(&w);
}

/* memscope-rs pitfall 1: a realloc lost the old pointer, which stayed live (a phantom). */
static void realloc_chains_leave_only_the_last_block(void **state)
{
    (void)state;
    struct tw w;
    tw_start(&w, &(struct tw_start){.pid = 7, .ppid = 1, .threads = TW_THREADS({1, 7, 0, "main"})});
    uint64_t p = ev_alloc(&w, 10, 100, 1, 1);
    for (int i = 0; i < 20; i++)
        p = ev_realloc(&w, 20 + (uint64_t)i, p, 200 + 100 * (uint64_t)i, 2, 1);
    uint64_t q = ev_realloc(&w, 50, NO_BLOCK, 64, 3, 1); /* realloc of an unknown block */
    ev_alloc(&w, 60, 8, 4, 1);
    (void)q;
    tw_chunk(&w, MS_CHUNK_CODEC_ZSTD);
    struct ms__engine *e = open_tw(&w);
    const struct ms__engine_totals *t = ms__engine_totals(e);
    assert_int_equal(t->reallocations, 21);
    assert_int_equal(t->peak_bytes, 2100 + 64 + 8); /* never the sum of a chain */
    struct ms__heap_view v;
    assert_int_equal(ms__engine_snapshot_time(e, 39, &v), 0);
    assert_int_equal(v.live_allocations, 1);
    assert_int_equal(v.live_bytes, 2100);
    assert_int_equal(stack_count(e, &v, 1), 0);
    ms__heap_view_free(&v);
    assert_int_equal(ms__engine_leaks(e, &v), 0);
    assert_int_equal(v.live_allocations, 3);
    assert_int_equal(v.live_bytes, 2100 + 64 + 8);
    ms__heap_view_free(&v);
    ms__engine_close(e);
    tw_free(&w);

    /* RELEASE ends a block; a double free changes nothing and is unmatched */
    tw_start(&w, &(struct tw_start){.pid = 7, .ppid = 1});
    uint64_t a = ev_alloc(&w, 10, 100, 1, 1);
    uint64_t b = ev_alloc(&w, 10, 30, 1, 1);
    ev_release(&w, a);
    ev_free(&w, 20, b);
    ev_free(&w, 30, b);
    tw_chunk(&w, MS_CHUNK_CODEC_NONE);
    e = open_tw(&w);
    t = ms__engine_totals(e);
    assert_int_equal(t->unmatched_frees, 1);
    assert_int_equal(t->frees, 1);
    assert_int_equal(t->leaked_bytes, 0);
    assert_int_equal(ms__engine_leaks(e, &v), 0);
    assert_int_equal(v.nsites, 0);
    ms__heap_view_free(&v);
    ms__engine_close(e);
    tw_free(&w);
}

/* memscope-rs pitfall 2: a free was charged to the thread that freed. */
static void frees_are_charged_to_the_allocating_thread(void **state)
{
    (void)state;
    struct tw w;
    write_basic(&w);
    struct ms__engine *e = open_tw(&w);
    const struct ms__trace_data *td = ms__engine_trace(e);
    struct ms__heap_view v;
    struct ms__group_row *rows;
    size_t n;
    /* at 45: T1 holds B (200), T2 holds C (1000) */
    assert_int_equal(ms__engine_snapshot_time(e, 45, &v), 0);
    assert_int_equal(ms__engine_group(e, &v, MS__GROUP_THREAD, NULL, &rows, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(td->threads[rows[0].thread].tid, 8);
    assert_int_equal(rows[0].bytes, 1000);
    assert_int_equal(td->threads[rows[1].thread].tid, 7);
    assert_int_equal(rows[1].bytes, 200);
    assert_int_equal(rows[1].count, 1);
    ms__group_rows_free(rows, n);
    ms__heap_view_free(&v);
    /* at 55: T2 freed B: T1's live drops to 0, T2 keeps exactly C */
    assert_int_equal(ms__engine_snapshot_time(e, 55, &v), 0);
    assert_int_equal(ms__engine_group(e, &v, MS__GROUP_THREAD, NULL, &rows, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(td->threads[rows[0].thread].tid, 8);
    assert_int_equal(rows[0].bytes, 1000);
    assert_int_equal(rows[0].count, 1);
    ms__group_rows_free(rows, n);
    ms__heap_view_free(&v);
    /* the diff charges the drop to T1 */
    struct ms__heap_view a, b, d;
    assert_int_equal(ms__engine_snapshot_time(e, 45, &a), 0);
    assert_int_equal(ms__engine_snapshot_time(e, 55, &b), 0);
    assert_int_equal(ms__engine_diff(&a, &b, &d), 0);
    assert_int_equal(ms__engine_group(e, &d, MS__GROUP_THREAD, NULL, &rows, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(td->threads[rows[0].thread].tid, 7);
    assert_int_equal(rows[0].bytes, -200);
    ms__group_rows_free(rows, n);
    ms__heap_view_free(&a);
    ms__heap_view_free(&b);
    ms__heap_view_free(&d);
    ms__engine_close(e);
    tw_free(&w);
}

/*
 * A random workload of n steps over `threads` threads, with random sizes and stacks, reallocs
 * (known and unknown old blocks), double frees; a TIME every few events.
 */
static void write_random(struct tw *w, unsigned seed, int n, bool exec_midway)
{
    srand(seed);
    tw_start(w, &(struct tw_start){.pid = 7, .ppid = 1});
    static uint64_t live[4096];
    size_t nlive = 0;
    uint64_t now = 1;
    for (int i = 0; i < n; i++) {
        if (exec_midway && i == n / 2) {
            tw_chunk(w, MS_CHUNK_CODEC_ZSTD);
            rec_process(w, MS_REC_EXEC, 7, 1, 0, 0);
            nlive = 0;
        }
        if (rand() % 4 == 0)
            now += (uint64_t)(rand() % 100);
        int r = rand() % 10;
        uint64_t size = (uint64_t)(1 + rand() % 16) * 8;
        uint32_t stack = (uint32_t)(rand() % 8), serial = (uint32_t)(1 + rand() % 3);
        if (nlive && r < 4) {
            size_t k = (size_t)rand() % nlive;
            ev_free(w, now, live[k]);
            if (rand() % 50 == 0) /* a double free */
                ev_free(w, now, live[k]);
            live[k] = live[--nlive];
        } else if (nlive && r < 6) {
            size_t k = (size_t)rand() % nlive;
            live[k] = ev_realloc(w, now, live[k], size, stack, serial);
        } else if (r == 6) {
            uint64_t b = ev_realloc(w, now, NO_BLOCK, size, stack, serial);
            if (nlive < 4096)
                live[nlive++] = b;
        } else if (nlive < 4096) {
            live[nlive++] = ev_alloc(w, now, size, stack, serial);
        }
        if (i % 1000 == 999)
            tw_chunk(w, MS_CHUNK_CODEC_ZSTD);
    }
    tw_chunk(w, MS_CHUNK_CODEC_ZSTD);
}

/* Reference: live bytes and count of the heap after events [0, E), for every E, by replaying
 * the decoded events with a block array per image (no checkpoints, no rewriting). */
static void reference(const struct tw *w, int64_t *bytes, int64_t *count, size_t *nslots)
{
    struct ms__trace_data *td;
    char err[256];
    assert_int_equal(ms__trace_load_mem(&td, w->file.p, w->file.len, err, sizeof(err)), 0);
    *nslots = td->nslots;
    int64_t b = 0, c = 0;
    bytes[0] = count[0] = 0;
    for (size_t im = 0; im < td->nimages; im++) {
        const struct ms__trace_image *image = &td->images[im];
        uint32_t *live = calloc(image->nblocks + 1, sizeof(*live)); /* info + 1 */
        assert_non_null(live);
        b = c = 0;
        for (size_t i = image->first_event; i < image->end_event; i++) {
            const struct ms__trace_event *ev = &td->events[i];
            if (ev->kind == MS__EV_ALLOC || ev->kind == MS__EV_REALLOC) {
                live[ev->id] = ev->info + 1;
                b += (int64_t)td->infos[ev->info].size;
                c++;
            } else if ((ev->kind == MS__EV_FREE || ev->kind == MS__EV_REALLOC_OLD ||
                        ev->kind == MS__EV_RELEASE) &&
                       live[ev->id]) {
                b -= (int64_t)td->infos[live[ev->id] - 1].size;
                c--;
                live[ev->id] = 0;
            }
            bytes[i + 1] = b;
            count[i + 1] = c;
        }
        free(live);
    }
    ms__trace_data_free(td);
}

/* memscope-rs pitfall 3: every snapshot replayed the trace from its start. */
static void snapshots_replay_at_most_n_events_and_match_a_reference(void **state)
{
    (void)state;
    struct tw w;
    write_random(&w, 42, 20000, false);
    size_t nslots;
    int64_t *rb = malloc(40000 * sizeof(*rb)), *rc = malloc(40000 * sizeof(*rc));
    assert_non_null(rb);
    assert_non_null(rc);
    reference(&w, rb, rc, &nslots);
    assert_true(nslots < 40000);
    struct ms__engine *e = open_every(&w, 1000);
    assert_int_equal(ms__engine_totals(e)->checkpoint_every, 1000);
    int64_t peak = 0;
    size_t peak_at = 0;
    for (size_t i = 0; i <= nslots; i++)
        if (rb[i] > peak) {
            peak = rb[i];
            peak_at = i;
        }
    assert_int_equal(ms__engine_totals(e)->peak_bytes, peak);
    assert_int_equal(ms__engine_totals(e)->peak_event, peak_at);
    for (size_t E = 0; E <= nslots; E += 1 + (size_t)rand() % 97) {
        struct ms__heap_view v;
        assert_int_equal(ms__engine_snapshot(e, E, &v), 0);
        assert_int_equal(v.live_bytes, rb[E]);
        assert_int_equal(v.live_allocations, rc[E]);
        assert_true(ms__engine_last_replayed(e) < 1000);
        assert_int_equal(ms__engine_last_replayed(e), E % 1000);
        ms__heap_view_free(&v);
    }
    /* the last moment: nothing past the last checkpoint's N */
    struct ms__heap_view v;
    assert_int_equal(ms__engine_snapshot(e, nslots, &v), 0);
    assert_true(ms__engine_last_replayed(e) < 1000);
    assert_int_equal(v.live_bytes, rb[nslots]);
    ms__heap_view_free(&v);
    ms__engine_close(e);
    tw_free(&w);

    /* with an exec midway: the heap of the second image starts empty, leaks are its own */
    write_random(&w, 7, 6000, true);
    reference(&w, rb, rc, &nslots);
    e = open_every(&w, 512);
    for (size_t E = 0; E <= nslots; E += 1 + (size_t)rand() % 31) {
        assert_int_equal(ms__engine_snapshot(e, E, &v), 0);
        assert_int_equal(v.live_bytes, rb[E]);
        assert_int_equal(v.live_allocations, rc[E]);
        ms__heap_view_free(&v);
    }
    assert_int_equal(ms__engine_leaks(e, &v), 0);
    assert_int_equal(v.image, 1);
    assert_int_equal(v.live_bytes, rb[nslots]);
    assert_int_equal(ms__engine_totals(e)->leaked_bytes, rb[nslots]);
    ms__heap_view_free(&v);
    ms__engine_close(e);
    tw_free(&w);
    free(rb);
    free(rc);
}

/* Sums the blocks ms__engine_blocks lists, checking they come in allocation order. */
struct block_sum {
    struct ms__engine *e;
    int64_t bytes, count;
    uint64_t last_slot;
    bool ordered;
};

static int sum_block(void *ctx, uint64_t block, uint32_t info, uint64_t alloc_slot)
{
    struct block_sum *s = ctx;
    (void)block;
    if (s->count && alloc_slot <= s->last_slot)
        s->ordered = false;
    s->last_slot = alloc_slot;
    s->bytes += (int64_t)ms__engine_trace(s->e)->infos[info].size;
    s->count++;
    return 0;
}

/* The two ways in: streamed chunk by chunk from a file (memsnap report), or loaded whole
 * (ms__engine_open_data); and checkpoints past their budget: N doubles, half of them go, and
 * every snapshot still matches the reference. */
static void streaming_whole_loads_and_compacted_checkpoints_agree(void **state)
{
    (void)state;
    struct tw w;
    write_random(&w, 11, 9000, true); /* two images, a chunk every 1000 events */
    size_t nslots;
    int64_t *rb = malloc(20000 * sizeof(*rb)), *rc = malloc(20000 * sizeof(*rc));
    assert_non_null(rb);
    assert_non_null(rc);
    reference(&w, rb, rc, &nslots);
    struct ms__trace_data *td;
    char err[256];
    assert_int_equal(ms__trace_load_mem(&td, w.file.p, w.file.len, err, sizeof(err)), 0);
    struct ms__engine *whole, *small;
    struct ms__engine_opts o = {.checkpoint_every = 256};
    assert_int_equal(ms__engine_open_data(&whole, td, &o, err, sizeof(err)), 0);
    struct ms__engine_opts tight = {.checkpoint_every = 64, .checkpoint_budget = 16384};
    small = open_opts(&w, &tight);
    const struct ms__engine_totals *a = ms__engine_totals(whole), *b = ms__engine_totals(small);
    assert_true(b->checkpoint_every > 64); /* the budget made N grow */
    assert_true(b->checkpoints * ms__engine_trace(small)->ninfos * 4 <= 16384 * 2 + 4096);
    assert_int_equal(a->peak_bytes, b->peak_bytes);
    assert_int_equal(a->peak_event, b->peak_event);
    assert_int_equal(a->peak_time_ns, b->peak_time_ns);
    assert_int_equal(a->leaked_bytes, b->leaked_bytes);
    assert_int_equal(a->temporaries, b->temporaries);
    assert_int_equal(a->frees, b->frees);
    assert_int_equal(a->allocations + a->reallocations, b->allocations + b->reallocations);
    for (size_t E = 0; E <= nslots; E += 1 + (size_t)rand() % 53) {
        struct ms__heap_view v1, v2;
        assert_int_equal(ms__engine_snapshot(whole, E, &v1), 0);
        assert_int_equal(ms__engine_snapshot(small, E, &v2), 0);
        assert_true(ms__engine_last_replayed(small) < b->checkpoint_every);
        assert_int_equal(v1.live_bytes, rb[E]);
        assert_int_equal(v2.live_bytes, rb[E]);
        assert_int_equal(v2.live_allocations, rc[E]);
        assert_int_equal(v1.time_ns, v2.time_ns);
        assert_int_equal(v1.nsites, v2.nsites);
        assert_int_equal(ms__engine_event_at(whole, v1.time_ns),
                         ms__engine_event_at(small, v2.time_ns));
        ms__heap_view_free(&v1);
        ms__heap_view_free(&v2);
    }
    /* the live blocks, read again from the file or from the whole load: the same as the
     * reference's live bytes and count */
    for (size_t E = 0; E <= nslots; E += 1 + (size_t)rand() % 997) {
        struct block_sum x = {.e = whole, .ordered = true}, y = {.e = small, .ordered = true};
        struct ms__heap_view vw, vs;
        assert_int_equal(ms__engine_snapshot(whole, E, &vw), 0);
        assert_int_equal(ms__engine_snapshot(small, E, &vs), 0);
        assert_int_equal(ms__engine_blocks(whole, &vw, sum_block, &x), 0);
        assert_int_equal(ms__engine_blocks(small, &vs, sum_block, &y), 0);
        ms__heap_view_free(&vw);
        ms__heap_view_free(&vs);
        assert_int_equal(x.bytes, rb[E]);
        assert_int_equal(x.count, rc[E]);
        assert_int_equal(y.bytes, rb[E]);
        assert_int_equal(y.count, rc[E]);
        assert_true(x.ordered && y.ordered);
    }
    ms__engine_close(whole);
    ms__engine_close(small);
    /* a cut file streams up to its last good chunk */
    size_t half = w.file.len / 2;
    w.file.len = half;
    struct ms__engine *cut = open_every(&w, 0);
    assert_true(ms__engine_trace(cut)->truncated);
    assert_true(ms__engine_trace(cut)->nslots < nslots);
    assert_int_equal(ms__engine_totals(cut)->leaked_bytes, rb[ms__engine_trace(cut)->nslots]);
    ms__engine_close(cut);
    tw_free(&w);
    free(rb);
    free(rc);
}

/* memscope-rs pitfall 4: a query cleared state that the next one needed. */
static void queries_do_not_disturb_each_other(void **state)
{
    (void)state;
    struct tw w;
    write_random(&w, 3, 8000, false);
    struct ms__engine *e = open_every(&w, 700);
    struct ms__heap_view p1, p2, s1, s2, l1, l2;
    assert_int_equal(ms__engine_peak(e, &p1), 0);
    assert_int_equal(ms__engine_snapshot_time(e, 5000, &s1), 0);
    assert_int_equal(ms__engine_leaks(e, &l1), 0);
    assert_int_equal(ms__engine_snapshot_time(e, 5000, &s2), 0);
    assert_int_equal(ms__engine_peak(e, &p2), 0);
    assert_views_equal(&p1, &p2);
    assert_views_equal(&s1, &s2);
    assert_int_equal(ms__engine_leaks(e, &l2), 0);
    assert_views_equal(&l1, &l2);
    assert_int_equal(p1.live_bytes, ms__engine_totals(e)->peak_bytes);
    ms__heap_view_free(&p1);
    ms__heap_view_free(&p2);
    ms__heap_view_free(&s1);
    ms__heap_view_free(&s2);
    ms__heap_view_free(&l1);
    ms__heap_view_free(&l2);
    ms__engine_close(e);
    tw_free(&w);
}

static void exec_ends_the_heap_of_an_image(void **state)
{
    (void)state;
    struct tw w;
    tw_start(&w, &(struct tw_start){.pid = 7, .ppid = 1});
    ev_alloc(&w, 10, 5000, 1, 1); /* live at the exec: not a leak */
    tw_chunk(&w, MS_CHUNK_CODEC_NONE);
    rec_process(&w, MS_REC_EXEC, 7, 1, 0, 0);
    ev_alloc(&w, 100, 10, 1, 1);
    ev_alloc(&w, 110, 20, 1, 1);
    tw_chunk(&w, MS_CHUNK_CODEC_NONE);
    struct ms__engine *e = open_tw(&w);
    const struct ms__engine_totals *t = ms__engine_totals(e);
    assert_int_equal(t->peak_bytes, 5000);
    assert_int_equal(t->leaked_bytes, 30);
    assert_int_equal(t->leaked_allocations, 2);
    struct ms__heap_view v;
    assert_int_equal(ms__engine_snapshot(e, 2, &v), 0); /* the second image's first event */
    assert_int_equal(v.image, 1);
    assert_int_equal(v.live_bytes, 10);
    ms__heap_view_free(&v);
    ms__engine_close(e);
    tw_free(&w);
}

/* An exec with nothing after it: the leaks are those of the empty last image, and the blocks
 * listed for that view are its (none), not those of the image before. */
static void blocks_of_an_empty_last_image(void **state)
{
    (void)state;
    struct tw w;
    tw_start(&w, &(struct tw_start){.pid = 7, .ppid = 1});
    ev_alloc(&w, 10, 1000, 1, 1);
    tw_chunk(&w, MS_CHUNK_CODEC_NONE);
    rec_process(&w, MS_REC_EXEC, 7, 1, 0, 0);
    tw_chunk(&w, MS_CHUNK_CODEC_NONE);
    struct ms__engine *e = open_tw(&w);
    struct ms__heap_view v;
    assert_int_equal(ms__engine_leaks(e, &v), 0);
    assert_int_equal(v.image, 1);
    assert_int_equal(v.live_bytes, 0);
    struct block_sum x = {.e = e, .ordered = true};
    assert_int_equal(ms__engine_blocks(e, &v, sum_block, &x), 0);
    assert_int_equal(x.count, 0);
    ms__heap_view_free(&v);
    assert_int_equal(ms__engine_snapshot(e, 1, &v), 0); /* after the alloc: image 0's block */
    x = (struct block_sum){.e = e, .ordered = true};
    assert_int_equal(ms__engine_blocks(e, &v, sum_block, &x), 0);
    assert_int_equal(x.count, 1);
    assert_int_equal(x.bytes, 1000);
    ms__heap_view_free(&v);
    ms__engine_close(e);
    tw_free(&w);
}

static void a_cut_trace_opens_with_what_was_read(void **state)
{
    (void)state;
    struct tw w;
    tw_start(&w, &(struct tw_start){.pid = 7, .ppid = 1});
    ev_alloc(&w, 10, 100, 1, 1);
    tw_chunk(&w, MS_CHUNK_CODEC_ZSTD);
    size_t good = w.file.len;
    for (int i = 0; i < 100; i++)
        ev_alloc(&w, 20, 7, 1, 1);
    tw_chunk(&w, MS_CHUNK_CODEC_ZSTD);
    struct ms__trace_data *td;
    char err[256];
    assert_int_equal(ms__trace_load_mem(&td, w.file.p, good + 30, err, sizeof(err)), 0);
    struct ms__engine *e;
    assert_int_equal(ms__engine_open_data(&e, td, NULL, err, sizeof(err)), 0);
    assert_true(ms__engine_trace(e)->truncated);
    assert_int_equal(ms__engine_totals(e)->leaked_bytes, 100);
    ms__engine_close(e);
    /* a flipped bit in the second chunk: the same */
    w.file.p[good + 25] ^= 0x10;
    assert_int_equal(ms__trace_load_mem(&td, w.file.p, w.file.len, err, sizeof(err)), 0);
    assert_int_equal(ms__engine_open_data(&e, td, NULL, err, sizeof(err)), 0);
    assert_true(ms__engine_trace(e)->truncated);
    assert_int_equal(ms__engine_totals(e)->peak_bytes, 100);
    ms__engine_close(e);
    /* not a trace: the reader's error */
    assert_int_equal(ms__trace_load_mem(&td, "hello world, not a trace", 24, err, sizeof(err)),
                     MS_EPARSE);
    /* an empty trace: empty views */
    tw_free(&w);
    tw_start(&w, &(struct tw_start){.pid = 7, .ppid = 1, .no_clock = true});
    tw_chunk(&w, MS_CHUNK_CODEC_NONE);
    e = open_tw(&w);
    struct ms__heap_view v;
    assert_int_equal(ms__engine_peak(e, &v), 0);
    assert_int_equal(v.live_bytes, 0);
    assert_int_equal(v.nsites, 0);
    ms__heap_view_free(&v);
    assert_int_equal(ms__engine_snapshot_time(e, 1000000, &v), 0);
    assert_int_equal(v.nsites, 0);
    ms__heap_view_free(&v);
    ms__engine_close(e);
    tw_free(&w);
}

static void sampled_views_are_weighted(void **state)
{
    (void)state;
    struct tw w;
    tw_start(&w, &(struct tw_start){.pid = 7, .ppid = 1, .rate = 1000});
    ev_alloc(&w, 10, 1000, 1, 1);   /* weight 1 / (1 - e^-1) */
    ev_alloc(&w, 20, 100000, 1, 1); /* weight 1 */
    tw_chunk(&w, MS_CHUNK_CODEC_NONE);
    struct ms__engine *e = open_tw(&w);
    double w1 = ms__trace_sample_weight(1000, 1000);
    struct ms__heap_view v;
    assert_int_equal(ms__engine_leaks(e, &v), 0);
    assert_int_equal(v.live_bytes, (int64_t)(1000 * w1 + 100000 + 0.5));
    assert_int_equal(v.live_allocations, (int64_t)(w1 + 1 + 0.5));
    assert_int_equal(ms__engine_totals(e)->peak_bytes, v.live_bytes);
    /* the same figures as --stats */
    ms_trace_stats st;
    struct ms__trace_data *td;
    char err[256];
    assert_int_equal(ms__trace_load_mem(&td, w.file.p, w.file.len, err, sizeof(err)), 0);
    assert_int_equal(ms__trace_stats_compute(td, &st), 0);
    assert_int_equal(st.peak_bytes, ms__engine_totals(e)->peak_bytes);
    assert_int_equal(st.leaked_bytes, ms__engine_totals(e)->leaked_bytes);
    /* and the allocated bytes, of the trace and of its one thread, weighted alike */
    assert_int_equal(st.allocated_bytes, ms__engine_totals(e)->allocated_bytes);
    struct ms__thread_stats *ts;
    assert_int_equal(ms__engine_threads(e, &ts), 0);
    assert_int_equal(ts[0].allocated_bytes, st.allocated_bytes);
    assert_int_equal(ts[0].allocations, st.allocations);
    assert_int_equal(ts[0].peak_bytes, st.peak_bytes);
    free(ts);
    ms__trace_data_free(td);
    ms__heap_view_free(&v);
    ms__engine_close(e);
    tw_free(&w);
}

/* Per-thread figures (ms__engine_threads), streamed from the file or loaded whole, alike: each
 * image's threads are their own, a block is charged to the thread that allocated it (a
 * realloc by another thread ends it as that thread's freed bytes), and they add up to the
 * trace's totals and to --stats. */
static void thread_figures_add_up_across_images(void **state)
{
    (void)state;
    struct tw w;
    tw_start(&w, &(struct tw_start){.pid = 7,
                                    .ppid = 1,
                                    .threads = TW_THREADS({1, 70, 0, "main"}, {2, 71, 0, "pool"})});
    uint64_t a = ev_alloc(&w, 10, 100, 1, 1);
    uint64_t b = ev_alloc(&w, 20, 400, 2, 2);
    ev_free(&w, 30, b);
    ev_realloc(&w, 40, a, 250, 1, 2); /* pool moves main's block */
    ev_alloc(&w, 50, 50, 1, 1);
    tw_chunk(&w, MS_CHUNK_CODEC_NONE);
    rec_process(&w, MS_REC_EXEC, 7, 1, 0, 0);
    rec_thread(&w, 1, 70, 60, "main");
    uint64_t c = ev_alloc(&w, 100, 30, 1, 1);
    ev_free(&w, 110, c);
    tw_chunk(&w, MS_CHUNK_CODEC_ZSTD);

    struct ms__engine *e = open_tw(&w), *whole;
    struct ms__trace_data *td;
    char err[256];
    assert_int_equal(ms__trace_load_mem(&td, w.file.p, w.file.len, err, sizeof(err)), 0);
    assert_int_equal(ms__engine_open_data(&whole, td, NULL, err, sizeof(err)), 0);
    struct ms__thread_stats *s, *sw;
    assert_int_equal(ms__engine_threads(e, &s), 0);
    assert_int_equal(ms__engine_threads(whole, &sw), 0);
    const struct ms__trace_data *d = ms__engine_trace(e);
    assert_int_equal(d->nthreads, 3);
    static const struct {
        uint32_t tid, image;
        uint64_t allocs, reallocs, frees, abytes, fbytes, peak, peak_ns;
    } want[] = {
        {70, 0, 2, 0, 0, 150, 100, 100, 10}, /* A (moved away at 40), then 50 B */
        {71, 0, 1, 1, 1, 650, 400, 400, 20}, /* B (freed), then the realloc's 250 B */
        {70, 1, 1, 0, 1, 30, 30, 30, 100},   /* the new image's main */
    };
    uint64_t abytes = 0, fbytes = 0;
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(d->threads[i].tid, want[i].tid);
        assert_int_equal(d->threads[i].image, want[i].image);
        assert_int_equal(s[i].allocations, want[i].allocs);
        assert_int_equal(s[i].reallocations, want[i].reallocs);
        assert_int_equal(s[i].frees, want[i].frees);
        assert_int_equal(s[i].allocated_bytes, want[i].abytes);
        assert_int_equal(s[i].freed_bytes, want[i].fbytes);
        assert_int_equal(s[i].peak_bytes, want[i].peak);
        assert_int_equal(s[i].peak_time_ns, want[i].peak_ns);
        assert_memory_equal(&s[i], &sw[i], sizeof(s[i])); /* (no padding: all u64) */
        abytes += s[i].allocated_bytes;
        fbytes += s[i].freed_bytes;
    }
    const struct ms__engine_totals *t = ms__engine_totals(e);
    assert_int_equal(t->allocated_bytes, abytes);
    assert_int_equal(t->freed_bytes, fbytes);
    ms_trace_stats st;
    assert_int_equal(ms__trace_load_mem(&td, w.file.p, w.file.len, err, sizeof(err)), 0);
    assert_int_equal(ms__trace_stats_compute(td, &st), 0);
    assert_int_equal(st.allocated_bytes, abytes);
    ms__trace_data_free(td);
    free(s);
    free(sw);
    ms__engine_close(whole);
    ms__engine_close(e);
    tw_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(peak_leaks_and_markers_are_exact),
        cmocka_unit_test(diffs_put_growth_first),
        cmocka_unit_test(groups_by_stack_module_and_function),
        cmocka_unit_test(realloc_chains_leave_only_the_last_block),
        cmocka_unit_test(frees_are_charged_to_the_allocating_thread),
        cmocka_unit_test(snapshots_replay_at_most_n_events_and_match_a_reference),
        cmocka_unit_test(streaming_whole_loads_and_compacted_checkpoints_agree),
        cmocka_unit_test(queries_do_not_disturb_each_other),
        cmocka_unit_test(exec_ends_the_heap_of_an_image),
        cmocka_unit_test(blocks_of_an_empty_last_image),
        cmocka_unit_test(a_cut_trace_opens_with_what_was_read),
        cmocka_unit_test(sampled_views_are_weighted),
        cmocka_unit_test(thread_figures_add_up_across_images),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

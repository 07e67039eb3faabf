/*
 * heap.c - the public heap-analysis API of memsnap.h (ms_heap_*): a thin layer over the
 * snapshot engine (engine.c) and the symbolizer (symbolize.c). The handle owns the engine and
 * one symbolizer, opened on the first query that needs frames and kept until ms_heap_close, so
 * that every string a row points to (libdw's own, or the symbolizer's arena) stays valid as
 * long as the handle.
 */
#include "memsnap.h"

#include "../core/internal.h"
#include "engine.h"
#include "heap_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ROW_FRAMES 256 /* frames kept per site row */

struct ms_heap_rows {
    ms_heap_row *rows;
    size_t n;
    struct ms__group_row *grows; /* the engine's rows: they own the names */
    size_t ngrows;
    ms_heap_frame *frames; /* every row's frames, one after another */
};

/* Opens the engine on fd (name: the trace in messages) into a new handle. */
static int heap_open_fd(ms_heap **out, int fd, const char *name, const ms_heap_open_options *opts)
{
    /* the options have one version so far: size 0 (taken as the current one) or all of it */
    if (opts && opts->size && opts->size < sizeof(*opts))
        return ms__error(MS_EINVAL, "%s: ms_heap_open_options.size too small", name);
    ms_heap *h = calloc(1, sizeof(*h));
    if (!h)
        return ms__error(MS_ENOMEM, "%s: out of memory", name);
    struct ms__engine_opts eo = {0};
    if (opts) {
        eo.progress = opts->progress;
        eo.progress_ctx = opts->progress_ctx;
    }
    char err[400];
    int rc = ms__engine_open_fd(&h->e, fd, &eo, err, sizeof(err));
    if (rc) {
        free(h);
        return ms__error(rc, "%s: %s", name, err);
    }
    *out = h;
    return 0;
}

int ms_heap_open_fd(ms_heap **out, int fd, const char *name, const ms_heap_open_options *opts)
{
    *out = NULL;
    return heap_open_fd(out, fd, name ? name : "trace", opts);
}

int ms_heap_open_opts(ms_heap **out, const char *path, const ms_heap_open_options *opts)
{
    if (!out || !path)
        return ms__error(MS_EINVAL, "ms_heap_open: %s",
                         !out ? "no handle pointer" : "no trace file given");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        return ms__error(ms__errno_code(err), "%s: %s", path, strerror(err));
    }
    int rc = heap_open_fd(out, fd, path, opts);
    close(fd);
    return rc;
}

int ms_heap_open(ms_heap **out, const char *path)
{
    return ms_heap_open_opts(out, path, NULL);
}

void ms_heap_close(ms_heap *h)
{
    if (!h)
        return;
    if (h->sym)
        ms__sym_close(h->sym);
    ms__engine_close(h->e);
    free(h->threads);
    free(h);
}

const char *ms_heap_warning(const ms_heap *h)
{
    const struct ms__trace_data *td = ms__engine_trace(h->e);
    return td->truncated ? td->warning : NULL;
}

/* An alias kept for callers written before ms_last_error(). */
const char *ms_heap_error(void)
{
    return ms_last_error();
}

int ms_heap_totals_get(const ms_heap *h, ms_heap_totals *out)
{
    /* a caller built before fields were appended gets the fields it knows */
    if (!out || out->size < offsetof(ms_heap_totals, allocated_bytes))
        return ms__error(MS_EINVAL, "ms_heap_totals_get: size not set");
    const struct ms__engine_totals *t = ms__engine_totals(h->e);
    const struct ms__trace_data *td = ms__engine_trace(h->e);
    ms_heap_totals all = {
        .size = out->size < sizeof(*out) ? out->size : sizeof(*out),
        .events = td->nevents,
        .allocations = t->allocations,
        .reallocations = t->reallocations,
        .frees = t->frees,
        .unmatched_frees = t->unmatched_frees,
        .temporaries = t->temporaries,
        .temporary_bytes = t->temporary_bytes,
        .peak_bytes = t->peak_bytes,
        .peak_time_ns = t->peak_time_ns,
        .leaked_bytes = t->leaked_bytes,
        .leaked_allocations = t->leaked_allocations,
        .duration_ns = td->end_time,
        .sampled = t->sampled,
        .truncated = td->truncated,
        .allocated_bytes = t->allocated_bytes,
        .freed_bytes = t->freed_bytes,
        .threads = td->nthreads,
        .lost_events = td->lost,
        .checkpoint_every = t->checkpoint_every,
        .complete = td->complete,
    };
    memcpy(out, &all, all.size);
    return 0;
}

int ms_heap_marker_time(const ms_heap *h, const char *label, uint64_t *ns)
{
    int rc = ms__engine_marker_time(h->e, label, ns);
    return rc ? ms__error(rc, "no marker is labelled '%s'", label) : 0;
}

int ms_heap_when(const ms_heap *h, const char *when, uint64_t *ns)
{
    ms_heap_totals tot = {.size = sizeof(tot)};
    ms_heap_totals_get(h, &tot);
    /* a time is plain decimal seconds ("2", "0.25"); " 5", "+5", "0x5" or "1e3" are not
     * (strtod would take them): such a WHEN is a marker's label or an error */
    size_t digits = strspn(when, "0123456789");
    bool plain =
        digits > 0 &&
        (when[digits] == 0 ||
         (when[digits] == '.' && !when[digits + 1 + strspn(when + digits + 1, "0123456789")]));
    double s = plain ? strtod(when, NULL) : 0;
    if (plain && isfinite(s)) {
        double t = s * 1e9;
        if (t > (double)tot.duration_ns + 0.5) {
            char a[64];
            return ms__error(MS_EINVAL, "time %s s is past the end of the trace (duration %s)",
                             when, ms__fmt_seconds(a, sizeof(a), tot.duration_ns));
        }
        *ns = (uint64_t)(t + 0.5);
        if (*ns > tot.duration_ns) /* within half a ns of the end: the end */
            *ns = tot.duration_ns;
        return 0;
    }
    if (ms__engine_marker_time(h->e, when, ns) == 0)
        return 0;
    if (when[0] == '-' && when[1] && strspn(when + 1, "0123456789.") == strlen(when + 1))
        return ms__error(MS_ERANGE, "time '%s' is before the trace start", when);
    return ms__error(MS_ENOENT, "no marker is labelled '%s' (and it is not a time in seconds)",
                     when);
}

/* Wraps what a query filled in v, or frees it when the query failed. */
static int view_out(int rc, struct ms__heap_view *v, enum ms__view_kind kind, ms_heap_view **out)
{
    *out = NULL;
    if (rc == 0 && !(*out = malloc(sizeof(**out))))
        rc = MS_ENOMEM;
    if (rc) {
        ms__heap_view_free(v);
        return ms__error(rc, "heap view: %s", ms_strerror(rc));
    }
    (*out)->v = *v;
    (*out)->kind = kind;
    return 0;
}

int ms_heap_at(ms_heap *h, uint64_t ns, ms_heap_view **out)
{
    struct ms__heap_view v = {0};
    if (ns > ms__engine_trace(h->e)->end_time) {
        *out = NULL;
        return ms__error(MS_EINVAL, "time %llu ns is past the end of the trace (%llu ns)",
                         (unsigned long long)ns,
                         (unsigned long long)ms__engine_trace(h->e)->end_time);
    }
    return view_out(ms__engine_snapshot_time(h->e, ns, &v), &v, MS__VIEW_AT, out);
}

int ms_heap_peak(ms_heap *h, ms_heap_view **out)
{
    struct ms__heap_view v = {0};
    return view_out(ms__engine_peak(h->e, &v), &v, MS__VIEW_PEAK, out);
}

int ms_heap_leaks(ms_heap *h, ms_heap_view **out)
{
    struct ms__heap_view v = {0};
    return view_out(ms__engine_leaks(h->e, &v), &v, MS__VIEW_LEAKS, out);
}

int ms_heap_diff(ms_heap *h, const ms_heap_view *a, const ms_heap_view *b, ms_heap_view **out)
{
    (void)h;
    struct ms__heap_view v = {0};
    return view_out(ms__engine_diff(&a->v, &b->v, &v), &v, MS__VIEW_DIFF, out);
}

void ms_heap_view_free(ms_heap_view *v)
{
    if (!v)
        return;
    ms__heap_view_free(&v->v);
    free(v);
}

uint64_t ms_heap_view_time(const ms_heap_view *v)
{
    return v->v.time_ns;
}

int64_t ms_heap_view_bytes(const ms_heap_view *v)
{
    return v->v.live_bytes;
}

int64_t ms_heap_view_count(const ms_heap_view *v)
{
    return v->v.live_allocations;
}

struct block_walk {
    ms_heap *h;
    int (*fn)(void *ctx, const ms_heap_block *b);
    void *ctx;
};

static int block_one(void *ctx, uint64_t block, uint32_t info, uint64_t alloc_slot)
{
    struct block_walk *w = ctx;
    const struct ms__trace_data *td = ms__engine_trace(w->h->e);
    const struct ms__trace_info *in = &td->infos[info];
    ms_heap_block b = {.id = block,
                       .size = in->size,
                       .time_ns = ms__engine_slot_ns(w->h->e, alloc_slot),
                       .tid = in->thread < td->nthreads ? td->threads[in->thread].tid : 0,
                       .stack = in->stack};
    return w->fn(w->ctx, &b);
}

int ms_heap_blocks(ms_heap *h, const ms_heap_view *v, int (*fn)(void *ctx, const ms_heap_block *b),
                   void *ctx)
{
    if (v->v.diff)
        return ms__error(MS_EINVAL, "ms_heap_blocks: a diff has no blocks");
    struct block_walk w = {h, fn, ctx};
    int rc = ms__engine_blocks(h->e, &v->v, block_one, &w);
    if (rc < 0) /* (a positive code is fn's own) */
        ms__error(rc, "ms_heap_blocks: %s", ms_strerror(rc));
    return rc;
}

struct ms__symbolizer *ms__heap_symbolizer(ms_heap *h)
{
    if (!h->sym_tried) {
        h->sym_tried = true;
        if (ms__sym_open(&h->sym, ms__engine_trace(h->e)) != 0)
            h->sym = NULL;
    }
    return h->sym;
}

/* ms_heap_frame from the symbolizer's frame. */
static ms_heap_frame frame_of(const struct ms__sym_frame *f)
{
    return (ms_heap_frame){.ip = f->ip,
                           .function = f->function,
                           .file = f->file,
                           .line = f->line,
                           .module = f->module,
                           .offset = f->offset,
                           .inlined = f->inlined};
}

size_t ms_heap_stack(ms_heap *h, const ms_heap_view *v, uint32_t stack, ms_heap_frame *out,
                     size_t max)
{
    struct ms__sym_frame sf[ROW_FRAMES];
    size_t n = ms__engine_stack_frames(h->e, ms__heap_symbolizer(h), v->v.image, stack, sf,
                                       max < ROW_FRAMES ? max : ROW_FRAMES);
    for (size_t i = 0; i < n; i++)
        out[i] = frame_of(&sf[i]);
    return n;
}

/* ---------------------------------------------------------------------------------------- */
/* Grouping                                                                                 */
/* ---------------------------------------------------------------------------------------- */

static int64_t mag(int64_t x)
{
    return x < 0 ? -x : x;
}

/* Most blocks first (by magnitude: a diff's shrinking sites too), then bytes. */
static int count_first(const void *pa, const void *pb)
{
    const struct ms__group_row *a = pa, *b = pb;
    if (mag(a->count) != mag(b->count))
        return mag(a->count) > mag(b->count) ? -1 : 1;
    if (a->bytes != b->bytes)
        return a->bytes > b->bytes ? -1 : 1;
    return 0;
}

void ms__heap_sort_by_count(struct ms__group_row *rows, size_t n)
{
    if (n)
        qsort(rows, n, sizeof(*rows), count_first);
}

void ms_heap_rows_free(ms_heap_rows *r)
{
    if (!r)
        return;
    ms__group_rows_free(r->grows, r->ngrows);
    free(r->rows);
    free(r->frames);
    free(r);
}

const enum ms__group_by ms__heap_group_by[MS_HEAP_BY_THREAD + 1] = {
    [MS_HEAP_BY_SITE] = MS__GROUP_STACK,
    [MS_HEAP_BY_FUNCTION] = MS__GROUP_FUNCTION_SELF,
    [MS_HEAP_BY_FUNCTION_INCL] = MS__GROUP_FUNCTION_INCL,
    [MS_HEAP_BY_MODULE] = MS__GROUP_MODULE,
    [MS_HEAP_BY_THREAD] = MS__GROUP_THREAD,
};

int ms_heap_group(ms_heap *h, const ms_heap_view *v, ms_heap_by by, ms_heap_order order, size_t max,
                  ms_heap_rows **out)
{
    *out = NULL;
    if ((unsigned)by > MS_HEAP_BY_THREAD ||
        (order != MS_HEAP_ORDER_BYTES && order != MS_HEAP_ORDER_COUNT))
        return ms__error(MS_EINVAL, "ms_heap_group: unknown grouping or order");
    struct ms__symbolizer *sym = by != MS_HEAP_BY_THREAD ? ms__heap_symbolizer(h) : NULL;
    ms_heap_rows *r = calloc(1, sizeof(*r));
    if (!r)
        return ms__error(MS_ENOMEM, "out of memory");
    int rc = ms__engine_group(h->e, &v->v, ms__heap_group_by[by], sym, &r->grows, &r->ngrows);
    if (rc) {
        free(r);
        return ms__error(rc, "ms_heap_group: %s", ms_strerror(rc));
    }
    if (order == MS_HEAP_ORDER_COUNT)
        ms__heap_sort_by_count(r->grows, r->ngrows);
    r->n = max && max < r->ngrows ? max : r->ngrows;
    if (r->n && !(r->rows = calloc(r->n, sizeof(*r->rows))))
        goto oom;
    const struct ms__trace_data *td = ms__engine_trace(h->e);
    struct ms__sym_frame sf[ROW_FRAMES];
    size_t nf = 0, fcap = 0;
    for (size_t i = 0; i < r->n; i++) {
        const struct ms__group_row *g = &r->grows[i];
        ms_heap_row *row = &r->rows[i];
        *row = (ms_heap_row){.bytes = g->bytes, .count = g->count, .name = g->name};
        if (by == MS_HEAP_BY_THREAD && g->thread < td->nthreads) {
            const struct ms__trace_thread *t = &td->threads[g->thread];
            row->tid = t->tid;
            row->name = t->name.len ? ms__trace_str_ptr(td, t->name) : NULL;
        } else if (by == MS_HEAP_BY_SITE) {
            size_t k = ms__engine_stack_frames(h->e, sym, g->image, g->stack, sf, ROW_FRAMES);
            if (nf + k > fcap) {
                ms_heap_frame *f = ms__grow_to(r->frames, &fcap, nf + k, sizeof(*f));
                if (!f)
                    goto oom;
                r->frames = f;
            }
            row->nframes = k;
            for (size_t j = 0; j < k; j++)
                r->frames[nf++] = frame_of(&sf[j]);
        }
    }
    for (size_t i = 0, at = 0; by == MS_HEAP_BY_SITE && i < r->n; i++) { /* frames[] has moved */
        r->rows[i].frames = r->frames ? r->frames + at : NULL;
        at += r->rows[i].nframes;
    }
    *out = r;
    return 0;
oom:
    ms_heap_rows_free(r);
    return ms__error(MS_ENOMEM, "out of memory");
}

size_t ms_heap_rows_count(const ms_heap_rows *r)
{
    return r ? r->n : 0;
}

const ms_heap_row *ms_heap_rows_at(const ms_heap_rows *r, size_t i)
{
    return r && i < r->n ? &r->rows[i] : NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* Threads                                                                                  */
/* ---------------------------------------------------------------------------------------- */

int ms_heap_threads(ms_heap *h, size_t *count)
{
    if (!h->threads) {
        const struct ms__trace_data *td = ms__engine_trace(h->e);
        struct ms__thread_stats *st;
        int rc = ms__engine_threads(h->e, &st);
        if (rc)
            return ms__error(rc, "per-thread statistics: %s", ms_strerror(rc));
        ms_heap_thread *t = calloc(td->nthreads ? td->nthreads : 1, sizeof(*t));
        if (!t) {
            free(st);
            return ms__error(MS_ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < td->nthreads; i++) {
            const struct ms__trace_thread *tt = &td->threads[i];
            t[i] = (ms_heap_thread){
                .tid = tt->tid,
                .image = tt->image,
                .name = tt->name.len ? ms__trace_str_ptr(td, tt->name) : NULL,
                .allocations = st[i].allocations,
                .reallocations = st[i].reallocations,
                .allocated_bytes = st[i].allocated_bytes,
                .frees = st[i].frees,
                .freed_bytes = st[i].freed_bytes,
                .peak_bytes = st[i].peak_bytes,
                .peak_time_ns = st[i].peak_time_ns,
            };
        }
        free(st);
        h->threads = t;
        h->nthreads = td->nthreads;
    }
    if (count)
        *count = h->nthreads;
    return 0;
}

const ms_heap_thread *ms_heap_thread_at(const ms_heap *h, size_t i)
{
    return h->threads && i < h->nthreads ? &h->threads[i] : NULL;
}

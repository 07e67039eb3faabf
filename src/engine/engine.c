/*
 * engine.c - the snapshot engine (engine.h). Opening streams the trace: the loader hands over
 * each chunk's events as soon as it is decoded (ms__trace_load_fd_stream), and one pass turns
 * them into what queries need, while they are still in cache:
 *   - one 32-bit op per event slot: +info for an event that starts a block, -info for one
 *     that ends a live block, 0 for anything else (a double free, an mmap call), so that a
 *     replay needs no block lookups at all;
 *   - the time index: the first slot of each distinct time (times only change at TIME
 *     records, every ~20 us), to map times to slots and back;
 *   - the trace's totals (peak, temporaries, unmatched frees, leaks);
 *   - every N slots a checkpoint of the live count of each info.
 * The per-block table (block -> info, to charge a free to its block's info) lives only while
 * the pass runs. A snapshot copies the checkpoint before its moment and replays at most N ops;
 * views are built per info; grouping (by stack, thread, module, function) happens on a view.
 */
#include "engine.h"

#include "../core/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NONE           UINT32_MAX
#define END_BIT        0x80000000u /* an op that ends a block; the low bits: info + 1 */
#define DEFAULT_EVERY  ((size_t)1 << 20)
#define DEFAULT_BUDGET ((size_t)256 << 20) /* bytes of checkpoints before N doubles */
#define MAX_FRAMES     256

/* The first slot of a run of slots at the same time. */
struct slot_time {
    uint64_t slot;
    uint64_t ticks;
};

struct ms__engine {
    struct ms__trace_data *td;
    struct ms__engine_totals tot;
    char *err; /* the pass's error buffer (while loading) */
    size_t errlen;
    /* per slot */
    uint32_t *ops;
    size_t ops_cap;
    struct slot_time *times;
    size_t ntimes, times_cap;
    /* per info (ninfos: how many the pass has seen) */
    size_t ninfos, infos_cap;
    uint32_t *info_image; /* its image */
    double *weight;       /* the weight of its blocks (1 when not sampled) */
    uint32_t *work;       /* the running live counts; then a snapshot's */
    /* checkpoints: k is the counts before slot k * every, at cp_off[k] (cp_count() infos) */
    size_t every, budget, ncp, cp_len, cp_cap, cpi_cap;
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    void *progress_ctx;
    uint32_t *cp;
    size_t *cp_off;
    /* the pass's state */
    uint32_t *blk_info; /* block of the current image -> info, NONE: ended (block numbers
                           restart in each image, and a block is allocated before it ends) */
    size_t blk_cap;
    uint32_t image; /* the current image */
    uint64_t last_ticks;
    uint64_t next;                              /* 1 + the current image's last block allocated */
    uint64_t cur, peak, nlive, abytes, dropped; /* bytes allocated; live at an exec */
    double wcur, wpeak, wlive, wabytes, wdropped;
    bool have_peak; /* (once tot.sampled, the figures go on in the doubles) */
    uint64_t replayed;
    int fd; /* the trace, for ms__engine_blocks (-1: loaded whole, td->events holds it all) */
    struct ms__mod_range *mods; /* td's modules by address, for ms__engine_module_of */
    size_t nmods;
};

static uint64_t round_u64(double x)
{
    if (!(x > 0))
        return 0;
    if (x >= 9.2e18)
        return INT64_MAX;
    return (uint64_t)(x + 0.5);
}

static int64_t round_i64(double x)
{
    return x < 0 ? -(int64_t)round_u64(-x) : (int64_t)round_u64(x);
}

/* ---------------------------------------------------------------------------------------- */
/* Open: the pass                                                                           */
/* ---------------------------------------------------------------------------------------- */

void ms__engine_close(struct ms__engine *e)
{
    if (!e)
        return;
    ms__trace_data_free(e->td);
    free(e->ops);
    free(e->times);
    free(e->info_image);
    free(e->weight);
    free(e->work);
    free(e->cp);
    free(e->cp_off);
    free(e->blk_info);
    free(e->mods);
    if (e->fd >= 0)
        close(e->fd);
    free(e);
}

static int fail(struct ms__engine *e, int rc, const char *what)
{
    snprintf(e->err, e->errlen, "%s", what);
    return rc;
}

/* Takes in the infos the trace defined since the last call: their image and weight. */
static int infos_more(struct ms__engine *e, const struct ms__trace_data *td)
{
    size_t n = td->ninfos, cap = e->infos_cap;
    if (n <= e->ninfos)
        return 0;
    if (n >= END_BIT - 1)
        return fail(e, MS_ENOMEM, "too many allocation sites for the snapshot engine");
    if (n > cap) {
        size_t c1 = cap, c2 = cap, c3 = cap;
        if (ms__grow(&e->info_image, &c1, n, sizeof(*e->info_image), MS__GROW_POPULATE) ||
            ms__grow(&e->weight, &c2, n, sizeof(*e->weight), MS__GROW_POPULATE) ||
            ms__grow(&e->work, &c3, n, sizeof(*e->work), MS__GROW_POPULATE))
            return fail(e, MS_ENOMEM, "out of memory");
        e->infos_cap = c1;
    }
    for (size_t i = e->ninfos; i < n; i++) {
        uint32_t th = td->infos[i].thread;
        uint32_t im = th < td->nthreads ? td->threads[th].image : 0;
        uint64_t rate = im < td->nimages ? td->images[im].sample_rate : 0;
        e->info_image[i] = im;
        e->weight[i] = rate ? ms__trace_sample_weight(td->infos[i].size, rate) : 1.0;
        e->work[i] = 0;
        if (rate && !e->tot.sampled) { /* the first sampled image: go on in doubles */
            e->tot.sampled = true;
            e->wcur = (double)e->cur;
            e->wlive = (double)e->nlive;
            e->wpeak = (double)e->peak;
            e->wabytes = (double)e->abytes;
            e->wdropped = (double)e->dropped;
        }
    }
    e->ninfos = n;
    return 0;
}

/* How many infos checkpoint k holds: up to the next one's offset. */
static size_t cp_count(const struct ms__engine *e, size_t k)
{
    return (k + 1 < e->ncp ? e->cp_off[k + 1] : e->cp_len) - e->cp_off[k];
}

/* Stores the running counts as checkpoint ncp; when the checkpoints outgrow the budget, N
 * doubles and every other one goes. */
static int checkpoint(struct ms__engine *e)
{
    size_t n = e->ninfos;
    if (ms__grow(&e->cp, &e->cp_cap, e->cp_len + (n ? n : 1), sizeof(*e->cp), MS__GROW_POPULATE) ||
        ms__grow(&e->cp_off, &e->cpi_cap, e->ncp + 1, sizeof(*e->cp_off), MS__GROW_POPULATE))
        return fail(e, MS_ENOMEM, "out of memory");
    if (n)
        memcpy(e->cp + e->cp_len, e->work, n * sizeof(*e->cp));
    e->cp_off[e->ncp] = e->cp_len;
    e->cp_len += n;
    e->ncp++;
    if (e->cp_len * sizeof(*e->cp) > e->budget && e->ncp > 2) {
        size_t len = 0, k = 0;
        for (size_t j = 0; j < e->ncp; j += 2, k++) { /* keep the even ones */
            size_t nj = cp_count(e, j);               /* before cp_off[k <= j] is rewritten */
            memmove(e->cp + len, e->cp + e->cp_off[j], nj * sizeof(*e->cp));
            e->cp_off[k] = len;
            len += nj;
        }
        e->ncp = k;
        e->cp_len = len;
        e->every *= 2;
    }
    return 0;
}

/* Starts image im (the ones before it are complete): its heap starts empty. */
static void image_start(struct ms__engine *e, uint32_t im)
{
    if (im == e->image)
        return;
    e->image = im;
    e->next = 0;
    e->dropped = ms__sat_add(e->dropped, e->cur); /* gone with the image: not freed */
    e->wdropped += e->wcur;
    e->cur = 0;
    e->nlive = 0;
    e->wcur = e->wlive = 0;
}

/* The pass over slots [from, to) of the trace being loaded (an ms__trace_chunk_fn). */
static int consume(void *ctx, const struct ms__trace_data *td, size_t from, size_t to)
{
    struct ms__engine *e = ctx;
    struct ms__engine_totals *t = &e->tot;
    int rc;
    if (to >= NONE - 1)
        return fail(e, MS_ENOMEM, "too many events for the snapshot engine");
    if ((rc = infos_more(e, td)) != 0)
        return rc;
    if (ms__grow(&e->ops, &e->ops_cap, to, sizeof(*e->ops), MS__GROW_POPULATE))
        return fail(e, MS_ENOMEM, "out of memory");
    const struct ms__trace_info *infos = td->infos;
    uint32_t *cnt = e->work;
    const double *w = e->weight;
    for (size_t i = from; i < to;) {
        /* the image of slot i, and where the run of slots in it ends */
        uint32_t im = e->image;
        while (im + 1 < td->nimages && td->images[im + 1].first_event <= i)
            im++;
        image_start(e, im);
        size_t stop = im + 1 < td->nimages && td->images[im + 1].first_event < to
                          ? td->images[im + 1].first_event
                          : to;
        uint64_t nb = td->images[im].nblocks;
        if (nb > e->blk_cap &&
            ms__grow(&e->blk_info, &e->blk_cap, nb, sizeof(*e->blk_info), MS__GROW_POPULATE))
            return fail(e, MS_ENOMEM, "out of memory");
        uint32_t *binfo = e->blk_info; /* NULL: no blocks */
        const bool sampled = e->tot.sampled;
        for (; i < stop; i++) {
            if (i == e->ncp * e->every && (rc = checkpoint(e)) != 0)
                return rc;
            const struct ms__trace_event *ev = &td->events[i - td->slot_base];
            if (ev->time != e->last_ticks || e->ntimes == 0) {
                if (ms__grow(&e->times, &e->times_cap, e->ntimes + 1, sizeof(*e->times),
                             MS__GROW_POPULATE))
                    return fail(e, MS_ENOMEM, "out of memory");
                e->times[e->ntimes++] = (struct slot_time){i, ev->time};
                e->last_ticks = ev->time;
            }
            uint64_t b = ev->id;
            uint32_t op = 0;
            switch (ev->kind) {
            case MS__EV_ALLOC:
            case MS__EV_REALLOC: {
                uint32_t info = ev->info;
                binfo[b] = info;
                e->next = b + 1;
                op = info + 1;
                cnt[info]++;
                e->nlive++;
                *(ev->kind == MS__EV_ALLOC ? &t->allocations : &t->reallocations) += 1;
                if (!sampled) {
                    e->cur = ms__sat_add(e->cur, infos[info].size);
                    e->abytes = ms__sat_add(e->abytes, infos[info].size);
                    if (e->cur > e->peak || !e->have_peak) {
                        e->peak = e->cur;
                        t->peak_event = i + 1;
                        e->have_peak = true;
                    }
                } else {
                    e->wcur += (double)infos[info].size * w[info];
                    e->wabytes += (double)infos[info].size * w[info];
                    e->wlive += w[info];
                    if (e->wcur > e->wpeak || !e->have_peak) {
                        e->wpeak = e->wcur;
                        t->peak_event = i + 1;
                        e->have_peak = true;
                    }
                }
                break;
            }
            case MS__EV_FREE:
            case MS__EV_REALLOC_OLD:
            case MS__EV_RELEASE: {
                uint32_t info = binfo[b];
                if (info == NONE) { /* a double free: not live */
                    t->unmatched_frees++;
                    break;
                }
                binfo[b] = NONE;
                op = (info + 1) | END_BIT;
                cnt[info]--;
                e->nlive--;
                if (!sampled) /* less only after a saturation of a crafted trace */
                    e->cur = e->cur >= infos[info].size ? e->cur - infos[info].size : 0;
                else {
                    e->wcur -= (double)infos[info].size * w[info];
                    e->wlive -= w[info];
                }
                if (ev->kind == MS__EV_FREE) {
                    t->frees++;
                    if (b + 1 == e->next) { /* no ALLOC since this block's */
                        t->temporaries++;
                        t->temporary_bytes = ms__sat_add(t->temporary_bytes, infos[info].size);
                    }
                }
                break;
            }
            case MS__EV_UNMATCHED_FREE:
            case MS__EV_UNMATCHED_OLD:
                t->unmatched_frees++;
                break;
            default: /* mmap calls are not heap blocks */
                break;
            }
            e->ops[i] = op;
        }
    }
    if (e->progress)
        e->progress(e->progress_ctx, td->file_read, td->file_bytes);
    return 0;
}

/* After the last chunk: the totals that need the whole trace, and the last checkpoint. */
static int finish(struct ms__engine *e)
{
    struct ms__trace_data *td = e->td;
    struct ms__engine_totals *t = &e->tot;
    int rc = infos_more(e, td);
    if (rc)
        return rc;
    image_start(e, (uint32_t)(td->nimages - 1));
    t->leaked_bytes = e->tot.sampled ? round_u64(e->wcur) : e->cur;
    t->leaked_allocations = e->tot.sampled ? round_u64(e->wlive) : e->nlive;
    /* the checkpoint the slots never reached (the last one may sit at nslots) */
    while (e->ncp * e->every <= td->nslots)
        if ((rc = checkpoint(e)) != 0)
            return rc;
    t->peak_bytes = e->tot.sampled ? round_u64(e->wpeak) : e->peak;
    /* what ended while live: allocated - dropped at the execs - live at the end (one add per
     * allocation in the pass, none per free) */
    t->allocated_bytes = e->tot.sampled ? round_u64(e->wabytes) : e->abytes;
    if (e->tot.sampled)
        t->freed_bytes = round_u64(e->wabytes - e->wdropped - e->wcur);
    else if (e->abytes >= ms__sat_add(e->dropped, e->cur))
        t->freed_bytes = e->abytes - e->dropped - e->cur;
    t->slots = td->nslots;
    t->checkpoint_every = e->every;
    t->checkpoints = e->ncp;
    free(e->blk_info); /* the pass's alone */
    e->blk_info = NULL;
    e->blk_cap = 0;
    t->peak_time_ns = t->peak_event ? ms__engine_slot_ns(e, t->peak_event - 1) : 0;
    return 0;
}

static struct ms__engine *engine_new(const struct ms__engine_opts *opts, char *err, size_t errlen)
{
    struct ms__engine *e = calloc(1, sizeof(*e));
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    e->err = err;
    e->errlen = errlen;
    e->fd = -1;
    e->every = opts && opts->checkpoint_every ? opts->checkpoint_every : DEFAULT_EVERY;
    e->budget = opts && opts->checkpoint_budget ? opts->checkpoint_budget : DEFAULT_BUDGET;
    if (opts) {
        e->progress = opts->progress;
        e->progress_ctx = opts->progress_ctx;
    }
    return e;
}

/* Completes an engine whose pass took in every slot of td (rc: the load's result). */
static int engine_done(struct ms__engine *e, struct ms__trace_data *td, int rc,
                       struct ms__engine **out)
{
    e->td = td;
    if (rc == 0 && td && (rc = finish(e)) == 0 && ms__mod_ranges(td, &e->mods, &e->nmods) != 0)
        rc = fail(e, MS_ENOMEM, "out of memory");
    if (rc == 0 && td) {
        e->err = NULL;
        *out = e;
        return 0;
    }
    ms__engine_close(e);
    return rc;
}

int ms__engine_open_data(struct ms__engine **out, struct ms__trace_data *td,
                         const struct ms__engine_opts *opts, char *err, size_t errlen)
{
    *out = NULL;
    struct ms__engine *e = engine_new(opts, err, errlen);
    if (!e) {
        ms__trace_data_free(td);
        return MS_ENOMEM;
    }
    int rc = td->slot_base == 0 ? consume(e, td, 0, td->nslots)
                                : fail(e, MS_EINVAL, "the trace's events were not kept");
    return engine_done(e, td, rc, out);
}

int ms__engine_open_fd(struct ms__engine **out, int fd, const struct ms__engine_opts *opts,
                       char *err, size_t errlen)
{
    *out = NULL;
    struct ms__engine *e = engine_new(opts, err, errlen);
    if (!e)
        return MS_ENOMEM;
    struct ms__trace_data *td = NULL;
    int rc = ms__trace_load_fd_stream(&td, fd, consume, e, err, errlen);
    if (rc == 0 && (e->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
        rc = fail(e, ms__errno_code(errno), "cannot keep the trace open");
    return engine_done(e, td, rc, out);
}

const struct ms__trace_data *ms__engine_trace(const struct ms__engine *e)
{
    return e->td;
}

const struct ms__engine_totals *ms__engine_totals(const struct ms__engine *e)
{
    return &e->tot;
}

uint64_t ms__engine_last_replayed(const struct ms__engine *e)
{
    return e->replayed;
}

/* ---------------------------------------------------------------------------------------- */
/* Moments                                                                                  */
/* ---------------------------------------------------------------------------------------- */

uint64_t ms__engine_slot_ns(const struct ms__engine *e, uint64_t slot)
{
    size_t lo = 0, hi = e->ntimes; /* the last run starting at or before slot */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (e->times[mid].slot <= slot)
            lo = mid;
        else
            hi = mid;
    }
    return e->ntimes ? ms__trace_ticks_ns(&e->td->timebase, e->times[lo].ticks) : 0;
}

uint64_t ms__engine_event_at(const struct ms__engine *e, uint64_t ns)
{
    const struct ms__trace_timebase *tb = &e->td->timebase;
    size_t lo = 0, hi = e->ntimes; /* the first run later than ns lies in [lo, hi] */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ms__trace_ticks_ns(tb, e->times[mid].ticks) <= ns)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < e->ntimes ? e->times[lo].slot : e->td->nslots;
}

int ms__engine_marker_time(const struct ms__engine *e, const char *label, uint64_t *ns)
{
    const struct ms__trace_data *td = e->td;
    size_t len = strlen(label);
    for (size_t i = 0; i < td->nmarkers; i++) {
        const struct ms__trace_marker *m = &td->markers[i];
        if (m->label.len == len && memcmp(ms__trace_str_ptr(td, m->label), label, len) == 0) {
            *ns = m->time;
            return 0;
        }
    }
    return MS_ENOENT;
}

/* The image of the heap after events [0, event): that of event - 1. */
static uint32_t image_of(const struct ms__engine *e, uint64_t event)
{
    const struct ms__trace_data *td = e->td;
    if (event == 0)
        return 0;
    uint32_t im = 0;
    for (size_t i = 0; i < td->nimages; i++) /* few images: a scan */
        if (td->images[i].first_event <= event - 1 && td->images[i].end_event > event - 1)
            im = (uint32_t)i;
    return im;
}

/* The blocks of one image as they stand after slots [0, until): ms__engine_blocks's pass. */
struct block_pass {
    const struct ms__trace_image *image; /* of the engine's complete trace data */
    uint64_t until;
    struct block {
        uint32_t info;
        uint32_t alloc; /* the slot that started it */
        bool live;
    } * blk; /* image->nblocks of them */
};

#define BLOCKS_DONE 1 /* a chunk callback's "stop reading": the moment is reached */

/* Takes in slots [from, to) (an ms__trace_chunk_fn): only the image's, only before `until`. */
static int block_chunk(void *ctx, const struct ms__trace_data *td, size_t from, size_t to)
{
    struct block_pass *bp = ctx;
    size_t lo = from > bp->image->first_event ? from : bp->image->first_event;
    size_t hi = to < bp->image->end_event ? to : bp->image->end_event;
    if (hi > bp->until)
        hi = (size_t)bp->until;
    for (size_t i = lo; i < hi; i++) {
        const struct ms__trace_event *ev = &td->events[i - td->slot_base];
        bool alloc = ev->kind == MS__EV_ALLOC || ev->kind == MS__EV_REALLOC;
        bool end =
            ev->kind == MS__EV_FREE || ev->kind == MS__EV_REALLOC_OLD || ev->kind == MS__EV_RELEASE;
        /* (ids of other kinds are addresses; a file rewritten since open may hold any) */
        if ((!alloc && !end) || ev->id >= bp->image->nblocks)
            continue;
        if (alloc)
            bp->blk[ev->id] = (struct block){ev->info, (uint32_t)i, true};
        else
            bp->blk[ev->id].live = false; /* (a double free changes nothing) */
    }
    return to >= bp->until ? BLOCKS_DONE : 0;
}

int ms__engine_blocks(struct ms__engine *e, const struct ms__heap_view *v,
                      int (*fn)(void *ctx, uint64_t block, uint32_t info, uint64_t alloc_slot),
                      void *ctx)
{
    const struct ms__trace_data *td = e->td;
    uint64_t event = v->event < td->nslots ? v->event : td->nslots;
    if (v->image >= td->nimages)
        return MS_EINVAL;
    struct block_pass bp = {.image = &td->images[v->image], .until = event};
    if (bp.image->nblocks && !(bp.blk = calloc(bp.image->nblocks, sizeof(*bp.blk))))
        return MS_ENOMEM;
    int rc = 0;
    if (e->fd < 0) { /* loaded whole */
        block_chunk(&bp, td, 0, td->nslots);
    } else if (event > bp.image->first_event) { /* read the trace again, up to the moment */
        struct ms__trace_data *again = NULL;
        char err[256];
        rc = ms__trace_load_fd_stream(&again, e->fd, block_chunk, &bp, err, sizeof(err));
        ms__trace_data_free(again);
        rc = rc == BLOCKS_DONE ? 0 : rc;
    }
    for (uint64_t b = 0; rc == 0 && b < bp.image->nblocks; b++)
        if (bp.blk[b].live)
            rc = fn(ctx, b, bp.blk[b].info, bp.blk[b].alloc);
    free(bp.blk);
    return rc;
}

/* The per-thread pass (ms__engine_threads): the live blocks of the current image, as
 * block -> info + 1 (0: not live), and each thread's running figures. */
struct thread_pass {
    const struct ms__engine *e;
    uint32_t image; /* the image of the last slot taken in; UINT32_MAX before the first */
    uint32_t *live; /* the image's nblocks entries */
    struct thread_acc {
        uint64_t allocs, reallocs, frees, abytes, fbytes, cur, peak, peak_slot;
        double wallocs, wreallocs, wfrees, wabytes, wfbytes, wcur, wpeak;
        bool have_peak;
    } * t; /* one per td->threads */
};

/* Takes in slots [from, to) (an ms__trace_chunk_fn) of the trace read again; images, infos
 * and threads come from the engine's complete data (the numbering is the same). */
static int thread_chunk(void *ctx, const struct ms__trace_data *sd, size_t from, size_t to)
{
    struct thread_pass *tp = ctx;
    const struct ms__engine *e = tp->e;
    const struct ms__trace_data *td = e->td;
    const bool sampled = e->tot.sampled;
    if (to > td->nslots) /* a file rewritten since open */
        to = td->nslots;
    for (size_t i = from; i < to; i++) {
        uint32_t im = tp->image == UINT32_MAX ? 0 : tp->image;
        while (im + 1 < td->nimages && td->images[im + 1].first_event <= i)
            im++;
        if (im != tp->image) { /* an exec: the old heap is gone (not freed) */
            const struct ms__trace_image *image = &td->images[im];
            free(tp->live);
            tp->live = calloc(image->nblocks ? image->nblocks : 1, sizeof(*tp->live));
            if (!tp->live)
                return MS_ENOMEM;
            tp->image = im;
        }
        const struct ms__trace_event *ev = &sd->events[i - sd->slot_base];
        bool alloc = ev->kind == MS__EV_ALLOC || ev->kind == MS__EV_REALLOC;
        bool end =
            ev->kind == MS__EV_FREE || ev->kind == MS__EV_REALLOC_OLD || ev->kind == MS__EV_RELEASE;
        if ((!alloc && !end) || ev->id >= td->images[im].nblocks)
            continue;
        uint32_t info = alloc ? ev->info : tp->live[ev->id] - 1;
        if ((!alloc && !tp->live[ev->id]) || info >= e->ninfos || /* a double free */
            td->infos[info].thread >= td->nthreads)
            continue;
        struct thread_acc *a = &tp->t[td->infos[info].thread];
        uint64_t size = td->infos[info].size;
        double w = e->weight[info];
        if (alloc) {
            tp->live[ev->id] = info + 1;
            if (ev->kind == MS__EV_ALLOC)
                a->allocs++, a->wallocs += w;
            else
                a->reallocs++, a->wreallocs += w;
            a->abytes = ms__sat_add(a->abytes, size);
            a->cur = ms__sat_add(a->cur, size);
            a->wabytes += (double)size * w;
            a->wcur += (double)size * w;
            if (!a->have_peak || (sampled ? a->wcur > a->wpeak : a->cur > a->peak)) {
                a->peak = a->cur;
                a->wpeak = a->wcur;
                a->peak_slot = i;
                a->have_peak = true;
            }
        } else {
            tp->live[ev->id] = 0;
            if (ev->kind == MS__EV_FREE)
                a->frees++, a->wfrees += w;
            a->fbytes = ms__sat_add(a->fbytes, size);
            a->cur = a->cur >= size ? a->cur - size : 0; /* less only after a saturation */
            a->wfbytes += (double)size * w;
            a->wcur -= (double)size * w;
        }
    }
    return 0;
}

int ms__engine_threads(struct ms__engine *e, struct ms__thread_stats **out)
{
    const struct ms__trace_data *td = e->td;
    *out = NULL;
    struct thread_pass tp = {.e = e, .image = UINT32_MAX};
    size_t n = td->nthreads ? td->nthreads : 1;
    struct ms__thread_stats *s = calloc(n, sizeof(*s));
    if (!s || !(tp.t = calloc(n, sizeof(*tp.t)))) {
        free(s);
        return MS_ENOMEM;
    }
    int rc = 0;
    if (e->fd < 0) { /* loaded whole */
        rc = thread_chunk(&tp, td, 0, td->nslots);
    } else {
        struct ms__trace_data *again = NULL;
        char err[256];
        rc = ms__trace_load_fd_stream(&again, e->fd, thread_chunk, &tp, err, sizeof(err));
        ms__trace_data_free(again);
    }
    for (size_t i = 0; rc == 0 && i < td->nthreads; i++) {
        const struct thread_acc *a = &tp.t[i];
        bool w = e->tot.sampled;
        s[i] = (struct ms__thread_stats){
            .allocations = w ? round_u64(a->wallocs) : a->allocs,
            .reallocations = w ? round_u64(a->wreallocs) : a->reallocs,
            .frees = w ? round_u64(a->wfrees) : a->frees,
            .allocated_bytes = w ? round_u64(a->wabytes) : a->abytes,
            .freed_bytes = w ? round_u64(a->wfbytes) : a->fbytes,
            .peak_bytes = w ? round_u64(a->wpeak) : a->peak,
            .peak_time_ns = a->have_peak ? ms__engine_slot_ns(e, a->peak_slot) : 0,
        };
    }
    free(tp.live);
    free(tp.t);
    if (rc) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void ms__heap_view_free(struct ms__heap_view *v)
{
    if (!v)
        return;
    free(v->sites);
    v->sites = NULL;
    v->nsites = 0;
}

/* The counts after events [0, event) into e->work. */
static void replay_to(struct ms__engine *e, uint64_t event)
{
    size_t k = (size_t)(event / e->every);
    if (k >= e->ncp)
        k = e->ncp - 1;
    uint32_t *cnt = e->work;
    size_t n = cp_count(e, k);
    if (n)
        memcpy(cnt, e->cp + e->cp_off[k], n * sizeof(*cnt));
    if (e->ninfos > n) /* infos defined after it */
        memset(cnt + n, 0, (e->ninfos - n) * sizeof(*cnt));
    if (event > k * e->every) { /* (ops is NULL in a trace of no events) */
        const uint32_t *op = e->ops + k * e->every, *end = e->ops + event;
        for (; op < end; op++) {
            uint32_t o = *op;
            if (o) /* +1 or -1 on info (o & ~END_BIT) - 1: wraps to the same adds */
                cnt[(o & ~END_BIT) - 1] += (o & END_BIT) ? UINT32_MAX : 1;
        }
    }
    e->replayed = event - k * e->every;
}

/* The view of image im from e->work. */
static int view_build(struct ms__engine *e, uint32_t im, uint64_t event, uint64_t time_ns,
                      struct ms__heap_view *out)
{
    const struct ms__trace_data *td = e->td;
    memset(out, 0, sizeof(*out));
    out->time_ns = out->from_time_ns = time_ns;
    out->event = event;
    out->image = im;
    size_t n = 0;
    for (size_t i = 0; i < e->ninfos; i++)
        n += e->work[i] && e->info_image[i] == im;
    if (n && !(out->sites = malloc(n * sizeof(*out->sites))))
        return MS_ENOMEM;
    double wbytes = 0, wcount = 0;
    for (size_t i = 0; i < e->ninfos; i++) {
        uint32_t c = e->work[i];
        if (!c || e->info_image[i] != im)
            continue;
        struct ms__view_site *s = &out->sites[out->nsites++];
        s->info = (uint32_t)i;
        uint64_t size = td->infos[i].size;
        if (!e->tot.sampled) {
            s->count = c;
            s->bytes = ms__sat_i64(ms__sat_mul(size, c));
            out->live_bytes = ms__sat_add_i64(out->live_bytes, s->bytes);
            out->live_allocations += c;
        } else {
            double w = e->weight[i];
            s->count = round_i64(c * w);
            s->bytes = round_i64((double)size * c * w);
            wbytes += (double)size * c * w;
            wcount += c * w;
        }
    }
    if (e->tot.sampled) {
        out->live_bytes = round_i64(wbytes);
        out->live_allocations = round_i64(wcount);
    }
    return 0;
}

int ms__engine_snapshot(struct ms__engine *e, uint64_t event, struct ms__heap_view *out)
{
    const struct ms__trace_data *td = e->td;
    if (event > td->nslots)
        event = td->nslots;
    replay_to(e, event);
    uint64_t t = event ? ms__engine_slot_ns(e, event - 1) : 0;
    return view_build(e, image_of(e, event), event, t, out);
}

int ms__engine_snapshot_time(struct ms__engine *e, uint64_t ns, struct ms__heap_view *out)
{
    int rc = ms__engine_snapshot(e, ms__engine_event_at(e, ns), out);
    if (!rc)
        out->time_ns = out->from_time_ns = ns;
    return rc;
}

int ms__engine_peak(struct ms__engine *e, struct ms__heap_view *out)
{
    int rc = ms__engine_snapshot(e, e->tot.peak_event, out);
    if (!rc)
        out->time_ns = out->from_time_ns = e->tot.peak_time_ns;
    return rc;
}

int ms__engine_leaks(struct ms__engine *e, struct ms__heap_view *out)
{
    const struct ms__trace_data *td = e->td;
    replay_to(e, td->nslots);
    return view_build(e, (uint32_t)(td->nimages - 1), td->nslots, td->end_time, out);
}

int ms__engine_diff(const struct ms__heap_view *a, const struct ms__heap_view *b,
                    struct ms__heap_view *out)
{
    memset(out, 0, sizeof(*out));
    out->time_ns = b->time_ns;
    out->from_time_ns = a->time_ns;
    out->event = b->event;
    out->image = b->image;
    out->diff = true;
    out->live_bytes = b->live_bytes - a->live_bytes;
    out->live_allocations = b->live_allocations - a->live_allocations;
    size_t cap = a->nsites + b->nsites;
    if (cap && !(out->sites = malloc(cap * sizeof(*out->sites))))
        return MS_ENOMEM;
    size_t i = 0, j = 0;
    while (i < a->nsites || j < b->nsites) { /* both sorted by info */
        struct ms__view_site s;
        if (j == b->nsites || (i < a->nsites && a->sites[i].info < b->sites[j].info)) {
            s = (struct ms__view_site){a->sites[i].info, -a->sites[i].bytes, -a->sites[i].count};
            i++;
        } else if (i == a->nsites || b->sites[j].info < a->sites[i].info) {
            s = b->sites[j++];
        } else {
            s = (struct ms__view_site){b->sites[j].info, b->sites[j].bytes - a->sites[i].bytes,
                                       b->sites[j].count - a->sites[i].count};
            i++;
            j++;
        }
        if (s.bytes || s.count)
            out->sites[out->nsites++] = s;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Grouping                                                                                 */
/* ---------------------------------------------------------------------------------------- */

const struct ms__trace_module *ms__engine_module_of(const struct ms__engine *e, uint32_t image,
                                                    uint64_t ip)
{
    const struct ms__mod_range *r = ms__mod_find(e->mods, e->nmods, image, ip ? ip - 1 : 0);
    return r ? &e->td->modules[r->mod] : NULL;
}

size_t ms__engine_stack_frames(const struct ms__engine *e, struct ms__symbolizer *sym, uint32_t im,
                               uint32_t stack, struct ms__sym_frame *frames, size_t max)
{
    uint64_t ips[MAX_FRAMES];
    size_t nip = stack ? ms__trace_stack_walk(e->td, im, stack, ips, MAX_FRAMES) : 0, n = 0;
    for (size_t i = 0; i < nip && n < max; i++) {
        if (sym) {
            n += ms__sym_resolve(sym, im, ips[i], frames + n, max - n);
            continue;
        }
        const struct ms__trace_module *m = ms__engine_module_of(e, im, ips[i]);
        frames[n++] = (struct ms__sym_frame){
            .ip = ips[i],
            .module = m ? ms__trace_str_ptr(e->td, m->path) : "?",
            .offset = m ? ips[i] - m->load_bias : ips[i],
        };
    }
    return n;
}

void ms__group_rows_free(struct ms__group_row *rows, size_t n)
{
    if (!rows)
        return;
    for (size_t i = 0; i < n; i++)
        free(rows[i].name);
    free(rows);
}

struct grouper {
    struct ms__group_row *rows;
    size_t n, cap;
    struct ms__ptrmap map; /* key -> row index */
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
    return h;
}

/* Adds bytes and count to the row of key (name: its name, compared when given; copied when
 * the row is new). */
static int group_add(struct grouper *g, uint64_t key, const char *name,
                     const struct ms__group_row *proto, int64_t bytes, int64_t count)
{
    for (;; key++) { /* names: a collision of their hashes probes the next key */
        uint64_t idx;
        if (!ms__ptrmap_get(&g->map, key, &idx))
            break;
        struct ms__group_row *r = &g->rows[idx];
        if (!name || strcmp(r->name, name) == 0) {
            r->bytes = ms__sat_add_i64(r->bytes, bytes);
            r->count = ms__sat_add_i64(r->count, count);
            return 0;
        }
    }
    if (ms__grow(&g->rows, &g->cap, g->n + 1, sizeof(*g->rows), MS__GROW_POPULATE))
        return MS_ENOMEM;
    struct ms__group_row *r = &g->rows[g->n];
    *r = *proto;
    r->name = NULL;
    if (name && !(r->name = strdup(name)))
        return MS_ENOMEM;
    r->bytes = bytes;
    r->count = count;
    uint64_t old;
    if (ms__ptrmap_put(&g->map, key, g->n, &old) < 0) {
        free(r->name);
        return MS_ENOMEM;
    }
    g->n++;
    return 0;
}

static int row_cmp(const void *pa, const void *pb)
{
    const struct ms__group_row *a = pa, *b = pb;
    if (a->bytes != b->bytes)
        return a->bytes > b->bytes ? -1 : 1;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    if (a->name && b->name) {
        int c = strcmp(a->name, b->name);
        if (c)
            return c;
    }
    if (a->image != b->image)
        return a->image < b->image ? -1 : 1;
    if (a->stack != b->stack)
        return a->stack < b->stack ? -1 : 1;
    return a->thread < b->thread ? -1 : a->thread > b->thread;
}

/* The names of the functions of ip (innermost first) into names[], at most max; "module+0x.."
 * when unresolved. Returns how many. */
static size_t function_names(struct ms__engine *e, struct ms__symbolizer *sym, uint32_t image,
                             uint64_t ip, char names[][256], size_t max)
{
    struct ms__sym_frame fr[16];
    size_t n = 0;
    if (sym) {
        size_t k = ms__sym_resolve(sym, image, ip, fr, max < 16 ? max : 16);
        for (size_t i = 0; i < k; i++)
            ms__sym_frame_name(&fr[i], names[n++], 256);
        if (n)
            return n;
    }
    const struct ms__trace_module *m = ms__engine_module_of(e, image, ip);
    struct ms__sym_frame f = {.ip = ip,
                              .module = m ? ms__trace_str_ptr(e->td, m->path) : NULL,
                              .offset = m ? ip - m->load_bias : ip};
    ms__sym_frame_name(&f, names[0], 256);
    return 1;
}

int ms__engine_group(struct ms__engine *e, const struct ms__heap_view *v, enum ms__group_by by,
                     struct ms__symbolizer *sym, struct ms__group_row **rows, size_t *nrows)
{
    const struct ms__trace_data *td = e->td;
    struct grouper g = {0};
    *rows = NULL;
    *nrows = 0;
    if (ms__ptrmap_init(&g.map, v->nsites ? v->nsites : 1) < 0)
        return MS_ENOMEM;
    uint64_t *ips = NULL;
    char(*names)[256] = NULL;
    size_t nnames_cap = 0;
    int rc = 0;
    if (by == MS__GROUP_MODULE || by >= MS__GROUP_FUNCTION_SELF) {
        nnames_cap = by == MS__GROUP_FUNCTION_INCL ? MAX_FRAMES * 4 : 16;
        ips = malloc(MAX_FRAMES * sizeof(*ips));
        names = malloc(nnames_cap * sizeof(*names));
        if (!ips || !names) {
            rc = MS_ENOMEM;
            goto out;
        }
    }
    for (size_t i = 0; i < v->nsites && !rc; i++) {
        const struct ms__view_site *s = &v->sites[i];
        const struct ms__trace_info *info = &td->infos[s->info];
        uint32_t im = e->info_image[s->info];
        struct ms__group_row proto = {.image = im, .stack = info->stack, .thread = info->thread};
        switch (by) {
        case MS__GROUP_STACK:
            rc = group_add(&g, (uint64_t)im << 32 | info->stack, NULL, &proto, s->bytes, s->count);
            break;
        case MS__GROUP_THREAD:
            proto.stack = 0;
            rc = group_add(&g, info->thread, NULL, &proto, s->bytes, s->count);
            break;
        case MS__GROUP_MODULE: {
            proto.stack = proto.thread = 0;
            size_t k = ms__trace_stack_walk(td, im, info->stack, ips, 1);
            const struct ms__trace_module *m = k ? ms__engine_module_of(e, im, ips[0]) : NULL;
            const char *name = m ? ms__trace_str_ptr(td, m->path) : "?";
            rc = group_add(&g, hash_str(name), name, &proto, s->bytes, s->count);
            break;
        }
        case MS__GROUP_FUNCTION_SELF:
        case MS__GROUP_FUNCTION_INCL: {
            proto.stack = proto.thread = 0;
            bool incl = by == MS__GROUP_FUNCTION_INCL;
            size_t k = ms__trace_stack_walk(td, im, info->stack, ips, incl ? MAX_FRAMES : 1);
            if (!k) {
                rc = group_add(&g, hash_str("?"), "?", &proto, s->bytes, s->count);
                break;
            }
            size_t nn = 0;
            for (size_t f = 0; f < k && nn < nnames_cap; f++)
                nn += function_names(e, sym, im, ips[f], names + nn, incl ? nnames_cap - nn : 1);
            for (size_t a = 0; a < nn && !rc; a++) {
                bool seen = false; /* each function once per stack (recursion) */
                for (size_t b = 0; b < a && !seen; b++)
                    seen = strcmp(names[a], names[b]) == 0;
                if (!seen)
                    rc = group_add(&g, hash_str(names[a]), names[a], &proto, s->bytes, s->count);
            }
            break;
        }
        }
    }
out:
    free(ips);
    free(names);
    ms__ptrmap_free(&g.map);
    if (rc) {
        ms__group_rows_free(g.rows, g.n);
        return rc;
    }
    if (g.n)
        qsort(g.rows, g.n, sizeof(*g.rows), row_cmp);
    *rows = g.rows;
    *nrows = g.n;
    return 0;
}

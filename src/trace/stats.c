/*
 * stats.c - the summary of a trace (`memsnap report --stats`).
 *
 * ms__trace_stats_compute() walks the events of struct ms__trace_data once, image by image,
 * keeping the live heap in an array indexed by block number (block -> size): counts, bytes,
 * the peak of live bytes and when it was first reached, unmatched frees and what is left
 * live at the end. An EXEC starts an empty heap (blocks live at exec are not leaks); the peak is
 * over the whole file. In a sampled trace every recorded block stands for 1 / (1 - exp(-size /
 * rate)) blocks of its size, accumulated in floating point and rounded at the end.
 */
#include "reader.h"

#include "../core/internal.h"

#include <math.h>

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------- */
/* Stats                                                                                    */
/* ---------------------------------------------------------------------------------------- */

double ms__trace_sample_weight(uint64_t size, uint64_t rate)
{
    if (size == 0 || rate == 0)
        return 1.0;
    double x = (double)size / (double)rate;
    return x >= 40 ? 1.0 : -1.0 / expm1(-x); /* 1 / (1 - e^-x), exact near 0 */
}

static uint64_t round_u64(double x)
{
    if (!(x > 0)) /* negative (rounding error) or NaN */
        return 0;
    if (x >= 18446744073709551615.0)
        return UINT64_MAX;
    return (uint64_t)(x + 0.5);
}

/*
 * The running figures of the replay: exact integers when no image is sampled; otherwise
 * weighted doubles (an unsampled image's blocks weigh 1), rounded at the end.
 */
struct acc {
    bool sampled;
    const struct ms__trace_info *infos;
    const double *weight; /* sampled: info -> the weight of its blocks */
    uint32_t *live;       /* block number -> its info + 1, 0 when not live */
    uint64_t nlive;       /* blocks live */
    uint64_t allocs, reallocs, frees, bytes, cur, peak, peak_time /* ticks */, unmatched;
    bool saturated; /* bytes or cur passed 2^64 - 1 (a crafted trace) and were held there */
    double wallocs, wreallocs, wfrees, wbytes, wcur, wpeak;
};

static inline void peak_check(struct acc *a, uint64_t time)
{
    if (!a->sampled) {
        if (a->cur > a->peak) {
            a->peak = a->cur;
            a->peak_time = time;
        }
    } else if (a->wcur > a->wpeak) {
        a->wpeak = a->wcur;
        a->peak_time = time;
    }
}

/* Block `block` of info `info` is allocated (or made by a realloc): counted, and live. */
static inline void block_add(struct acc *a, uint64_t block, uint32_t info, bool realloc_)
{
    uint64_t size = a->infos[info].size;
    a->live[block] = info + 1;
    a->nlive++;
    if (!a->sampled) {
        *(realloc_ ? &a->reallocs : &a->allocs) += 1;
        a->saturated |= a->bytes > UINT64_MAX - size || a->cur > UINT64_MAX - size;
        a->bytes = ms__sat_add(a->bytes, size);
        a->cur = ms__sat_add(a->cur, size);
    } else {
        double w = a->weight[info];
        *(realloc_ ? &a->wreallocs : &a->wallocs) += w;
        a->wbytes += (double)size * w;
        a->wcur += (double)size * w;
    }
}

/* Block `block` ends: freed (count it), or the old block of a realloc, or released. A block
 * that is not live (a double free) is an unmatched free. */
static inline void block_end(struct acc *a, uint64_t block, bool count)
{
    uint32_t v = a->live[block];
    if (!v) {
        a->unmatched++;
        a->frees += count;
        a->wfrees += count;
        return;
    }
    uint64_t size = a->infos[v - 1].size;
    a->live[block] = 0;
    a->nlive--;
    if (!a->sampled) {
        a->cur = a->cur >= size ? a->cur - size : 0; /* less only after a saturation */
        a->frees += count;
    } else {
        double w = a->weight[v - 1];
        a->wcur -= (double)size * w;
        if (count)
            a->wfrees += w;
    }
}

int ms__trace_stats_compute(const struct ms__trace_data *td, ms_trace_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->size = sizeof(*st);
    const struct ms__trace_image *im0 = &td->images[0];
    st->pid = im0->pid;
    st->ppid = im0->ppid;
    st->images = (uint32_t)td->nimages;
    st->forked = (im0->flags & 0x2u) != 0; /* MS_PROC_FORKED */
    st->complete = td->complete;
    st->exit_kind = td->exit_kind;
    st->lost_events = td->lost;
    st->truncated = td->truncated;
    st->sample_rate = im0->sample_rate;
    st->duration_ns = td->end_time;
    st->stacks = td->nstacks;
    st->modules = td->nmodules;
    st->markers = td->nmarkers;
    st->rss_samples = td->nrss;
    st->file_bytes = td->file_bytes;
    st->events = td->nevents;
    for (size_t i = 0; i < td->nthreads; i++)
        st->threads += td->threads[i].announced;
    for (size_t i = 0; i < td->nrss; i++)
        if (td->rss[i].bytes > st->rss_peak_bytes)
            st->rss_peak_bytes = td->rss[i].bytes;

    struct acc a = {.infos = td->infos};
    for (size_t i = 0; i < td->nimages; i++)
        a.sampled |= td->images[i].sample_rate != 0;
    double *weight = NULL;
    if (a.sampled) { /* the weight of each info's blocks, by the rate of its image */
        if (!(weight = malloc((td->ninfos ? td->ninfos : 1) * sizeof(*weight))))
            return MS_ENOMEM;
        for (size_t i = 0; i < td->ninfos; i++) {
            const struct ms__trace_thread *t = &td->threads[td->infos[i].thread];
            weight[i] =
                ms__trace_sample_weight(td->infos[i].size, td->images[t->image].sample_rate);
        }
        a.weight = weight;
    }
    const struct ms__trace_info *infos = td->infos;
    for (size_t im = 0; im < td->nimages; im++) {
        const struct ms__trace_image *image = &td->images[im];
        /* exec: the old image's heap is gone, not leaked */
        free(a.live);
        a.live = calloc(image->nblocks ? image->nblocks : 1, sizeof(*a.live));
        if (!a.live) {
            free(weight);
            return MS_ENOMEM;
        }
        if (image->nblocks > 65536) /* every block is written once: fault them in at once */
            ms__populate(a.live, image->nblocks * sizeof(*a.live));
        a.nlive = 0;
        a.cur = 0;
        a.wcur = 0;
        const struct ms__trace_event *ev = td->events + image->first_event;
        const struct ms__trace_event *end = td->events + image->end_event;
        for (; ev < end; ev++) {
            switch (ev->kind) {
            case MS__EV_ALLOC:
                block_add(&a, ev->id, ev->info, false);
                peak_check(&a, ev->time);
                break;
            case MS__EV_FREE:
                block_end(&a, ev->id, true);
                break;
            case MS__EV_REALLOC_OLD: /* the old block of the REALLOC that follows */
            case MS__EV_RELEASE:
                block_end(&a, ev->id, false);
                break;
            case MS__EV_REALLOC:
                block_add(&a, ev->id, ev->info, true);
                peak_check(&a, ev->time);
                break;
            case MS__EV_UNMATCHED_FREE:
                a.unmatched++;
                a.frees++;
                a.wfrees += 1;
                break;
            case MS__EV_UNMATCHED_OLD:
                a.unmatched++;
                break;
            case MS__EV_MMAP:
            case MS__EV_MREMAP:
                st->mmaps++;
                st->mapped_bytes += infos[ev->info].size;
                break;
            case MS__EV_MUNMAP:
                st->munmaps++;
                break;
            default: /* MS__EV_MREMAP_OLD: counted with its MREMAP */
                break;
            }
        }
    }
    st->unmatched_frees = a.unmatched;
    st->peak_time_ns = ms__trace_ticks_ns(&td->timebase, a.peak_time); /* ticks until here */
    st->leaked_allocations = a.nlive;
    if (!a.sampled) {
        st->allocations = a.allocs;
        st->reallocations = a.reallocs;
        st->frees = a.frees;
        st->allocated_bytes = a.bytes;
        st->peak_bytes = a.peak;
        st->leaked_bytes = a.cur;
    } else {
        st->allocations = round_u64(a.wallocs);
        st->reallocations = round_u64(a.wreallocs);
        st->frees = round_u64(a.wfrees);
        st->allocated_bytes = round_u64(a.wbytes);
        st->peak_bytes = round_u64(a.wpeak);
        st->leaked_bytes = round_u64(a.wcur);
        double wleaked = 0;
        const struct ms__trace_image *last = &td->images[td->nimages - 1];
        for (uint64_t b = 0; b < last->nblocks; b++)
            if (a.live[b])
                wleaked += weight[a.live[b] - 1];
        st->leaked_allocations = round_u64(wleaked);
        a.saturated |= st->allocated_bytes == UINT64_MAX || st->peak_bytes == UINT64_MAX;
    }
    st->saturated = a.saturated;
    free(weight);
    free(a.live);
    return 0;
}

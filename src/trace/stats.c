/*
 * stats.c - the summary of a trace (`memsnap report --stats`).
 *
 * ms__trace_stats_compute() walks the events of struct ms__trace_data once, image by image,
 * keeping the live heap in an array indexed by block number (block -> size): counts, bytes,
 * the peak of live bytes and when it was first reached, unmatched frees and what is left
 * live at the end. An EXEC starts an empty heap (blocks live at exec are not leaks); the peak is
 * over the whole file. In a sampled trace every recorded block stands for 1 / (1 - exp(-size /
 * rate)) blocks of its size, accumulated in floating point and rounded at the end.
 * ms_trace_stats_write() writes that summary as text or JSON.
 */
#include "reader.h"

#include "../core/internal.h"
#include "../core/json_out.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
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

/* ---------------------------------------------------------------------------------------- */
/* Writing the summary: `memsnap report --stats`                                            */
/* ---------------------------------------------------------------------------------------- */

/* Events per second of trace time, or -1 when the trace has no duration. */
static double events_per_second(const ms_trace_stats *st)
{
    return st->duration_ns ? (double)st->events * 1e9 / (double)st->duration_ns : -1;
}

/* How the recorded process ended, by the END record's exit kind. */
static const char *exit_name(uint64_t kind)
{
    static const char *const names[] = {"exit", "_exit", "abort", "quick_exit",
                                        "exec of a program not recorded here"};
    return kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "unknown";
}

static int stats_text(FILE *fp, const ms_trace_stats *st)
{
    char a[96], b[96];
#define LINE(label, ...)                                                                           \
    do {                                                                                           \
        fprintf(fp, "%-17s ", label ":");                                                          \
        fprintf(fp, __VA_ARGS__);                                                                  \
        fputc('\n', fp);                                                                           \
    } while (0)
    LINE("process", "pid %u (ppid %u)%s", st->pid, st->ppid,
         st->forked ? ", forked from a recorded parent" : "");
    LINE("images", "%u%s", st->images, st->images > 1 ? " (exec)" : "");
    if (st->complete)
        LINE("complete", "yes (%s)", exit_name(st->exit_kind));
    else
        LINE("complete", "no (no END record: the program did not exit normally, or the trace "
                         "was cut)");
    if (st->truncated)
        LINE("truncated", "yes (see the warning)");
    if (st->sample_rate)
        LINE("sampled", "1 in about %llu bytes (allocation figures are estimates)",
             (unsigned long long)st->sample_rate);
    LINE("duration", "%s", ms__fmt_seconds(a, sizeof(a), st->duration_ns));
    double eps = events_per_second(st);
    if (eps >= 0)
        LINE("events", "%llu (%.0f events/s)", (unsigned long long)st->events, eps);
    else
        LINE("events", "%llu", (unsigned long long)st->events);
    LINE("allocations", "%llu", (unsigned long long)st->allocations);
    LINE("reallocations", "%llu", (unsigned long long)st->reallocations);
    LINE("frees", "%llu", (unsigned long long)st->frees);
    LINE("allocated", "%s", ms__fmt_bytes_exact(a, sizeof(a), st->allocated_bytes));
    LINE("peak", "%s at %s", ms__fmt_bytes_exact(a, sizeof(a), st->peak_bytes),
         ms__fmt_seconds(b, sizeof(b), st->peak_time_ns));
    LINE("leaked", "%s in %llu allocation%s", ms__fmt_bytes_exact(a, sizeof(a), st->leaked_bytes),
         (unsigned long long)st->leaked_allocations, st->leaked_allocations == 1 ? "" : "s");
    LINE("unmatched frees", "%llu", (unsigned long long)st->unmatched_frees);
    if (st->lost_events)
        LINE("lost events", "%llu (not recorded: signal handlers nested too deep)",
             (unsigned long long)st->lost_events);
    LINE("threads", "%llu", (unsigned long long)st->threads);
    LINE("stacks", "%llu", (unsigned long long)st->stacks);
    LINE("modules", "%llu", (unsigned long long)st->modules);
    LINE("markers", "%llu", (unsigned long long)st->markers);
    if (st->rss_samples) {
        ms_format_bytes(a, sizeof(a), st->rss_peak_bytes);
        LINE("RSS samples", "%llu (peak %s)", (unsigned long long)st->rss_samples, a);
    } else
        LINE("RSS samples", "0");
    if (st->mmaps || st->munmaps)
        LINE("mmaps", "%llu, %s mapped; %llu munmaps", (unsigned long long)st->mmaps,
             ms__fmt_bytes_exact(a, sizeof(a), st->mapped_bytes), (unsigned long long)st->munmaps);
    if (st->events)
        LINE("file", "%s, %.2f bytes/event", ms__fmt_bytes_exact(a, sizeof(a), st->file_bytes),
             (double)st->file_bytes / (double)st->events);
    else
        LINE("file", "%s", ms__fmt_bytes_exact(a, sizeof(a), st->file_bytes));
#undef LINE
    return 0;
}

static int stats_json(FILE *fp, const ms_trace_stats *st, const char *warning)
{
    json_t *o = json_object();
    if (!o)
        return MS_ENOMEM;
    int bad = 0;
#define U(key, v) bad |= json_object_set_new(o, key, ms__json_u64(v))
#define B(key, v) bad |= json_object_set_new(o, key, json_boolean(v))
    U("allocations", st->allocations);
    U("frees", st->frees);
    U("reallocations", st->reallocations);
    U("allocated_bytes", st->allocated_bytes);
    U("peak_bytes", st->peak_bytes);
    U("peak_time_ns", st->peak_time_ns);
    U("leaked_bytes", st->leaked_bytes);
    U("leaked_allocations", st->leaked_allocations);
    U("unmatched_frees", st->unmatched_frees);
    U("lost_events", st->lost_events);
    bad |= json_object_set_new(o, "exit",
                               st->complete ? json_string(exit_name(st->exit_kind)) : json_null());
    U("threads", st->threads);
    U("duration_ns", st->duration_ns);
    U("pid", st->pid);
    U("ppid", st->ppid);
    U("images", st->images);
    B("forked", st->forked);
    B("complete", st->complete);
    B("truncated", st->truncated);
    B("saturated", st->saturated);
    bad |= json_object_set_new(o, "warning", warning ? json_string(warning) : json_null());
    U("sample_rate", st->sample_rate);
    U("events", st->events);
    double eps = events_per_second(st);
    bad |= json_object_set_new(o, "events_per_second",
                               eps >= 0 ? json_integer((json_int_t)(eps + 0.5)) : json_null());
    U("stacks", st->stacks);
    U("modules", st->modules);
    U("markers", st->markers);
    U("rss_samples", st->rss_samples);
    U("rss_peak_bytes", st->rss_peak_bytes);
    U("mmaps", st->mmaps);
    U("munmaps", st->munmaps);
    U("mapped_bytes", st->mapped_bytes);
    U("file_bytes", st->file_bytes);
    double bpe = (double)st->file_bytes / (double)(st->events ? st->events : 1);
    bad |= json_object_set_new(o, "bytes_per_event",
                               st->events ? json_real((double)(uint64_t)(bpe * 100 + 0.5) / 100)
                                          : json_null());
#undef U
#undef B
    return ms__json_line(o, fp, JSON_COMPACT | JSON_REAL_PRECISION(12), bad) ? MS_EIO : 0;
}

int ms_trace_stats_write(const ms_trace_stats *st, const char *warning, ms_format format, FILE *fp)
{
    if (!st || !fp || (format != MS_FORMAT_TEXT && format != MS_FORMAT_JSON))
        return ms__error(MS_EINVAL, "ms_trace_stats_write: text or JSON only");
    int rc = format == MS_FORMAT_JSON ? stats_json(fp, st, warning) : stats_text(fp, st);
    if (rc == 0 && ferror(fp))
        rc = MS_EIO;
    return rc ? ms__error(rc, "ms_trace_stats_write: %s", ms_strerror(rc)) : 0;
}

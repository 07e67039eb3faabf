/*
 * engine.c - the snapshot engine (engine.h): one pass over a loaded trace builds, per heap
 * block, its info and the event indices that start and end it, the trace's totals (peak,
 * temporaries, unmatched frees, leaks) and every N events a checkpoint of the live count of
 * each info. The pass also rewrites the info of each event that ends a block (FREE,
 * REALLOC_OLD, RELEASE) to the info of the block it ends, and turns an end of a block that is
 * not live into an UNMATCHED kind, so that a snapshot replays events with no block lookups at
 * all: copy the checkpoint before the moment, then add or subtract one per event. Views are
 * built per info; grouping (by stack, thread, module, function) happens on a view.
 */
#include "engine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NONE              UINT32_MAX
#define DEFAULT_EVERY     ((size_t)1 << 20)
#define CHECKPOINT_BUDGET ((size_t)256 << 20) /* bytes of checkpoints before N grows */
#define MAX_FRAMES        256

struct ms__engine {
    struct ms__trace_data *td;
    struct ms__engine_totals tot;
    uint64_t *block_base; /* per image: its first global block number */
    uint32_t *blk_info;   /* global block -> its info */
    uint32_t *blk_alloc;  /* global block -> the event that started it */
    uint32_t *blk_end;    /* global block -> the event that ended it, NONE: never (or exec) */
    uint32_t *info_image; /* info -> its image */
    double *weight;       /* info -> the weight of its blocks; NULL when nothing is sampled */
    size_t every;         /* N */
    size_t ncp;
    uint32_t *cp;   /* ncp * ninfos live counts: checkpoint k is before event k * N */
    uint32_t *work; /* ninfos: a snapshot's counts */
    uint64_t replayed;
    double pass_s;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

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
    free(e->block_base);
    free(e->blk_info);
    free(e->blk_alloc);
    free(e->blk_end);
    free(e->info_image);
    free(e->weight);
    free(e->cp);
    free(e->work);
    free(e);
}

static int oom(struct ms__engine *e, char *err, size_t errlen)
{
    snprintf(err, errlen, "out of memory");
    ms__engine_close(e);
    return MS_ENOMEM;
}

/* The pass over every event (see the file comment). */
static void pass(struct ms__engine *e)
{
    struct ms__trace_data *td = e->td;
    struct ms__trace_event *events = td->events;
    const struct ms__trace_info *infos = td->infos;
    struct ms__engine_totals *t = &e->tot;
    uint32_t *cnt = e->work; /* the running live counts */
    const size_t ninfos = td->ninfos, every = e->every;
    const double *w = e->weight;
    uint64_t peak = 0;
    double wpeak = 0;
    bool have_peak = false;
    size_t next_cp = 0; /* the next checkpoint's index */
    memset(cnt, 0, (ninfos ? ninfos : 1) * sizeof(*cnt));
    for (size_t im = 0; im < td->nimages; im++) {
        const struct ms__trace_image *image = &td->images[im];
        uint32_t *binfo = e->blk_info + e->block_base[im];
        uint32_t *balloc = e->blk_alloc + e->block_base[im];
        uint32_t *bend = e->blk_end + e->block_base[im];
        uint64_t next = 0, cur = 0, nlive = 0;
        double wcur = 0, wlive = 0;
        for (size_t i = image->first_event; i < image->end_event; i++) {
            if (i == next_cp * every) { /* checkpoint k: the counts before event k * N */
                memcpy(e->cp + next_cp * ninfos, cnt, ninfos * sizeof(*cnt));
                next_cp++;
            }
            struct ms__trace_event *ev = &events[i];
            uint64_t b = ev->id;
            switch (ev->kind) {
            case MS__EV_ALLOC:
            case MS__EV_REALLOC: {
                uint32_t info = ev->info;
                binfo[b] = info;
                balloc[b] = (uint32_t)i;
                next = b + 1;
                cnt[info]++;
                nlive++;
                *(ev->kind == MS__EV_ALLOC ? &t->allocations : &t->reallocations) += 1;
                if (!w) {
                    cur += infos[info].size;
                    if (cur > peak || !have_peak) {
                        peak = cur;
                        t->peak_event = i + 1;
                        have_peak = true;
                    }
                } else {
                    wcur += (double)infos[info].size * w[info];
                    wlive += w[info];
                    if (wcur > wpeak || !have_peak) {
                        wpeak = wcur;
                        t->peak_event = i + 1;
                        have_peak = true;
                    }
                }
                break;
            }
            case MS__EV_FREE:
            case MS__EV_REALLOC_OLD:
            case MS__EV_RELEASE: {
                if (bend[b] != NONE) { /* a double free: not live */
                    ev->kind =
                        ev->kind == MS__EV_FREE ? MS__EV_UNMATCHED_FREE : MS__EV_UNMATCHED_OLD;
                    ev->info = MS__TRACE_NO_INFO;
                    t->unmatched_frees++;
                    break;
                }
                uint32_t info = binfo[b];
                bend[b] = (uint32_t)i;
                ev->info = info;
                cnt[info]--;
                nlive--;
                if (!w)
                    cur -= infos[info].size;
                else {
                    wcur -= (double)infos[info].size * w[info];
                    wlive -= w[info];
                }
                if (ev->kind == MS__EV_FREE) {
                    t->frees++;
                    if (b + 1 == next) {
                        t->temporaries++;
                        t->temporary_bytes += infos[info].size;
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
        }
        if (im == td->nimages - 1) {
            t->leaked_bytes = w ? round_u64(wcur) : cur;
            t->leaked_allocations = w ? round_u64(wlive) : nlive;
        }
    }
    /* checkpoints the events never reached (the last one may sit at nslots) */
    while (next_cp < e->ncp) {
        memcpy(e->cp + next_cp * ninfos, cnt, ninfos * sizeof(*cnt));
        next_cp++;
    }
    t->peak_bytes = w ? round_u64(wpeak) : peak;
    t->peak_time_ns = t->peak_event ? ms__trace_event_ns(td, &events[t->peak_event - 1]) : 0;
}

int ms__engine_open_data(struct ms__engine **out, struct ms__trace_data *td,
                         const struct ms__engine_opts *opts, char *err, size_t errlen)
{
    *out = NULL;
    struct ms__engine *e = calloc(1, sizeof(*e));
    if (!e) {
        ms__trace_data_free(td);
        snprintf(err, errlen, "out of memory");
        return MS_ENOMEM;
    }
    e->td = td;
    if (td->nslots >= NONE - 1) {
        snprintf(err, errlen, "too many events for the snapshot engine (%zu)", td->nslots);
        ms__engine_close(e);
        return MS_ENOMEM;
    }
    double t0 = now_s();
    const size_t ninfos = td->ninfos;
    uint64_t nblocks = 0;
    if (!(e->block_base = calloc(td->nimages, sizeof(*e->block_base))))
        return oom(e, err, errlen);
    for (size_t im = 0; im < td->nimages; im++) {
        e->block_base[im] = nblocks;
        nblocks += td->images[im].nblocks;
        e->tot.sampled |= td->images[im].sample_rate != 0;
    }
    size_t nb = nblocks ? (size_t)nblocks : 1;
    e->blk_info = malloc(nb * sizeof(*e->blk_info));
    e->blk_alloc = malloc(nb * sizeof(*e->blk_alloc));
    e->blk_end = malloc(nb * sizeof(*e->blk_end));
    e->info_image = malloc((ninfos ? ninfos : 1) * sizeof(*e->info_image));
    e->work = malloc((ninfos ? ninfos : 1) * sizeof(*e->work));
    if (!e->blk_info || !e->blk_alloc || !e->blk_end || !e->info_image || !e->work)
        return oom(e, err, errlen);
    if (nb > 65536) { /* every block is written once: fault the pages in at once */
        ms__populate(e->blk_info, nb * sizeof(*e->blk_info));
        ms__populate(e->blk_alloc, nb * sizeof(*e->blk_alloc));
        ms__populate(e->blk_end, nb * sizeof(*e->blk_end));
    }
    memset(e->blk_end, 0xff, nb * sizeof(*e->blk_end));
    for (size_t i = 0; i < ninfos; i++) {
        uint32_t th = td->infos[i].thread;
        e->info_image[i] = th < td->nthreads ? td->threads[th].image : 0;
    }
    if (e->tot.sampled) {
        if (!(e->weight = malloc((ninfos ? ninfos : 1) * sizeof(*e->weight))))
            return oom(e, err, errlen);
        for (size_t i = 0; i < ninfos; i++)
            e->weight[i] = ms__trace_sample_weight(td->infos[i].size,
                                                   td->images[e->info_image[i]].sample_rate);
    }
    /* N: the default, raised until the checkpoints fit the budget */
    size_t every = opts && opts->checkpoint_every ? opts->checkpoint_every : DEFAULT_EVERY;
    if (!(opts && opts->checkpoint_every))
        while ((td->nslots / every + 1) * (ninfos ? ninfos : 1) * sizeof(uint32_t) >
                   CHECKPOINT_BUDGET &&
               every < ((size_t)1 << 40))
            every *= 2;
    e->every = every;
    e->ncp = td->nslots / every + 1;
    if (!(e->cp = malloc(e->ncp * (ninfos ? ninfos : 1) * sizeof(*e->cp))))
        return oom(e, err, errlen);
    e->tot.slots = td->nslots;
    e->tot.checkpoint_every = every;
    e->tot.checkpoints = e->ncp;
    pass(e);
    e->pass_s = now_s() - t0;
    *out = e;
    return 0;
}

int ms__engine_open_fd(struct ms__engine **out, int fd, const struct ms__engine_opts *opts,
                       char *err, size_t errlen)
{
    struct ms__trace_data *td;
    *out = NULL;
    int rc = ms__trace_load_fd(&td, fd, err, errlen);
    if (rc)
        return rc;
    return ms__engine_open_data(out, td, opts, err, errlen);
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

double ms__engine_pass_seconds(const struct ms__engine *e)
{
    return e->pass_s;
}

/* ---------------------------------------------------------------------------------------- */
/* Moments                                                                                  */
/* ---------------------------------------------------------------------------------------- */

uint64_t ms__engine_event_at(const struct ms__engine *e, uint64_t ns)
{
    const struct ms__trace_data *td = e->td;
    size_t lo = 0, hi = td->nslots; /* the first event later than ns lies in [lo, hi] */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ms__trace_event_ns(td, &td->events[mid]) <= ns)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
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
    const size_t ninfos = e->td->ninfos;
    size_t k = (size_t)(event / e->every);
    memcpy(e->work, e->cp + k * ninfos, ninfos * sizeof(*e->work));
    uint32_t *cnt = e->work;
    const struct ms__trace_event *ev = e->td->events + k * e->every;
    const struct ms__trace_event *end = e->td->events + event;
    for (; ev < end; ev++) {
        switch (ev->kind) {
        case MS__EV_ALLOC:
        case MS__EV_REALLOC:
            cnt[ev->info]++;
            break;
        case MS__EV_FREE:
        case MS__EV_REALLOC_OLD:
        case MS__EV_RELEASE:
            cnt[ev->info]--;
            break;
        default:
            break;
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
    for (size_t i = 0; i < td->ninfos; i++)
        n += e->work[i] && e->info_image[i] == im;
    if (n && !(out->sites = malloc(n * sizeof(*out->sites))))
        return MS_ENOMEM;
    double wbytes = 0, wcount = 0;
    for (size_t i = 0; i < td->ninfos; i++) {
        uint32_t c = e->work[i];
        if (!c || e->info_image[i] != im)
            continue;
        struct ms__view_site *s = &out->sites[out->nsites++];
        s->info = (uint32_t)i;
        uint64_t size = td->infos[i].size;
        if (!e->weight) {
            s->count = c;
            s->bytes = (int64_t)(size * c);
            out->live_bytes += s->bytes;
            out->live_allocations += c;
        } else {
            double w = e->weight[i];
            s->count = round_i64(c * w);
            s->bytes = round_i64((double)size * c * w);
            wbytes += (double)size * c * w;
            wcount += c * w;
        }
    }
    if (e->weight) {
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
    uint64_t t = event ? ms__trace_event_ns(td, &td->events[event - 1]) : 0;
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
    const struct ms__trace_data *td = e->td;
    const struct ms__trace_module *best = NULL;
    for (size_t i = 0; i < td->nmodules; i++) {
        const struct ms__trace_module *m = &td->modules[i];
        if (m->image == image && ip >= m->start && ip < m->end &&
            (!best || m->end - m->start < best->end - best->start))
            best = m;
    }
    return best;
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
            r->bytes += bytes;
            r->count += count;
            return 0;
        }
    }
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        struct ms__group_row *r = realloc(g->rows, cap * sizeof(*r));
        if (!r)
            return MS_ENOMEM;
        g->rows = r;
        g->cap = cap;
    }
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

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s && s[1] ? s + 1 : path;
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
        for (size_t i = 0; i < k; i++) {
            if (fr[i].function)
                snprintf(names[n++], 256, "%s", fr[i].function);
            else
                snprintf(names[n++], 256, "%s+0x%llx", base_name(fr[i].module ? fr[i].module : "?"),
                         (unsigned long long)fr[i].offset);
        }
        if (n)
            return n;
    }
    const struct ms__trace_module *m = ms__engine_module_of(e, image, ip);
    if (m)
        snprintf(names[0], 256, "%s+0x%llx", base_name(ms__trace_str_ptr(e->td, m->path)),
                 (unsigned long long)(ip - m->load_bias));
    else
        snprintf(names[0], 256, "?+0x%llx", (unsigned long long)ip);
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
            if (!incl)
                nn = 1;
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

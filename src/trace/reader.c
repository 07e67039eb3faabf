/*
 * reader.c - the trace reader of libmemsnap: ms_trace_open() and friends, and the loader that
 * turns a trace file into struct ms__trace_data (reader.h).
 *
 * The loader reads the file header, then chunk after chunk: frame, CRC-32C, zstd, records.
 * The tracker's writer already put the events in time order and named heap blocks by number,
 * so each event record appends one or two 24-byte slots stamped with the running TIME; ALLOC
 * and REALLOC name an info (size, stack, thread) that an INFO record defined. A chunk is all
 * or nothing: a record that does not parse rolls the chunk back (savepoint below) and reading
 * stops there, like a bad CRC or a cut file, keeping every earlier chunk. At the end ticks
 * become ns from the trace start through the CLOCK pairs (one pass over the slots, which also
 * gives each thread its first and last event), and the tables are sorted and indexed.
 */
#include "reader.h"

#include "../core/internal.h"
#include "format.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

__extension__ typedef unsigned __int128 u128;

#define MALFORMED 1 /* internal: a record did not parse (ld->why says why) */

/* ---------------------------------------------------------------------------------------- */
/* Small helpers                                                                            */
/* ---------------------------------------------------------------------------------------- */

#define ENSURE(ld, arr, cap, need)                                                                 \
    do {                                                                                           \
        if (ms__grow(&(arr), &(cap), (need), sizeof(*(arr)), 0) != 0)                              \
            return nomem(ld);                                                                      \
    } while (0)

static inline uint64_t hash64(uint64_t x)
{
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    return x;
}

/* One varint: a single byte inline, longer ones through ms_get_varint. */
static inline int get_v(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    const uint8_t *q = *p;
    if (__builtin_expect(q < end && *q < 0x80, 1)) {
        *out = *q;
        *p = q + 1;
        return 0;
    }
    return ms_get_varint(p, end, out);
}

/* ---------------------------------------------------------------------------------------- */
/* The loader's state                                                                       */
/* ---------------------------------------------------------------------------------------- */

/* What the loader keeps per thread besides its public entry: the times of its records. */
struct tstate {
    uint64_t rec_min, rec_max; /* ticks of its THREAD and THREAD_END records, when has_rec */
    bool has_rec;
    uint64_t stamp; /* the chunk (1-based) in which it was last saved */
};

/* A thread as it was before the current chunk changed it. */
struct saved_thread {
    uint32_t idx;
    struct ms__trace_thread pub;
    struct tstate st;
};

struct unload {
    uint32_t image;
    uint32_t id;
    uint64_t ticks;
};

/* What a chunk may change, as it was when the chunk started. */
struct savepoint {
    uint64_t nevents;
    size_t nslots, ninfos, nthreads, nimages, nstacks, nmodules, nmarkers, nrss, nclocks;
    size_t nunloads, strings_len;
    struct ms__trace_image image; /* the current image */
    uint32_t cur_image;
    uint64_t now;
    bool have_ticks;
    uint64_t min_ticks, max_ticks;
    bool end_seen;
    uint64_t end_ticks, exit_kind, lost;
};

struct loader {
    struct ms__trace_data *td;
    struct tstate *ts; /* parallel to td->threads, ts_cap long */
    size_t ts_cap;
    size_t slots_cap, slots_soft, infos_cap, threads_cap, images_cap, stacks_cap, modules_cap,
        markers_cap;
    size_t rss_cap, clocks_cap, strings_cap;
    struct unload *unloads;
    size_t nunloads, unloads_cap;
    uint32_t *info_ids; /* current image: info id -> index into td->infos */
    size_t info_ids_cap;
    uint64_t *smap; /* current image: serial << 32 | (thread index + 1); 0 empty */
    size_t smap_mask, smap_count;
    uint32_t cur_image;
    uint64_t now;   /* ticks of the last TIME record: the time of the events that follow */
    uint64_t chunk; /* 1-based number of the chunk being read */
    bool have_ticks;
    uint64_t min_ticks, max_ticks; /* over the records with ticks */
    bool end_seen;
    uint64_t end_ticks, exit_kind;
    uint64_t lost; /* LOST records, summed (saturating) */
    struct savepoint sp;
    struct saved_thread *saved;
    size_t nsaved, saved_cap;
    const char *why; /* MALFORMED: what */
    char whybuf[200];
    char *err;
    size_t errlen;
    /* input */
    int fd; /* -1: memory */
    const uint8_t *mem;
    uint64_t size; /* bytes in the file or buffer */
    uint8_t *buf;  /* read buffer (fd) */
    size_t buf_cap;
    uint8_t *raw; /* decompressed payload */
    size_t raw_cap;
    ZSTD_DCtx *dctx;
    /* streaming (ms__trace_load_fd_stream) */
    ms__trace_chunk_fn fn;
    void *ctx;
};

static int nomem(struct loader *ld)
{
    snprintf(ld->err, ld->errlen, "out of memory reading the trace");
    return MS_ENOMEM;
}

static int malformed(struct loader *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int malformed(struct loader *ld, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ld->whybuf, sizeof(ld->whybuf), fmt, ap);
    va_end(ap);
    ld->why = ld->whybuf;
    return MALFORMED;
}

static void note_ticks(struct loader *ld, uint64_t t)
{
    if (!ld->have_ticks) {
        ld->have_ticks = true;
        ld->min_ticks = ld->max_ticks = t;
        return;
    }
    if (t < ld->min_ticks)
        ld->min_ticks = t;
    if (t > ld->max_ticks)
        ld->max_ticks = t;
}

/* Reads a string field into the pool. */
static int get_str(struct loader *ld, const uint8_t **p, const uint8_t *end,
                   struct ms__trace_str *out)
{
    struct ms__trace_data *td = ld->td;
    uint64_t len;
    if (get_v(p, end, &len) != 0 || len > (uint64_t)(end - *p))
        return malformed(ld, "string runs past the chunk");
    if (td->strings_len + len + 1 > UINT32_MAX)
        return malformed(ld, "more than 4 GiB of strings");
    ENSURE(ld, td->strings, ld->strings_cap, td->strings_len + len + 1);
    out->off = (uint32_t)td->strings_len;
    out->len = (uint32_t)len;
    memcpy(td->strings + td->strings_len, *p, len);
    td->strings[td->strings_len + len] = '\0';
    td->strings_len += len + 1;
    *p += len;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Threads                                                                                  */
/* ---------------------------------------------------------------------------------------- */

static int smap_insert(struct loader *ld, uint32_t serial, uint32_t idx)
{
    if ((ld->smap_count + 1) * 2 > ld->smap_mask + 1) {
        size_t ncap = ld->smap_mask ? (ld->smap_mask + 1) * 2 : 64;
        uint64_t *nm = calloc(ncap, sizeof(*nm));
        if (!nm)
            return nomem(ld);
        for (size_t i = 0; ld->smap && i <= ld->smap_mask; i++) {
            uint64_t e = ld->smap[i];
            if (!e)
                continue;
            size_t h = hash64(e >> 32) & (ncap - 1);
            while (nm[h])
                h = (h + 1) & (ncap - 1);
            nm[h] = e;
        }
        free(ld->smap);
        ld->smap = nm;
        ld->smap_mask = ncap - 1;
    }
    size_t h = hash64(serial) & ld->smap_mask;
    while (ld->smap[h])
        h = (h + 1) & ld->smap_mask;
    ld->smap[h] = (uint64_t)serial << 32 | (idx + 1u);
    ld->smap_count++;
    return 0;
}

/* Saves thread idx as it was before this chunk (once per chunk) before a record changes it. */
static int touch_thread(struct loader *ld, uint32_t idx)
{
    if (idx >= ld->sp.nthreads || ld->ts[idx].stamp == ld->chunk)
        return 0;
    ENSURE(ld, ld->saved, ld->saved_cap, ld->nsaved + 1);
    struct saved_thread *s = &ld->saved[ld->nsaved++];
    s->idx = idx;
    s->pub = ld->td->threads[idx];
    s->st = ld->ts[idx];
    ld->ts[idx].stamp = ld->chunk;
    return 0;
}

/* A THREAD or THREAD_END record of thread tix at ticks. */
static void thread_ticks(struct loader *ld, uint32_t tix, uint64_t ticks)
{
    struct tstate *t = &ld->ts[tix];
    if (!t->has_rec || ticks < t->rec_min)
        t->rec_min = ticks;
    if (!t->has_rec || ticks > t->rec_max)
        t->rec_max = ticks;
    t->has_rec = true;
    note_ticks(ld, ticks);
}

/* The index of thread `serial` of the current image, created on first sight. */
static int thread_get(struct loader *ld, uint64_t serial, uint32_t *out)
{
    struct ms__trace_data *td = ld->td;
    if (serial > UINT32_MAX)
        return malformed(ld, "thread serial %llu out of range", (unsigned long long)serial);
    if (ld->smap) {
        size_t h = hash64(serial) & ld->smap_mask;
        for (uint64_t e; (e = ld->smap[h]) != 0; h = (h + 1) & ld->smap_mask) {
            if (e >> 32 == serial) {
                *out = (uint32_t)(e & 0xffffffffu) - 1;
                return 0;
            }
        }
    }
    if (td->nthreads >= UINT32_MAX - 1)
        return malformed(ld, "too many threads");
    ENSURE(ld, td->threads, ld->threads_cap, td->nthreads + 1);
    ENSURE(ld, ld->ts, ld->ts_cap, td->nthreads + 1);
    uint32_t idx = (uint32_t)td->nthreads;
    int rc = smap_insert(ld, (uint32_t)serial, idx);
    if (rc)
        return rc;
    td->threads[idx] =
        (struct ms__trace_thread){.serial = (uint32_t)serial, .image = ld->cur_image};
    ld->ts[idx] = (struct tstate){.stamp = ld->chunk};
    td->nthreads++;
    td->images[ld->cur_image].nthreads++;
    *out = idx;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Records                                                                                  */
/* ---------------------------------------------------------------------------------------- */

static int read_process(struct loader *ld, const uint8_t **p, const uint8_t *end,
                        struct ms__trace_image *im)
{
    uint64_t pid, ppid;
    if (get_v(p, end, &pid) || get_v(p, end, &ppid) || get_v(p, end, &im->unix_ns) ||
        get_v(p, end, &im->flags) || get_v(p, end, &im->sample_rate) ||
        get_v(p, end, &im->max_depth))
        return malformed(ld, "PROCESS record runs past the chunk");
    if (pid > UINT32_MAX || ppid > UINT32_MAX)
        return malformed(ld, "process id out of range");
    im->pid = (uint32_t)pid;
    im->ppid = (uint32_t)ppid;
    int rc = get_str(ld, p, end, &im->exe);
    if (!rc)
        rc = get_str(ld, p, end, &im->cmdline);
    im->described = true;
    return rc;
}

/* Starts a new image after EXEC: blocks, infos, threads, stacks and modules start afresh. */
static int image_new(struct loader *ld, const struct ms__trace_image *described)
{
    struct ms__trace_data *td = ld->td;
    if (td->nimages >= UINT32_MAX)
        return malformed(ld, "too many images");
    ENSURE(ld, td->images, ld->images_cap, td->nimages + 1);
    struct ms__trace_image *im = &td->images[td->nimages];
    *im = *described;
    im->first_thread = (uint32_t)td->nthreads;
    im->nthreads = 0;
    im->ninfos = 0;
    im->nblocks = 0;
    im->first_event = im->end_event = td->nslots;
    ld->cur_image = (uint32_t)td->nimages++;
    if (ld->smap)
        memset(ld->smap, 0, (ld->smap_mask + 1) * sizeof(*ld->smap));
    ld->smap_count = 0;
    ld->now = 0;
    return 0;
}

/* Appends an info (size, stack, thread); its index into *out. */
static int info_add(struct loader *ld, uint64_t size, uint64_t stack, uint32_t thread,
                    uint32_t *out)
{
    struct ms__trace_data *td = ld->td;
    if (stack > UINT32_MAX)
        return malformed(ld, "stack id out of range");
    if (td->ninfos >= MS__TRACE_NO_INFO)
        return malformed(ld, "too many allocation infos");
    ENSURE(ld, td->infos, ld->infos_cap, td->ninfos + 1);
    td->infos[td->ninfos] =
        (struct ms__trace_info){.size = size, .stack = (uint32_t)stack, .thread = thread};
    *out = (uint32_t)td->ninfos++;
    return 0;
}

/* Makes room for more slots: grows the array (doubling; glibc moves big blocks with mremap,
 * not by copying) and faults in the next POPULATE_STEP bytes of it in one call, which in a VM
 * costs a tenth of taking the page faults one by one. */
#define POPULATE_STEP (8u << 20)

static int slots_more(struct loader *ld, size_t need)
{
    struct ms__trace_data *td = ld->td;
    const size_t elem = sizeof(*td->events), used = td->nslots - td->slot_base;
    if (ms__grow(&td->events, &ld->slots_cap, used + need, elem, 0) != 0)
        return nomem(ld);
    size_t soft = ld->slots_cap;
    if (ld->slots_cap * elem >= 2 * POPULATE_STEP && !ld->fn) {
        soft = used + POPULATE_STEP / elem; /* >= need */
        if (soft > ld->slots_cap)
            soft = ld->slots_cap;
        ms__populate(td->events + used, (soft - used) * elem);
    }
    ld->slots_soft = td->slot_base + soft;
    return 0;
}

/* Appends an event slot at the current time. */
static inline int slot_add(struct loader *ld, unsigned kind, uint64_t id, uint32_t info)
{
    struct ms__trace_data *td = ld->td;
    if (__builtin_expect(td->nslots >= ld->slots_soft, 0)) {
        int rc = slots_more(ld, 1);
        if (rc)
            return rc;
    }
    td->events[td->nslots++ - td->slot_base] =
        (struct ms__trace_event){.time = ld->now, .id = id, .info = info, .kind = (uint8_t)kind};
    td->nevents += ms__trace_kind_is_event(kind);
    return 0;
}

/* The block an age names in the current image; MALFORMED when there is no such block. */
static inline int block_of(struct loader *ld, uint64_t age, uint64_t *block)
{
    uint64_t n = ld->td->images[ld->cur_image].nblocks;
    if (age == 0 || age > n)
        return malformed(ld, "block age %llu out of range (%llu blocks)", (unsigned long long)age,
                         (unsigned long long)n);
    *block = n - age;
    return 0;
}

#define GET(v)                                                                                     \
    do {                                                                                           \
        if (get_v(&p, end, (v)) != 0)                                                              \
            return malformed(ld, "%s record runs past the chunk", name);                           \
    } while (0)

/* Applies one record at *pp (any but the four parse_hot() decodes); returns 0, MALFORMED or an
 * MS_E* code. */
static int parse_record(struct loader *ld, const uint8_t **pp, const uint8_t *end)
{
    struct ms__trace_data *td = ld->td;
    struct ms__trace_image *im = &td->images[ld->cur_image];
    const uint8_t *p = *pp;
    uint8_t type = *p++;
    uint64_t a = 0, b = 0, c = 0, d = 0, e = 0, f = 0;
    uint32_t tix, info;
    int rc = 0;
    const char *name = "";
    switch (type) {
    case MS_REC_INFO: /* v size, v stack, v serial */
        name = "INFO";
        GET(&a);
        GET(&b);
        GET(&c);
        if ((rc = thread_get(ld, c, &tix)) || (rc = info_add(ld, a, b, tix, &info)))
            break;
        ENSURE(ld, ld->info_ids, ld->info_ids_cap, (size_t)im->ninfos + 1);
        ld->info_ids[im->ninfos++] = info;
        break;
    case MS_REC_RELEASE: /* v age */
        name = "RELEASE";
        GET(&a);
        if ((rc = block_of(ld, a, &b)) == 0)
            rc = slot_add(ld, MS__EV_RELEASE, b, MS__TRACE_NO_INFO);
        break;
    case MS_REC_UNMATCHED: /* v kind */
        name = "UNMATCHED";
        GET(&a);
        if (a > 1)
            return malformed(ld, "UNMATCHED of kind %llu", (unsigned long long)a);
        rc = slot_add(ld, a ? MS__EV_UNMATCHED_OLD : MS__EV_UNMATCHED_FREE, 0, MS__TRACE_NO_INFO);
        break;
    case MS_REC_MMAP: /* v addr, v size, v stack, v serial */
        name = "MMAP";
        GET(&a);
        GET(&b);
        GET(&c);
        GET(&d);
        if ((rc = thread_get(ld, d, &tix)) || (rc = info_add(ld, b, c, tix, &info)))
            break;
        rc = slot_add(ld, MS__EV_MMAP, a, info);
        break;
    case MS_REC_MUNMAP: /* v addr, v size, v serial */
        name = "MUNMAP";
        GET(&a);
        GET(&b);
        GET(&c);
        if ((rc = thread_get(ld, c, &tix)) || (rc = info_add(ld, b, 0, tix, &info)))
            break;
        rc = slot_add(ld, MS__EV_MUNMAP, a, info);
        break;
    case MS_REC_MREMAP: /* v old_addr, v old_size, v addr, v size, v stack, v serial */
        name = "MREMAP";
        GET(&a);
        GET(&b);
        GET(&c);
        GET(&d);
        GET(&e);
        GET(&f);
        if ((rc = thread_get(ld, f, &tix)) || (rc = info_add(ld, b, 0, tix, &info)) ||
            (rc = slot_add(ld, MS__EV_MREMAP_OLD, a, info)) ||
            (rc = info_add(ld, d, e, tix, &info)))
            break;
        rc = slot_add(ld, MS__EV_MREMAP, c, info);
        break;
    case MS_REC_PROCESS:
        /* once: a second one would change the sample rate of events already weighed */
        if (im->described)
            return malformed(ld, "a second PROCESS record (EXEC starts a new image)");
        rc = read_process(ld, &p, end, im);
        break;
    case MS_REC_EXEC: {
        struct ms__trace_image next = {0};
        if ((rc = read_process(ld, &p, end, &next)) == 0) {
            im->end_event = td->nslots;
            rc = image_new(ld, &next);
        }
        break;
    }
    case MS_REC_CLOCK: /* v ticks, v monotonic_ns */
        name = "CLOCK";
        GET(&a);
        GET(&b);
        ENSURE(ld, td->clocks, ld->clocks_cap, td->nclocks + 1);
        td->clocks[td->nclocks++] = (struct ms__trace_clock){.ticks = a, .monotonic_ns = b};
        note_ticks(ld, a);
        break;
    case MS_REC_MODULE: { /* v id, v load_bias, v start, v end, s build_id, s path */
        name = "MODULE";
        GET(&a);
        if (a > UINT32_MAX)
            return malformed(ld, "module id out of range");
        struct ms__trace_module m = {
            .id = (uint32_t)a, .image = ld->cur_image, .unload_time = UINT64_MAX};
        GET(&m.load_bias);
        GET(&m.start);
        GET(&m.end);
        if ((rc = get_str(ld, &p, end, &m.build_id)) || (rc = get_str(ld, &p, end, &m.path)))
            break;
        ENSURE(ld, td->modules, ld->modules_cap, td->nmodules + 1);
        td->modules[td->nmodules++] = m;
        break;
    }
    case MS_REC_UNLOAD: /* v id, v ticks */
        name = "UNLOAD";
        GET(&a);
        GET(&b);
        if (a > UINT32_MAX)
            return malformed(ld, "module id out of range");
        ENSURE(ld, ld->unloads, ld->unloads_cap, ld->nunloads + 1);
        ld->unloads[ld->nunloads++] =
            (struct unload){.image = ld->cur_image, .id = (uint32_t)a, .ticks = b};
        note_ticks(ld, b);
        break;
    case MS_REC_STACK: /* v id, v parent_id, v ip */
        name = "STACK";
        GET(&a);
        GET(&b);
        GET(&c);
        if (a == 0 || a > UINT32_MAX || b > UINT32_MAX)
            return malformed(ld, "stack node id out of range");
        ENSURE(ld, td->stacks, ld->stacks_cap, td->nstacks + 1);
        td->stacks[td->nstacks++] = (struct ms__trace_stack){
            .ip = c, .id = (uint32_t)a, .parent = (uint32_t)b, .image = ld->cur_image};
        break;
    case MS_REC_THREAD: { /* v serial, v tid, v ticks, s name */
        name = "THREAD";
        GET(&a);
        GET(&c);
        GET(&b);
        if (c > UINT32_MAX)
            return malformed(ld, "thread id %llu out of range", (unsigned long long)c);
        struct ms__trace_str s;
        if ((rc = get_str(ld, &p, end, &s)) || (rc = thread_get(ld, a, &tix)) ||
            (rc = touch_thread(ld, tix)))
            break;
        td->threads[tix].tid = (uint32_t)c;
        td->threads[tix].announced = true;
        td->threads[tix].name = s;
        thread_ticks(ld, tix, b);
        break;
    }
    case MS_REC_THREAD_END: { /* v serial, v ticks */
        name = "THREAD_END";
        GET(&a);
        GET(&b);
        if ((rc = thread_get(ld, a, &tix)) || (rc = touch_thread(ld, tix)))
            break;
        td->threads[tix].ended = true;
        thread_ticks(ld, tix, b);
        break;
    }
    case MS_REC_RSS: /* v ticks, v rss_bytes */
        name = "RSS";
        GET(&a);
        GET(&b);
        ENSURE(ld, td->rss, ld->rss_cap, td->nrss + 1);
        td->rss[td->nrss++] = (struct ms__trace_rss){.time = a, .bytes = b};
        note_ticks(ld, a);
        break;
    case MS_REC_MARKER: { /* v serial, v ticks, s label */
        name = "MARKER";
        GET(&a);
        GET(&b);
        struct ms__trace_marker m = {.time = b};
        if ((rc = get_str(ld, &p, end, &m.label)) || (rc = thread_get(ld, a, &m.thread)))
            break;
        ENSURE(ld, td->markers, ld->markers_cap, td->nmarkers + 1);
        td->markers[td->nmarkers++] = m;
        note_ticks(ld, b);
        break;
    }
    case MS_REC_END: /* v ticks, v exit_kind */
        name = "END";
        GET(&a);
        GET(&b);
        ld->end_seen = true;
        ld->end_ticks = a;
        ld->exit_kind = b;
        note_ticks(ld, a);
        break;
    case MS_REC_LOST: /* v count */
        name = "LOST";
        GET(&a);
        ld->lost = a > UINT64_MAX - ld->lost ? UINT64_MAX : ld->lost + a;
        break;
    default:
        return malformed(ld, "unknown record type 0x%02x", type);
    }
    *pp = p;
    return rc;
}

static void save_point(struct loader *ld)
{
    struct ms__trace_data *td = ld->td;
    ld->sp = (struct savepoint){
        .nevents = td->nevents,
        .nslots = td->nslots,
        .ninfos = td->ninfos,
        .nthreads = td->nthreads,
        .nimages = td->nimages,
        .nstacks = td->nstacks,
        .nmodules = td->nmodules,
        .nmarkers = td->nmarkers,
        .nrss = td->nrss,
        .nclocks = td->nclocks,
        .nunloads = ld->nunloads,
        .strings_len = td->strings_len,
        .image = td->images[ld->cur_image],
        .cur_image = ld->cur_image,
        .now = ld->now,
        .have_ticks = ld->have_ticks,
        .min_ticks = ld->min_ticks,
        .max_ticks = ld->max_ticks,
        .end_seen = ld->end_seen,
        .end_ticks = ld->end_ticks,
        .exit_kind = ld->exit_kind,
        .lost = ld->lost,
    };
    ld->nsaved = 0;
}

/* Undoes everything the current chunk did. Reading stops after it, so the serial map and the
 * info ids of the current image (which an EXEC in the chunk may have reset) are not needed
 * again. */
static void roll_back(struct loader *ld)
{
    struct ms__trace_data *td = ld->td;
    const struct savepoint *sp = &ld->sp;
    for (size_t i = 0; i < ld->nsaved; i++) {
        td->threads[ld->saved[i].idx] = ld->saved[i].pub;
        ld->ts[ld->saved[i].idx] = ld->saved[i].st;
    }
    td->nevents = sp->nevents;
    td->nslots = sp->nslots;
    td->ninfos = sp->ninfos;
    td->nthreads = sp->nthreads;
    td->nimages = sp->nimages;
    ld->cur_image = sp->cur_image;
    td->images[ld->cur_image] = sp->image;
    td->nstacks = sp->nstacks;
    td->nmodules = sp->nmodules;
    td->nmarkers = sp->nmarkers;
    td->nrss = sp->nrss;
    td->nclocks = sp->nclocks;
    ld->nunloads = sp->nunloads;
    td->strings_len = sp->strings_len;
    ld->now = sp->now;
    ld->have_ticks = sp->have_ticks;
    ld->min_ticks = sp->min_ticks;
    ld->max_ticks = sp->max_ticks;
    ld->end_seen = sp->end_seen;
    ld->end_ticks = sp->end_ticks;
    ld->exit_kind = sp->exit_kind;
    ld->lost = sp->lost;
}

/*
 * Decodes the records that make up most of a trace, TIME, ALLOC, FREE and REALLOC (and only
 * here), from *pp on with the running state in locals, up to another record or the end.
 * Returns 0, MALFORMED with *pp at the record that does not check out, or MS_ENOMEM.
 */
static int parse_hot(struct loader *ld, const uint8_t **pp, const uint8_t *end)
{
    struct ms__trace_data *td = ld->td;
    struct ms__trace_image *im = &td->images[ld->cur_image];
    const uint8_t *p = *pp;
    int rc;
    for (;;) {
        struct ms__trace_event *ev = td->events + (td->nslots - td->slot_base);
        /* room for the two slots a REALLOC may take while ev < lim (slots_soft >= 2) */
        struct ms__trace_event *const lim = td->events + (ld->slots_soft - td->slot_base) - 1;
        const uint32_t *const ids = ld->info_ids;
        const uint64_t ninfos = im->ninfos, start = ld->now;
        uint64_t now = start, nblocks = im->nblocks, events = 0, first_time = 0, a = 0, b = 0;
        bool timed = false, room = false;
        const char *bad = NULL;
        rc = 0;
        while (p < end) {
            if (ev >= lim) {
                room = true;
                break;
            }
            const uint8_t *q = p + 1;
            switch (*p) {
            case MS_REC_TIME: /* v dticks, from 0 for the image's first */
                if (get_v(&q, end, &a)) {
                    bad = "TIME";
                    goto out;
                }
                now += a;
                if (!timed)
                    first_time = now;
                timed = true;
                break;
            case MS_REC_ALLOC: /* v info */
                if (get_v(&q, end, &a) || a >= ninfos) {
                    bad = "ALLOC";
                    goto out;
                }
                *ev++ = (struct ms__trace_event){
                    .time = now, .id = nblocks++, .info = ids[a], .kind = MS__EV_ALLOC};
                events++;
                break;
            case MS_REC_FREE: /* v age: block (next - age), age 1 .. next */
                if (get_v(&q, end, &a) || a - 1 >= nblocks) {
                    bad = "FREE";
                    goto out;
                }
                *ev++ = (struct ms__trace_event){
                    .time = now, .id = nblocks - a, .info = MS__TRACE_NO_INFO, .kind = MS__EV_FREE};
                events++;
                break;
            case MS_REC_REALLOC: /* v age, v info; age 0: the old block is not in the trace */
                if (get_v(&q, end, &a) || get_v(&q, end, &b) || a > nblocks || b >= ninfos) {
                    bad = "REALLOC";
                    goto out;
                }
                if (a)
                    *ev++ = (struct ms__trace_event){.time = now,
                                                     .id = nblocks - a,
                                                     .info = MS__TRACE_NO_INFO,
                                                     .kind = MS__EV_REALLOC_OLD};
                *ev++ = (struct ms__trace_event){
                    .time = now, .id = nblocks++, .info = ids[b], .kind = MS__EV_REALLOC};
                events++;
                break;
            default:
                goto out;
            }
            p = q;
        }
    out:
        td->nslots = td->slot_base + (size_t)(ev - td->events);
        td->nevents += events;
        im->nblocks = nblocks;
        if (timed) { /* TIME only moves forward: its first and last values bound it */
            note_ticks(ld, first_time);
            note_ticks(ld, now);
        }
        ld->now = now;
        if (bad) { /* say what is wrong with it */
            const uint8_t *q = p + 1;
            uint64_t x = 0, y = 0;
            if (get_v(&q, end, &x) || (*p == MS_REC_REALLOC && get_v(&q, end, &y)))
                rc = malformed(ld, "%s record runs past the chunk", bad);
            else if (*p == MS_REC_ALLOC || (*p == MS_REC_REALLOC && y >= ninfos))
                rc = malformed(ld, "%s of undefined info %llu", bad,
                               (unsigned long long)(*p == MS_REC_ALLOC ? x : y));
            else
                rc = malformed(ld, "block age %llu out of range (%llu blocks)",
                               (unsigned long long)x, (unsigned long long)nblocks);
        } else if (room && (rc = slots_more(ld, 2)) == 0) {
            continue;
        }
        *pp = p;
        return rc;
    }
}

/* Parses a whole chunk payload; on MALFORMED, rolls it back and says where in ld->why. */
static int parse_chunk(struct loader *ld, const uint8_t *base, size_t len)
{
    if (len == 0) /* base may be NULL then */
        return 0;
    const uint8_t *p = base, *end = base + len;
    save_point(ld);
    while (p < end) {
        int rc = parse_hot(ld, &p, end);
        const uint8_t *rec = p;
        if (rc == 0 && p < end)
            rc = parse_record(ld, &p, end);
        if (rc == MALFORMED) {
            char what[200];
            snprintf(what, sizeof(what), "%s", ld->why);
            snprintf(ld->whybuf, sizeof(ld->whybuf),
                     "malformed record at byte %zu of the chunk (%s)", (size_t)(rec - base), what);
            ld->why = ld->whybuf;
            roll_back(ld);
            return MALFORMED;
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Chunks                                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* Points *out at n bytes of the input at off; returns how many are there (fewer at the end of
 * the input), or a negative errno value. */
static ssize_t input_at(struct loader *ld, uint64_t off, size_t n, const uint8_t **out)
{
    if (off >= ld->size) {
        *out = NULL;
        return 0;
    }
    if (n > ld->size - off)
        n = (size_t)(ld->size - off);
    if (ld->fd < 0) {
        *out = ld->mem + off;
        return (ssize_t)n;
    }
    if (n > ld->buf_cap) {
        size_t cap = n < 65536 ? 65536 : n;
        void *nb = realloc(ld->buf, cap);
        if (!nb)
            return -ENOMEM;
        ld->buf = nb;
        ld->buf_cap = cap;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(ld->fd, ld->buf + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    *out = ld->buf;
    return (ssize_t)got;
}

static void cut(struct loader *ld, uint64_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void cut(struct loader *ld, uint64_t off, const char *fmt, ...)
{
    char why[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    ld->td->truncated = true;
    snprintf(ld->td->warning, sizeof(ld->td->warning),
             "trace cut at byte %llu (chunk %llu): %s; read up to the last good chunk",
             (unsigned long long)off, (unsigned long long)ld->chunk, why);
}

/* Reads every chunk from off on; stops (with a warning) at the first bad one. */
static int read_chunks(struct loader *ld, uint64_t off)
{
    const size_t max_stored = ZSTD_compressBound(MS_CHUNK_MAX_RAW);
    for (ld->chunk = 1;; ld->chunk++) {
        const uint8_t *f;
        ssize_t n = input_at(ld, off, MS_CHUNK_FRAME_SIZE, &f);
        if (n == 0)
            return 0;
        if (n < 0) {
            cut(ld, off, "read error: %s", strerror((int)-n));
            return 0;
        }
        if (n < MS_CHUNK_FRAME_SIZE) {
            cut(ld, off, "the file ends inside a chunk frame");
            return 0;
        }
        uint8_t frame[MS_CHUNK_FRAME_SIZE];
        memcpy(frame, f, sizeof(frame));
        uint32_t flags = ms_get_u32(frame + 4), stored = ms_get_u32(frame + 8),
                 raw_size = ms_get_u32(frame + 12), crc = ms_get_u32(frame + 16);
        uint32_t codec = flags & MS_CHUNK_CODEC_MASK;
        if (ms_get_u32(frame) != MS_CHUNK_MAGIC) {
            cut(ld, off, "bad chunk magic");
            return 0;
        }
        if (raw_size > MS_CHUNK_MAX_RAW || stored > max_stored) {
            cut(ld, off, "chunk size over the limit (%u bytes stored, %u raw)", stored, raw_size);
            return 0;
        }
        if (codec != MS_CHUNK_CODEC_NONE && codec != MS_CHUNK_CODEC_ZSTD) {
            cut(ld, off, "unknown codec %u", codec);
            return 0;
        }
        const uint8_t *payload;
        n = input_at(ld, off + MS_CHUNK_FRAME_SIZE, stored, &payload);
        if (n == -ENOMEM)
            return nomem(ld);
        if (n < 0) {
            cut(ld, off, "read error: %s", strerror((int)-n));
            return 0;
        }
        if ((size_t)n < stored) {
            cut(ld, off, "the file ends inside the chunk (%zd of %u bytes)", n, stored);
            return 0;
        }
        if (ms_chunk_crc(frame, payload, stored) != crc) {
            cut(ld, off, "CRC mismatch");
            return 0;
        }
        const uint8_t *raw = payload;
        if (codec == MS_CHUNK_CODEC_NONE) {
            if (stored != raw_size) {
                cut(ld, off, "stored and raw sizes differ in an uncompressed chunk");
                return 0;
            }
        } else {
            if (!ld->dctx && !(ld->dctx = ZSTD_createDCtx()))
                return nomem(ld);
            if (raw_size > ld->raw_cap) {
                void *nr = realloc(ld->raw, raw_size);
                if (!nr)
                    return nomem(ld);
                ld->raw = nr;
                ld->raw_cap = raw_size;
            }
            size_t r = ZSTD_decompressDCtx(ld->dctx, ld->raw, raw_size, payload, stored);
            if (ZSTD_isError(r)) {
                cut(ld, off, "zstd: %s", ZSTD_getErrorName(r));
                return 0;
            }
            if (r != raw_size) {
                cut(ld, off, "decompressed to %zu bytes, the frame says %u", r, raw_size);
                return 0;
            }
            raw = ld->raw;
        }
        int rc = parse_chunk(ld, raw, raw_size);
        if (rc == MALFORMED) {
            cut(ld, off, "%s", ld->why);
            return 0;
        }
        ld->td->file_read = off + MS_CHUNK_FRAME_SIZE + (uint64_t)stored;
        if (rc == 0 && ld->fn) { /* hand the chunk's slots over, then drop them */
            struct ms__trace_data *td = ld->td;
            rc = ld->fn(ld->ctx, td, td->slot_base, td->nslots);
            td->slot_base = td->nslots;
            ld->slots_soft = td->slot_base + ld->slots_cap;
        }
        if (rc)
            return rc;
        ld->td->chunks++;
        off += MS_CHUNK_FRAME_SIZE + (uint64_t)stored;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Finishing: time base, tables                                                            */
/* ---------------------------------------------------------------------------------------- */

uint64_t ms__trace_ticks_ns(const struct ms__trace_timebase *tb, uint64_t ticks)
{
    if (ticks <= tb->start_ticks)
        return 0;
    uint64_t d = ticks - tb->start_ticks;
    if (!tb->mul_frac)
        return d * tb->mul_int;
    return d * tb->mul_int + (uint64_t)(((u128)d * tb->mul_frac + (UINT64_C(1) << 63)) >> 64);
}

/* The trace start and slope: the first CLOCK pair, and the slope from the first to the last. */
static void timebase_set(struct loader *ld)
{
    struct ms__trace_data *td = ld->td;
    struct ms__trace_timebase *tb = &td->timebase;
    *tb = (struct ms__trace_timebase){.mul_int = 1};
    if (td->nclocks == 0) {
        /* No CLOCK: the earliest ticks seen start the trace, and ticks are taken as ns. */
        tb->start_ticks = ld->have_ticks ? ld->min_ticks : 0;
        return;
    }
    const struct ms__trace_clock *a = &td->clocks[0], *b = &td->clocks[td->nclocks - 1];
    tb->start_ticks = a->ticks;
    if (b->ticks > a->ticks && b->monotonic_ns >= a->monotonic_ns) {
        uint64_t dns = b->monotonic_ns - a->monotonic_ns, dt = b->ticks - a->ticks;
        tb->mul_int = dns / dt;
        tb->mul_frac = (uint64_t)(((u128)(dns % dt) << 64) / dt);
    }
}

/* Sorts n items of elem bytes by the uint64_t time at their start, stably. */
static int sort_by_time(void *base, size_t n, size_t elem)
{
    char *a = base;
    bool sorted = true;
    for (size_t i = 1; i < n && sorted; i++) {
        uint64_t t0, t1;
        memcpy(&t0, a + (i - 1) * elem, 8);
        memcpy(&t1, a + i * elem, 8);
        sorted = t0 <= t1;
    }
    if (sorted)
        return 0;
    /* bottom-up merge sort through a scratch copy */
    char *tmp = malloc(n * elem);
    if (!tmp)
        return MS_ENOMEM;
    char *src = a, *dst = tmp;
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid || j < hi) {
                uint64_t ti = 0, tj = 0;
                if (i < mid)
                    memcpy(&ti, src + i * elem, 8);
                if (j < hi)
                    memcpy(&tj, src + j * elem, 8);
                size_t from = (j >= hi || (i < mid && ti <= tj)) ? i++ : j++;
                memcpy(dst + k++ * elem, src + from * elem, elem);
            }
        }
        char *t = src;
        src = dst;
        dst = t;
    }
    if (src != a)
        memcpy(a, src, n * elem);
    free(tmp);
    return 0;
}

static inline size_t stack_hash(uint32_t image, uint32_t id)
{
    return (size_t)hash64((uint64_t)image << 32 | id);
}

/* Drops repeated definitions of a stack node (the first one stays) and indexes the rest. */
static int index_stacks(struct loader *ld)
{
    struct ms__trace_data *td = ld->td;
    size_t cap = 16;
    while (cap < td->nstacks * 2)
        cap *= 2;
    td->stack_index = calloc(cap, sizeof(*td->stack_index));
    if (!td->stack_index)
        return nomem(ld);
    td->stack_index_mask = cap - 1;
    size_t kept = 0;
    for (size_t i = 0; i < td->nstacks; i++) {
        struct ms__trace_stack s = td->stacks[i];
        size_t h = stack_hash(s.image, s.id) & td->stack_index_mask;
        bool dup = false;
        for (uint32_t e; (e = td->stack_index[h]) != 0; h = (h + 1) & td->stack_index_mask) {
            const struct ms__trace_stack *o = &td->stacks[e - 1];
            if (o->image == s.image && o->id == s.id) {
                dup = true;
                break;
            }
        }
        if (dup)
            continue;
        td->stacks[kept] = s;
        td->stack_index[h] = (uint32_t)++kept;
    }
    td->nstacks = kept;
    return 0;
}

const struct ms__trace_stack *ms__trace_stack_find(const struct ms__trace_data *td, uint32_t image,
                                                   uint32_t id)
{
    if (!td->stack_index)
        return NULL;
    size_t h = stack_hash(image, id) & td->stack_index_mask;
    for (uint32_t e; (e = td->stack_index[h]) != 0; h = (h + 1) & td->stack_index_mask) {
        const struct ms__trace_stack *s = &td->stacks[e - 1];
        if (s->image == image && s->id == id)
            return s;
    }
    return NULL;
}

size_t ms__trace_stack_walk(const struct ms__trace_data *td, uint32_t image, uint32_t id,
                            uint64_t *ips, size_t max)
{
    size_t n = 0;
    while (id != 0 && n < max) {
        const struct ms__trace_stack *s = ms__trace_stack_find(td, image, id);
        if (!s)
            break;
        ips[n++] = s->ip;
        id = s->parent;
    }
    return n;
}

/* Sets each module's unload time from the UNLOAD records (the latest module with that id). */
static int apply_unloads(struct loader *ld)
{
    struct ms__trace_data *td = ld->td;
    if (!ld->nunloads || !td->nmodules)
        return 0;
    struct ms__ptrmap m;
    if (ms__ptrmap_init(&m, td->nmodules) != 0)
        return nomem(ld);
    for (size_t i = 0; i < td->nmodules; i++) {
        uint64_t old;
        if (ms__ptrmap_put(&m, (uint64_t)td->modules[i].image << 32 | td->modules[i].id, i, &old) <
            0) {
            ms__ptrmap_free(&m);
            return nomem(ld);
        }
    }
    for (size_t i = 0; i < ld->nunloads; i++) {
        const struct unload *u = &ld->unloads[i];
        uint64_t idx;
        if (ms__ptrmap_get(&m, (uint64_t)u->image << 32 | u->id, &idx))
            td->modules[idx].unload_time = ms__trace_ticks_ns(&td->timebase, u->ticks);
    }
    ms__ptrmap_free(&m);
    return 0;
}

static int finish(struct loader *ld)
{
    struct ms__trace_data *td = ld->td;
    timebase_set(ld);
    const struct ms__trace_timebase *tb = &td->timebase;
    td->images[ld->cur_image].end_event = td->nslots;
    for (size_t i = 0; i < td->nthreads; i++) { /* from its THREAD and THREAD_END records */
        const struct tstate *t = &ld->ts[i];
        if (t->has_rec) {
            td->threads[i].first_time = ms__trace_ticks_ns(tb, t->rec_min);
            td->threads[i].last_time = ms__trace_ticks_ns(tb, t->rec_max);
        }
    }
    for (size_t i = 0; i < td->nmarkers; i++)
        td->markers[i].time = ms__trace_ticks_ns(tb, td->markers[i].time);
    for (size_t i = 0; i < td->nrss; i++)
        td->rss[i].time = ms__trace_ticks_ns(tb, td->rss[i].time);
    if (sort_by_time(td->markers, td->nmarkers, sizeof(*td->markers)) != 0 ||
        sort_by_time(td->rss, td->nrss, sizeof(*td->rss)) != 0)
        return nomem(ld);
    int rc;
    if ((rc = index_stacks(ld)) != 0 || (rc = apply_unloads(ld)) != 0)
        return rc;
    td->complete = ld->end_seen;
    td->exit_kind = ld->exit_kind;
    td->lost = ld->lost;
    uint64_t last = ld->have_ticks ? ld->max_ticks : tb->start_ticks;
    td->end_time = ms__trace_ticks_ns(tb, ld->end_seen ? ld->end_ticks : last);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Loading                                                                                  */
/* ---------------------------------------------------------------------------------------- */

int ms__trace_header_check(const uint8_t *p, size_t len, uint32_t *header_size, char *err,
                           size_t errlen)
{
    if (len == 0) {
        snprintf(err, errlen, "empty file, not a memsnap trace");
        return MS_EPARSE;
    }
    if (len < MS_TRACE_HEADER_SIZE || memcmp(p, MS_TRACE_MAGIC, 8) != 0) {
        snprintf(err, errlen, "not a memsnap trace (%s)",
                 len < MS_TRACE_HEADER_SIZE ? "too short" : "bad magic");
        return MS_EPARSE;
    }
    unsigned major = (unsigned)p[8] | (unsigned)p[9] << 8;
    unsigned minor = (unsigned)p[10] | (unsigned)p[11] << 8;
    uint32_t hs = ms_get_u32(p + 12);
    if (major > MS_TRACE_VERSION_MAJOR) {
        snprintf(err, errlen, "newer trace format (version %u.%u; this memsnap reads version %d.x)",
                 major, minor, MS_TRACE_VERSION_MAJOR);
        return MS_EPARSE;
    }
    if (major < MS_TRACE_VERSION_MAJOR) {
        snprintf(err, errlen, "unsupported trace format version %u.%u", major, minor);
        return MS_EPARSE;
    }
    if (hs < MS_TRACE_HEADER_SIZE || hs > 65536) {
        snprintf(err, errlen, "not a memsnap trace (header size %u)", hs);
        return MS_EPARSE;
    }
    *header_size = hs;
    return 0;
}

void ms__trace_data_free(struct ms__trace_data *td)
{
    if (!td)
        return;
    free(td->events);
    free(td->infos);
    free(td->images);
    free(td->threads);
    free(td->stacks);
    free(td->modules);
    free(td->markers);
    free(td->rss);
    free(td->clocks);
    free(td->strings);
    free(td->stack_index);
    free(td);
}

static void loader_free(struct loader *ld)
{
    free(ld->ts);
    free(ld->info_ids);
    free(ld->unloads);
    free(ld->smap);
    free(ld->saved);
    free(ld->buf);
    free(ld->raw);
    ZSTD_freeDCtx(ld->dctx);
}

static int load(struct loader *ld, struct ms__trace_data **out)
{
    *out = NULL;
    const uint8_t *h;
    ssize_t n = input_at(ld, 0, MS_TRACE_HEADER_SIZE, &h);
    if (n < 0) {
        snprintf(ld->err, ld->errlen, "cannot read the trace: %s", strerror((int)-n));
        loader_free(ld);
        return n == -ENOMEM ? MS_ENOMEM : MS_EIO;
    }
    uint32_t hs;
    int rc = ms__trace_header_check(h, (size_t)n, &hs, ld->err, ld->errlen);
    if (rc) { /* the header's bytes were read into ld->buf */
        loader_free(ld);
        return rc;
    }
    struct ms__trace_data *td = calloc(1, sizeof(*td));
    if (!td) {
        rc = nomem(ld);
        loader_free(ld);
        return rc;
    }
    ld->td = td;
    td->file_bytes = ld->size;
    if (!(td->images = calloc(1, sizeof(*td->images)))) {
        rc = nomem(ld);
        goto fail;
    }
    ld->images_cap = 1;
    td->nimages = 1;
    if (!(td->events = malloc(1024 * sizeof(*td->events)))) {
        rc = nomem(ld);
        goto fail;
    }
    ld->slots_cap = ld->slots_soft = 1024;
    if ((rc = read_chunks(ld, hs)) != 0 || (rc = finish(ld)) != 0)
        goto fail;
    loader_free(ld);
    *out = td;
    return 0;
fail:
    loader_free(ld);
    ms__trace_data_free(td);
    return rc;
}

int ms__trace_load_fd_stream(struct ms__trace_data **out, int fd, ms__trace_chunk_fn fn, void *ctx,
                             char *err, size_t errlen)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot read the trace: %s", strerror(errno));
        *out = NULL;
        return ms__errno_code(errno);
    }
    struct loader ld = {
        .fd = fd, .size = (uint64_t)st.st_size, .err = err, .errlen = errlen, .fn = fn, .ctx = ctx};
    return load(&ld, out);
}

int ms__trace_load_mem(struct ms__trace_data **out, const void *buf, size_t len, char *err,
                       size_t errlen)
{
    struct loader ld = {.fd = -1, .mem = buf, .size = len, .err = err, .errlen = errlen};
    return load(&ld, out);
}

int ms__trace_load_fd(struct ms__trace_data **out, int fd, char *err, size_t errlen)
{
    return ms__trace_load_fd_stream(out, fd, NULL, NULL, err, errlen);
}

/* ---------------------------------------------------------------------------------------- */
/* The public handle                                                                        */
/* ---------------------------------------------------------------------------------------- */

struct ms_trace {
    int fd;
    char *path;
    bool read; /* stats holds the result of the one read */
    ms_trace_stats stats;
    bool has_warning;
    char warning[320];
    char err[512];
};

/* Records a failure on trace as the calling thread's last (ms_last_error()) and in trace->err
 * (ms_trace_error(trace)); returns code. */
static int trace_fail(ms_trace *trace, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int trace_fail(ms_trace *trace, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ms__verror(code, fmt, ap);
    va_end(ap);
    snprintf(trace->err, sizeof(trace->err), "%s", ms_last_error());
    return code;
}

int ms_trace_open(ms_trace **out, const char *path)
{
    if (!out || !path)
        return ms__error(MS_EINVAL, "ms_trace_open: %s",
                         !out ? "no handle pointer" : "no trace file given");
    *out = NULL;
    /* O_NONBLOCK: a FIFO that nobody writes must not block the open; only a regular file is
     * read, and then in blocking mode again */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return ms__error(ms__errno_code(e), "%s: %s", path, strerror(e));
    }
    struct stat st;
    uint8_t h[MS_TRACE_HEADER_SIZE];
    ssize_t n = -1;
    if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
        close(fd);
        return ms__error(MS_EPARSE, "%s: %s, not a memsnap trace", path,
                         S_ISDIR(st.st_mode)    ? "is a directory"
                         : S_ISFIFO(st.st_mode) ? "is a named pipe (FIFO)"
                                                : "is not a regular file");
    }
    fcntl(fd, F_SETFL, 0);
    size_t got = 0;
    while (got < sizeof(h)) {
        n = pread(fd, h + got, sizeof(h) - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (n < 0) {
        int e = errno;
        close(fd);
        return ms__error(ms__errno_code(e), "%s: %s", path, strerror(e));
    }
    char why[256];
    uint32_t hs;
    int rc = ms__trace_header_check(h, got, &hs, why, sizeof(why));
    if (rc) {
        close(fd);
        return ms__error(rc, "%s: %s", path, why);
    }
    ms_trace *t = calloc(1, sizeof(*t));
    if (!t || !(t->path = strdup(path))) {
        free(t);
        close(fd);
        return ms__error(MS_ENOMEM, "%s: out of memory", path);
    }
    t->fd = fd;
    *out = t;
    return 0;
}

int ms_trace_stats_get(ms_trace *trace, ms_trace_stats *stats)
{
    if (!trace)
        return ms__error(MS_EINVAL, "ms_trace_stats_get: no trace");
    if (!stats || stats->size < sizeof(stats->size))
        return trace_fail(trace, MS_EINVAL, "stats->size must be sizeof(ms_trace_stats)");
    if (!trace->read) {
        struct ms__trace_data *td;
        char why[448];
        int rc = ms__trace_load_fd(&td, trace->fd, why, sizeof(why));
        if (rc)
            return trace_fail(trace, rc, "%s: %s", trace->path, why);
        rc = ms__trace_stats_compute(td, &trace->stats);
        if (rc) {
            ms__trace_data_free(td);
            return trace_fail(trace, rc, "%s: out of memory", trace->path);
        }
        trace->has_warning = td->truncated;
        snprintf(trace->warning, sizeof(trace->warning), "%s", td->warning);
        ms__trace_data_free(td);
        trace->read = true;
    }
    size_t size = stats->size;
    memcpy(stats, &trace->stats, size < sizeof(*stats) ? size : sizeof(*stats));
    stats->size = size < sizeof(*stats) ? size : sizeof(*stats);
    return 0;
}

const char *ms_trace_warning(const ms_trace *trace)
{
    return trace && trace->has_warning ? trace->warning : NULL;
}

const char *ms_trace_error(const ms_trace *trace)
{
    return trace ? trace->err : ms_last_error();
}

void ms_trace_close(ms_trace *trace)
{
    if (!trace)
        return;
    close(trace->fd);
    free(trace->path);
    free(trace);
}

/* Reads exactly n bytes at off; 0, or -1 (a short file, or an error). */
static int pread_full(int fd, void *buf, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = pread(fd, (uint8_t *)buf + got, n - got, (off_t)(off + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        got += (size_t)k;
    }
    return 0;
}

int ms_trace_tail_get(const char *path, ms_trace_tail *tail)
{
    if (!tail || tail->size < sizeof(tail->size))
        return ms__error(MS_EINVAL, "tail->size must be sizeof(ms_trace_tail)");
    ms_trace *t;
    int rc = ms_trace_open(&t, path);
    if (rc)
        return rc;
    ms_trace_tail out = {.size = sizeof(out)};
    struct stat st;
    uint8_t h[MS_TRACE_HEADER_SIZE], frame[MS_CHUNK_FRAME_SIZE], last[MS_CHUNK_FRAME_SIZE];
    uint32_t hs;
    char why[256];
    if (fstat(t->fd, &st) != 0 || pread_full(t->fd, h, sizeof(h), 0) != 0 ||
        ms__trace_header_check(h, sizeof(h), &hs, why, sizeof(why)) != 0) {
        ms_trace_close(t);
        return ms__error(MS_EIO, "%s: cannot read its header", path);
    }
    out.file_bytes = (uint64_t)st.st_size;
    uint64_t off = hs, last_off = 0;
    while (pread_full(t->fd, frame, sizeof(frame), off) == 0 &&
           ms_get_u32(frame) == MS_CHUNK_MAGIC) {
        uint64_t next = off + sizeof(frame) + ms_get_u32(frame + 8);
        if (next > out.file_bytes)
            break; /* cut */
        memcpy(last, frame, sizeof(frame));
        last_off = off;
        out.chunks++;
        off = next;
    }
    out.good_bytes = out.chunks ? off : hs;
    /* The END chunk: stored as it is (too short to compress), one END record, a good CRC. */
    uint32_t stored = out.chunks ? ms_get_u32(last + 8) : 0;
    uint8_t payload[64];
    if (out.chunks && (ms_get_u32(last + 4) & MS_CHUNK_CODEC_MASK) == MS_CHUNK_CODEC_NONE &&
        stored == ms_get_u32(last + 12) && stored > 0 && stored <= sizeof(payload) &&
        pread_full(t->fd, payload, stored, last_off + sizeof(last)) == 0 &&
        ms_chunk_crc(last, payload, stored) == ms_get_u32(last + 16) && payload[0] == MS_REC_END) {
        const uint8_t *p = payload + 1, *end = payload + stored;
        uint64_t ticks, kind;
        if (ms_get_varint(&p, end, &ticks) == 0 && ms_get_varint(&p, end, &kind) == 0 && p == end) {
            out.complete = true;
            out.exit_kind = kind;
        }
    }
    ms_trace_close(t);
    size_t size = tail->size < sizeof(out) ? tail->size : sizeof(out);
    memcpy(tail, &out, size);
    tail->size = size;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Modules by address                                                                       */
/* ---------------------------------------------------------------------------------------- */

static int mod_range_cmp(const void *a, const void *b)
{
    const struct ms__mod_range *x = a, *y = b;
    if (x->image != y->image)
        return x->image < y->image ? -1 : 1;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->mod < y->mod ? -1 : x->mod > y->mod;
}

int ms__mod_ranges(const struct ms__trace_data *td, struct ms__mod_range **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct ms__mod_range *r = td->nmodules ? malloc(td->nmodules * sizeof(*r)) : NULL;
    if (td->nmodules && !r)
        return MS_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < td->nmodules; i++) {
        const struct ms__trace_module *m = &td->modules[i];
        if (m->image < td->nimages && m->start < m->end)
            r[k++] = (struct ms__mod_range){m->image, (uint32_t)i, m->start, m->end};
    }
    if (k == 0) {
        free(r);
        return 0;
    }
    qsort(r, k, sizeof(*r), mod_range_cmp);
    *out = r;
    *n = k;
    return 0;
}

const struct ms__mod_range *ms__mod_find(const struct ms__mod_range *r, size_t n, uint32_t image,
                                         uint64_t addr)
{
    size_t lo = 0, hi = n; /* the first range after (image, addr) */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r[mid].image < image || (r[mid].image == image && r[mid].start <= addr))
            lo = mid + 1;
        else
            hi = mid;
    }
    while (lo > 0 && r[lo - 1].image == image)
        if (addr < r[--lo].end)
            return &r[lo];
    return NULL;
}

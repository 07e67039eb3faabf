/*
 * events.c - the writer's half of the tracker: it turns the threads' ring events into the
 * event records of the trace (format.h), off the hot path, as heaptrack_interpret does in a
 * process of its own.
 *
 * Each flush merges the rings' new events by time (each ring is already in order; a heap of
 * cursors picks the earliest), then resolves pointers: an allocation gets the next block
 * number and an "info" id for its (size, stack, thread), a free is written as the age of the
 * block it ends. The file so holds no pointers, and what it holds repeats, which zstd turns
 * into a fraction of a byte per event.
 *
 * Two races between threads are resolved by the order of cause and effect. A thread records a
 * free before the real free, and an allocation after the real call returns, so an address is
 * always freed (in time) before another thread gets it back. But the writer reads the rings
 * one after the other, so within one flush it can meet the new allocation of an address
 * before the free of its old block, or a free before the allocation it ends:
 *   - an allocation of an address that is still live ends the old block there and then, and
 *     the free that arrives later (with an earlier time) is then "owed" and skipped;
 *   - a free of an address that is not live waits ("pending") for up to two flushes for an
 *     allocation with an earlier time; after that it is an unmatched free.
 * With one thread neither can happen, and a free of an unknown address is unmatched at once.
 */
#include "preload.h"

#include <string.h>

struct slot {
    uint64_t key, a, b, c;
};

struct map {
    struct slot *s;
    size_t cap, n;
};

struct ev {
    uint8_t op;
    uint64_t ticks, ticks2, size, old_size, ptr, old;
    uint32_t stack;
};

struct cursor {
    struct ms_ring *r;
    uint64_t pos, end;
    struct ev e;
};

static struct {
    struct map live;    /* ptr -> a: block number */
    struct map pending; /* ptr -> a: ticks of the free, b: flush number, c: kind */
    struct map owed;    /* ptr -> a: ticks of the allocation that ended the block, b: flush */
    struct map infos;   /* hash -> a: size, b: stack << 32 | serial, c: id */
    uint64_t next_block, next_info, flush;
    uint64_t last_time;
    bool time_started;
    struct cursor *cur;
    size_t cur_cap;
} E;

/* ---- maps: open addressing, linear probing, backward-shift deletion; key 0 is empty ---- */

static inline size_t map_home(const struct map *m, uint64_t key)
{
    return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 20) & (m->cap - 1);
}

static int map_grow(struct map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 1024;
    struct slot *s = ms_os_alloc(cap * sizeof(*s));
    if (!s)
        return -1;
    struct map nm = {s, cap, 0};
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->s[i].key)
            continue;
        size_t j = map_home(&nm, m->s[i].key);
        while (s[j].key)
            j = (j + 1) & (cap - 1);
        s[j] = m->s[i];
        nm.n++;
    }
    ms_os_free(m->s, m->cap * sizeof(*m->s));
    *m = nm;
    return 0;
}

static struct slot *map_find(const struct map *m, uint64_t key)
{
    if (!m->n)
        return NULL;
    for (size_t j = map_home(m, key);; j = (j + 1) & (m->cap - 1)) {
        if (m->s[j].key == key)
            return &m->s[j];
        if (!m->s[j].key)
            return NULL;
    }
}

/* The slot for key, new (zeroed values) or existing; NULL when out of memory. */
static struct slot *map_put(struct map *m, uint64_t key)
{
    if ((m->n + 1) * 4 > m->cap * 3 && map_grow(m) < 0)
        return NULL;
    size_t j = map_home(m, key);
    for (; m->s[j].key; j = (j + 1) & (m->cap - 1))
        if (m->s[j].key == key)
            return &m->s[j];
    m->s[j] = (struct slot){key, 0, 0, 0};
    m->n++;
    return &m->s[j];
}

static void map_erase(struct map *m, struct slot *del)
{
    size_t mask = m->cap - 1, i = (size_t)(del - m->s), j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!m->s[j].key)
            break;
        size_t home = map_home(m, m->s[j].key);
        /* move s[j] into the hole at i unless its home lies cyclically in (i, j] */
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            m->s[i] = m->s[j];
            i = j;
        }
    }
    m->s[i].key = 0;
    m->n--;
}

static void map_clear(struct map *m)
{
    if (m->s)
        memset(m->s, 0, m->cap * sizeof(*m->s));
    m->n = 0;
}

/* ---- output ---- */

static void put_rec(uint8_t type, const uint64_t *v, int n)
{
    uint8_t rec[1 + 6 * MS_VARINT_MAX], *q = rec;
    *q++ = type;
    for (int i = 0; i < n; i++)
        q = ms_put_varint(q, v[i]);
    ms_stage_put(rec, (size_t)(q - rec));
}

/* Time is written at the granularity of ~20 us, as multiples of it: deltas whose low bits are
 * all zero compress to almost nothing (random low bits cost 10% of a sqlite3 trace). */
static void put_time(uint64_t ticks)
{
    uint64_t granule = ms_g.use_tsc ? 1u << 16 : 1u << 14;
    uint64_t t = ticks & ~(granule - 1);
    if (E.time_started && t <= E.last_time)
        return;
    uint64_t d = t - (E.time_started ? E.last_time : 0);
    put_rec(MS_REC_TIME, &d, 1);
    E.last_time = t;
    E.time_started = true;
}

static uint64_t info_id(uint64_t size, uint32_t stack, uint32_t serial)
{
    uint64_t sb = (uint64_t)stack << 32 | serial;
    uint64_t h = (size * 0xff51afd7ed558ccdull) ^ (sb * 0xc4ceb9fe1a85ec53ull);
    h = (h ^ (h >> 29)) | 1;
    struct map *m = &E.infos;
    if ((m->n + 1) * 4 > m->cap * 3 && map_grow(m) < 0)
        return 0;
    size_t j = map_home(m, h);
    for (; m->s[j].key; j = (j + 1) & (m->cap - 1))
        if (m->s[j].key == h && m->s[j].a == size && m->s[j].b == sb)
            return m->s[j].c;
    m->s[j] = (struct slot){h, size, sb, E.next_info};
    m->n++;
    uint64_t v[3] = {size, stack, serial};
    put_rec(MS_REC_INFO, v, 3);
    return E.next_info++;
}

/* ---- resolving ---- */

enum { FREED, PENDING, OWED, UNKNOWN };

/* Ends the block at ptr, as of time t; *age is set when it returns FREED. */
static int end_block(uint64_t ptr, uint64_t t, unsigned kind, uint64_t *age)
{
    struct slot *s = map_find(&E.owed, ptr);
    if (s && t <= s->a) {
        map_erase(&E.owed, s);
        return OWED;
    }
    s = map_find(&E.live, ptr);
    if (s) {
        *age = E.next_block - s->a;
        map_erase(&E.live, s);
        return FREED;
    }
    if (ms_g.next_serial > 1) {
        s = map_put(&E.pending, ptr);
        if (s) {
            *s = (struct slot){ptr, t, E.flush, kind};
            return PENDING;
        }
    }
    return UNKNOWN;
}

/* A new block at ptr, as of time t, written as `type` (ALLOC, or REALLOC with old_age). */
static void new_block(uint64_t ptr, uint64_t t, uint64_t size, uint32_t stack, uint32_t serial,
                      uint8_t type, uint64_t old_age)
{
    unsigned pending_kind = 0;
    bool pending_match = false;
    struct slot *s = map_find(&E.pending, ptr);
    if (s) {
        /* a free read earlier: it ends this block if it was recorded after this allocation */
        pending_match = s->a >= t;
        pending_kind = (unsigned)s->c;
        if (!pending_match) {
            uint64_t k = pending_kind;
            put_rec(MS_REC_UNMATCHED, &k, 1);
        }
        map_erase(&E.pending, s);
    }
    s = map_find(&E.live, ptr);
    if (s) {
        /* the old block's free has not reached us yet: end it now, skip that free later */
        uint64_t age = E.next_block - s->a;
        map_erase(&E.live, s);
        put_rec(MS_REC_FREE, &age, 1);
        struct slot *o = map_put(&E.owed, ptr);
        if (o)
            *o = (struct slot){ptr, t, E.flush, 0};
    }
    uint64_t info = info_id(size, stack, serial);
    if (type == MS_REC_REALLOC) {
        uint64_t v[2] = {old_age, info};
        put_rec(MS_REC_REALLOC, v, 2);
    } else {
        put_rec(MS_REC_ALLOC, &info, 1);
    }
    uint64_t block = E.next_block++;
    if (pending_match) {
        uint64_t age = 1;
        put_rec(pending_kind ? MS_REC_RELEASE : MS_REC_FREE, &age, 1);
        return;
    }
    struct slot *l = map_put(&E.live, ptr);
    if (l)
        l->a = block;
}

static void resolve(const struct ev *e, uint32_t serial)
{
    uint64_t age = 0;
    put_time(e->ticks);
    switch (e->op) {
    case MS_OP_ALLOC:
        new_block(e->ptr, e->ticks, e->size, e->stack, serial, MS_REC_ALLOC, 0);
        break;
    case MS_OP_FREE:
        switch (end_block(e->ptr, e->ticks, 0, &age)) {
        case FREED:
            put_rec(MS_REC_FREE, &age, 1);
            break;
        case UNKNOWN: {
            uint64_t k = 0;
            put_rec(MS_REC_UNMATCHED, &k, 1);
            break;
        }
        default:
            break;
        }
        break;
    case MS_OP_REALLOC: {
        int how = end_block(e->old, e->ticks, 1, &age);
        if (how == UNKNOWN) {
            uint64_t k = 1;
            put_rec(MS_REC_UNMATCHED, &k, 1);
        }
        new_block(e->ptr, e->ticks2, e->size, e->stack, serial, MS_REC_REALLOC,
                  how == FREED ? age : 0);
        break;
    }
    case MS_OP_MMAP: {
        uint64_t v[4] = {e->ptr, e->size, e->stack, serial};
        put_rec(MS_REC_MMAP, v, 4);
        break;
    }
    case MS_OP_MUNMAP: {
        uint64_t v[3] = {e->ptr, e->size, serial};
        put_rec(MS_REC_MUNMAP, v, 3);
        break;
    }
    case MS_OP_MREMAP: {
        uint64_t v[6] = {e->old, e->old_size, e->ptr, e->size, e->stack, serial};
        put_rec(MS_REC_MREMAP, v, 6);
        break;
    }
    }
}

/* ---- reading the rings ---- */

/* Decodes the next event of c into c->e; false at the end of what was published. */
static bool cursor_next(struct cursor *c)
{
    struct ms_ring *r = c->r;
    if (c->pos >= c->end)
        return false;
    uint8_t tmp[MS_EVENT_MAX];
    size_t off = (size_t)(c->pos & MS_RING_MASK);
    size_t avail = c->end - c->pos < MS_EVENT_MAX ? (size_t)(c->end - c->pos) : MS_EVENT_MAX;
    const uint8_t *start, *p;
    if (off + avail <= MS_RING_SIZE) {
        start = r->buf + off;
    } else {
        size_t first = MS_RING_SIZE - off;
        memcpy(tmp, r->buf + off, first);
        memcpy(tmp + first, r->buf, avail - first);
        start = tmp;
    }
    p = start;
    const uint8_t *end = start + avail;
    uint64_t v[6];
    static const int nfields[] = {0, 4, 2, 6, 4, 3, 6};
    uint8_t op = *p++;
    if (op < 1 || op > 6)
        goto corrupt;
    for (int i = 0; i < nfields[op]; i++)
        if (ms_get_varint(&p, end, &v[i]) < 0)
            goto corrupt;
    struct ev *e = &c->e;
    e->op = op;
    e->ticks = r->c_ticks += v[0];
    e->ticks2 = e->ticks;
    e->stack = 0;
    switch (op) {
    case MS_OP_ALLOC:
        e->size = v[1];
        e->stack = (uint32_t)v[2];
        e->ptr = r->c_ptr += (uint64_t)ms_unzigzag(v[3]);
        break;
    case MS_OP_FREE:
        e->ptr = r->c_ptr += (uint64_t)ms_unzigzag(v[1]);
        break;
    case MS_OP_REALLOC:
        e->ticks2 = r->c_ticks += v[1];
        e->size = v[2];
        e->stack = (uint32_t)v[3];
        e->old = r->c_ptr + (uint64_t)ms_unzigzag(v[4]);
        e->ptr = r->c_ptr = e->old + (uint64_t)ms_unzigzag(v[5]);
        break;
    case MS_OP_MMAP:
        e->size = v[1];
        e->stack = (uint32_t)v[2];
        e->ptr = v[3];
        break;
    case MS_OP_MUNMAP:
        e->size = v[1];
        e->ptr = v[2];
        break;
    case MS_OP_MREMAP:
        e->old_size = v[1];
        e->size = v[2];
        e->stack = (uint32_t)v[3];
        e->old = v[4];
        e->ptr = v[5];
        break;
    }
    c->pos += (uint64_t)(p - start);
    return true;
corrupt:
    /* Cannot happen short of memory corruption in the program: skip what is left. */
    c->pos = c->end;
    return false;
}

static inline bool cur_less(const struct cursor *a, const struct cursor *b)
{
    return a->e.ticks < b->e.ticks;
}

static void heap_down(struct cursor *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && cur_less(&h[l], &h[m]))
            m = l;
        if (l + 1 < n && cur_less(&h[l + 1], &h[m]))
            m = l + 1;
        if (m == i)
            return;
        struct cursor t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

void ms_events_drain(struct ms_ring *const *rings, size_t n)
{
    if (n > E.cur_cap) {
        size_t cap = n < 64 ? 64 : n * 2;
        struct cursor *c = ms_os_alloc(cap * sizeof(*c));
        if (!c)
            return;
        ms_os_free(E.cur, E.cur_cap * sizeof(*E.cur));
        E.cur = c;
        E.cur_cap = cap;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        struct cursor *c = &E.cur[k];
        c->r = rings[i];
        c->pos = atomic_load_explicit(&rings[i]->tail, memory_order_relaxed);
        c->end = atomic_load_explicit(&rings[i]->pub, memory_order_acquire);
        if (cursor_next(c))
            k++;
        else
            atomic_store_explicit(&rings[i]->tail, c->pos, memory_order_release);
    }
    for (size_t i = k / 2; i-- > 0;)
        heap_down(E.cur, k, i);
    while (k) {
        struct cursor *c = &E.cur[0];
        resolve(&c->e, (uint32_t)c->r->serial);
        if (!cursor_next(c)) {
            atomic_store_explicit(&c->r->tail, c->pos, memory_order_release);
            E.cur[0] = E.cur[--k];
        }
        heap_down(E.cur, k, 0);
    }
}

/* After each flush: frees pending for two flushes are unmatched; owed entries expire. */
void ms_events_flushed(bool final)
{
    E.flush++;
    if (E.pending.n) {
        for (size_t i = 0; i < E.pending.cap; i++) {
            struct slot *s = &E.pending.s[i];
            if (s->key && (final || s->b + 2 <= E.flush)) {
                uint64_t k = s->c;
                put_rec(MS_REC_UNMATCHED, &k, 1);
                map_erase(&E.pending, s);
                i--; /* the shift may have moved another entry into this slot */
            }
        }
    }
    if (E.owed.n) {
        for (size_t i = 0; i < E.owed.cap; i++) {
            struct slot *s = &E.owed.s[i];
            if (s->key && s->b + 2 <= E.flush) {
                map_erase(&E.owed, s);
                i--;
            }
        }
    }
}

/* A new file (start, or a fork child): no blocks, infos or times yet. */
void ms_events_reset(void)
{
    map_clear(&E.live);
    map_clear(&E.pending);
    map_clear(&E.owed);
    map_clear(&E.infos);
    E.next_block = E.next_info = 0;
    E.flush = 0;
    E.time_started = false;
    E.last_time = 0;
}

/*
 * stacks.c - call stacks for the tracker: the module map, capture, and the stack trie.
 *
 * Capture. A per-thread stack cache answers most captures with one load a frame (see "The
 * stack cache" below). On a miss: --unwind fp walks the frame-pointer chain, each frame checked
 * against the thread's stack bounds; --unwind dwarf uses the CFI walker of cfi.c (libunwind for
 * frames it cannot express); --unwind auto (the default) walks frame pointers through the
 * modules that keep them and takes the DWARF walk as soon as a frame lies in one that does not;
 * --unwind libunwind asks unw_backtrace every time. Whether a module keeps frame pointers is
 * read once, when it is loaded, from its unwind tables: a module built with
 * -fno-omit-frame-pointer defines the CFA through %rbp in nearly every FDE, one built without
 * in almost none. A walk that ends (a null or out-of-bounds frame pointer) in such a module is
 * accepted only when the frame is a known outermost one (libc's thread and main entry), learnt
 * from the DWARF walk the first time each is seen.
 *
 * Storage. Each distinct stack is stored once, as the path to a node of a trie of return
 * addresses (root = outermost frame); its id is that node's. A hash of the whole stack finds
 * a known stack without a lock (two independent 64-bit hashes and the depth identify it; the
 * table is only appended to, and a full one is replaced by a larger one while old ones stay
 * readable); a new stack takes the lock, adds the missing nodes and writes one STACK record
 * per new node.
 *
 * Modules. dl_iterate_phdr lists them (at start, after dlopen/dlclose, and whenever the
 * loader's add/remove counters move, which the writer thread checks); each new one gets a
 * MODULE record with its path, load bias, address range and GNU build-id, each removed one
 * an UNLOAD record.
 */
#include "preload.h"

#include <elf.h>
#include <link.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#define UNW_LOCAL_ONLY
#include <libunwind.h>

/* ---- the trie ---- */

#define NODE_CHUNK_BITS 16
#define NODE_CHUNK      (1u << NODE_CHUNK_BITS)
#define NODE_CHUNKS     256 /* 16M nodes at most; beyond that new stacks get id 0 */

struct node {
    uint64_t ip;
    uint32_t parent;
};

struct nslot { /* (parent, ip) -> id, used under the lock only */
    uint64_t ip;
    uint32_t parent;
    uint32_t id;
};

struct sslot { /* whole stack -> id, read without the lock */
    _Atomic uint64_t hash;
    uint64_t check; /* a second, independent hash of the frames */
    uint32_t id;
    uint32_t depth;
};

struct stab {
    size_t cap, count;
    struct stab *older;
    struct sslot slot[];
};

static struct {
    pthread_mutex_t lock;
    struct node *_Atomic chunk[NODE_CHUNKS];
    uint32_t nodes; /* ids 1..nodes are in use */
    struct nslot *nmap;
    size_t nmap_cap, nmap_count;
    struct stab *_Atomic stab;
} st = {.lock = PTHREAD_MUTEX_INITIALIZER};

void ms_stacks_lock(void)
{
    pthread_mutex_lock(&st.lock);
}

void ms_stacks_unlock(void)
{
    pthread_mutex_unlock(&st.lock);
}

void ms_stacks_lock_reinit(void)
{
    pthread_mutex_init(&st.lock, NULL);
}

static struct stab *stab_new(size_t cap)
{
    struct stab *t = ms_os_alloc(sizeof(*t) + cap * sizeof(struct sslot));
    if (t)
        t->cap = cap;
    return t;
}

static int nmap_grow(void)
{
    size_t cap = st.nmap_cap ? st.nmap_cap * 2 : 1u << 14;
    struct nslot *m = ms_os_alloc(cap * sizeof(*m));
    if (!m)
        return -1;
    for (size_t i = 0; i < st.nmap_cap; i++) {
        struct nslot *e = &st.nmap[i];
        if (!e->id)
            continue;
        size_t j = (e->ip * 0x9e3779b97f4a7c15ull ^ e->parent) & (cap - 1);
        while (m[j].id)
            j = (j + 1) & (cap - 1);
        m[j] = *e;
    }
    ms_os_free(st.nmap, st.nmap_cap * sizeof(*st.nmap));
    st.nmap = m;
    st.nmap_cap = cap;
    return 0;
}

/* The child of `parent` for return address ip, made (and recorded) if new; 0 when full. */
static uint32_t trie_child(uint32_t parent, uint64_t ip)
{
    if (st.nmap_count * 4 >= st.nmap_cap * 3 && nmap_grow() < 0)
        return 0;
    size_t mask = st.nmap_cap - 1;
    size_t j = (ip * 0x9e3779b97f4a7c15ull ^ parent) & mask;
    for (; st.nmap[j].id; j = (j + 1) & mask)
        if (st.nmap[j].ip == ip && st.nmap[j].parent == parent)
            return st.nmap[j].id;
    uint32_t id = st.nodes + 1;
    if ((id >> NODE_CHUNK_BITS) >= NODE_CHUNKS)
        return 0;
    struct node *c = atomic_load_explicit(&st.chunk[id >> NODE_CHUNK_BITS], memory_order_relaxed);
    if (!c) {
        c = ms_os_alloc(NODE_CHUNK * sizeof(struct node));
        if (!c)
            return 0;
        atomic_store_explicit(&st.chunk[id >> NODE_CHUNK_BITS], c, memory_order_release);
    }
    c[id & (NODE_CHUNK - 1)] = (struct node){ip, parent};
    st.nodes = id;
    st.nmap[j] = (struct nslot){ip, parent, id};
    st.nmap_count++;

    uint8_t rec[1 + 3 * MS_VARINT_MAX], *q = rec;
    *q++ = MS_REC_STACK;
    q = ms_put_varint(q, id);
    q = ms_put_varint(q, parent);
    q = ms_put_varint(q, ip);
    ms_meta_append(rec, (size_t)(q - rec));
    return id;
}

/* Two independent 64-bit hashes of the frames: a stack is known by both (and its depth), so
 * two different stacks are taken for one with a probability of about 2^-128 per pair. */
static inline void stack_hash(void *const *ips, unsigned n, uint64_t *h1, uint64_t *h2)
{
    uint64_t a = 0x243f6a8885a308d3ull ^ n, b = 0x13198a2e03707344ull + n;
    for (unsigned i = 0; i < n; i++) {
        uint64_t x = (uint64_t)(uintptr_t)ips[i];
        a = (a ^ x) * 0xff51afd7ed558ccdull;
        a ^= a >> 32;
        b = (b + x) * 0xc4ceb9fe1a85ec53ull;
        b ^= b >> 29;
    }
    *h1 = a < 2 ? a + 2 : a;
    *h2 = b;
}

static uint32_t stab_find(struct stab *t, uint64_t h, uint64_t h2, unsigned n, size_t *free_at)
{
    size_t mask = t->cap - 1;
    for (size_t j = h & mask;; j = (j + 1) & mask) {
        uint64_t k = atomic_load_explicit(&t->slot[j].hash, memory_order_acquire);
        if (k == 0) {
            if (free_at)
                *free_at = j;
            return 0;
        }
        if (k == h && t->slot[j].check == h2 && t->slot[j].depth == n)
            return t->slot[j].id;
    }
}

static void stab_put(struct stab *t, size_t j, uint64_t h, uint64_t h2, uint32_t id, unsigned n)
{
    t->slot[j].check = h2;
    t->slot[j].id = id;
    t->slot[j].depth = n;
    atomic_store_explicit(&t->slot[j].hash, h, memory_order_release);
    t->count++;
}

/* Moves to a table twice the size; readers of the old one miss and take the lock. */
static struct stab *stab_grow(struct stab *old)
{
    struct stab *t = stab_new(old->cap * 2);
    if (!t)
        return NULL;
    for (size_t i = 0; i < old->cap; i++) {
        uint64_t h = atomic_load_explicit(&old->slot[i].hash, memory_order_relaxed);
        if (!h)
            continue;
        size_t j = h & (t->cap - 1);
        while (atomic_load_explicit(&t->slot[j].hash, memory_order_relaxed))
            j = (j + 1) & (t->cap - 1);
        stab_put(t, j, h, old->slot[i].check, old->slot[i].id, old->slot[i].depth);
    }
    t->older = old;
    atomic_store_explicit(&st.stab, t, memory_order_release);
    return t;
}

static uint32_t stack_intern(void *const *ips, unsigned n)
{
    uint64_t h, h2;
    stack_hash(ips, n, &h, &h2);
    struct stab *t = atomic_load_explicit(&st.stab, memory_order_acquire);
    uint32_t id = t ? stab_find(t, h, h2, n, NULL) : 0;
    if (MS_LIKELY(id))
        return id;

    pthread_mutex_lock(&st.lock);
    t = atomic_load_explicit(&st.stab, memory_order_relaxed);
    size_t j = 0;
    id = t ? stab_find(t, h, h2, n, &j) : 0;
    if (!id && t) {
        uint32_t parent = 0;
        for (unsigned i = n; i-- > 0;) {
            parent = trie_child(parent, (uint64_t)(uintptr_t)ips[i]);
            if (!parent)
                break;
        }
        id = parent;
        if (id) {
            if (t->count * 2 >= t->cap && (t = stab_grow(t)) != NULL)
                stab_find(t, h, h2, n, &j);
            if (t)
                stab_put(t, j, h, h2, id, n);
        }
    }
    pthread_mutex_unlock(&st.lock);
    return id;
}

/* ---- modules ---- */

#define MAX_MODULES 4096

struct mod {
    uintptr_t lo, hi, bias;
    const uint8_t *eh;
    uint32_t id;
    bool fp;
    bool seen;
};

struct modtab { /* published for lock-free lookups by the unwinder; never freed */
    size_t n;
    struct {
        uintptr_t lo, hi;
        const uint8_t *eh;
        bool fp;
    } e[];
};

static struct {
    struct mod *mods; /* under st.lock */
    size_t n;
    uint32_t next_id;
    unsigned long long adds, subs;
    struct modtab *_Atomic tab;
    uintptr_t terminal[64]; /* return addresses known to be outermost frames */
    _Atomic unsigned nterminal;
} md;

struct scan_item {
    uintptr_t lo, hi, bias;
    const uint8_t *eh_hdr;
    const uint8_t *build_id;
    size_t build_id_len;
    char path[512];
};

struct scan {
    struct scan_item *items;
    size_t n, cap;
    unsigned long long adds, subs;
};

static int scan_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct scan *s = arg;
    s->adds = info->dlpi_adds;
    s->subs = info->dlpi_subs;
    if (s->n == s->cap)
        return 0;
    struct scan_item *it = &s->items[s->n];
    memset(it, 0, sizeof(*it));
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t a = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD) {
            if (a < lo)
                lo = a;
            if (a + ph->p_memsz > hi)
                hi = a + ph->p_memsz;
        } else if (ph->p_type == PT_GNU_EH_FRAME) {
            it->eh_hdr = (const uint8_t *)a;
        } else if (ph->p_type == PT_NOTE && !it->build_id) {
            const uint8_t *p = (const uint8_t *)a, *end = p + ph->p_memsz;
            while (p + sizeof(ElfW(Nhdr)) <= end) {
                const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
                const uint8_t *name = p + sizeof(*nh);
                const uint8_t *desc = name + ((nh->n_namesz + 3) & ~3u);
                if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
                    memcmp(name, "GNU", 4) == 0 && desc + nh->n_descsz <= end) {
                    it->build_id = desc;
                    it->build_id_len = nh->n_descsz;
                    break;
                }
                p = desc + ((nh->n_descsz + 3) & ~3u);
            }
        }
    }
    if (lo >= hi)
        return 0;
    it->lo = lo;
    it->hi = hi;
    it->bias = info->dlpi_addr;
    const char *name = info->dlpi_name;
    if (!name || !name[0]) {
        ssize_t n = readlink("/proc/self/exe", it->path, sizeof(it->path) - 1);
        it->path[n > 0 ? n : 0] = 0;
    } else {
        strncpy(it->path, name, sizeof(it->path) - 1);
    }
    s->n++;
    return 0;
}

static int counters_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    unsigned long long *c = arg;
    c[0] = info->dlpi_adds;
    c[1] = info->dlpi_subs;
    return 1;
}

static void module_record(const struct scan_item *it, uint32_t id)
{
    uint8_t rec[sizeof(it->path) + 256], *q = rec;
    size_t blen = it->build_id_len < 64 ? it->build_id_len : 64;
    *q++ = MS_REC_MODULE;
    q = ms_put_varint(q, id);
    q = ms_put_varint(q, it->bias);
    q = ms_put_varint(q, it->lo);
    q = ms_put_varint(q, it->hi);
    q = ms_put_string(q, (const char *)it->build_id, blen);
    q = ms_put_string(q, it->path, strlen(it->path));
    ms_meta_append(rec, (size_t)(q - rec));
}

static void publish_modtab(void)
{
    struct modtab *t = ms_os_alloc(sizeof(*t) + md.n * sizeof(t->e[0]));
    if (!t)
        return;
    /* sorted by address for the binary search */
    for (size_t i = 0; i < md.n; i++) {
        size_t j = t->n;
        while (j > 0 && t->e[j - 1].lo > md.mods[i].lo) {
            t->e[j] = t->e[j - 1];
            j--;
        }
        t->e[j].lo = md.mods[i].lo;
        t->e[j].hi = md.mods[i].hi;
        t->e[j].fp = md.mods[i].fp;
        t->e[j].eh = md.mods[i].eh;
        t->n++;
    }
    atomic_store_explicit(&md.tab, t, memory_order_release);
}

void ms_modules_scan(bool force)
{
    if (!force) {
        unsigned long long c[2] = {0, 0};
        dl_iterate_phdr(counters_cb, c);
        if (c[0] == md.adds && c[1] == md.subs)
            return;
    }
    struct scan s = {.cap = MAX_MODULES};
    s.items = ms_os_alloc(s.cap * sizeof(*s.items));
    if (!s.items)
        return;
    dl_iterate_phdr(scan_cb, &s);

    pthread_mutex_lock(&st.lock);
    if (!md.mods)
        md.mods = ms_os_alloc(MAX_MODULES * sizeof(*md.mods));
    if (md.mods) {
        for (size_t i = 0; i < md.n; i++)
            md.mods[i].seen = false;
        for (size_t k = 0; k < s.n; k++) {
            struct scan_item *it = &s.items[k];
            size_t i;
            for (i = 0; i < md.n; i++)
                if (md.mods[i].lo == it->lo && md.mods[i].bias == it->bias)
                    break;
            if (i == md.n && md.n < MAX_MODULES) {
                md.mods[md.n] = (struct mod){.lo = it->lo,
                                             .hi = it->hi,
                                             .bias = it->bias,
                                             .eh = it->eh_hdr,
                                             .id = ++md.next_id,
                                             .fp = ms_cfi_module_keeps_fp(it->eh_hdr)};
                module_record(it, md.mods[md.n].id);
                md.n++;
            }
            if (i < md.n)
                md.mods[i].seen = true;
        }
        bool unloaded = false;
        for (size_t i = 0; i < md.n;) {
            if (md.mods[i].seen) {
                i++;
                continue;
            }
            uint8_t rec[1 + 2 * MS_VARINT_MAX], *q = rec;
            *q++ = MS_REC_UNLOAD;
            q = ms_put_varint(q, md.mods[i].id);
            q = ms_put_varint(q, ms_ticks());
            ms_meta_append(rec, (size_t)(q - rec));
            md.mods[i] = md.mods[--md.n];
            unloaded = true;
        }
        md.adds = s.adds;
        md.subs = s.subs;
        publish_modtab();
        if (unloaded)
            ms_cfi_flush();
    }
    pthread_mutex_unlock(&st.lock);
    ms_os_free(s.items, s.cap * sizeof(*s.items));
}

void ms_modules_reset(void)
{
    md.n = 0;
    md.next_id = 0;
    md.adds = md.subs = 0;
    ms_modules_scan(true);
}

/* The published module holding ip, as an index into t->e, or -1. */
static ptrdiff_t module_at(const struct modtab *t, uintptr_t ip)
{
    size_t lo = 0, hi = t ? t->n : 0;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ip < t->e[mid].lo)
            hi = mid;
        else if (ip >= t->e[mid].hi)
            lo = mid + 1;
        else
            return (ptrdiff_t)mid;
    }
    return -1;
}

/* 1: in a module that keeps frame pointers, 0: in one that does not, -1: in none. */
static int fp_module(uintptr_t ip)
{
    struct modtab *t = atomic_load_explicit(&md.tab, memory_order_acquire);
    ptrdiff_t i = module_at(t, ip);
    return i < 0 ? -1 : t->e[i].fp;
}

const uint8_t *ms_module_eh_hdr(uintptr_t ip)
{
    struct modtab *t = atomic_load_explicit(&md.tab, memory_order_acquire);
    ptrdiff_t i = module_at(t, ip);
    return i < 0 ? NULL : t->e[i].eh;
}

static bool is_terminal(uintptr_t ip)
{
    unsigned n = atomic_load_explicit(&md.nterminal, memory_order_acquire);
    for (unsigned i = 0; i < n; i++)
        if (md.terminal[i] == ip)
            return true;
    return false;
}

static void learn_terminal(uintptr_t ip)
{
    pthread_mutex_lock(&st.lock);
    unsigned n = atomic_load_explicit(&md.nterminal, memory_order_relaxed);
    if (n < 64 && !is_terminal(ip)) {
        md.terminal[n] = ip;
        atomic_store_explicit(&md.nterminal, n + 1, memory_order_release);
    }
    pthread_mutex_unlock(&st.lock);
}

/* ---- capture ---- */

void ms_thread_stack_bounds(struct ms_ring *r)
{
    pthread_attr_t attr;
    void *addr;
    size_t size;
    r->stack_lo = r->stack_hi = 0;
    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return;
    if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
        r->stack_lo = (uintptr_t)addr;
        r->stack_hi = (uintptr_t)addr + size;
    }
    pthread_attr_destroy(&attr);
}

static inline bool self_ip(uintptr_t ip)
{
    return ip >= ms_g.self_lo && ip < ms_g.self_hi;
}

/* libunwind's walk, without our own frames at the top. */
static unsigned unwind_libunwind(void **ips, unsigned depth)
{
    void *buf[MS_MAX_DEPTH + 16];
    int busy = ms_tls.busy;
    ms_tls.busy = MS_SELF; /* what libunwind allocates is not the program's */
    int n = unw_backtrace(buf, (int)(depth + 16));
    ms_tls.busy = busy;
    int skip = 0;
    while (skip < n && self_ip((uintptr_t)buf[skip]))
        skip++;
    unsigned out = 0;
    for (int i = skip; i < n && out < depth; i++)
        ips[out++] = buf[i];
    return out;
}

/*
 * The frame-pointer walk. With `checked`, a frame in a module without frame pointers ends the
 * walk: -1 (ask libunwind) when the chain seems to go on, or, when it ends there, the frames
 * so far with *end_ip set unless that frame is already known to be an outermost one.
 */
static int unwind_fp(struct ms_ring *r, void **ips, uintptr_t *slots, unsigned depth, bool checked,
                     uintptr_t *end_ip)
{
    uintptr_t *f = __builtin_frame_address(0);
    uintptr_t lo = r->stack_lo, hi = r->stack_hi;
    if (!hi)
        return -1;
    unsigned n = 0;
    while (n < depth) {
        uintptr_t ip = f[1];
        uintptr_t *next = (uintptr_t *)f[0];
        bool next_ok = (uintptr_t)next > (uintptr_t)f && (uintptr_t)next >= lo &&
                       (uintptr_t)next + 16 <= hi && ((uintptr_t)next & 7) == 0;
        if (!ip)
            break;
        if (!self_ip(ip)) {
            int fp = fp_module(ip);
            if (fp < 0)
                break; /* not code: the chain ran past its outermost frame */
            slots[n] = (uintptr_t)&f[1];
            ips[n++] = (void *)ip;
            if (checked && fp != 1) {
                if (next_ok)
                    return -1;
                if (!is_terminal(ip))
                    *end_ip = ip;
                break;
            }
        }
        if (!next_ok)
            break;
        f = next;
    }
    return (int)n;
}

/*
 * The stack cache. A thread that allocates again from the same place (the same return address
 * into the same caller, with the same stack pointer) often has the same callers above it: each
 * entry keeps a stack's return addresses and where on the stack each one was found, and a hit
 * re-reads those locations (one load a frame) instead of unwinding. If every one still holds
 * the same return address, the frames are the same call sites at the same places, and the
 * stack's id is known without unwinding or hashing. Entries are 4-way per (caller, stack
 * pointer): sqlite3, for one, reaches its allocator from different callers at the same depth.
 */
#define SC_SETS  64 /* per thread */
#define SC_WAYS  4
#define SC_DEPTH 32 /* deeper stacks are not cached */

struct sc_entry {
    uintptr_t ip0, sp0;
    uint32_t id;
    uint32_t n;
    uintptr_t ip[SC_DEPTH];
    uint32_t off[SC_DEPTH]; /* slot - sp0 + 8 */
};

struct ms_stack_cache {
    struct sc_entry e[SC_SETS][SC_WAYS];
    uint8_t next[SC_SETS]; /* the way to replace next */
};

static inline size_t sc_set(uintptr_t ip0, uintptr_t sp0)
{
    return (size_t)(((ip0 ^ (sp0 << 7)) * 0x9e3779b97f4a7c15ull) >> 58) & (SC_SETS - 1);
}

static bool sc_valid(const struct sc_entry *e, uintptr_t sp0)
{
    for (uint32_t i = 1; i < e->n; i++)
        if (*(const uintptr_t *)(sp0 - 8 + e->off[i]) != e->ip[i])
            return false;
    return true;
}

static void sc_fill(struct ms_ring *r, size_t set, uintptr_t ip0, uintptr_t sp0, void *const *ips,
                    const uintptr_t *slots, unsigned n, uint32_t id)
{
    if (n == 0 || n > SC_DEPTH || (uintptr_t)ips[0] != ip0)
        return;
    for (unsigned i = 0; i < n; i++) /* only slots on this stack, at or above slot0 */
        if (slots[i] < sp0 - 8 || slots[i] + 8 > r->stack_hi || slots[i] - sp0 + 8 > UINT32_MAX)
            return;
    struct sc_entry *e = &r->scache->e[set][r->scache->next[set]++ % SC_WAYS];
    for (unsigned i = 0; i < n; i++) {
        e->ip[i] = (uintptr_t)ips[i];
        e->off[i] = (uint32_t)(slots[i] - sp0 + 8);
    }
    e->ip0 = ip0;
    e->sp0 = sp0;
    e->id = id;
    e->n = n;
}

void ms_stack_cache_reset(struct ms_ring *r)
{
    if (!r->scache)
        r->scache = ms_os_alloc(sizeof(struct ms_stack_cache));
    else
        memset(r->scache, 0, sizeof(struct ms_stack_cache));
}

uint32_t ms_stack_capture(struct ms_ring *r)
{
    /* Our own frames keep frame pointers: the first return address out of them is the
     * caller's (ip0, at slot0); the caller's %rsp is just above it, its %rbp was saved below. */
    uintptr_t *f = __builtin_frame_address(0);
    while (self_ip(f[1]) && f[0] > (uintptr_t)f)
        f = (uintptr_t *)f[0];
    uintptr_t ip0 = f[1], sp0 = (uintptr_t)&f[2], bp0 = f[0];
    if (ms_g.unwind == MS_UNWIND_LIBUNWIND) {
        void *lips[MS_MAX_DEPTH];
        unsigned ln = unwind_libunwind(lips, ms_g.depth);
        return ln ? stack_intern(lips, ln) : 0;
    }
    bool cache = r->scache && sp0 > r->stack_lo && sp0 < r->stack_hi;
    size_t set = sc_set(ip0, sp0);
    if (cache) {
        struct sc_entry *ways = r->scache->e[set];
        for (int w = 0; w < SC_WAYS; w++)
            if (ways[w].n && ways[w].ip0 == ip0 && ways[w].sp0 == sp0 && sc_valid(&ways[w], sp0))
                return ways[w].id;
    }

    void *ips[MS_MAX_DEPTH];
    uintptr_t slots[MS_MAX_DEPTH];
    unsigned depth = ms_g.depth;
    uintptr_t end_ip = 0;
    bool have_slots = true;
    int n = -1;
    if (ms_g.unwind != MS_UNWIND_DWARF)
        n = unwind_fp(r, ips, slots, depth, ms_g.unwind == MS_UNWIND_AUTO, &end_ip);
    if (n < 0 || end_ip) {
        void *d[MS_MAX_DEPTH];
        uintptr_t dslots[MS_MAX_DEPTH];
        int dn =
            r->stack_hi ? ms_cfi_unwind(r, ip0, sp0, bp0, (uintptr_t)&f[1], d, dslots, depth) : -1;
        bool dslots_ok = dn >= 0;
        if (dn < 0)
            dn = (int)unwind_libunwind(d, depth);
        /* A walk that ended in a frame without frame pointers is right if the DWARF walk
         * agrees on every frame and finds at most two more (libc's entry points and _start):
         * then that frame is an outermost one, and later walks that end there are kept. */
        if (n >= 0 && dn >= n && dn - n <= 2 && memcmp(d, ips, (size_t)n * sizeof(void *)) == 0) {
            learn_terminal(end_ip);
        } else {
            memcpy(ips, d, (size_t)dn * sizeof(void *));
            memcpy(slots, dslots, (size_t)dn * sizeof(uintptr_t));
            have_slots = dslots_ok;
            n = dn;
        }
    }
    if (n <= 0)
        return 0;
    uint32_t id = stack_intern(ips, (unsigned)n);
    if (cache && have_slots && id)
        sc_fill(r, set, ip0, sp0, ips, slots, (unsigned)n, id);
    return id;
}

int ms_stacks_init(void)
{
    struct stab *t = stab_new(1u << 14);
    if (!t)
        return -1;
    atomic_store_explicit(&st.stab, t, memory_order_release);
    unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
    return ms_cfi_init();
}

/* In a fork child: the new file has no stacks yet, so ids start again from 1. The old
 * tables stay mapped (another thread of the parent cannot be reading them in the child). */
void ms_stacks_reset(void)
{
    st.nodes = 0;
    st.nmap_count = 0;
    if (st.nmap)
        memset(st.nmap, 0, st.nmap_cap * sizeof(*st.nmap));
    ms_stacks_init();
}

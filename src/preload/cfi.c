/*
 * cfi.c - a small x86-64 unwinder over .eh_frame, with the rule of each return address cached.
 *
 * libunwind's unw_backtrace costs about 8 ns a frame here, and its step-by-step interface (the
 * only one that says where each return address lies on the stack, which the stack cache in
 * stacks.c needs) makes a system call per frame. What compilers emit for ordinary x86-64 code
 * needs far less: at any return address, CFA = %rsp + n or %rbp + n, the return address is at
 * CFA - 8, and %rbp is either unchanged or saved at CFA + m. This file finds that rule for a
 * return address once (the FDE through .eh_frame_hdr's search table, then the CFA program run
 * up to the call), keeps it in a table read without a lock, and then unwinds with a lookup and
 * two or three loads a frame. Anything else (CFA expressions as in PLT stubs and signal
 * frames, %rbp kept in another register, a module without .eh_frame_hdr) returns -1, and the
 * caller asks libunwind.
 */
#include "preload.h"

#include <string.h>

#define DW_RBP 6
#define DW_RSP 7
#define DW_RA  16

enum { RULE_OK = 1, RULE_END = 2, RULE_BAD = 3 }; /* END: the return address is undefined */

struct rule {
    _Atomic uintptr_t ip; /* 0: empty */
    int32_t cfa_off;
    int32_t rbp_off; /* where %rbp is saved, from the CFA; 0: not saved (unchanged) */
    uint8_t cfa_reg; /* DW_RSP or DW_RBP */
    uint8_t kind;    /* RULE_* */
};

#define RULES (1u << 16) /* 1.5 MiB; when full, rules are computed each time */

static struct rule *_Atomic rules;
static pthread_mutex_t rules_lock = PTHREAD_MUTEX_INITIALIZER;
static size_t nrules;

static uint64_t uleb(const uint8_t **p, const uint8_t *end)
{
    uint64_t v = 0;
    for (unsigned s = 0; *p < end && s < 64; s += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << s;
        if (!(b & 0x80))
            break;
    }
    return v;
}

static int64_t sleb(const uint8_t **p, const uint8_t *end)
{
    int64_t v = 0;
    unsigned s = 0;
    uint8_t b = 0;
    while (*p < end && s < 64) {
        b = *(*p)++;
        v |= (int64_t)(b & 0x7f) << s;
        s += 7;
        if (!(b & 0x80))
            break;
    }
    if (s < 64 && (b & 0x40))
        v |= -((int64_t)1 << s);
    return v;
}

/* Reads a pointer in DWARF encoding `enc` at *p; only what binutils and gcc write. */
static bool read_enc(const uint8_t **p, const uint8_t *end, uint8_t enc, uintptr_t *out)
{
    const uint8_t *at = *p;
    int64_t v;
    switch (enc & 0x0f) {
    case 0x00: /* absptr */
    case 0x04: /* udata8 */
    case 0x0c: /* sdata8 */
        if (end - at < 8)
            return false;
        memcpy(&v, at, 8);
        *p += 8;
        break;
    case 0x03: { /* udata4 */
        uint32_t u;
        if (end - at < 4)
            return false;
        memcpy(&u, at, 4);
        v = u;
        *p += 4;
        break;
    }
    case 0x0b: { /* sdata4 */
        int32_t s;
        if (end - at < 4)
            return false;
        memcpy(&s, at, 4);
        v = s;
        *p += 4;
        break;
    }
    default:
        return false;
    }
    switch (enc & 0x70) {
    case 0x00:
        *out = (uintptr_t)v;
        return true;
    case 0x10: /* pcrel */
        *out = (uintptr_t)at + (uintptr_t)v;
        return true;
    default:
        return false;
    }
}

struct state {
    uint8_t cfa_reg;
    int64_t cfa_off;
    int64_t rbp_off;
    bool rbp_other; /* %rbp is somewhere we do not follow */
    bool ra_undefined;
};

struct cie {
    int64_t code_align, data_align;
    uint8_t fde_enc;
    bool aug_z;
    const uint8_t *insns, *end;
};

static bool parse_cie(const uint8_t *cie, struct cie *c)
{
    uint32_t len;
    memcpy(&len, cie, 4);
    if (len == 0 || len == 0xffffffffu)
        return false;
    const uint8_t *end = cie + 4 + len, *p = cie + 8;
    uint8_t version = *p++;
    const char *aug = (const char *)p;
    size_t alen = strnlen(aug, (size_t)(end - p));
    p += alen + 1;
    c->code_align = (int64_t)uleb(&p, end);
    c->data_align = sleb(&p, end);
    if (version == 1)
        p++;
    else
        uleb(&p, end);
    c->fde_enc = 0;
    c->aug_z = aug[0] == 'z';
    if (c->aug_z) {
        uint64_t n = uleb(&p, end);
        const uint8_t *data_end = p + n;
        for (const char *a = aug + 1; *a && p < data_end; a++) {
            if (*a == 'R') {
                c->fde_enc = *p++;
            } else if (*a == 'L') {
                p++;
            } else if (*a == 'P') {
                uint8_t penc = *p++;
                uintptr_t ignored;
                if (!read_enc(&p, data_end, penc, &ignored))
                    return false;
            } else if (*a != 'S' && *a != 'B') {
                return false;
            }
        }
        p = data_end;
    }
    c->insns = p;
    c->end = end;
    return p <= end;
}

/* Runs CFA instructions [p, end) from location loc while loc <= target. false: unsupported. */
static bool run(const uint8_t *p, const uint8_t *end, const struct cie *c, uintptr_t loc,
                uintptr_t target, struct state *s, const struct state *initial, uint8_t fde_enc)
{
    struct state saved[8];
    int nsaved = 0;
    while (p < end) {
        uint8_t op = *p++;
        uint64_t reg;
        int64_t off;
        switch (op & 0xc0) {
        case 0x40: /* advance_loc */
            loc += (uintptr_t)((op & 0x3f) * c->code_align);
            if (loc > target)
                return true;
            continue;
        case 0x80: /* offset: reg saved at CFA + uleb * data_align */
            off = (int64_t)uleb(&p, end) * c->data_align;
            if ((op & 0x3f) == DW_RBP) {
                s->rbp_off = off;
                s->rbp_other = false;
            }
            continue;
        case 0xc0: /* restore */
            if ((op & 0x3f) == DW_RBP) {
                s->rbp_off = initial->rbp_off;
                s->rbp_other = initial->rbp_other;
            }
            continue;
        }
        switch (op) {
        case 0x00: /* nop */
            break;
        case 0x01: { /* set_loc */
            uintptr_t a;
            if (!read_enc(&p, end, fde_enc, &a))
                return false;
            loc = a;
            if (loc > target)
                return true;
            break;
        }
        case 0x02:
        case 0x03:
        case 0x04: { /* advance_loc1/2/4 */
            size_t n = op == 0x02 ? 1 : op == 0x03 ? 2 : 4;
            uint32_t d = 0;
            if ((size_t)(end - p) < n)
                return false;
            memcpy(&d, p, n);
            p += n;
            loc += (uintptr_t)(d * (uint64_t)c->code_align);
            if (loc > target)
                return true;
            break;
        }
        case 0x05: /* offset_extended */
        case 0x11: /* offset_extended_sf */
            reg = uleb(&p, end);
            off =
                op == 0x05 ? (int64_t)uleb(&p, end) * c->data_align : sleb(&p, end) * c->data_align;
            if (reg == DW_RBP) {
                s->rbp_off = off;
                s->rbp_other = false;
            }
            break;
        case 0x06: /* restore_extended */
            if (uleb(&p, end) == DW_RBP) {
                s->rbp_off = initial->rbp_off;
                s->rbp_other = initial->rbp_other;
            }
            break;
        case 0x07: /* undefined */
            reg = uleb(&p, end);
            if (reg == DW_RA)
                s->ra_undefined = true;
            else if (reg == DW_RBP)
                s->rbp_other = true;
            break;
        case 0x08: /* same_value */
            if (uleb(&p, end) == DW_RBP) {
                s->rbp_off = 0;
                s->rbp_other = false;
            }
            break;
        case 0x09: /* register */
            reg = uleb(&p, end);
            uleb(&p, end);
            if (reg == DW_RBP || reg == DW_RA)
                return false;
            break;
        case 0x0a: /* remember_state */
            if (nsaved == 8)
                return false;
            saved[nsaved++] = *s;
            break;
        case 0x0b: /* restore_state */
            if (nsaved == 0)
                return false;
            *s = saved[--nsaved];
            break;
        case 0x0c: /* def_cfa */
            s->cfa_reg = (uint8_t)uleb(&p, end);
            s->cfa_off = (int64_t)uleb(&p, end);
            break;
        case 0x0d: /* def_cfa_register */
            s->cfa_reg = (uint8_t)uleb(&p, end);
            break;
        case 0x0e: /* def_cfa_offset */
            s->cfa_off = (int64_t)uleb(&p, end);
            break;
        case 0x12: /* def_cfa_sf */
            s->cfa_reg = (uint8_t)uleb(&p, end);
            s->cfa_off = sleb(&p, end) * c->data_align;
            break;
        case 0x13: /* def_cfa_offset_sf */
            s->cfa_off = sleb(&p, end) * c->data_align;
            break;
        case 0x0f: /* def_cfa_expression */
            return false;
        case 0x10: /* expression */
        case 0x16: /* val_expression */
            reg = uleb(&p, end);
            if (reg == DW_RBP || reg == DW_RA)
                return false;
            p += uleb(&p, end);
            break;
        case 0x14: /* val_offset */
        case 0x15: /* val_offset_sf */
            reg = uleb(&p, end);
            if (reg == DW_RBP || reg == DW_RA)
                return false;
            if (op == 0x14)
                uleb(&p, end);
            else
                sleb(&p, end);
            break;
        case 0x2e: /* GNU_args_size */
            uleb(&p, end);
            break;
        case 0x2f: /* GNU_negative_offset_extended */
            reg = uleb(&p, end);
            off = -(int64_t)uleb(&p, end) * c->data_align;
            if (reg == DW_RBP) {
                s->rbp_off = off;
                s->rbp_other = false;
            }
            break;
        default:
            return false;
        }
    }
    return true;
}

/* The search table of an .eh_frame_hdr: count entries of (initial location, FDE), both as
 * int32 offsets from hdr. Only the datarel|sdata4 table that binutils writes is read. */
static const uint8_t *hdr_table(const uint8_t *hdr, uint32_t *count)
{
    if (!hdr || hdr[0] != 1 || hdr[2] != 0x03 || hdr[3] != 0x3b)
        return NULL;
    const uint8_t *p = hdr + 4;
    uintptr_t ignored;
    if (!read_enc(&p, hdr + 4 + 16, hdr[1], &ignored))
        return NULL;
    memcpy(count, p, 4);
    return p + 4;
}

/* The CFA state of FDE fde at address `at` (UINTPTR_MAX: its middle); false when the FDE is
 * malformed, uses what run() cannot follow, or does not cover `at`. */
static bool fde_state(const uint8_t *fde, uintptr_t at, struct state *s)
{
    uint32_t len;
    int32_t cie_off;
    memcpy(&len, fde, 4);
    memcpy(&cie_off, fde + 4, 4);
    if (len == 0 || len == 0xffffffffu || cie_off == 0)
        return false;
    struct cie c;
    if (!parse_cie(fde + 4 - cie_off, &c))
        return false;
    const uint8_t *fend = fde + 4 + len, *p = fde + 8;
    uintptr_t start, range;
    if (!read_enc(&p, fend, c.fde_enc, &start) || !read_enc(&p, fend, c.fde_enc & 0x0f, &range))
        return false;
    if (at == UINTPTR_MAX)
        at = start + range / 2;
    if (at < start || at >= start + range)
        return false;
    if (c.aug_z)
        p += uleb(&p, fend);
    *s = (struct state){.cfa_reg = DW_RSP, .cfa_off = 8};
    if (!run(c.insns, c.end, &c, 0, UINTPTR_MAX, s, s, c.fde_enc))
        return false;
    struct state initial = *s;
    return run(p, fend, &c, start, at, s, &initial, c.fde_enc);
}

/* The rule at return address ip (the call is at ip - 1). */
static uint8_t compute(uintptr_t ip, struct rule *out)
{
    const uint8_t *hdr = ms_module_eh_hdr(ip);
    uint32_t count;
    const uint8_t *table = hdr_table(hdr, &count);
    if (!table)
        return RULE_BAD;
    uintptr_t target = ip - 1;
    /* the last entry whose initial location is <= target */
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int32_t loc;
        memcpy(&loc, table + 8 * mid, 4);
        if ((uintptr_t)hdr + (intptr_t)loc <= target)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return RULE_BAD;
    int32_t fde_off;
    memcpy(&fde_off, table + 8 * (lo - 1) + 4, 4);
    struct state s;
    if (!fde_state(hdr + fde_off, target, &s))
        return RULE_BAD;
    if (s.ra_undefined)
        return RULE_END;
    if ((s.cfa_reg != DW_RSP && s.cfa_reg != DW_RBP) || s.rbp_other || s.cfa_off <= 0 ||
        s.cfa_off > INT32_MAX || s.rbp_off < INT32_MIN || s.rbp_off > 0)
        return RULE_BAD;
    out->cfa_reg = s.cfa_reg;
    out->cfa_off = (int32_t)s.cfa_off;
    out->rbp_off = (int32_t)s.rbp_off;
    return RULE_OK;
}

bool ms_cfi_module_keeps_fp(const uint8_t *eh_hdr)
{
    uint32_t count;
    const uint8_t *table = hdr_table(eh_hdr, &count);
    if (!table || count == 0)
        return false;
    uint32_t step = count > 512 ? count / 512 : 1, seen = 0, rbp = 0;
    for (uint32_t i = 0; i < count; i += step) {
        int32_t off;
        memcpy(&off, table + 8 * (size_t)i + 4, 4);
        struct state s;
        rbp += fde_state(eh_hdr + off, UINTPTR_MAX, &s) && s.cfa_reg == DW_RBP;
        seen++;
    }
    return rbp * 2 > seen;
}

static inline size_t rule_home(uintptr_t ip)
{
    return (size_t)((ip * 0x9e3779b97f4a7c15ull) >> 40) & (RULES - 1);
}

/* The cached rule of ip, computing and caching it the first time. */
static struct rule rule_of(uintptr_t ip)
{
    struct rule r = {0};
    struct rule *t = atomic_load_explicit(&rules, memory_order_acquire);
    if (t) {
        for (size_t j = rule_home(ip), k = 0; k < 32; j = (j + 1) & (RULES - 1), k++) {
            uintptr_t key = atomic_load_explicit(&t[j].ip, memory_order_acquire);
            if (key == ip) {
                r.cfa_off = t[j].cfa_off;
                r.rbp_off = t[j].rbp_off;
                r.cfa_reg = t[j].cfa_reg;
                r.kind = t[j].kind;
                return r;
            }
            if (!key)
                break;
        }
    }
    r.kind = compute(ip, &r);
    pthread_mutex_lock(&rules_lock);
    t = atomic_load_explicit(&rules, memory_order_relaxed);
    if (t && nrules < RULES / 2) {
        size_t j = rule_home(ip);
        for (size_t k = 0; k < 32; j = (j + 1) & (RULES - 1), k++) {
            uintptr_t key = atomic_load_explicit(&t[j].ip, memory_order_relaxed);
            if (key == ip)
                break;
            if (!key) {
                t[j].cfa_off = r.cfa_off;
                t[j].rbp_off = r.rbp_off;
                t[j].cfa_reg = r.cfa_reg;
                t[j].kind = r.kind;
                atomic_store_explicit(&t[j].ip, ip, memory_order_release);
                nrules++;
                break;
            }
        }
    }
    pthread_mutex_unlock(&rules_lock);
    return r;
}

int ms_cfi_init(void)
{
    if (!atomic_load(&rules))
        atomic_store(&rules, ms_os_alloc(RULES * sizeof(struct rule)));
    return atomic_load(&rules) ? 0 : -1;
}

/* Forgets every rule: modules were unloaded, and others may now lie at their addresses. */
void ms_cfi_flush(void)
{
    pthread_mutex_lock(&rules_lock);
    struct rule *fresh = ms_os_alloc(RULES * sizeof(struct rule));
    if (fresh) { /* the old table stays mapped: a reader may still be in it */
        atomic_store_explicit(&rules, fresh, memory_order_release);
        nrules = 0;
    }
    pthread_mutex_unlock(&rules_lock);
}

int ms_cfi_unwind(const struct ms_ring *r, uintptr_t ip, uintptr_t sp, uintptr_t bp, uintptr_t slot,
                  void **ips, uintptr_t *slots, unsigned depth)
{
    uintptr_t lo = r->stack_lo, hi = r->stack_hi;
    unsigned n = 0;
    while (n < depth) {
        ips[n] = (void *)ip;
        slots[n++] = slot;
        struct rule rl = rule_of(ip);
        if (rl.kind == RULE_END)
            return (int)n;
        if (rl.kind != RULE_OK)
            return -1;
        uintptr_t cfa = (rl.cfa_reg == DW_RSP ? sp : bp) + (uintptr_t)(intptr_t)rl.cfa_off;
        if (cfa <= sp || cfa < lo + 8 || cfa > hi || (cfa & 7))
            return -1;
        if (rl.rbp_off) {
            uintptr_t at = cfa + (uintptr_t)(intptr_t)rl.rbp_off;
            if (at < lo || at + 8 > hi)
                return -1;
            bp = *(const uintptr_t *)at;
        }
        slot = cfa - 8;
        ip = *(const uintptr_t *)slot;
        sp = cfa;
        if (!ip)
            return (int)n;
    }
    return (int)n;
}

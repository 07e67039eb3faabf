/*
 * ptrmap.c - the 64-bit-keyed hash map of ptrmap.h: a power-of-two table of (key, val)
 * entries, probed linearly from a Fibonacci hash, grown to twice its size before it is half
 * full; the key 0 marks an empty slot, so a key 0 is kept beside the table.
 */
#include "ptrmap.h"

#include "memsnap.h"

#include <stdlib.h>
#include <string.h>

static inline size_t home(const struct ms__ptrmap *m, uint64_t key)
{
    return (size_t)((key * UINT64_C(0x9e3779b97f4a7c15)) >> m->shift);
}

static int ptrmap_alloc(struct ms__ptrmap *m, size_t cap)
{
    unsigned bits = 4;
    while (((size_t)1 << bits) < cap) {
        if (bits >= 60)
            return MS_ENOMEM;
        bits++;
    }
    struct ms__ptrmap_entry *e = calloc((size_t)1 << bits, sizeof(*e));
    if (!e)
        return MS_ENOMEM;
    m->e = e;
    m->mask = ((size_t)1 << bits) - 1;
    m->shift = 64 - bits;
    return 0;
}

int ms__ptrmap_init(struct ms__ptrmap *m, size_t expect)
{
    memset(m, 0, sizeof(*m));
    return ptrmap_alloc(m, expect < 8 ? 16 : expect * 2);
}

void ms__ptrmap_free(struct ms__ptrmap *m)
{
    free(m->e);
    memset(m, 0, sizeof(*m));
}

void ms__ptrmap_clear(struct ms__ptrmap *m)
{
    memset(m->e, 0, (m->mask + 1) * sizeof(*m->e));
    m->count = 0;
    m->has_zero = false;
}

static int ptrmap_grow(struct ms__ptrmap *m)
{
    struct ms__ptrmap old = *m;
    if (ptrmap_alloc(m, (old.mask + 1) * 2) != 0) {
        *m = old;
        return MS_ENOMEM;
    }
    for (size_t i = 0; i <= old.mask; i++) {
        if (!old.e[i].key)
            continue;
        size_t h = home(m, old.e[i].key);
        while (m->e[h].key)
            h = (h + 1) & m->mask;
        m->e[h] = old.e[i];
    }
    free(old.e);
    return 0;
}

int ms__ptrmap_put(struct ms__ptrmap *m, uint64_t key, uint64_t val, uint64_t *old)
{
    if (key == 0) {
        int had = m->has_zero;
        *old = m->zero_val;
        if (!had)
            m->count++;
        m->has_zero = true;
        m->zero_val = val;
        return had;
    }
    if ((m->count + 1) * 2 > m->mask + 1 && ptrmap_grow(m) != 0)
        return MS_ENOMEM;
    size_t h = home(m, key);
    for (;;) {
        struct ms__ptrmap_entry *e = &m->e[h];
        if (e->key == key) {
            *old = e->val;
            e->val = val;
            return 1;
        }
        if (!e->key) {
            e->key = key;
            e->val = val;
            m->count++;
            return 0;
        }
        h = (h + 1) & m->mask;
    }
}

bool ms__ptrmap_get(const struct ms__ptrmap *m, uint64_t key, uint64_t *val)
{
    if (key == 0) {
        *val = m->zero_val;
        return m->has_zero;
    }
    for (size_t h = home(m, key);; h = (h + 1) & m->mask) {
        const struct ms__ptrmap_entry *e = &m->e[h];
        if (e->key == key) {
            *val = e->val;
            return true;
        }
        if (!e->key)
            return false;
    }
}

bool ms__ptrmap_remove(struct ms__ptrmap *m, uint64_t key, uint64_t *val)
{
    if (key == 0) {
        if (!m->has_zero)
            return false;
        *val = m->zero_val;
        m->has_zero = false;
        m->count--;
        return true;
    }
    size_t i = home(m, key);
    for (;; i = (i + 1) & m->mask) {
        if (m->e[i].key == key)
            break;
        if (!m->e[i].key)
            return false;
    }
    *val = m->e[i].val;
    m->count--;
    /* backward shift: pull later entries of the probe run into the hole */
    for (size_t j = i;;) {
        j = (j + 1) & m->mask;
        if (!m->e[j].key)
            break;
        size_t k = home(m, m->e[j].key);
        /* the entry at j may move to i unless its home lies cyclically in (i, j] */
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (stays)
            continue;
        m->e[i] = m->e[j];
        i = j;
    }
    m->e[i].key = 0;
    return true;
}

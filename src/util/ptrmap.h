/*
 * ptrmap.h - a hash map from 64-bit keys to 64-bit values (internal), like heaptrack's
 * src/util/pointermap.h: one implementation for every address- or id-keyed table of the
 * library.
 */
#ifndef MEMSNAP_UTIL_PTRMAP_H
#define MEMSNAP_UTIL_PTRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A map from 64-bit keys (addresses, ids) to 64-bit values: open addressing with linear
 * probing (Fibonacci hashing) and backward-shift deletion, at most half full. Any key is
 * allowed, 0 included. The loader keys modules by (image, id) with it, a replay of mmap calls
 * keys mappings by address, and the engine and the symbolizer key their caches with it. */
struct ms__ptrmap_entry {
    uint64_t key; /* 0: an empty slot (the key 0 lives in zero_val) */
    uint64_t val;
};
struct ms__ptrmap {
    struct ms__ptrmap_entry *e;
    size_t mask;    /* capacity - 1, capacity a power of two */
    unsigned shift; /* 64 - log2(capacity) */
    size_t count;   /* keys held, the key 0 included */
    bool has_zero;
    uint64_t zero_val;
};

/* Makes m an empty map with room for about expect keys before it grows; 0 or MS_ENOMEM. */
int ms__ptrmap_init(struct ms__ptrmap *m, size_t expect);
/* Frees m's table (m is then empty and must be initialized again before use). */
void ms__ptrmap_free(struct ms__ptrmap *m);
/* Removes every key, keeping the table's capacity. */
void ms__ptrmap_clear(struct ms__ptrmap *m);
/* Sets key to val; returns 1 and the previous value in *old when key was present, 0 when it
 * was added, MS_ENOMEM when growing failed. */
int ms__ptrmap_put(struct ms__ptrmap *m, uint64_t key, uint64_t val, uint64_t *old);
/* Looks key up; returns true and its value in *val when it is present. */
bool ms__ptrmap_get(const struct ms__ptrmap *m, uint64_t key, uint64_t *val);
/* Removes key; returns true and its value in *val when it was present. */
bool ms__ptrmap_remove(struct ms__ptrmap *m, uint64_t key, uint64_t *val);

#endif

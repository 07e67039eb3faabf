/*
 * heap_internal.h - what the public heap API (heap.c) shares with its renderer (heap_write.c),
 * internal to libmemsnap: the handles behind ms_heap and ms_heap_view.
 */
#ifndef MS_ENGINE_HEAP_INTERNAL_H
#define MS_ENGINE_HEAP_INTERNAL_H

#include "memsnap.h"

#include "engine.h"

/* Which query made a view: it names the view in the text header ("peak at ..."). */
enum ms__view_kind { MS__VIEW_AT, MS__VIEW_PEAK, MS__VIEW_LEAKS, MS__VIEW_DIFF };

struct ms_heap {
    struct ms__engine *e;
    struct ms__symbolizer *sym;
    bool sym_tried;
    ms_heap_thread *threads; /* ms_heap_threads(), computed on its first call */
    size_t nthreads;
};

struct ms_heap_view {
    struct ms__heap_view v;
    enum ms__view_kind kind;
};

/* The engine's grouping for each ms_heap_by (heap.c). */
extern const enum ms__group_by ms__heap_group_by[MS_HEAP_BY_THREAD + 1];
/* h's symbolizer, opened on first use; NULL when it could not open (frames are then
 * module+offset). */
struct ms__symbolizer *ms__heap_symbolizer(ms_heap *h);
/* Sorts grouped rows most blocks first (by magnitude: a diff's shrinking sites too), then by
 * bytes: MS_HEAP_ORDER_COUNT. */
void ms__heap_sort_by_count(struct ms__group_row *rows, size_t n);

#endif

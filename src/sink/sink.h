/*
 * sink.h - the writer interface every output format implements.
 *
 * A sink is a table of three functions over one ms_writer; adding a format is one new file
 * with its table, listed in writer.c.
 */
#ifndef MEMSNAP_SINK_H
#define MEMSNAP_SINK_H

#include "../core/internal.h"

struct ms__sink_ops {
    const char *name;                                        /* "text", "json", "csv" */
    void (*begin)(ms_writer *w, const ms_snapshot *first);   /* before the first snapshot */
    void (*snapshot)(ms_writer *w, const ms_snapshot *snap); /* one snapshot */
    void (*end)(ms_writer *w);                               /* after the last one */
};

struct ms_writer {
    const struct ms__sink_ops *ops;
    FILE *fp;     /* the stream written to; not owned */
    size_t count; /* snapshots written so far */
    int csv_gpus; /* CSV: GPUs with columns (those of the first snapshot), -1: no GPU columns */
};

extern const struct ms__sink_ops ms__sink_text;
extern const struct ms__sink_ops ms__sink_json;
extern const struct ms__sink_ops ms__sink_csv;

/* Formats timestamp_ns as "2026-11-23T01:30:00.123456789Z" into buf (at least 40 bytes). */
void ms__iso_time(char *buf, size_t len, uint64_t ns);

#endif /* MEMSNAP_SINK_H */

/*
 * writer.h - the timeline writer's backends (writer.c drives them; writer_json.c and
 * writer_csv.c, one each, listed in ms__tl_backends). Internal to libmemsnap.
 *
 * A backend composes one record into the writer's memory stream (w->mf); writer.c hands the
 * text on whole and feeds the flight recorder. Adding a format is one new file with one
 * struct ms__tl_backend, and its entry in the list in writer.c.
 */
#ifndef MEMSNAP_TIMELINE_WRITER_H
#define MEMSNAP_TIMELINE_WRITER_H

#include "../core/internal.h"

#include <stdio.h>

/* A record other than a sample, as either backend writes it. */
struct ms__tl_event {
    const char *record; /* "start", "alert", "marker", "oom", "end" */
    uint64_t time_ns;
    int64_t seq; /* the sample's, -1: none */
    /* start */
    pid_t pid;
    const ms_snapshot *limits; /* the first full sample, NULL: none */
    /* alert */
    const char *level, *metric;
    uint64_t used, limit;
    double pct;
    /* marker */
    const char *label;
    /* oom */
    const char *reason, *backend, *bundle;
    /* end */
    int exit_status, signal; /* -1: none */
};

struct ms_timeline_writer {
    ms_timeline_writer_options o;
    char **argv; /* o.argv copied, NULL-terminated; NULL: none */
    char *job_id, *trace;
    const struct ms__tl_backend *be;
    FILE *mf; /* the record being composed */
    char *mbuf;
    size_t mlen;
    ms_writer *sw; /* the snapshot sink of the format, on mf */
    bool failed;   /* the output failed: nothing more is written to it */
    bool started;  /* the start record is out */
    uint64_t seq;  /* samples written */
    /* JSON: statm-only samples put together from the last full sample's text
     * (writer_json.c) */
    char *lt;        /* ident, then mid, then rest, then room for the record */
    size_t lt_ident; /* `,"job_id":...,"world_size":...` */
    size_t lt_mid;   /* `,"label":...,"process":{` */
    size_t lt_rest;  /* `,"<the first process field after statm's>":...` to the snapshot's end */
    size_t lt_cap;   /* bytes at lt */
    bool lt_ok;      /* the three are there */
    /* CSV */
    unsigned csv_snap_cols; /* columns of the snapshot's part */
};

struct ms__tl_backend {
    ms_format format;
    /* The header, composed in w->mf before the first record (NULL: none). 0 or -1. */
    int (*header)(ms_timeline_writer *w);
    /* Composes an event record in w->mf. */
    void (*event)(ms_timeline_writer *w, const struct ms__tl_event *e);
    /* Composes the sample record of s in w->mf. */
    void (*sample)(ms_timeline_writer *w, const ms_sample *s);
    /* Writes a statm-only sample without composing it (true), or false: compose it. NULL: no
     * fast path. */
    bool (*light)(ms_timeline_writer *w, const ms_sample *s);
};

extern const struct ms__tl_backend ms__tl_json, ms__tl_csv;

/* Starts composing a record in w->mf. */
void ms__tl_begin(ms_timeline_writer *w);
/* Ends it: its text is w->mbuf, w->mlen bytes. 0, or -1 when composing failed. */
int ms__tl_end(ms_timeline_writer *w);
/* Hands len bytes at rec on as one record (nothing once the output failed). */
void ms__tl_put(ms_timeline_writer *w, const char *rec, size_t len);

/* The common head of a record: JSON `{"record":..,"time_ns":..,` and the job identity (no
 * closing brace), or the CSV cells record,seq,time_ns,job_id,rank,world_size. */
void ms__tl_head_json(const ms_timeline_writer *w, FILE *fp, const char *record, uint64_t time_ns);
/* The host limits of the start record, in JSON or as key=value pairs. */
void ms__tl_limits(const ms_snapshot *s, FILE *fp, bool json);
/* The sum over the GPUs of one GPU field: false when a GPU lacks it. */
bool ms__tl_gpu_sum(const ms_snapshot *s, int field, uint64_t *sum);
/* The tree's sums: RSS (members without one count 0), PSS (false when one lacks it). */
void ms__tl_tree_sums(const ms_sample *s, uint64_t *rss, uint64_t *pss, bool *pss_ok);
/* The sample's pss_age_ns (since the walk that read PSS and USS; 0 when the clock went back)
 * as decimal text into age, or `none` when no walk has read them yet. */
void ms__tl_pss_age(const ms_sample *smp, char age[24], const char *none);

#endif /* MEMSNAP_TIMELINE_WRITER_H */

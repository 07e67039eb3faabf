/*
 * writer_csv.c - the timeline writer's CSV backend: a header, then one row per record; the
 * snapshot's columns come from the CSV sink (docs/monitor-format.md, "CSV").
 */
#include "writer.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* The CSV columns after the snapshot's: GPU sums, the tree, the event, `full` and the age of
 * the PSS figures. */
static const char ms__csv_tail[] =
    "gpu.count,gpu.total_bytes,gpu.used_bytes,gpu.process_used_bytes,tree.processes,"
    "tree.rss_bytes,tree.pss_bytes,event.level,event.metric,event.used_bytes,event.limit_bytes,"
    "event.percent,event.text,full,pss_age_ns";

/* Writes str as one CSV cell (RFC 4180 quoting). Bytes that are not UTF-8 (a command line or
 * a job id from a Latin-1 shell) become U+FFFD, as in the JSON format, so that every reader
 * (analyze, Python's csv, a spreadsheet) takes the file. */
static void ms__csv_cell(FILE *fp, const char *str)
{
    char *clean = NULL;
    for (const unsigned char *p = (const unsigned char *)str; *p; p++) {
        if (*p >= 0x80) { /* not ASCII: checked (out of memory: one U+FFFD for the cell) */
            clean = ms_utf8_clean(str, strlen(str), NULL);
            str = clean ? clean : "\xef\xbf\xbd";
            break;
        }
    }
    ms__csv_string(fp, str);
    free(clean);
}

/* The cells record,seq,time_ns,job_id,rank,world_size. */
static void ms__csv_head(const ms_timeline_writer *w, FILE *fp, const char *record, int64_t seq,
                         uint64_t time_ns)
{
    fprintf(fp, "%s,", record);
    if (seq >= 0)
        fprintf(fp, "%" PRId64, seq);
    fprintf(fp, ",%" PRIu64 ",", time_ns);
    if (w->job_id)
        ms__csv_cell(fp, w->job_id);
    fputc(',', fp);
    if (w->o.rank >= 0)
        fprintf(fp, "%" PRId64, w->o.rank);
    fputc(',', fp);
    if (w->o.world_size >= 0)
        fprintf(fp, "%" PRId64, w->o.world_size);
}

/* The header, taking the snapshot's columns from the CSV sink: a first, empty snapshot
 * written to w->sw gives its header line (GPU columns off), and later rows come without one. */
static int ms__csv_header(ms_timeline_writer *w)
{
    static ms_snapshot empty; /* large: not on the stack; the same zeros every time */
    ms_snapshot_init(&empty);
    ms__tl_begin(w);
    if (ms_writer_snapshot(w->sw, &empty) != 0 || ms__tl_end(w) != 0)
        return -1;
    char *nl = memchr(w->mbuf, '\n', w->mlen);
    if (!nl)
        return -1;
    size_t hlen = (size_t)(nl - w->mbuf);
    char *snap_header = strndup(w->mbuf, hlen);
    if (!snap_header)
        return -1;
    w->csv_snap_cols = 1;
    for (size_t i = 0; i < hlen; i++)
        w->csv_snap_cols += snap_header[i] == ',';
    ms__tl_begin(w);
    fprintf(w->mf, "record,seq,time_ns,job_id,rank,world_size,%s,%s\n", snap_header, ms__csv_tail);
    free(snap_header);
    return ms__tl_end(w);
}

/* The key=value text of a start, marker, oom or end row. */
static void ms__csv_text(const ms_timeline_writer *w, const struct ms__tl_event *e, FILE *t)
{
    const ms_timeline_writer_options *o = &w->o;
    if (strcmp(e->record, "start") == 0) {
        fprintf(t, "pid=%d;interval_s=%.9g;full_interval_s=%.9g;tree=%s;", (int)e->pid,
                (double)o->interval_ns / 1e9, (double)o->full_interval_ns / 1e9,
                o->tree ? "true" : "false");
        ms__tl_limits(e->limits, t, false);
        fputs(";warning_pct=", t);
        if (o->warning_pct > 0)
            fprintf(t, "%.9g", o->warning_pct);
        fputs(";critical_pct=", t);
        if (o->critical_pct > 0)
            fprintf(t, "%.9g", o->critical_pct);
        fputs(";memory_limit_bytes=", t);
        if (o->memory_limit_bytes)
            fprintf(t, "%" PRIu64, o->memory_limit_bytes);
        fprintf(t, ";trace=%s;command=", w->trace ? w->trace : "");
        for (int i = 0; w->argv && w->argv[i]; i++)
            fprintf(t, "%s%s", i ? " " : "", w->argv[i]);
    } else if (strcmp(e->record, "marker") == 0) {
        fprintf(t, "label=%s", e->label);
    } else if (strcmp(e->record, "oom") == 0) {
        fprintf(t, "reason=%s;pid=%d;bundle=%s", e->reason, (int)e->pid,
                e->bundle ? e->bundle : "");
    } else {
        fprintf(t, "reason=%s;samples=%" PRIu64 ";exit_status=", e->reason, w->seq);
        if (e->exit_status >= 0)
            fprintf(t, "%d", e->exit_status);
        fputs(";signal=", t);
        if (e->signal > 0)
            fprintf(t, "%d", e->signal);
    }
}

/* An event row: empty snapshot, GPU and tree cells, then the event's. */
static void ms__csv_event(ms_timeline_writer *w, const struct ms__tl_event *e)
{
    FILE *fp = w->mf;
    ms__csv_head(w, fp, e->record, e->seq, e->time_ns);
    for (unsigned i = 0; i < w->csv_snap_cols + 7; i++)
        fputc(',', fp);
    if (strcmp(e->record, "alert") == 0) {
        fprintf(fp, ",%s,%s,%" PRIu64 ",%" PRIu64 ",%.2f,", e->level, e->metric, e->used, e->limit,
                e->pct);
    } else {
        /* level, metric, used, limit, percent empty; the text carries key=value pairs */
        fputs(",,", fp);
        if (strcmp(e->record, "oom") == 0)
            fputs(e->backend, fp);
        fputs(",,,,", fp);
        char *text = NULL;
        size_t tlen = 0;
        FILE *t = open_memstream(&text, &tlen);
        if (t) {
            ms__csv_text(w, e, t);
            fclose(t);
        }
        if (text)
            ms__csv_cell(fp, text);
        free(text);
    }
    fputs(",,\n", fp); /* full, pss_age_ns: empty */
}

static void ms__csv_sample(ms_timeline_writer *w, const ms_sample *smp)
{
    FILE *fp = w->mf;
    const ms_snapshot *s = smp->snap;
    bool tree = w->o.tree && smp->full && smp->tree_valid;
    char age[24];
    ms__tl_pss_age(smp, age, "");
    ms__csv_head(w, fp, "sample", (int64_t)w->seq, s->timestamp_ns);
    fputc(',', fp);
    ms_writer_snapshot(w->sw, s);
    fseek(fp, -1, SEEK_CUR); /* the sink's newline */
    if (s->captured & MS_CAPTURE_GPU)
        fprintf(fp, ",%u", (unsigned)s->gpu_count);
    else
        fputc(',', fp);
    static const int sums[] = {MS_GF_total_bytes, MS_GF_used_bytes, MS_GF_process_used_bytes};
    for (int i = 0; i < 3; i++) {
        uint64_t v;
        fputc(',', fp);
        if (ms__tl_gpu_sum(s, sums[i], &v))
            fprintf(fp, "%" PRIu64, v);
    }
    if (tree) {
        uint64_t rss, pss;
        bool pss_ok;
        ms__tl_tree_sums(smp, &rss, &pss, &pss_ok);
        fprintf(fp, ",%zu,%" PRIu64 ",", smp->tree_count, rss);
        if (pss_ok)
            fprintf(fp, "%" PRIu64, pss);
    } else {
        fputs(",,,", fp);
    }
    fprintf(fp, ",,,,,,,%s,%s\n", smp->full ? "true" : "false", age);
}

const struct ms__tl_backend ms__tl_csv = {
    .format = MS_FORMAT_CSV,
    .header = ms__csv_header,
    .event = ms__csv_event,
    .sample = ms__csv_sample,
    .light = NULL,
};

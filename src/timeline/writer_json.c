/*
 * writer_json.c - the timeline writer's JSON-lines backend: one object per record, a sample's
 * snapshot exactly as the JSON sink writes it (docs/monitor-format.md).
 *
 * Statm-only samples between full ones (1 ms sampling) are put together from the last full
 * sample's text instead of running the sink: the job identity, the snapshot's label and pid,
 * and everything after statm's five figures are the same until the next full sample, so a
 * light record is a few memcpy and five numbers (ms__tl_json_light).
 */
#include "writer.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MS__STATM_FIELDS 5 /* statm's: the process section's first five */

/* KEY (the text before the value), then the value as fmt writes it, or null when !have. */
static void put_or_null(FILE *fp, const char *key, bool have, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void put_or_null(FILE *fp, const char *key, bool have, const char *fmt, ...)
{
    fputs(key, fp);
    if (!have) {
        fputs("null", fp);
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vfprintf(fp, fmt, ap);
    va_end(ap);
}

/* KEY, then str as a JSON string, or null when str is NULL. */
static void put_string_or_null(FILE *fp, const char *key, const char *str)
{
    fputs(key, fp);
    if (str)
        ms__json_string(fp, str);
    else
        fputs("null", fp);
}

static void ms__json_event(ms_timeline_writer *w, const struct ms__tl_event *e)
{
    FILE *fp = w->mf;
    const ms_timeline_writer_options *o = &w->o;
    ms__tl_head_json(w, fp, e->record, e->time_ns);
    if (strcmp(e->record, "start") == 0) {
        fprintf(fp, ",\"schema\":\"memsnap.monitor/1\",\"pid\":%d,\"command\":", (int)e->pid);
        if (w->argv) {
            fputc('[', fp);
            for (int i = 0; w->argv[i]; i++) {
                fputs(i ? "," : "", fp);
                ms__json_string(fp, w->argv[i]);
            }
            fputc(']', fp);
        } else {
            fputs("null", fp);
        }
        fprintf(fp, ",\"interval_s\":%.9g,\"full_interval_s\":%.9g,\"tree\":%s,\"limits\":{",
                (double)o->interval_ns / 1e9, (double)o->full_interval_ns / 1e9,
                o->tree ? "true" : "false");
        ms__tl_limits(e->limits, fp, true);
        put_or_null(fp, "},\"thresholds\":{\"warning_pct\":", o->warning_pct > 0, "%.9g",
                    o->warning_pct);
        put_or_null(fp, ",\"critical_pct\":", o->critical_pct > 0, "%.9g", o->critical_pct);
        put_or_null(fp, "},\"memory_limit_bytes\":", o->memory_limit_bytes != 0, "%" PRIu64,
                    o->memory_limit_bytes);
        put_string_or_null(fp, ",\"trace\":", w->trace);
    } else if (strcmp(e->record, "alert") == 0) {
        fprintf(fp,
                ",\"seq\":%" PRId64 ",\"level\":\"%s\",\"metric\":\"%s\",\"used_bytes\":%" PRIu64
                ",\"limit_bytes\":%" PRIu64 ",\"percent\":%.2f",
                e->seq, e->level, e->metric, e->used, e->limit, e->pct);
    } else if (strcmp(e->record, "marker") == 0) {
        fputs(",\"label\":", fp);
        ms__json_string(fp, e->label);
    } else if (strcmp(e->record, "oom") == 0) {
        fprintf(fp, ",\"reason\":\"%s\",\"backend\":\"%s\",\"pid\":%d", e->reason, e->backend,
                (int)e->pid);
        put_string_or_null(fp, ",\"bundle\":", e->bundle);
    } else { /* end */
        fprintf(fp, ",\"samples\":%" PRIu64, w->seq);
        put_or_null(fp, ",\"exit_status\":", e->exit_status >= 0, "%d", e->exit_status);
        put_or_null(fp, ",\"signal\":", e->signal > 0, "%d", e->signal);
        fprintf(fp, ",\"reason\":\"%s\"", e->reason);
    }
    fputs("}\n", fp);
}

static const char *ms__find(const char *from, const char *to, const char *what)
{
    size_t n = strlen(what);
    for (const char *p = from; p && p + n <= to; p = memchr(p + 1, what[0], (size_t)(to - p - 1)))
        if (memcmp(p, what, n) == 0)
            return p;
    return NULL;
}

/* After a full sample composed in w->mf (flushed up to here), with its snapshot from snap_at
 * to snap_end: keeps the text that the statm-only samples until the next full one share with
 * it. The snapshot sink writes schema, timestamp_ns, monotonic_ns, label, pid, then the
 * process fields, statm's first; a key is found only where it starts a member (quotes inside
 * strings are escaped). Any surprise leaves the fast path off. */
static void ms__light_prepare(ms_timeline_writer *w, long snap_at, long snap_end)
{
    w->lt_ok = false;
    if (fflush(w->mf) != 0 || snap_at <= 0 || snap_end <= snap_at || (size_t)snap_end > w->mlen)
        return;
    const char *rec = w->mbuf, *snap = rec + snap_at, *end = rec + snap_end;
    const struct ms__field *pf = ms__sections[MS__SEC_PROCESS].fields;
    char after[80];
    snprintf(after, sizeof(after), ",\"%s\":", pf[MS__STATM_FIELDS].name);
    const char *ident = ms__find(rec, snap, ",\"job_id\":");
    const char *seq = ident ? ms__find(ident, snap, ",\"seq\":") : NULL;
    const char *label = ms__find(snap, end, ",\"label\":");
    const char *proc = label ? ms__find(label, end, ",\"process\":{") : NULL;
    const char *rest = proc ? ms__find(proc, end, after) : NULL;
    static const char head[] = "{\"schema\":\"" MS_SNAPSHOT_SCHEMA "\",\"timestamp_ns\":";
    if (!seq || !rest || memcmp(snap, head, sizeof(head) - 1) != 0)
        return;
    size_t ni = (size_t)(seq - ident), nm = (size_t)(proc + sizeof(",\"process\":{") - 1 - label);
    size_t nr = (size_t)(end - rest), need = 2 * (ni + nm + nr) + 1024;
    if (need > w->lt_cap) {
        char *b = realloc(w->lt, need);
        if (!b)
            return;
        w->lt = b;
        w->lt_cap = need;
    }
    memcpy(w->lt, ident, ni);
    memcpy(w->lt + ni, label, nm);
    memcpy(w->lt + ni + nm, rest, nr);
    w->lt_ident = ni;
    w->lt_mid = nm;
    w->lt_rest = nr;
    w->lt_ok = true;
}

#define MS__LIT(q, lit) (memcpy(q, "" lit, sizeof(lit) - 1), (q) + sizeof(lit) - 1)

/* Writes the record of a statm-only sample, put together from the last full one's text: what
 * ms__json_sample writes, with fresh times, seq, PSS age and statm figures. Returns false
 * (nothing done) when the fast path is off. */
static bool ms__json_light(ms_timeline_writer *w, const ms_sample *smp)
{
    if (!w->lt_ok)
        return false;
    const ms_snapshot *s = smp->snap;
    const struct ms__field *pf = ms__sections[MS__SEC_PROCESS].fields;
    size_t kept = w->lt_ident + w->lt_mid + w->lt_rest;
    char *rec = w->lt + kept, *q = rec;
    q = MS__LIT(q, "{\"record\":\"sample\",\"time_ns\":");
    q = ms__put_num(q, s->timestamp_ns, false);
    memcpy(q, w->lt, w->lt_ident);
    q = MS__LIT(q + w->lt_ident, ",\"seq\":");
    q = ms__put_num(q, w->seq, false);
    q = MS__LIT(q, ",\"full\":false,\"pss_age_ns\":");
    if (smp->pss_time_ns)
        q = ms__put_num(
            q, s->timestamp_ns > smp->pss_time_ns ? s->timestamp_ns - smp->pss_time_ns : 0, false);
    else
        q = MS__LIT(q, "null");
    q = MS__LIT(q, ",\"snapshot\":{\"schema\":\"" MS_SNAPSHOT_SCHEMA "\",\"timestamp_ns\":");
    q = ms__put_num(q, s->timestamp_ns, false);
    q = MS__LIT(q, ",\"monotonic_ns\":");
    q = ms__put_num(q, s->monotonic_ns, false);
    memcpy(q, w->lt + w->lt_ident, w->lt_mid);
    q += w->lt_mid;
    for (int k = 0; k < MS__STATM_FIELDS; k++)
        q = ms__json_field(q, &pf[k], s->process.valid, s, false, k > 0);
    memcpy(q, w->lt + w->lt_ident + w->lt_mid, w->lt_rest);
    q += w->lt_rest;
    if (w->o.tree)
        q = MS__LIT(q, ",\"tree\":null");
    q = MS__LIT(q, "}\n");
    ms__tl_put(w, rec, (size_t)(q - rec));
    return true;
}

static void ms__json_sample(ms_timeline_writer *w, const ms_sample *smp)
{
    FILE *fp = w->mf;
    const ms_snapshot *s = smp->snap;
    bool tree = w->o.tree && smp->full && smp->tree_valid;
    char age[24];
    ms__tl_pss_age(smp, age, "null");
    ms__tl_head_json(w, fp, "sample", s->timestamp_ns);
    fprintf(fp, ",\"seq\":%" PRIu64 ",\"full\":%s,\"pss_age_ns\":%s,\"snapshot\":", w->seq,
            smp->full ? "true" : "false", age);
    long snap_at = ftell(fp);
    ms_writer_snapshot(w->sw, s);
    fseek(fp, -1, SEEK_CUR); /* the sink's newline */
    if (smp->full)
        ms__light_prepare(w, snap_at, ftell(fp));
    if (w->o.tree && !tree) {
        fputs(",\"tree\":null", fp);
    } else if (tree) {
        uint64_t rss, pss;
        bool pss_ok;
        ms__tl_tree_sums(smp, &rss, &pss, &pss_ok);
        fprintf(fp, ",\"tree\":{\"processes\":%zu,\"rss_bytes\":%" PRIu64, smp->tree_count, rss);
        put_or_null(fp, ",\"pss_bytes\":", pss_ok, "%" PRIu64, pss);
        fputs(",\"members\":[", fp);
        for (size_t i = 0; i < smp->tree_count; i++) {
            const ms_tree_member *p = &smp->tree[i];
            fprintf(fp, "%s{\"pid\":%d,\"ppid\":%d,\"comm\":", i ? "," : "", (int)p->pid,
                    (int)p->ppid);
            ms__json_string(fp, p->comm);
            put_or_null(fp, ",\"rss_bytes\":", p->rss_valid, "%" PRIu64, p->rss_bytes);
            put_or_null(fp, ",\"pss_bytes\":", p->pss_valid, "%" PRIu64, p->pss_bytes);
            fputc('}', fp);
        }
        fputs("]}", fp);
    }
    fputs("}\n", fp);
}

const struct ms__tl_backend ms__tl_json = {
    .format = MS_FORMAT_JSON,
    .header = NULL,
    .event = ms__json_event,
    .sample = ms__json_sample,
    .light = ms__json_light,
};

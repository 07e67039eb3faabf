/*
 * writer.c - the timeline writer (memsnap.h, "Timelines: writing"): the monitor format of
 * docs/monitor-format.md, written by one backend per format (writer_json.c, writer_csv.c)
 * behind struct ms__tl_backend, the way src/sink/writer.c drives the snapshot sinks.
 *
 * Each record is composed in a memory stream and handed on whole - to a write function (the
 * CLI's: one write(2)) or to a stream, flushed - the moment it exists, so that a killed monitor
 * leaves only whole lines. With a flight recorder, each event also goes into its ring as the
 * JSON record (whatever the format: the bundle's events.json is JSON), and each sample's
 * snapshot after its record.
 */
#include "writer.h"

#include "../monitor/flight.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* The backends, one per format. */
static const struct ms__tl_backend *const ms__tl_backends[] = {&ms__tl_json, &ms__tl_csv};

void ms_timeline_writer_options_init(ms_timeline_writer_options *o)
{
    memset(o, 0, sizeof(*o));
    o->size = sizeof(*o);
    o->format = MS_FORMAT_JSON;
    o->rank = -1;
    o->world_size = -1;
}

void ms__tl_begin(ms_timeline_writer *w)
{
    rewind(w->mf);
}

int ms__tl_end(ms_timeline_writer *w)
{
    if (fflush(w->mf) != 0 || ferror(w->mf))
        return -1;
    long pos = ftell(w->mf);
    w->mlen = pos > 0 ? (size_t)pos : 0;
    return 0;
}

void ms__tl_put(ms_timeline_writer *w, const char *rec, size_t len)
{
    if (w->failed || (!w->o.write && !w->o.fp))
        return;
    if (w->o.write)
        w->failed = w->o.write(w->o.write_ctx, rec, len) != 0;
    else
        w->failed = fwrite(rec, 1, len, w->o.fp) != len || fflush(w->o.fp) != 0;
}

/* Hands on the record composed in w->mf. */
static void ms__tl_flush(ms_timeline_writer *w)
{
    ms__tl_put(w, w->mbuf, w->mlen);
}

/* The result of a call: MS_EIO once the output failed. */
static int ms__tl_rc(const ms_timeline_writer *w)
{
    return w->failed ? ms__error(MS_EIO, "the timeline's output failed") : 0;
}

static bool ms__tl_has_output(const ms_timeline_writer *w)
{
    return w->o.write || w->o.fp;
}

void ms__tl_head_json(const ms_timeline_writer *w, FILE *fp, const char *record, uint64_t time_ns)
{
    fprintf(fp, "{\"record\":\"%s\",\"time_ns\":%" PRIu64 ",\"job_id\":", record, time_ns);
    if (w->job_id)
        ms__json_string(fp, w->job_id);
    else
        fputs("null", fp);
    if (w->o.rank >= 0)
        fprintf(fp, ",\"rank\":%" PRId64, w->o.rank);
    else
        fputs(",\"rank\":null", fp);
    if (w->o.world_size >= 0)
        fprintf(fp, ",\"world_size\":%" PRId64, w->o.world_size);
    else
        fputs(",\"world_size\":null", fp);
}

bool ms__tl_gpu_sum(const ms_snapshot *s, int field, uint64_t *sum)
{
    *sum = 0;
    if (!(s->captured & MS_CAPTURE_GPU) || s->gpu_count == 0)
        return false;
    const struct ms__field *f = &ms__gpu_fields[field];
    for (uint32_t i = 0; i < s->gpu_count && i < MS_GPU_MAX; i++) {
        if (!(s->gpus[i].valid >> f->bit & 1u))
            return false;
        if (__builtin_add_overflow(*sum, ms__gpu_value(&s->gpus[i], f), sum))
            *sum = UINT64_MAX; /* saturated, as the GPU backends' own sums */
    }
    return true;
}

void ms__tl_limits(const ms_snapshot *s, FILE *fp, bool json)
{
    bool have = s != NULL;
    bool cg = have && s->cgroup.version != MS_CGROUP_NONE && !s->cgroup.unlimited &&
              ms_valid(&s->cgroup, MS_CF_max_bytes);
    bool sys = have && ms_valid(&s->system, MS_SF_total_bytes);
    uint64_t gpu_total = 0;
    bool gpu = have && ms__tl_gpu_sum(s, MS_GF_total_bytes, &gpu_total);
    const char *const names[] = {"cgroup_max_bytes", "system_total_bytes", "gpu_total_bytes"};
    const bool ok[] = {cg, sys, gpu};
    const uint64_t v[] = {cg ? s->cgroup.max_bytes : 0, sys ? s->system.total_bytes : 0,
                          gpu ? gpu_total : 0};
    for (int i = 0; i < 3; i++) {
        if (json)
            fprintf(fp, "%s\"%s\":", i ? "," : "", names[i]);
        else
            fprintf(fp, "%s%s=", i ? ";" : "", names[i]);
        if (ok[i])
            fprintf(fp, "%" PRIu64, v[i]);
        else if (json)
            fputs("null", fp);
    }
}

void ms__tl_tree_sums(const ms_sample *s, uint64_t *rss, uint64_t *pss, bool *pss_ok)
{
    *rss = *pss = 0;
    *pss_ok = true;
    for (size_t i = 0; i < s->tree_count; i++) {
        /* saturated: a corrupt tree's figures never wrap to a small sum */
        *rss = ms__sat_add(*rss, s->tree[i].rss_valid ? s->tree[i].rss_bytes : 0);
        *pss = ms__sat_add(*pss, s->tree[i].pss_bytes);
        *pss_ok = *pss_ok && s->tree[i].pss_valid;
    }
}

int ms_timeline_writer_open(ms_timeline_writer **out, const ms_timeline_writer_options *o)
{
    if (!out)
        return ms__error(MS_EINVAL, "ms_timeline_writer_open: no handle to fill");
    *out = NULL;
    if (!o || (o->size && o->size < sizeof(*o)))
        return ms__error(MS_EINVAL, "ms_timeline_writer_open: options of another size");
    const struct ms__tl_backend *be = NULL;
    for (size_t i = 0; i < sizeof(ms__tl_backends) / sizeof(ms__tl_backends[0]); i++)
        if (ms__tl_backends[i]->format == o->format)
            be = ms__tl_backends[i];
    if (!be)
        return ms__error(MS_EINVAL, "a timeline is written as JSON lines or CSV");
    ms_timeline_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return ms__error(MS_ENOMEM, "out of memory");
    w->o = *o;
    w->o.argv = NULL;
    w->be = be;
    if ((o->argv && !(w->argv = ms__argv_dup(o->argv))) ||
        (o->job_id && !(w->job_id = strdup(o->job_id))) ||
        (o->trace && !(w->trace = strdup(o->trace))) ||
        !(w->mf = open_memstream(&w->mbuf, &w->mlen)) ||
        ms_writer_open(&w->sw, be->format, w->mf)) {
        ms_timeline_writer_close(w);
        return ms__error(MS_ENOMEM, "out of memory");
    }
    w->o.job_id = w->job_id;
    w->o.trace = w->trace;
    w->o.argv = (const char *const *)w->argv;
    if (be->header && ms__tl_has_output(w)) {
        if (be->header(w) != 0) {
            ms_timeline_writer_close(w);
            return ms__error(MS_ENOMEM, "out of memory");
        }
        ms__tl_flush(w); /* a failed write: the writer is failed, its calls say MS_EIO */
    }
    *out = w;
    return 0;
}

/* Writes an event record to the output and keeps its JSON form in the flight recorder. */
static int ms__tl_event(ms_timeline_writer *w, const struct ms__tl_event *e)
{
    bool json = w->be->format == MS_FORMAT_JSON;
    if (w->o.flight) {
        ms__tl_begin(w);
        ms__tl_json.event(w, e);
        if (ms__tl_end(w) == 0 && w->mlen > 0) {
            w->mbuf[w->mlen - 1] = '\0'; /* the newline */
            ms__flight_event(w->o.flight, w->mbuf);
            w->mbuf[w->mlen - 1] = '\n';
            if (json) {
                ms__tl_flush(w);
                return ms__tl_rc(w);
            }
        }
    }
    if (!ms__tl_has_output(w))
        return 0;
    ms__tl_begin(w);
    w->be->event(w, e);
    if (ms__tl_end(w) == 0)
        ms__tl_flush(w);
    return ms__tl_rc(w);
}

int ms_timeline_writer_start(ms_timeline_writer *w, uint64_t time_ns, pid_t pid,
                             const ms_snapshot *limits)
{
    if (!w)
        return ms__error(MS_EINVAL, "no timeline writer");
    if (w->started)
        return 0;
    w->started = true;
    const struct ms__tl_event e = {
        .record = "start", .time_ns = time_ns, .seq = -1, .pid = pid, .limits = limits};
    return ms__tl_event(w, &e);
}

int ms_timeline_writer_sample(ms_timeline_writer *w, const ms_sample *s)
{
    if (!w || !s || !s->snap)
        return ms__error(MS_EINVAL, "no timeline writer or no sample");
    if (ms__tl_has_output(w) && !w->failed && (s->full || !w->be->light || !w->be->light(w, s))) {
        ms__tl_begin(w);
        w->be->sample(w, s);
        if (ms__tl_end(w) == 0)
            ms__tl_flush(w);
    }
    if (w->o.flight)
        ms__flight_push(w->o.flight, s->snap);
    w->seq++;
    return ms__tl_rc(w);
}

int ms_timeline_writer_alert(ms_timeline_writer *w, const ms_alert_event *a)
{
    if (!w || !a)
        return ms__error(MS_EINVAL, "no timeline writer or no alert");
    if (a->kind != MS_ALERT_LEVEL)
        return 0;
    const struct ms__tl_event e = {.record = "alert",
                                   .time_ns = a->time_ns,
                                   .seq = w->seq ? (int64_t)w->seq - 1 : 0,
                                   .level = ms_alert_level_name(a->level),
                                   .metric = a->usage.metric,
                                   .used = a->usage.used_bytes,
                                   .limit = a->usage.limit_bytes,
                                   .pct = a->usage.percent};
    return ms__tl_event(w, &e);
}

int ms_timeline_writer_oom(ms_timeline_writer *w, uint64_t time_ns, const char *reason,
                           const char *backend, pid_t pid, const char *bundle)
{
    if (!w || !reason || !backend)
        return ms__error(MS_EINVAL, "no timeline writer, reason or backend");
    const struct ms__tl_event e = {.record = "oom",
                                   .time_ns = time_ns,
                                   .seq = -1,
                                   .reason = reason,
                                   .backend = backend,
                                   .pid = pid,
                                   .bundle = bundle};
    return ms__tl_event(w, &e);
}

int ms_timeline_writer_marker(ms_timeline_writer *w, uint64_t time_ns, const char *label)
{
    if (!w || !label)
        return ms__error(MS_EINVAL, "no timeline writer or no label");
    const struct ms__tl_event e = {
        .record = "marker", .time_ns = time_ns, .seq = -1, .label = label};
    return ms__tl_event(w, &e);
}

int ms_timeline_writer_end(ms_timeline_writer *w, uint64_t time_ns, const char *reason,
                           int exit_status, int signal)
{
    if (!w || !reason)
        return ms__error(MS_EINVAL, "no timeline writer or no reason");
    const struct ms__tl_event e = {.record = "end",
                                   .time_ns = time_ns,
                                   .seq = -1,
                                   .reason = reason,
                                   .exit_status = exit_status,
                                   .signal = signal};
    return ms__tl_event(w, &e);
}

uint64_t ms_timeline_writer_samples(const ms_timeline_writer *w)
{
    return w ? w->seq : 0;
}

void ms_timeline_writer_close(ms_timeline_writer *w)
{
    if (!w)
        return;
    if (w->sw)
        ms_writer_close(w->sw);
    if (w->mf)
        fclose(w->mf);
    free(w->mbuf);
    free(w->lt);
    ms__argv_free(w->argv);
    free(w->job_id);
    free(w->trace);
    free(w);
}

void ms__tl_pss_age(const ms_sample *smp, char age[24], const char *none)
{
    uint64_t t = smp->snap->timestamp_ns;
    if (smp->pss_time_ns)
        snprintf(age, 24, "%" PRIu64, t > smp->pss_time_ns ? t - smp->pss_time_ns : 0);
    else
        snprintf(age, 24, "%s", none);
}

/*
 * writer.c - ms_writer: the one entry point to every sink.
 *
 * Picks the sink's table by format, counts snapshots, and turns stream errors into MS_EIO (with
 * the thread's ms_last_error() message naming the sink).
 */
#include "sink.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const struct ms__sink_ops *const ms__sinks[] = {
    [MS_FORMAT_TEXT] = &ms__sink_text,
    [MS_FORMAT_JSON] = &ms__sink_json,
    [MS_FORMAT_CSV] = &ms__sink_csv,
};

#define MS__NSINKS (sizeof(ms__sinks) / sizeof(ms__sinks[0]))

int ms_format_parse(const char *name, ms_format *out)
{
    for (size_t i = 0; i < MS__NSINKS; i++)
        if (name && strcmp(name, ms__sinks[i]->name) == 0) {
            if (!out)
                break;
            *out = (ms_format)i;
            return 0;
        }
    if (!out)
        return ms__error(MS_EINVAL, "ms_format_parse: no result pointer");
    return ms__error(MS_EINVAL, "unknown format \"%s\" (text, json or csv)",
                     name ? name : "(null)");
}

int ms_writer_open(ms_writer **out, ms_format fmt, FILE *fp)
{
    if (!out || !fp)
        return ms__error(MS_EINVAL, "ms_writer_open: %s", !out ? "no handle pointer" : "no stream");
    if ((unsigned)fmt >= MS__NSINKS)
        return ms__error(MS_EINVAL, "ms_writer_open: no format %d (0 to %d)", (int)fmt,
                         (int)MS__NSINKS - 1);
    ms_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return ms__error(MS_ENOMEM, "ms_writer_open: out of memory");
    w->ops = ms__sinks[fmt];
    w->fp = fp;
    *out = w;
    return 0;
}

int ms_writer_snapshot(ms_writer *w, const ms_snapshot *snap)
{
    if (!w || !snap)
        return ms__error(MS_EINVAL, "ms_writer_snapshot: %s", !w ? "no writer" : "no snapshot");
    if (w->count == 0 && w->ops->begin)
        w->ops->begin(w, snap);
    w->ops->snapshot(w, snap);
    w->count++;
    if (ferror(w->fp))
        return ms__error(MS_EIO, "%s sink: writing snapshot %zu failed", w->ops->name, w->count);
    return 0;
}

int ms_writer_close(ms_writer *w)
{
    if (!w)
        return 0;
    if (w->ops->end)
        w->ops->end(w);
    int rc = 0;
    if (fflush(w->fp) != 0 || ferror(w->fp))
        rc = ms__error(MS_EIO, "%s sink: writing failed (%zu snapshots)", w->ops->name, w->count);
    free(w);
    return rc;
}

void ms__iso_time(char *buf, size_t len, uint64_t ns)
{
    time_t sec = (time_t)(ns / 1000000000u);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char date[32];
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%09uZ", date, (unsigned)(ns % 1000000000u));
}

/*
 * writer.c - ms_writer: the one entry point to every sink.
 *
 * Picks the sink's table by format, counts snapshots, and turns stream errors into MS_EIO.
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

int ms_format_parse(const char *name, ms_format *out)
{
    for (size_t i = 0; i < sizeof(ms__sinks) / sizeof(ms__sinks[0]); i++)
        if (name && strcmp(name, ms__sinks[i]->name) == 0) {
            *out = (ms_format)i;
            return 0;
        }
    return MS_EINVAL;
}

int ms_writer_open(ms_writer **out, ms_format fmt, FILE *fp)
{
    if (!out || !fp || (unsigned)fmt >= sizeof(ms__sinks) / sizeof(ms__sinks[0]))
        return MS_EINVAL;
    ms_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return MS_ENOMEM;
    w->ops = ms__sinks[fmt];
    w->fp = fp;
    *out = w;
    return 0;
}

int ms_writer_snapshot(ms_writer *w, const ms_snapshot *snap)
{
    if (!w || !snap)
        return MS_EINVAL;
    if (w->count == 0 && w->ops->begin)
        w->ops->begin(w, snap);
    w->ops->snapshot(w, snap);
    w->count++;
    return ferror(w->fp) ? MS_EIO : 0;
}

int ms_writer_close(ms_writer *w)
{
    if (!w)
        return 0;
    if (w->ops->end)
        w->ops->end(w);
    int rc = (fflush(w->fp) != 0 || ferror(w->fp)) ? MS_EIO : 0;
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

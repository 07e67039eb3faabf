/* flight.c - STUB until implemented: opening fails with MS_ENOTSUP. */
#include "flight.h"

#include <stdio.h>

int ms__flight_open(ms__flight **out, const struct ms__flight_opts *o, char *err, size_t errlen)
{
    (void)o;
    *out = NULL;
    snprintf(err, errlen, "the OOM flight recorder is not implemented yet");
    return MS_ENOTSUP;
}
void ms__flight_push(ms__flight *f, const ms_snapshot *snap)
{
    (void)f, (void)snap;
}
void ms__flight_event(ms__flight *f, const char *json_object)
{
    (void)f, (void)json_object;
}
int ms__flight_dump(ms__flight *f, const char *backend, pid_t pid, const char *reason,
                    const char *extra_json, char *path_out, size_t path_len, char *err,
                    size_t errlen)
{
    (void)f, (void)backend, (void)pid, (void)reason, (void)extra_json, (void)path_out,
        (void)path_len;
    snprintf(err, errlen, "the OOM flight recorder is not implemented yet");
    return MS_ENOTSUP;
}
void ms__flight_close(ms__flight *f)
{
    (void)f;
}

/* cglimit.c - STUB until implemented: every call fails with MS_ENOTSUP. */
#include "cglimit.h"

#include <stdio.h>

int ms__cglimit_create(ms__cglimit **out, const char *procfs, const char *sysfs,
                       uint64_t limit_bytes, char *err, size_t errlen)
{
    (void)procfs, (void)sysfs, (void)limit_bytes;
    *out = NULL;
    snprintf(err, errlen, "memory limits are not implemented yet");
    return MS_ENOTSUP;
}
int ms__cglimit_enter(const ms__cglimit *cg, pid_t pid)
{
    (void)cg, (void)pid;
    return MS_ENOTSUP;
}
const char *ms__cglimit_path(const ms__cglimit *cg)
{
    (void)cg;
    return "";
}
const char *ms__cglimit_dir(const ms__cglimit *cg)
{
    (void)cg;
    return "";
}
int ms__cglimit_version(const ms__cglimit *cg)
{
    (void)cg;
    return 0;
}
uint64_t ms__cglimit_limit(const ms__cglimit *cg)
{
    (void)cg;
    return 0;
}
int64_t ms__cglimit_oom_kills(const ms__cglimit *cg)
{
    (void)cg;
    return -1;
}
int64_t ms__cglimit_current(const ms__cglimit *cg)
{
    (void)cg;
    return -1;
}
int ms__cglimit_destroy(ms__cglimit *cg)
{
    (void)cg;
    return 0;
}

/*
 * error.c - the error table of libmemsnap.
 *
 * MS_ERRNO_MAP in memsnap.h lists every code once; this file expands it into ms_strerror()
 * and ms_err_name(), and keeps the one-line "what went wrong" messages: the calling thread's
 * last one (ms_last_error(), set by every failing call through ms__error()) and the session's.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

const char *ms_strerror(int err)
{
    switch (err) {
    case MS_OK:
        return "success";
#define XX(name, msg)                                                                              \
    case MS_##name:                                                                                \
        return msg;
        MS_ERRNO_MAP(XX)
#undef XX
    default:
        return "unknown error";
    }
}

const char *ms_err_name(int err)
{
    switch (err) {
    case MS_OK:
        return "OK";
#define XX(name, msg)                                                                              \
    case MS_##name:                                                                                \
        return #name;
        MS_ERRNO_MAP(XX)
#undef XX
    default:
        return "EUNKNOWN";
    }
}

int ms__errno_code(int err)
{
    switch (err) {
    case ENOENT:
        return MS_ENOENT;
    case ESRCH:
        return MS_ESRCH;
    case EACCES:
    case EPERM:
        return MS_EACCES;
    case ENOMEM:
        return MS_ENOMEM;
    case EINVAL:
        return MS_EINVAL;
    case ENOTSUP:
        return MS_ENOTSUP;
    default:
        return MS_EIO;
    }
}

static __thread char last_error[512];

int ms__verror(int code, const char *fmt, va_list ap)
{
    /* through a copy: an argument may be ms_last_error() itself ("%s: %s", path, ...) */
    char msg[sizeof(last_error)];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    memcpy(last_error, msg, sizeof(msg));
    return code;
}

int ms__error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ms__verror(code, fmt, ap);
    va_end(ap);
    return code;
}

const char *ms_last_error(void)
{
    return last_error;
}

int ms__fail(ms_session *s, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof(s->err), fmt, ap);
    va_end(ap);
    snprintf(last_error, sizeof(last_error), "%s", s->err);
    return code;
}

const char *ms_session_error(const ms_session *s)
{
    return s ? s->err : "no session";
}

const char *ms_version(void)
{
    return MS_VERSION_STRING;
}

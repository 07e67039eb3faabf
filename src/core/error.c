/*
 * error.c - the error table of libmemsnap.
 *
 * MS_ERRNO_MAP in memsnap.h lists every code once; this file expands it into the table behind
 * ms_strerror() and ms_err_name(), and keeps the one-line "what went wrong" messages: the calling
 * thread's last one (ms_last_error(), set by every failing call through ms__error()) and the
 * session's.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

/* Code -i's name and message at index i (the codes are MS_OK and then -1, -2, ... in
 * MS_ERRNO_MAP's order), so that both functions are one lookup. */
static const struct {
    const char *name, *msg;
} ms__errors[] = {{"OK", "success"},
#define XX(name, msg) {#name, msg},
                  MS_ERRNO_MAP(XX)
#undef XX
};

static int ms__err_row(int err)
{
    return err <= 0 && err > -(int)(sizeof(ms__errors) / sizeof(ms__errors[0])) ? -err : -1;
}

const char *ms_strerror(int err)
{
    int i = ms__err_row(err);
    return i < 0 ? "unknown error" : ms__errors[i].msg;
}

const char *ms_err_name(int err)
{
    int i = ms__err_row(err);
    return i < 0 ? "EUNKNOWN" : ms__errors[i].name;
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

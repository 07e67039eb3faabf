/*
 * symbolize.h - return addresses of a trace to functions, source files and lines, with elfutils
 * libdw, at report time (never in the tracker). Internal to libmemsnap.
 *
 * Modules are found by the path and GNU build-id the trace recorded: the file at that path if
 * its build-id matches, else a debug file under the debug directories (/usr/lib/debug/.build-id
 * and any given with ms__sym_add_debug_dir) by build-id, so a report still works when the binary
 * has moved or been stripped. Separate debug info (.gnu_debuglink, build-id) is used when
 * present. An address that cannot be resolved still gets its module and offset: frames are
 * never dropped.
 */
#ifndef MS_ENGINE_SYMBOLIZE_H
#define MS_ENGINE_SYMBOLIZE_H

#include "../trace/reader.h"

#include <stddef.h>
#include <stdint.h>

struct ms__symbolizer;

/* One frame. Strings belong to the symbolizer and live until ms__sym_close. */
struct ms__sym_frame {
    uint64_t ip;          /* the return address as recorded */
    const char *function; /* demangled when C++; NULL when unknown */
    const char *file;     /* source file, NULL when unknown */
    uint32_t line;        /* 0 when unknown */
    const char *module;   /* the module's path as recorded ("?" when no module holds ip) */
    uint64_t offset;      /* ip - the module's load bias */
    bool inlined;         /* a frame inlined into the next one (same ip) */
};

/* A symbolizer for the modules of td. Returns 0 or a negative MS_E* code (MS_ENOMEM). */
int ms__sym_open(struct ms__symbolizer **out, const struct ms__trace_data *td);
/* Adds a directory searched for debug files by build-id (DIR/xx/yyyy.debug). */
int ms__sym_add_debug_dir(struct ms__symbolizer *s, const char *dir);
/*
 * The frames of return address ip of image `image`, innermost first: the inlined functions at
 * the call (ip - 1) then the function holding it. Writes at most max, returns how many (>= 1:
 * an unresolved ip gives one frame with module and offset only). Results are cached per
 * (image, ip).
 */
size_t ms__sym_resolve(struct ms__symbolizer *s, uint32_t image, uint64_t ip,
                       struct ms__sym_frame *out, size_t max);
void ms__sym_close(struct ms__symbolizer *s);

/* The file name of f's module ("libc.so.6"; "?" when none). */
const char *ms__sym_module_name(const struct ms__sym_frame *f);
/* f's name for reports: its function, else "module+0xoffset". Returns buf. */
const char *ms__sym_frame_name(const struct ms__sym_frame *f, char *buf, size_t len);

#endif

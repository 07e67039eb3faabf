/*
 * fuzz_parsers.c - a fuzz target for everything memsnap parses from untrusted bytes: snapshot
 * JSON (ms_snapshot_from_json) and the "Key: value kB" scanner the /proc and cgroup probes
 * use (ms__scan_keys). The first input byte picks the parser.
 *
 * Built as a libFuzzer binary with clang (-Dfuzz=enabled), and always as fuzz_replay, which
 * runs the target over the files and directories named on its command line (the checked-in
 * corpus, under `make check`'s sanitizer build).
 */
#include "core/internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ms_session *s;
    if (!s && ms_session_open(&s, NULL) != 0)
        abort();
    if (size == 0)
        return 0;
    uint8_t which = data[0] % 2;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    if (which == 0) {
        ms_snapshot snap;
        char err[256];
        int rc = ms_snapshot_from_json(text, len, &snap, err, sizeof(err));
        if (rc != 0 && rc != MS_EPARSE)
            abort();
        if (rc == 0) { /* what was read must write and read back the same */
            char *out = NULL;
            size_t outlen = 0;
            FILE *fp = open_memstream(&out, &outlen);
            ms_writer *w;
            if (!fp || ms_writer_open(&w, MS_FORMAT_JSON, fp) != 0)
                abort();
            ms_writer_snapshot(w, &snap);
            ms_writer_close(w);
            fclose(fp);
            ms_snapshot again;
            if (ms_snapshot_from_json(out, outlen, &again, err, sizeof(err)) != 0)
                abort();
            if (again.process.valid != snap.process.valid || again.pid != snap.pid)
                abort();
            free(out);
        }
    } else {
        static const struct ms__key keys[] = {MS__KEY("VmHWM", 0), MS__KEY("VmSwap", 1),
                                              MS__KEY("oom_kill", 2), MS__KEY("Pss", 3)};
        char *copy = malloc(len + 1); /* the probes scan NUL-terminated buffers */
        if (!copy)
            abort();
        memcpy(copy, text, len);
        copy[len] = '\0';
        uint64_t vals[4], found = 0;
        int rc = ms__scan_keys(s, "fuzz", copy, len, keys, 4, vals, &found, true);
        if (rc != 0 && rc != MS_EPARSE)
            abort();
        free(copy);
    }
    return 0;
}

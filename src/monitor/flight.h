/*
 * flight.h - the OOM flight recorder: a ring of the last N samples and events, written out as
 * a bundle directory when an out-of-memory happens.
 *
 * A bundle is oom_dump_<UTC YYYYmmddTHHMMSSZ>_<pid>_<backend>_<seq>/ in the dump directory,
 * holding events.json (the ring, oldest first), metadata.json (reason, pid, backend, time,
 * the caller's extra fields), environment.json (host, kernel, memsnap version, cgroup, GPUs,
 * command line) and manifest.json (each file with its size), and, when a trace path was
 * given, trace_tail.json (the tracker's last events and the live heap's top sites at the end
 * of the trace). After each dump the retention limits are applied, oldest bundle first.
 * docs/monitor-format.md documents every file. Every call locks the recorder: any thread may
 * call it.
 */
#ifndef MEMSNAP_FLIGHT_H
#define MEMSNAP_FLIGHT_H

#include "memsnap.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ms__flight_opts {
    const char *dump_dir;     /* where bundles go; created 0700 when missing */
    size_t buffer_size;       /* samples and events kept in the ring (0: 1000) */
    unsigned max_dumps;       /* bundles kept in dump_dir (0: no limit) */
    uint64_t max_total_bytes; /* bytes of bundles kept in dump_dir (0: no limit) */
    const char *trace_path;   /* a trace being written by the tracker, or NULL */
    const char *const *argv;  /* the command line watched, for environment.json, or NULL */
};

/* The recorder is the public ms_flight (memsnap.h); these are its internal entry points,
 * giving their errors in a caller's buffer, for the Python binding and the unit tests. */
typedef struct ms_flight ms__flight;

/* Returns 0, or a negative MS_E* code with a one-line reason in err (an unusable dump_dir). */
int ms__flight_open(ms__flight **out, const struct ms__flight_opts *o, char *err, size_t errlen);

/* Keeps a copy of snap in the ring; the oldest entry is dropped when it is full. */
void ms__flight_push(ms__flight *f, const ms_snapshot *snap);

/* Keeps an event (an alert, a marker...) given as the text of one JSON object. */
void ms__flight_event(ms__flight *f, const char *json_object);

/* Writes a bundle for an OOM of pid. backend: "cpu" (host memory, the cgroup) or "cuda"...
 * reason: "cgroup_oom_kill", "sigkill_at_limit", "cuda_oom"... extra_json: a JSON object text
 * whose members are added to metadata.json, or NULL. The bundle's path is written into
 * path_out. The bundle appears under its final name only when complete; retention then deletes
 * older bundles, never this one. A trace that cannot be read gives a trace_tail.json with its
 * "error", not a failed dump. Returns 0, or a negative MS_E* code with a one-line reason in err
 * (and "" in path_out). */
int ms__flight_dump(ms__flight *f, const char *backend, pid_t pid, const char *reason,
                    const char *extra_json, char *path_out, size_t path_len, char *err,
                    size_t errlen);

void ms__flight_close(ms__flight *f);

#endif /* MEMSNAP_FLIGHT_H */

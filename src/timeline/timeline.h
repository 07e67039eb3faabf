/*
 * timeline.h - what the parts of the timeline reader share (internal, ms__tl_): the samples
 * and records read from monitor output (read.c), the statistics over each metric (stats.c),
 * the HTML report (html.c), and the analysis that ties them together behind the public
 * ms_timeline_* calls (analyze.c; a trace's in trace.c). The format of what is read is
 * docs/monitor-format.md; of what is written, docs/analyze-format.md; how the parts fit,
 * docs/internals/timeline.md.
 */
#ifndef MEMSNAP_TIMELINE_H
#define MEMSNAP_TIMELINE_H

#include "memsnap.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* X(id, JSON key, label) for each metric analyze follows, in report order. */
#define MS__TL_METRIC_LIST(X)                                                                      \
    X(MS__TL_RSS, "process_rss", "process RSS")                                                    \
    X(MS__TL_PSS, "process_pss", "process PSS")                                                    \
    X(MS__TL_CGROUP, "cgroup_current", "cgroup usage")                                             \
    X(MS__TL_SYSTEM, "system_used", "system used")                                                 \
    X(MS__TL_GPU, "gpu_used", "GPU used")                                                          \
    X(MS__TL_TREE_RSS, "tree_rss", "tree RSS")

#define MS__TL__ENUM(id, key, label) id,
enum ms__tl_metric { MS__TL_METRIC_LIST(MS__TL__ENUM) MS__TL_METRICS };
#undef MS__TL__ENUM

/* The JSON key ("process_rss") and the label ("process RSS") of metric m. */
const char *ms__tl_metric_key(int m);
const char *ms__tl_metric_label(int m);

/* The limits a metric is measured against, as the monitor saw them. */
enum ms__tl_limit { MS__TL_LIMIT_CGROUP, MS__TL_LIMIT_SYSTEM, MS__TL_LIMIT_GPU, MS__TL_LIMITS };
/* Their keys in the start record's "limits" (docs/monitor-format.md): "cgroup_max_bytes"... */
extern const char *const ms__tl_limit_keys[MS__TL_LIMITS];

/* The samples of a monitor file, one column per metric. */
struct ms__tl_series {
    size_t n;                      /* samples */
    size_t cap;                    /* room in every array */
    uint64_t *time_ns;             /* the sample's time_ns (wall clock, ns since the epoch) */
    uint64_t *mono_ns;             /* its snapshot's monotonic_ns (CLOCK_MONOTONIC), 0: none */
    bool mono;                     /* durations come from mono_ns (ms__tl_series_clock) */
    uint64_t *seq;                 /* the sample's seq (0 when the record had none) */
    uint64_t *val[MS__TL_METRICS]; /* bytes; meaningful where the valid bit is set */
    uint8_t *valid;                /* bit m set when val[m][i] was read */
};

/* Everything read from a monitor file (CSV or JSON lines). */
struct ms__tl_input {
    const char *path;       /* the file's name, as given (for messages) */
    bool csv;               /* CSV, else JSON lines */
    struct ms__tl_series s; /* the samples */
    json_t *start;          /* the start record, normalized (docs/analyze-format.md), or NULL */
    json_t *end;            /* the end record, normalized, or NULL */
    json_t *alerts;         /* array of normalized alert records */
    json_t *ooms;           /* array of normalized OOM records */
    json_t *markers;        /* array of normalized marker records */
    size_t *alert_at;       /* per alert: the samples before it in the file (its place) */
    size_t *oom_at;         /* per OOM record: idem */
    size_t *marker_at;      /* per marker: idem */
    size_t end_at;          /* the samples before the end record */
    uint64_t limit[MS__TL_LIMITS]; /* the limits seen (start record, else the last sample) */
    uint8_t limit_valid;           /* bit l set when limit[l] is known */
    double warning_pct;            /* from the start record; < 0 when not set */
    double critical_pct;           /* idem */
    unsigned long cut_line;        /* a cut last line that was ignored (its number), or 0 */
    unsigned long unknown;         /* records of an unknown kind, ignored */
    char *warnings;                /* NULL, or one line each ("warning: FILE:LINE: ...\n") */
};

/* Resizes a big array from old to bytes (p NULL: a new one), mapped with huge pages asked
 * for; NULL when out of memory (p is then unchanged). ms__tl_big_free() frees it. */
void *ms__tl_big_realloc(void *p, size_t old, size_t bytes);
void ms__tl_big_free(void *p, size_t bytes);

/* Reads monitor output from buf (len bytes, the whole file at path; CSV when it starts with
 * "record,", else JSON lines) into in (zeroed by the caller, path set). On an error sets the
 * calling thread's message (ms__error: one line naming the file and the line; MS_EPARSE, or
 * MS_ENOMEM) and returns -1; a cut last line and records of unknown kinds are warnings, in
 * in->warnings. */
int ms__tl_read(const char *buf, size_t len, struct ms__tl_input *in);
/* Whether ms__tl_read() takes sample lines of JSON lines on its validating fast path (true) or
 * hands every line to jansson; tests/fuzz/fuzz_analyze.c reads each input both ways and
 * requires the same result. */
extern bool ms__tl_fast_path;
/* Chooses the clock durations are measured by (s->mono): CLOCK_MONOTONIC when every sample
 * has its monotonic_ns and they never go back, so that a step of the wall clock during the run
 * (NTP, a suspend, date -s) neither makes a negative duration nor bends a trend; else the wall
 * clock (time_ns). ms__tl_read() calls it. */
void ms__tl_series_clock(struct ms__tl_series *s);
/* Nanoseconds from sample 0 to sample i of s by that clock (negative only on the wall clock
 * when it went back, with no monotonic times to use). */
int64_t ms__tl_elapsed_ns(const struct ms__tl_series *s, size_t i);
/* Nanoseconds from sample 0 of s (which has samples) to a record other than a sample (an
 * alert, OOM record, marker, the end) whose wall time is time_ns and which follows the first
 * `at` samples in the file. These records carry no monotonic time: on the monotonic clock it is
 * placed by the sample before it, at that sample's offset plus the wall-clock distance from it,
 * no earlier than that sample and no later than the next one, so that a wall-clock step moves
 * it no further than between its neighbours; on the wall clock (no monotonic times), at its
 * own time_ns. */
int64_t ms__tl_record_elapsed_ns(const struct ms__tl_series *s, size_t at, uint64_t time_ns);

/* Frees what ms__tl_read() allocated. */
void ms__tl_input_free(struct ms__tl_input *in);

/* How strongly a trend looks like a leak (rules in docs/analyze-format.md). */
enum ms__tl_severity { MS__TL_SEV_NONE, MS__TL_SEV_LOW, MS__TL_SEV_MEDIUM, MS__TL_SEV_HIGH };
const char *ms__tl_severity_name(enum ms__tl_severity s);

/* Tuning of the analysis; the defaults are documented in docs/analyze-format.md. */
#define MS__TL_TREND_POINTS 500 /* samples the Theil-Sen slope and Mann-Kendall test use */
#define MS__TL_SPIKE_WINDOW 31  /* samples in the rolling median (odd) */
#define MS__TL_SPIKE_K      5.0 /* a spike is more than this many robust sigmas above it */
#define MS__TL_SPIKE_RUN    5   /* samples a spike lasts at most, before it comes back down */
#define MS__TL_SPIKE_LIST   100 /* spikes listed per metric (all are counted) */

/* One metric's summary: over the samples where it was read. */
struct ms__tl_summary {
    size_t n;               /* samples with a value */
    uint64_t min, max;      /* bytes */
    double mean;            /* bytes */
    uint64_t p50, p90, p99; /* nearest-rank percentiles, bytes */
    size_t peak;            /* index in the series of the first sample at max */
};

/* One metric's trend: robust slope, its confidence, and the leak verdict. */
struct ms__tl_trend {
    size_t points;          /* samples used (at most MS__TL_TREND_POINTS, evenly spaced) */
    double slope;           /* Theil-Sen slope, bytes per second */
    double ci_low, ci_high; /* Sen's 95% confidence interval of the slope, bytes/s */
    double mk_z;            /* Mann-Kendall statistic, normalized */
    double p_value;         /* one-sided p-value of an increasing trend */
    double rising_share;    /* rises / (rises + falls) over consecutive samples; 0 if flat */
    double duration_s;      /* from the first to the last sample with a value */
    double growth_bytes;    /* slope * duration_s */
    double growth_pct;      /* growth_bytes as a percentage of the median (p50) */
    double time_to_limit_s; /* at this slope, from the last sample to the limit; < 0: none */
    enum ms__tl_severity severity;
    const char *reason; /* why this severity, one phrase */
};

/* One spike: a short excursion far above the rolling median that comes back down, at its
 * highest sample. */
struct ms__tl_spike {
    size_t index;    /* in the series */
    uint64_t value;  /* bytes */
    uint64_t median; /* the rolling median there, bytes */
};

struct ms__tl_spikes {
    size_t count;              /* spikes found */
    double sigma;              /* robust sigma of the residuals (1.4826 MAD), bytes */
    size_t listed;             /* entries in list: min(count, MS__TL_SPIKE_LIST) */
    struct ms__tl_spike *list; /* the first spikes, in time order */
};

struct ms__tl_metric_stats {
    bool present; /* at least one sample has the metric */
    struct ms__tl_summary sum;
    struct ms__tl_trend trend;
    struct ms__tl_spikes spikes;
};

/* Computes the summary, trend and spikes of every metric over s into out (present false for
 * a metric no sample has); limit[m] (when has_limit[m]) is what metric m runs into, for the
 * time-to-limit rule. Returns 0, or -1 when out of memory. */
int ms__tl_stats(const struct ms__tl_series *s, const bool has_limit[MS__TL_METRICS],
                 const uint64_t limit[MS__TL_METRICS],
                 struct ms__tl_metric_stats out[MS__TL_METRICS]);
/* Frees the spike list. */
void ms__tl_stats_free(struct ms__tl_metric_stats *st);

/* Writes the self-contained HTML report: the analysis object (docs/analyze-format.md), and
 * for monitor output the samples s (NULL for a trace, whose flame graph comes from folded,
 * the folded stacks of the heap at its peak). Returns 0, or -1 when writing failed. */
int ms__tl_write_html(FILE *fp, json_t *analysis, const struct ms__tl_series *s,
                      const char *folded);

/* ---------------------------------------------------------------------------------------- */
/* The analysis (report.c, trace.c, analyze.c)                                              */
/* ---------------------------------------------------------------------------------------- */

#define MS__TL_SCHEMA "memsnap.analyze/1" /* the analysis object's schema */

/* Which limit metric m runs into: the cgroup's for the process and cgroup metrics (else the
 * system's), the system's, the GPUs'. Returns false when none is known. */
bool ms__tl_metric_limit(const struct ms__tl_input *in, int m, uint64_t *limit);
/* The analysis object of monitor output (docs/analyze-format.md); NULL when out of memory. */
json_t *ms__tl_analysis_json(const struct ms__tl_input *in, const struct ms__tl_metric_stats *st);
/* Writes the text analysis of monitor output; 0, or -1 when writing failed. */
int ms__tl_analysis_text(FILE *fp, const struct ms__tl_input *in,
                         const struct ms__tl_metric_stats *st);

/* A trace's analysis (trace.c): its heap at the peak and its leaks, by call site. */
struct ms__tl_trace;
/* Opens the trace at path through ms_heap_* and finds its peak and leak views, listing top
 * sites. Returns 0 or an MS_E* code (ms__error set). *notes (NULL or lines, malloc'd) gets the
 * warnings and notes on how the trace ends. */
int ms__tl_trace_open(const char *path, size_t top, struct ms__tl_trace **out, char **notes);
void ms__tl_trace_free(struct ms__tl_trace *t);
/* The text analysis of the trace; 0, MS_ENOMEM, or MS_EIO when writing failed. */
int ms__tl_trace_text(struct ms__tl_trace *t, FILE *fp);
/* The analysis object of the trace (schema, file, kind, peak, leaks); NULL when out of
 * memory. */
json_t *ms__tl_trace_json(struct ms__tl_trace *t);
/* The folded stacks of the heap at its peak ("outer;...;inner bytes" lines, malloc'd), for
 * the flame graph; NULL when out of memory. */
char *ms__tl_trace_folded(struct ms__tl_trace *t);

#endif /* MEMSNAP_TIMELINE_H */

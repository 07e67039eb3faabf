/*
 * analyze.h - what the parts of `memsnap analyze` share: the samples and records read from
 * monitor output (analyze_read.c), the statistics over each metric (analyze_stats.c), and
 * the HTML report (analyze_html.c). cmd_analyze.c ties them together and writes text and
 * JSON. The format of what is read is docs/monitor-format.md; of what is written,
 * docs/analyze-format.md.
 */
#ifndef MEMSNAP_ANALYZE_H
#define MEMSNAP_ANALYZE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* X(id, JSON key, label) for each metric analyze follows, in report order. */
#define AN_METRIC_LIST(X)                                                                          \
    X(AN_RSS, "process_rss", "process RSS")                                                        \
    X(AN_PSS, "process_pss", "process PSS")                                                        \
    X(AN_CGROUP, "cgroup_current", "cgroup usage")                                                 \
    X(AN_SYSTEM, "system_used", "system used")                                                     \
    X(AN_GPU, "gpu_used", "GPU used")                                                              \
    X(AN_TREE_RSS, "tree_rss", "tree RSS")

#define AN__ENUM(id, key, label) id,
enum an_metric { AN_METRIC_LIST(AN__ENUM) AN_METRICS };
#undef AN__ENUM

/* The JSON key ("process_rss") and the label ("process RSS") of metric m. */
const char *an_metric_key(int m);
const char *an_metric_label(int m);

/* The limits a metric is measured against, as the monitor saw them. */
enum an_limit { AN_LIMIT_CGROUP, AN_LIMIT_SYSTEM, AN_LIMIT_GPU, AN_LIMITS };
/* Their keys in the start record's "limits" (docs/monitor-format.md): "cgroup_max_bytes"... */
extern const char *const an_limit_keys[AN_LIMITS];

/* The samples of a monitor file, one column per metric. */
struct an_series {
    size_t n;                  /* samples */
    size_t cap;                /* room in every array */
    uint64_t *time_ns;         /* the sample's time_ns (wall clock, ns since the epoch) */
    uint64_t *mono_ns;         /* its snapshot's monotonic_ns (CLOCK_MONOTONIC), 0: none */
    bool mono;                 /* durations come from mono_ns (an_series_clock) */
    uint64_t *seq;             /* the sample's seq (0 when the record had none) */
    uint64_t *val[AN_METRICS]; /* bytes; meaningful where the valid bit is set */
    uint8_t *valid;            /* bit m set when val[m][i] was read */
};

/* Everything read from a monitor file (CSV or JSON lines). */
struct an_input {
    const char *path;          /* as given on the command line */
    bool csv;                  /* CSV, else JSON lines */
    struct an_series s;        /* the samples */
    json_t *start;             /* the start record, normalized (docs/analyze-format.md), or NULL */
    json_t *end;               /* the end record, normalized, or NULL */
    json_t *alerts;            /* array of normalized alert records */
    json_t *ooms;              /* array of normalized OOM records */
    json_t *markers;           /* array of normalized marker records */
    size_t *alert_at;          /* per alert: the samples before it in the file (its place) */
    size_t *oom_at;            /* per OOM record: idem */
    size_t *marker_at;         /* per marker: idem */
    size_t end_at;             /* the samples before the end record */
    uint64_t limit[AN_LIMITS]; /* the limits seen (start record, else the last sample) */
    uint8_t limit_valid;       /* bit l set when limit[l] is known */
    double warning_pct;        /* from the start record; < 0 when not set */
    double critical_pct;       /* idem */
    unsigned long cut_line;    /* a cut last line that was ignored (its number), or 0 */
    unsigned long unknown;     /* records of an unknown kind, ignored */
};

/* Resizes a big array from old to bytes (p NULL: a new one), mapped with huge pages asked
 * for; NULL when out of memory (p is then unchanged). an_big_free() frees it. */
void *an_big_realloc(void *p, size_t old, size_t bytes);
void an_big_free(void *p, size_t bytes);

/* Reads monitor output from buf (len bytes, the whole file at path; CSV when it starts with
 * "record,", else JSON lines) into in (zeroed by the caller, path set). Prints every error as
 * one line naming the file and the line and returns -1; warns about a cut last line. */
int an_read(const char *buf, size_t len, struct an_input *in);
/* Whether an_read() takes sample lines of JSON lines on its validating fast path (true) or
 * hands every line to jansson; tests/fuzz/fuzz_analyze.c reads each input both ways and
 * requires the same result. */
extern bool an_fast_path;
/* Chooses the clock durations are measured by (s->mono): CLOCK_MONOTONIC when every sample
 * has its monotonic_ns and they never go back, so that a step of the wall clock during the run
 * (NTP, a suspend, date -s) neither makes a negative duration nor bends a trend; else the wall
 * clock (time_ns). an_read() calls it. */
void an_series_clock(struct an_series *s);
/* Nanoseconds from sample 0 to sample i of s by that clock (negative only on the wall clock
 * when it went back, with no monotonic times to use). */
int64_t an_elapsed_ns(const struct an_series *s, size_t i);
/* Nanoseconds from sample 0 of s (which has samples) to a record other than a sample (an
 * alert, OOM record, marker, the end) whose wall time is time_ns and which follows the first
 * `at` samples in the file. These records carry no monotonic time: on the monotonic clock it is
 * placed by the sample before it, at that sample's offset plus the wall-clock distance from it,
 * no earlier than that sample and no later than the next one, so that a wall-clock step moves
 * it no further than between its neighbours; on the wall clock (no monotonic times), at its
 * own time_ns. */
int64_t an_record_elapsed_ns(const struct an_series *s, size_t at, uint64_t time_ns);

/* Frees what an_read() allocated. */
void an_input_free(struct an_input *in);

/* How strongly a trend looks like a leak (rules in docs/analyze-format.md). */
enum an_severity { AN_SEV_NONE, AN_SEV_LOW, AN_SEV_MEDIUM, AN_SEV_HIGH };
const char *an_severity_name(enum an_severity s);

/* Tuning of the analysis; the defaults are documented in docs/analyze-format.md. */
#define AN_TREND_POINTS 500 /* samples the Theil-Sen slope and Mann-Kendall test use */
#define AN_SPIKE_WINDOW 31  /* samples in the rolling median (odd) */
#define AN_SPIKE_K      5.0 /* a spike is more than this many robust sigmas above it */
#define AN_SPIKE_LIST   100 /* spikes listed per metric (all are counted) */

/* One metric's summary: over the samples where it was read. */
struct an_summary {
    size_t n;               /* samples with a value */
    uint64_t min, max;      /* bytes */
    double mean;            /* bytes */
    uint64_t p50, p90, p99; /* nearest-rank percentiles, bytes */
    size_t peak;            /* index in the series of the first sample at max */
};

/* One metric's trend: robust slope, its confidence, and the leak verdict. */
struct an_trend {
    size_t points;          /* samples used (at most AN_TREND_POINTS, evenly spaced) */
    double slope;           /* Theil-Sen slope, bytes per second */
    double ci_low, ci_high; /* Sen's 95% confidence interval of the slope, bytes/s */
    double mk_z;            /* Mann-Kendall statistic, normalized */
    double p_value;         /* one-sided p-value of an increasing trend */
    double rising_share;    /* rises / (rises + falls) over consecutive samples; 0 if flat */
    double duration_s;      /* from the first to the last sample with a value */
    double growth_bytes;    /* slope * duration_s */
    double growth_pct;      /* growth_bytes as a percentage of the median (p50) */
    double time_to_limit_s; /* at this slope, from the last sample to the limit; < 0: none */
    enum an_severity severity;
    const char *reason; /* why this severity, one phrase */
};

/* One spike: a sample far above the rolling median around it. */
struct an_spike {
    size_t index;    /* in the series */
    uint64_t value;  /* bytes */
    uint64_t median; /* the rolling median there, bytes */
};

struct an_spikes {
    size_t count;          /* spikes found */
    double sigma;          /* robust sigma of the residuals (1.4826 MAD), bytes */
    size_t listed;         /* entries in list: min(count, AN_SPIKE_LIST) */
    struct an_spike *list; /* the first spikes, in time order */
};

struct an_metric_stats {
    bool present; /* at least one sample has the metric */
    struct an_summary sum;
    struct an_trend trend;
    struct an_spikes spikes;
};

/* Computes the summary, trend and spikes of every metric over s into out (present false for
 * a metric no sample has); limit[m] (when has_limit[m]) is what metric m runs into, for the
 * time-to-limit rule. Returns 0, or -1 when out of memory. */
int an_stats(const struct an_series *s, const bool has_limit[AN_METRICS],
             const uint64_t limit[AN_METRICS], struct an_metric_stats out[AN_METRICS]);
/* Frees the spike list. */
void an_stats_free(struct an_metric_stats *st);

/* Writes the self-contained HTML report: the analysis object (docs/analyze-format.md), and
 * for monitor output the samples s (NULL for a trace, whose flame graph comes from folded,
 * the folded stacks of the heap at its peak). Returns 0, or -1 when writing failed. */
int an_write_html(FILE *fp, json_t *analysis, const struct an_series *s, const char *folded);

#endif /* MEMSNAP_ANALYZE_H */

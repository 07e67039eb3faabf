/*
 * stats.c - the statistics of the timeline analysis (`memsnap analyze`) over each metric of
 * monitor output: the summary (min, max, mean, nearest-rank percentiles, time at peak), the trend
 * (the Theil-Sen slope over an evenly spaced subsample, Sen's 95% confidence interval, the
 * Mann-Kendall test, the share of rising steps, and the leak severity those give) and the
 * spikes (samples far above the rolling median, in robust sigmas of the residuals). The
 * rules and constants are documented in docs/analyze-format.md.
 *
 * Everything is linear in the samples: percentiles and medians come from quickselect with a
 * three-way partition (memory series repeat values a lot), doubles mapped to order-preserving
 * 64-bit keys, and the rolling median from a sorted window updated in place; one workspace
 * serves every metric. A million samples take a few tens of milliseconds per metric.
 */
#include "timeline.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TREND_MIN_POINTS 10   /* fewer samples: no trend verdict */
#define SIGNIFICANT_P    0.01 /* one-sided Mann-Kendall p-value of a trend */
#define Z_95             1.959963984540054
#define MAD_TO_SIGMA     1.4826
#define STATS_THREADS    4      /* metrics computed at once, at most */
#define RATE_MAX         9.2e18 /* bytes/s: a slope beyond is no measurement (a corrupt file) */

#define MS__TL__KEY(id, key, label)   key,
#define MS__TL__LABEL(id, key, label) label,
static const char *const metric_keys[] = {MS__TL_METRIC_LIST(MS__TL__KEY)};
static const char *const metric_labels[] = {MS__TL_METRIC_LIST(MS__TL__LABEL)};
#undef MS__TL__KEY
#undef MS__TL__LABEL

const char *const ms__tl_limit_keys[MS__TL_LIMITS] = {"cgroup_max_bytes", "system_total_bytes",
                                                      "gpu_total_bytes"};

const char *ms__tl_metric_key(int m)
{
    return metric_keys[m];
}

const char *ms__tl_metric_label(int m)
{
    return metric_labels[m];
}

const char *ms__tl_severity_name(enum ms__tl_severity s)
{
    static const char *const names[] = {"none", "low", "medium", "high"};
    return names[s];
}

void ms__tl_series_clock(struct ms__tl_series *s)
{
    s->mono = s->n > 0 && s->mono_ns;
    for (size_t i = 0; s->mono && i < s->n; i++)
        s->mono = s->mono_ns[i] != 0 && (i == 0 || s->mono_ns[i] >= s->mono_ns[i - 1]);
}

/* An unsigned difference as a signed one, saturated (never a wrapped sign). */
static int64_t diff_ns(uint64_t a, uint64_t b)
{
    if (a >= b)
        return a - b > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)(a - b);
    return b - a > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)(b - a);
}

int64_t ms__tl_elapsed_ns(const struct ms__tl_series *s, size_t i)
{
    return s->mono ? diff_ns(s->mono_ns[i], s->mono_ns[0]) : diff_ns(s->time_ns[i], s->time_ns[0]);
}

int64_t ms__tl_record_elapsed_ns(const struct ms__tl_series *s, size_t at, uint64_t time_ns)
{
    if (!s->mono)
        return diff_ns(time_ns, s->time_ns[0]);
    if (at > s->n)
        at = s->n;
    int64_t t; /* before the first sample: by the wall clock from it (then capped at 0) */
    if (at == 0)
        t = diff_ns(time_ns, s->time_ns[0]);
    else {
        int64_t d = diff_ns(time_ns, s->time_ns[at - 1]);
        t = ms__tl_elapsed_ns(s, at - 1);
        if (d > 0 && __builtin_add_overflow(t, d, &t))
            t = INT64_MAX;
    }
    if (at < s->n && t > ms__tl_elapsed_ns(s, at))
        t = ms__tl_elapsed_ns(s, at);
    return t;
}

/* Seconds from sample i to sample j of s (by the clock ms__tl_series_clock chose). */
static double span_s(const struct ms__tl_series *s, size_t i, size_t j)
{
    const uint64_t *t = s->mono ? s->mono_ns : s->time_ns;
    return (double)diff_ns(t[j], t[i]) / 1e9;
}

/* Reorders a[0..n) so that a[k] holds the value of rank k (0-based), with no larger value
 * before it and no smaller one after it: quickselect with pseudo-random pivots and a
 * three-way partition, linear on average whatever the input. */
static void select_k(uint64_t *a, size_t n, size_t k)
{
    uint64_t seed = 0x9e3779b97f4a7c15u ^ n;
    size_t lo = 0, hi = n;
    while (hi - lo > 1) {
        seed ^= seed << 13; /* xorshift64 */
        seed ^= seed >> 7;
        seed ^= seed << 17;
        uint64_t pivot = a[lo + seed % (hi - lo)], t;
        size_t lt = lo, i = lo, gt = hi;
        while (i < gt) {
            if (a[i] < pivot) {
                t = a[lt], a[lt++] = a[i], a[i++] = t;
            } else if (a[i] > pivot) {
                t = a[--gt], a[gt] = a[i], a[i] = t;
            } else
                i++;
        }
        if (k < lt)
            hi = lt;
        else if (k >= gt)
            lo = gt;
        else
            return;
    }
}

/* The values of ranks k[0] <= k[1] <= ... (count of them, 0-based) of a[0..n), into out;
 * a is reordered. */
static void select_ranks(uint64_t *a, size_t n, const size_t *k, int count, uint64_t *out)
{
    size_t base = 0;
    for (int i = 0; i < count; i++) {
        select_k(a + base, n - base, k[i] - base);
        out[i] = a[k[i]];
        base = k[i]; /* a[0..k[i]] <= a[k[i]] <= a[k[i]+1..] */
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* A double as a key whose unsigned order is the numeric order, and back. */
static uint64_t double_key(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u >> 63 ? ~u : u | UINT64_C(1) << 63;
}

static double key_double(uint64_t k)
{
    uint64_t u = k >> 63 ? k & ~(UINT64_C(1) << 63) : ~k;
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

/* The 0-based rank of the nearest-rank p-th percentile of n values: ceil(p * n / 100) - 1. */
static size_t pct_rank(size_t n, unsigned p)
{
    size_t rank = (p * n + 99) / 100;
    return rank ? rank - 1 : 0;
}

/* The metric's values where valid: x[k] and their series index at[k]; returns how many. */
static size_t compact(const struct ms__tl_series *s, int m, uint64_t *x, size_t *at)
{
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->valid[i] >> m & 1) {
            x[k] = s->val[m][i];
            at[k++] = i;
        }
    return k;
}

/* The summary of x (n values at series indexes at); work holds n values. */
static void summarize(const uint64_t *x, const size_t *at, size_t n, uint64_t *work,
                      struct ms__tl_summary *sum)
{
    long double total = 0;
    size_t peak = 0, min = 0;
    for (size_t k = 0; k < n; k++) {
        total += x[k];
        if (x[k] > x[peak])
            peak = k;
        if (x[k] < x[min])
            min = k;
    }
    memcpy(work, x, n * sizeof(*x));
    size_t ranks[3] = {pct_rank(n, 50), pct_rank(n, 90), pct_rank(n, 99)};
    uint64_t v[3];
    select_ranks(work, n, ranks, 3, v);
    sum->n = n;
    sum->min = x[min];
    sum->max = x[peak];
    sum->mean = (double)(total / n);
    sum->p50 = v[0];
    sum->p90 = v[1];
    sum->p99 = v[2];
    sum->peak = at[peak];
}

/* Mann-Kendall variance of S for n values with ties (sorted holds them, in order). */
static double mk_variance(const uint64_t *sorted, size_t n)
{
    double dn = (double)n;
    double v = dn * (dn - 1) * (2 * dn + 5);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && sorted[j] == sorted[i])
            j++;
        double t = (double)(j - i);
        v -= t * (t - 1) * (2 * t + 5);
        i = j;
    }
    return v / 18;
}

/* The trend over x (n values at series indexes at, median the p50); keys holds the pairwise
 * slopes of MS__TL_TREND_POINTS points. */
static void trend(const struct ms__tl_series *s, const uint64_t *x, const size_t *at, size_t n,
                  uint64_t median_x, bool has_limit, uint64_t limit, uint64_t *keys,
                  struct ms__tl_trend *tr)
{
    memset(tr, 0, sizeof(*tr));
    tr->time_to_limit_s = -1;
    tr->severity = MS__TL_SEV_NONE;
    tr->duration_s = n ? span_s(s, at[0], at[n - 1]) : 0;
    size_t rises = 0, falls = 0;
    for (size_t k = 1; k < n; k++) {
        rises += x[k] > x[k - 1];
        falls += x[k] < x[k - 1];
    }
    tr->rising_share = rises + falls ? (double)rises / (double)(rises + falls) : 0;
    if (n < TREND_MIN_POINTS) {
        tr->points = n;
        tr->reason = "too few samples";
        return;
    }
    size_t m = n < MS__TL_TREND_POINTS ? n : MS__TL_TREND_POINTS;
    double t[MS__TL_TREND_POINTS], v[MS__TL_TREND_POINTS];
    uint64_t scratch[MS__TL_TREND_POINTS];
    for (size_t k = 0; k < m; k++) {
        size_t i = m == n ? k : k * (n - 1) / (m - 1);
        t[k] = span_s(s, at[0], at[i]);
        v[k] = (double)x[i];
        scratch[k] = x[i];
    }
    tr->points = m;
    /* Mann-Kendall S and the pairwise slopes */
    long long S = 0;
    size_t ns = 0;
    for (size_t i = 0; i < m; i++)
        for (size_t j = i + 1; j < m; j++) {
            double dx = v[j] - v[i], dt = t[j] - t[i];
            S += (dx > 0) - (dx < 0);
            if (dt > 0)
                keys[ns++] = double_key(dx / dt);
        }
    qsort(scratch, m, sizeof(*scratch), cmp_u64);
    double var = mk_variance(scratch, m);
    double z = 0;
    if (var > 0 && S > 0)
        z = ((double)S - 1) / sqrt(var);
    else if (var > 0 && S < 0)
        z = ((double)S + 1) / sqrt(var);
    tr->mk_z = z;
    tr->p_value = 0.5 * erfc(z / sqrt(2.0));
    if (!ns) {
        tr->reason = "no time passes between the samples";
        return;
    }
    /* the median and Sen's interval: ranks (N - C) / 2 and (N + C) / 2 + 1 of the sorted
     * slopes, 1-based */
    double c = Z_95 * sqrt(var > 0 ? var : 0);
    double lo = round(((double)ns - c) / 2), hi = round(((double)ns + c) / 2) + 1;
    if (lo < 1)
        lo = 1;
    if (hi > (double)ns)
        hi = (double)ns;
    size_t ranks[4] = {(size_t)lo - 1, (ns - 1) / 2, ns / 2, (size_t)hi - 1};
    uint64_t r[4];
    if (ranks[0] > ranks[1]) /* N < C: the interval is every slope */
        ranks[0] = ranks[1];
    if (ranks[3] < ranks[2])
        ranks[3] = ranks[2];
    select_ranks(keys, ns, ranks, 4, r);
    tr->slope = (key_double(r[1]) + key_double(r[2])) / 2;
    tr->ci_low = key_double(r[0]);
    tr->ci_high = key_double(r[3]);
    if (!isfinite(tr->slope) || fabs(tr->slope) > RATE_MAX || !isfinite(tr->ci_low) ||
        !isfinite(tr->ci_high)) { /* bytes near 2^64 over nanoseconds: not a rate */
        tr->slope = tr->ci_low = tr->ci_high = 0;
        tr->reason = "no rate: the figures are out of range (a corrupt file?)";
        return;
    }
    tr->growth_bytes = tr->slope * tr->duration_s;
    double median = (double)median_x;
    tr->growth_pct = 100 * tr->growth_bytes / (median > 1 ? median : 1);
    if (has_limit && tr->slope > 0) {
        double last = (double)x[n - 1];
        tr->time_to_limit_s = last >= (double)limit ? 0 : ((double)limit - last) / tr->slope;
    }
    /* the severity rules of docs/analyze-format.md */
    if (tr->p_value >= SIGNIFICANT_P || tr->slope <= 0 || tr->ci_low <= 0) {
        tr->reason = "no significant upward trend";
        return;
    }
    if (tr->growth_pct < 1) {
        tr->reason = "grew less than 1% of its median";
        return;
    }
    if (tr->growth_pct >= 25) {
        tr->severity = MS__TL_SEV_HIGH;
        tr->reason = "grew 25% of its median or more";
    } else if (tr->time_to_limit_s >= 0 && tr->time_to_limit_s <= tr->duration_s) {
        tr->severity = MS__TL_SEV_HIGH;
        tr->reason = "reaches its limit within the time observed again";
    } else if (tr->growth_pct >= 5) {
        tr->severity = MS__TL_SEV_MEDIUM;
        tr->reason = "grew 5% of its median or more";
    } else if (tr->rising_share >= 0.9) {
        tr->severity = MS__TL_SEV_MEDIUM;
        tr->reason = "grew steadily (90% of its changes are rises)";
    } else {
        tr->severity = MS__TL_SEV_LOW;
        tr->reason = "grew 1% of its median or more";
    }
}

/* The first index of the sorted window w (cnt values) whose value is not below v. */
static size_t win_lower_bound(const uint64_t *w, size_t cnt, uint64_t v)
{
    size_t lo = 0, hi = cnt;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (w[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Inserts v into the sorted window w of *cnt values. */
static void win_insert(uint64_t *w, size_t *cnt, uint64_t v)
{
    size_t lo = win_lower_bound(w, *cnt, v);
    memmove(w + lo + 1, w + lo, (*cnt - lo) * sizeof(*w));
    w[lo] = v;
    (*cnt)++;
}

/* Removes one v (present) from the sorted window w. */
static void win_remove(uint64_t *w, size_t *cnt, uint64_t v)
{
    size_t lo = win_lower_bound(w, *cnt, v);
    memmove(w + lo, w + lo + 1, (*cnt - lo - 1) * sizeof(*w));
    (*cnt)--;
}

/* Whether v is above the band around the rolling median m: more than MS__TL_SPIKE_K robust
 * sigmas and more than 1% above it. */
static bool above_band(uint64_t v, uint64_t m, double sigma)
{
    if (v <= m)
        return false;
    double r = (double)(v - m);
    return r > MS__TL_SPIKE_K * sigma && r > (double)m / 100;
}

/* The spikes of x (n values at series indexes at); med and dev hold n values each. */
static int spikes(const uint64_t *x, const size_t *at, size_t n, uint64_t *med, uint64_t *dev,
                  struct ms__tl_spikes *sp)
{
    memset(sp, 0, sizeof(*sp));
    if (n < TREND_MIN_POINTS)
        return 0;
    /* centred windows: 2h+1 samples inside, narrower (still centred) near the ends */
    const size_t h = MS__TL_SPIKE_WINDOW / 2;
    uint64_t w[MS__TL_SPIKE_WINDOW], e[MS__TL_SPIKE_WINDOW];
    size_t cnt = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = h;
        if (i < k)
            k = i;
        if (n - 1 - i < k)
            k = n - 1 - i;
        if (k == h && cnt == 0) {
            for (size_t j = i - h; j <= i + h; j++)
                win_insert(w, &cnt, x[j]);
        } else if (k == h) {
            win_remove(w, &cnt, x[i - h - 1]);
            win_insert(w, &cnt, x[i + h]);
        }
        if (k == h) {
            med[i] = w[h];
        } else {
            size_t ce = 0;
            for (size_t j = i - k; j <= i + k; j++)
                win_insert(e, &ce, x[j]);
            med[i] = e[k];
        }
        dev[i] = x[i] > med[i] ? x[i] - med[i] : med[i] - x[i];
    }
    select_k(dev, n, (n - 1) / 2);
    sp->sigma = MAD_TO_SIGMA * (double)dev[(n - 1) / 2];
    /* A spike is a transient excursion: a run of at most MS__TL_SPIKE_RUN samples above the
     * band around the rolling median, with a sample inside the band before it, and after it a
     * sample back down within the band of where it rose from. A level that rises and stays is
     * growth (the trend's): the centred median catches up with it and it is never above the
     * band for long; one that rises and falls back much later (a growth phase, then a release
     * or the end of the program) is above the band for longer than a spike lasts. Each
     * excursion counts once, listed at its highest sample (the first of equal ones). */
    for (size_t i = 0; i < n;) {
        if (!above_band(x[i], med[i], sp->sigma)) {
            i++;
            continue;
        }
        size_t a = i, top = i;
        while (i < n && above_band(x[i], med[i], sp->sigma)) {
            if (x[i] > x[top])
                top = i;
            i++;
        }
        /* the run is a..i-1; i is the first sample after it (n: none) */
        if (a == 0 || i == n || i - a > MS__TL_SPIKE_RUN || above_band(x[i], med[a], sp->sigma))
            continue;
        if (sp->listed < MS__TL_SPIKE_LIST) {
            if (!sp->list && !(sp->list = malloc(MS__TL_SPIKE_LIST * sizeof(*sp->list))))
                return -1;
            sp->list[sp->listed++] = (struct ms__tl_spike){at[top], x[top], med[top]};
        }
        sp->count++;
    }
    return 0;
}

/* The work of one stats thread: the metrics it takes from a shared counter. */
struct stats_job {
    const struct ms__tl_series *s;
    const bool *has_limit;
    const uint64_t *limit;
    struct ms__tl_metric_stats *out;
    atomic_int *next; /* the next metric to take */
    int rc;           /* 0, or -1 when out of memory */
};

static void *stats_thread(void *arg)
{
    struct stats_job *job = arg;
    const struct ms__tl_series *s = job->s;
    size_t pairs = (size_t)MS__TL_TREND_POINTS * (MS__TL_TREND_POINTS - 1) / 2;
    size_t big = s->n > pairs ? s->n : pairs;
    uint64_t *x = ms__tl_big_realloc(NULL, 0, s->n * 8),
             *med = ms__tl_big_realloc(NULL, 0, s->n * 8);
    uint64_t *work = ms__tl_big_realloc(NULL, 0, big * 8);
    size_t *at = ms__tl_big_realloc(NULL, 0, s->n * sizeof(size_t));
    job->rc = x && med && work && at ? 0 : -1;
    for (int m; job->rc == 0 && (m = atomic_fetch_add(job->next, 1)) < MS__TL_METRICS;) {
        struct ms__tl_metric_stats *out = &job->out[m];
        size_t n = compact(s, m, x, at);
        if (!n)
            continue;
        out->present = true;
        summarize(x, at, n, work, &out->sum);
        trend(s, x, at, n, out->sum.p50, job->has_limit[m], job->limit[m], work, &out->trend);
        job->rc = spikes(x, at, n, med, work, &out->spikes);
    }
    ms__tl_big_free(x, s->n * 8);
    ms__tl_big_free(med, s->n * 8);
    ms__tl_big_free(work, big * 8);
    ms__tl_big_free(at, s->n * sizeof(size_t));
    return NULL;
}

int ms__tl_stats(const struct ms__tl_series *s, const bool has_limit[MS__TL_METRICS],
                 const uint64_t limit[MS__TL_METRICS],
                 struct ms__tl_metric_stats out[MS__TL_METRICS])
{
    memset(out, 0, MS__TL_METRICS * sizeof(*out));
    atomic_int next = 0;
    struct stats_job jobs[STATS_THREADS];
    pthread_t th[STATS_THREADS];
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    /* a thread per metric on big inputs, as many as there are CPUs */
    int n = s->n < 100000 || cpus < 2 ? 1 : cpus < STATS_THREADS ? (int)cpus : STATS_THREADS;
    int started = 0;
    for (int t = 0; t < n; t++) {
        jobs[t] = (struct stats_job){s, has_limit, limit, out, &next, 0};
        if (t > 0 && pthread_create(&th[t], NULL, stats_thread, &jobs[t]) != 0)
            break;
        started = t;
    }
    stats_thread(&jobs[0]); /* and whatever metrics the others leave */
    int rc = jobs[0].rc;
    for (int t = 1; t <= started; t++) {
        pthread_join(th[t], NULL);
        rc |= jobs[t].rc;
    }
    return rc;
}

void ms__tl_stats_free(struct ms__tl_metric_stats *st)
{
    free(st->spikes.list);
    st->spikes.list = NULL;
}

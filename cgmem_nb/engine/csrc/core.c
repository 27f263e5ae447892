/*
 * core.c -- the sampling core: countdown draws and weights, the sample store,
 * the pointer table and its membership filter (see sampler.h for the rules).
 *
 * Every allocated byte has the same chance of being sampled: an exponential
 * countdown of mean `cg_mean` bytes is decremented by each allocation, and the
 * allocation that crosses it is recorded with the unbiased weight
 * size / (1 - exp(-size / mean)).
 */
#include "sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Membership filter in front of the pointer table: one 8-bit counter per hash of
 * a sampled live pointer, incremented on insert and decremented on removal, so
 * that freed samples leave no trace (allocators hand recently freed addresses
 * straight back: a stale entry would send every reuse down the slow path). It is
 * sized to 32-64 counters per live sample, from 16 KiB to 4 MiB: small enough to
 * stay in cache on the free path, sparse enough that hot (constantly reused)
 * addresses rarely share a counter with a live sample. */
#define FILTER_MIN_LOG2 14
#define FILTER_CLASSES 9 /* 2^14 .. 2^22 counters */
#define FILTER_STORAGE ((1u << (FILTER_MIN_LOG2 + FILTER_CLASSES)) - (1u << FILTER_MIN_LOG2))
#define DEFAULT_FREED_CAP 65536

typedef struct {
    uintptr_t key; /* 0 = empty */
    uint64_t idx;
} slot_t;

volatile int cg_running = 0;
double cg_mean = 65536.0;
int cg_depth = 1;
pthread_mutex_t cg_lock = PTHREAD_MUTEX_INITIALIZER;
__thread int cg_t_busy = 0;
__thread uint16_t cg_t_tag = 0;

/* ---- the sample store (under cg_lock) ---- */

static cg_sample_t *g_samples = NULL;
static size_t g_nsamples = 0, g_cap_samples = 0, g_nfreed = 0;
static size_t g_freed_cap = DEFAULT_FREED_CAP;
static uint64_t g_seq = 1;
static uint64_t g_dropped = 0;     /* samples lost to libc malloc failures */
static uint64_t g_evicted_seq = 0; /* freed samples with seq <= this were evicted */
static double g_live_weight = 0.0, g_peak_weight = 0.0;
static uint64_t g_filter_passes = 0, g_filter_hits = 0; /* free-path statistics */

static slot_t *g_table = NULL;
static size_t g_table_cap = 0, g_table_used = 0;

/* Two buffers per size class, in static memory (untouched pages cost nothing); a
 * resize builds the buffer that is not published. Buffers are never freed, so a
 * reader without the lock that still holds an old one reads valid memory. */
static uint8_t g_filter_storage[2][FILTER_STORAGE];
static uint8_t g_filter_zero_counts[1u << FILTER_MIN_LOG2];
static cg_filter_t g_filters[FILTER_CLASSES][2];
/* The all-zero filter, published while nothing is tracked. */
static cg_filter_t g_filter_zero = {64 - FILTER_MIN_LOG2, 1u << FILTER_MIN_LOG2, g_filter_zero_counts};
cg_filter_t *volatile cg_filter = &g_filter_zero;

/* ---- draws ---- */

/* xorshift64*; each state has one owner (the GIL or cg_lock) so it never races. */
static inline uint64_t rng_next(uint64_t *state) {
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

int64_t cg_draw(uint64_t *rng) {
    double u = ((double)(rng_next(rng) >> 11) + 1.0) / 9007199254740993.0; /* (0, 1] */
    double d = -log(u) * cg_mean;
    if (d < 1.0) d = 1.0;
    if (d > 9.0e18) d = 9.0e18;
    return (int64_t)d;
}

uint64_t cg_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- the pointer table (under cg_lock) ---- */

static inline size_t ptr_hash(uintptr_t p) {
    return (size_t)(((uint64_t)(p >> 4) * 0x9E3779B97F4A7C15ull) >> 17);
}

/* Returns 1 if the key is new, 0 if it replaced an entry (old index in *old). */
static int table_insert_raw(slot_t *t, size_t cap, uintptr_t key, uint64_t idx, uint64_t *old) {
    size_t mask = cap - 1, i = ptr_hash(key) & mask;
    while (t[i].key != 0) {
        if (t[i].key == key) {
            if (old) *old = t[i].idx;
            t[i].idx = idx;
            return 0;
        }
        i = (i + 1) & mask;
    }
    t[i].key = key;
    t[i].idx = idx;
    return 1;
}

static int table_grow(void) {
    size_t cap = g_table_cap ? g_table_cap * 2 : 1024;
    slot_t *t = calloc(cap, sizeof(slot_t));
    if (t == NULL) return -1;
    for (size_t i = 0; i < g_table_cap; i++)
        if (g_table[i].key) table_insert_raw(t, cap, g_table[i].key, g_table[i].idx, NULL);
    free(g_table);
    g_table = t;
    g_table_cap = cap;
    return 0;
}

/* Forget a sample whose block is gone. */
static void mark_freed(uint64_t idx) {
    cg_sample_t *s = &g_samples[idx];
    if (!s->live) return;
    s->live = 0;
    g_nfreed++;
    g_live_weight -= s->weight;
    if (g_live_weight < 0) g_live_weight = 0;
}

/* Returns 1 when the key is new, 0 when it replaced an entry, -1 on no memory. */
static int table_insert(uintptr_t key, uint64_t idx) {
    uint64_t old = 0;
    if ((g_table_used + 1) * 2 > g_table_cap && table_grow() < 0) return -1;
    if (table_insert_raw(g_table, g_table_cap, key, idx, &old)) {
        g_table_used++;
        return 1;
    }
    if (old != idx && old < g_nsamples) {
        /* The address came back from the allocator, so its old block was freed
         * behind our back (e.g. while tracemalloc.stop() had dropped our hook). */
        mark_freed(old);
    }
    return 0;
}

/* Remove key; returns the sample index or -1. Backward-shift deletion. */
static int64_t table_remove(uintptr_t key) {
    if (g_table_cap == 0 || key == 0) return -1; /* 0 marks an empty slot */
    size_t mask = g_table_cap - 1, i = ptr_hash(key) & mask;
    while (g_table[i].key != key) {
        if (g_table[i].key == 0) return -1;
        i = (i + 1) & mask;
    }
    int64_t found = (int64_t)g_table[i].idx;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (g_table[j].key == 0) break;
        size_t home = ptr_hash(g_table[j].key) & mask;
        /* move j into the hole at i unless its home lies cyclically in (i, j] */
        int in_range = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!in_range) {
            g_table[i] = g_table[j];
            i = j;
        }
    }
    g_table[i].key = 0;
    g_table_used--;
    return found;
}

/* Drop the oldest freed samples and rebuild the table. */
static void compact_samples(void) {
    size_t keep_freed = g_freed_cap / 2, to_drop = g_nfreed - keep_freed, w = 0;
    for (size_t r = 0; r < g_nsamples; r++) {
        cg_sample_t *s = &g_samples[r];
        if (!s->live && to_drop > 0) {
            to_drop--;
            g_nfreed--;
            if (s->seq > g_evicted_seq) g_evicted_seq = s->seq;
            continue;
        }
        g_samples[w++] = *s;
    }
    g_nsamples = w;
    memset(g_table, 0, g_table_cap * sizeof(slot_t));
    g_table_used = 0;
    for (size_t r = 0; r < g_nsamples; r++)
        if (g_samples[r].live) g_table_used += table_insert_raw(g_table, g_table_cap, g_samples[r].ptr, r, NULL);
}

/* ---- the filter (under cg_lock; read without it) ---- */

static void filters_init(void) {
    for (int b = 0; b < 2; b++) {
        size_t off = 0;
        for (int c = 0; c < FILTER_CLASSES; c++) {
            unsigned size = 1u << (FILTER_MIN_LOG2 + c);
            g_filters[c][b].shift = 64 - (FILTER_MIN_LOG2 + c);
            g_filters[c][b].size = size;
            g_filters[c][b].counts = &g_filter_storage[b][off];
            off += size;
        }
    }
}

/* Publish a filter of the size class that fits the live entries, built from the table. */
static void filter_resize(void) {
    int c = 0;
    while (c < FILTER_CLASSES - 1 && (size_t)g_filters[c][0].size < 32 * (g_table_used + 1)) c++;
    cg_filter_t *next = cg_filter == &g_filters[c][0] ? &g_filters[c][1] : &g_filters[c][0];
    memset(next->counts, 0, next->size);
    for (size_t i = 0; i < g_table_cap; i++) {
        if (g_table[i].key) {
            uint8_t *n = &next->counts[cg_filter_hash(next, g_table[i].key)];
            if (*n != 255) (*n)++;
        }
    }
    __atomic_store_n(&cg_filter, next, __ATOMIC_RELEASE);
}

/* After the key was added to the table. */
static inline void filter_add(uintptr_t p) {
    cg_filter_t *f = cg_filter;
    if (f == &g_filter_zero || (size_t)f->size < 16 * g_table_used) {
        filter_resize(); /* counts p: it is in the table */
        return;
    }
    uint8_t *n = &f->counts[cg_filter_hash(f, p)];
    if (*n != 255) (*n)++; /* a saturated counter stays set until the next resize */
}

/* After the key was removed from the table. */
static inline void filter_remove(uintptr_t p) {
    cg_filter_t *f = cg_filter;
    if (f == &g_filter_zero) return;
    uint8_t *n = &f->counts[cg_filter_hash(f, p)];
    if (*n != 255 && *n != 0) (*n)--;
    if (f->size > (1u << FILTER_MIN_LOG2) && (size_t)f->size > 128 * (g_table_used + 1)) filter_resize();
}

/* ---- recording ---- */

void cg_record(uintptr_t ptr, size_t size, int domain, uint32_t stack, uint16_t tag) {
    double mean = cg_mean, x = (double)size / mean;
    double weight = x > 40.0 ? (double)size : (double)size / -expm1(-x);
    uint64_t tid = (uint64_t)PyThread_get_thread_ident();
    uint64_t ts = cg_now_ns();
    pthread_mutex_lock(&cg_lock);
    if (!cg_running) goto out;
    if (g_nfreed > g_freed_cap) compact_samples();
    if (g_nsamples == g_cap_samples) {
        size_t cap = g_cap_samples ? g_cap_samples * 2 : 4096;
        cg_sample_t *s = realloc(g_samples, cap * sizeof(cg_sample_t));
        if (s == NULL) {
            g_dropped++;
            goto out;
        }
        g_samples = s;
        g_cap_samples = cap;
    }
    int added = table_insert(ptr, g_nsamples);
    if (added < 0) {
        g_dropped++;
        goto out;
    }
    if (added) filter_add(ptr);
    cg_sample_t *s = &g_samples[g_nsamples++];
    s->ptr = ptr;
    s->size = size;
    s->weight = weight;
    s->tid = tid;
    s->ts_ns = ts;
    s->seq = g_seq++;
    s->stack = stack;
    s->tag = tag;
    s->domain = (uint8_t)domain;
    s->live = 1;
    g_live_weight += weight;
    if (g_live_weight > g_peak_weight) g_peak_weight = g_live_weight;
out:
    pthread_mutex_unlock(&cg_lock);
}

void cg_sample(void *p, size_t size, int domain, PyThreadState *tstate) {
    cg_t_busy = 1;
    uint32_t stack = tstate ? cg_capture_stack(tstate) : CG_NO_STACK;
    cg_record((uintptr_t)p, size, domain, stack, cg_t_tag);
    cg_t_busy = 0;
}

int64_t cg_untrack(const void *p) {
    int64_t idx;
    if (p == NULL) return -1;
    pthread_mutex_lock(&cg_lock);
    idx = table_remove((uintptr_t)p);
    g_filter_passes++;
    if (idx >= 0) {
        g_filter_hits++;
        mark_freed((uint64_t)idx);
        filter_remove((uintptr_t)p);
    }
    pthread_mutex_unlock(&cg_lock);
    return idx;
}

void cg_retrack(int64_t idx, const void *p) {
    pthread_mutex_lock(&cg_lock);
    /* a compaction may have run meanwhile: only restore if the slot still matches */
    if ((size_t)idx < g_nsamples && g_samples[idx].ptr == (uintptr_t)p && !g_samples[idx].live &&
        table_insert((uintptr_t)p, (uint64_t)idx) == 1) {
        g_samples[idx].live = 1;
        g_nfreed--;
        g_live_weight += g_samples[idx].weight;
        filter_add((uintptr_t)p);
    }
    pthread_mutex_unlock(&cg_lock);
}

/* ---- life cycle and reading ---- */

void cg_core_init(void) { filters_init(); }

void cg_core_clear(void) {
    pthread_mutex_lock(&cg_lock);
    cg_sample_t *samples = g_samples;
    slot_t *table = g_table;
    g_samples = NULL;
    g_nsamples = g_cap_samples = g_nfreed = 0;
    g_table = NULL;
    g_table_cap = g_table_used = 0;
    __atomic_store_n(&cg_filter, &g_filter_zero, __ATOMIC_RELEASE);
    g_live_weight = g_peak_weight = 0.0;
    g_evicted_seq = g_seq - 1;
    pthread_mutex_unlock(&cg_lock);
    free(samples);
    free(table);
}

void cg_core_after_fork_child(void) { pthread_mutex_init(&cg_lock, NULL); }

void cg_core_stats(cg_core_stats_t *out) {
    pthread_mutex_lock(&cg_lock);
    out->samples = g_nsamples;
    out->freed_samples = g_nfreed;
    out->memory_bytes = g_cap_samples * sizeof(cg_sample_t) + g_table_cap * sizeof(slot_t) + 2 * (size_t)cg_filter->size;
    out->freed_cap = g_freed_cap;
    out->dropped = g_dropped;
    out->evicted_through_seq = g_evicted_seq;
    out->next_seq = g_seq;
    out->filter_passes = g_filter_passes;
    out->filter_hits = g_filter_hits;
    out->filter_counters = cg_filter->size;
    pthread_mutex_unlock(&cg_lock);
}

int cg_core_samples_since(uint64_t since, cg_sample_t **out, size_t *n) {
    cg_sample_t *copy = NULL;
    int rc = 0;
    *n = 0;
    pthread_mutex_lock(&cg_lock);
    size_t first = 0, hi = g_nsamples; /* samples are in seq order */
    while (first < hi) {
        size_t mid = first + (hi - first) / 2;
        if (g_samples[mid].seq < since) first = mid + 1;
        else hi = mid;
    }
    if (g_nsamples > first) {
        copy = malloc((g_nsamples - first) * sizeof(cg_sample_t));
        if (copy != NULL) {
            *n = g_nsamples - first;
            memcpy(copy, &g_samples[first], *n * sizeof(cg_sample_t));
        } else {
            rc = -1;
        }
    }
    pthread_mutex_unlock(&cg_lock);
    *out = copy;
    return rc;
}

uint64_t cg_core_next_seq(void) {
    pthread_mutex_lock(&cg_lock);
    uint64_t s = g_seq;
    pthread_mutex_unlock(&cg_lock);
    return s;
}

void cg_core_live(double *live, double *peak) {
    pthread_mutex_lock(&cg_lock);
    *live = g_live_weight;
    *peak = g_peak_weight;
    pthread_mutex_unlock(&cg_lock);
}

void cg_core_reset_peak(void) {
    pthread_mutex_lock(&cg_lock);
    g_peak_weight = g_live_weight;
    pthread_mutex_unlock(&cg_lock);
}

int cg_core_set_freed_cap(size_t cap) {
    if (cap < 16) return -1;
    pthread_mutex_lock(&cg_lock);
    g_freed_cap = cap;
    pthread_mutex_unlock(&cg_lock);
    return 0;
}

/*
 * cgmem_nb.engine._sampler -- a byte-sampling allocation profiler for CPython 3.11.
 *
 * Chains onto the PYMEM_DOMAIN_MEM and PYMEM_DOMAIN_OBJ allocators (RAW is left
 * alone) and onto numpy's default NEP 49 data-memory handler. Every allocated byte
 * has the same chance of being sampled: an exponential countdown of mean
 * `interval` bytes is decremented by each allocation and the allocation that
 * crosses it is recorded with the unbiased weight size / (1 - exp(-size/mean)).
 *
 * Locking rules:
 *  - MEM and OBJ hooks always run with the GIL held (CPython 3.11), so their
 *    countdown and the stack table are protected by the GIL.
 *  - numpy's handler may run without the GIL, so samples, the pointer table and
 *    the membership filter are protected by g_lock (a plain mutex). Nothing that
 *    may call PyMem runs while g_lock is held, and the GIL is never taken in a hook.
 *  - Code objects are INCREF'ed in a hook (GIL held, the frame owns a reference,
 *    no allocation); they are DECREF'ed only from module functions, after the
 *    stack table has been detached from the globals.
 *
 * All state lives in static memory or libc malloc, never PyMem.
 */
#define PY_SSIZE_T_CLEAN
#define Py_BUILD_CORE_MODULE 1
#include <Python.h>

#if PY_VERSION_HEX < 0x030B0000 || PY_VERSION_HEX >= 0x030C0000
#error "cgmem_nb._sampler walks CPython 3.11 interpreter frames; other versions are not supported"
#endif
#ifdef Py_GIL_DISABLED
#error "cgmem_nb._sampler does not support free-threaded builds"
#endif

#include "internal/pycore_frame.h"
#include "internal/pycore_pystate.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_DEPTH 100
#define NO_STACK UINT32_MAX
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

enum { DOM_MEM = 0, DOM_OBJ = 1, DOM_NUMPY = 2, NDOMAINS = 3 };

typedef struct {
    uintptr_t ptr;
    uint64_t size;
    double weight;
    uint64_t tid;
    uint64_t ts_ns;
    uint64_t seq;
    uint32_t stack;
    uint16_t tag;
    uint8_t domain;
    uint8_t live;
} sample_t;

typedef struct {
    uintptr_t key; /* 0 = empty */
    uint64_t idx;
} slot_t;

typedef struct {
    PyCodeObject *code;
    int64_t lasti; /* 64-bit: no padding, frames are compared with memcmp */
} frame_t;

typedef struct {
    uint64_t hash;
    uint32_t off;
    uint32_t n;
} stack_t_;

/* numpy's PyDataMemAllocator / PyDataMem_Handler, version 1 (ABI-stable). */
typedef struct {
    void *ctx;
    void *(*malloc)(void *ctx, size_t size);
    void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
    void *(*realloc)(void *ctx, void *ptr, size_t new_size);
    void (*free)(void *ctx, void *ptr, size_t size);
} np_allocator_t;

typedef struct {
    char name[127];
    uint8_t version;
    np_allocator_t allocator;
} np_handler_t;

typedef struct {
    int domain;
    PyMemAllocatorEx prev;
    int installed; /* we believe our hook is somewhere in the chain */
} hook_t;

/* ---- global state (static memory) ---- */

static hook_t g_hooks[2] = {{DOM_MEM, {0}, 0}, {DOM_OBJ, {0}, 0}};
static PyMemAllocatorEx g_ours[2];

static volatile int g_running = 0;
static int64_t g_countdown = INT64_MAX;     /* MEM+OBJ, GIL-protected */
static int64_t g_np_countdown = INT64_MAX;  /* numpy, under g_lock */
static double g_mean = 65536.0;
static int g_depth = 1;
static uint64_t g_rng = 0x9E3779B97F4A7C15ull;    /* GIL-protected */
static uint64_t g_np_rng = 0xD1B54A32D192ED03ull; /* under g_lock */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static sample_t *g_samples = NULL;
static size_t g_nsamples = 0, g_cap_samples = 0, g_nfreed = 0;
static size_t g_freed_cap = DEFAULT_FREED_CAP;
static uint64_t g_seq = 1;
static uint64_t g_dropped = 0;     /* samples lost to libc malloc failures */
static uint64_t g_evicted_seq = 0; /* freed samples with seq <= this were evicted */
static double g_live_weight = 0.0, g_peak_weight = 0.0;

static slot_t *g_table = NULL;
static size_t g_table_cap = 0, g_table_used = 0;
typedef struct {
    unsigned shift; /* 64 - log2(size) */
    unsigned size;  /* counters */
    uint8_t *counts;
} filter_t;

/* Two buffers per size class, in static memory (untouched pages cost nothing); a
 * resize builds the buffer that is not published. Buffers are never freed, so a
 * reader without the lock that still holds an old one reads valid memory. */
static uint8_t g_filter_storage[2][FILTER_STORAGE];
static uint8_t g_filter_zero_counts[1u << FILTER_MIN_LOG2];
static filter_t g_filters[FILTER_CLASSES][2];
/* The all-zero filter, published while nothing is tracked. */
static filter_t g_filter_zero = {64 - FILTER_MIN_LOG2, 1u << FILTER_MIN_LOG2, g_filter_zero_counts};
static filter_t *volatile g_filter = &g_filter_zero;

/* Stack table: GIL-protected. */
static frame_t *g_frames = NULL;
static size_t g_nframes = 0, g_cap_frames = 0;
static stack_t_ *g_stacks = NULL;
static size_t g_nstacks = 0, g_cap_stacks = 0;
static uint32_t *g_stack_index = NULL; /* open addressing of stack ids + 1 */
static size_t g_stack_index_cap = 0;

static PyObject *g_tag_names = NULL; /* list: index -> str, 0 = None */
static __thread uint16_t t_tag = 0;
static __thread int t_busy = 0;
static __thread int t_probe = 0, t_probe_seen = 0;

static PyObject *g_np_capsule = NULL; /* numpy's default handler capsule */
static np_handler_t *g_np_prev = NULL;
/* Never rewritten: a thread without the GIL may be reading it at any time. */
static np_handler_t g_np_handler = {"cgmem_nb_sampler", 1, {NULL, NULL, NULL, NULL, NULL}};

/* ---- small helpers ---- */

/* xorshift64*; each state has one owner (the GIL or g_lock) so it never races. */
static inline uint64_t rng_next(uint64_t *state) {
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Exponential draw of mean g_mean from the given generator state. */
static int64_t draw_from(uint64_t *state) {
    double u = ((double)(rng_next(state) >> 11) + 1.0) / 9007199254740993.0; /* (0, 1] */
    double d = -log(u) * g_mean;
    if (d < 1.0) d = 1.0;
    if (d > 9.0e18) d = 9.0e18;
    return (int64_t)d;
}

/* Countdown for MEM/OBJ (GIL held). */
static int64_t draw_countdown(void) { return draw_from(&g_rng); }

/* Countdown for numpy (g_lock held). */
static int64_t draw_np_countdown(void) { return draw_from(&g_np_rng); }

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline size_t ptr_hash(uintptr_t p) {
    return (size_t)(((uint64_t)(p >> 4) * 0x9E3779B97F4A7C15ull) >> 17);
}

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

static inline uint32_t filter_hash(const filter_t *f, uintptr_t p) {
    return (uint32_t)(((uint64_t)(p >> 4) * 0x9E3779B97F4A7C15ull) >> f->shift);
}

static inline int filter_maybe(const void *p) {
    const filter_t *f = __atomic_load_n(&g_filter, __ATOMIC_ACQUIRE);
    return f->counts[filter_hash(f, (uintptr_t)p)] != 0;
}

/* ---- pointer table (under g_lock) ---- */

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

/* Forget a sample whose block is gone (under g_lock). */
static void mark_freed(uint64_t idx) {
    sample_t *s = &g_samples[idx];
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

/* Drop the oldest freed samples and rebuild the table (under g_lock). */
static void compact_samples(void) {
    size_t keep_freed = g_freed_cap / 2, to_drop = g_nfreed - keep_freed, w = 0;
    for (size_t r = 0; r < g_nsamples; r++) {
        sample_t *s = &g_samples[r];
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

/* Under g_lock: publish a filter of the size class that fits the live entries,
 * built from the table. */
static void filter_resize(void) {
    int c = 0;
    while (c < FILTER_CLASSES - 1 && (size_t)g_filters[c][0].size < 32 * (g_table_used + 1)) c++;
    filter_t *next = g_filter == &g_filters[c][0] ? &g_filters[c][1] : &g_filters[c][0];
    memset(next->counts, 0, next->size);
    for (size_t i = 0; i < g_table_cap; i++) {
        if (g_table[i].key) {
            uint8_t *n = &next->counts[filter_hash(next, g_table[i].key)];
            if (*n != 255) (*n)++;
        }
    }
    __atomic_store_n(&g_filter, next, __ATOMIC_RELEASE);
}

/* Under g_lock, after the key was added to the table. */
static inline void filter_add(uintptr_t p) {
    filter_t *f = g_filter;
    if (f == &g_filter_zero || (size_t)f->size < 16 * g_table_used) {
        filter_resize(); /* counts p: it is in the table */
        return;
    }
    uint8_t *n = &f->counts[filter_hash(f, p)];
    if (*n != 255) (*n)++; /* a saturated counter stays set until the next resize */
}

/* Under g_lock, after the key was removed from the table. */
static inline void filter_remove(uintptr_t p) {
    filter_t *f = g_filter;
    if (f == &g_filter_zero) return;
    uint8_t *n = &f->counts[filter_hash(f, p)];
    if (*n != 255 && *n != 0) (*n)--;
    if (f->size > (1u << FILTER_MIN_LOG2) && (size_t)f->size > 128 * (g_table_used + 1)) filter_resize();
}

/* Record a sample (takes g_lock). */
static void record_sample(uintptr_t ptr, size_t size, int domain, uint32_t stack, uint16_t tag) {
    double mean = g_mean, x = (double)size / mean;
    double weight = x > 40.0 ? (double)size : (double)size / -expm1(-x);
    uint64_t tid = (uint64_t)PyThread_get_thread_ident();
    uint64_t ts = now_ns();
    pthread_mutex_lock(&g_lock);
    if (!g_running) goto out;
    if (g_nfreed > g_freed_cap) compact_samples();
    if (g_nsamples == g_cap_samples) {
        size_t cap = g_cap_samples ? g_cap_samples * 2 : 4096;
        sample_t *s = realloc(g_samples, cap * sizeof(sample_t));
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
    sample_t *s = &g_samples[g_nsamples++];
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
    pthread_mutex_unlock(&g_lock);
}

/* Forget a freed pointer; returns its sample index or -1 (takes g_lock). */
static uint64_t g_filter_passes = 0, g_filter_hits = 0; /* free-path statistics */

static int64_t untrack(const void *p) {
    int64_t idx;
    if (p == NULL) return -1;
    pthread_mutex_lock(&g_lock);
    idx = table_remove((uintptr_t)p);
    g_filter_passes++;
    if (idx >= 0) {
        g_filter_hits++;
        mark_freed((uint64_t)idx);
        filter_remove((uintptr_t)p);
    }
    pthread_mutex_unlock(&g_lock);
    return idx;
}

/* Undo untrack() after a failed realloc (the block is still alive). */
static void retrack(int64_t idx, const void *p) {
    pthread_mutex_lock(&g_lock);
    /* a compaction may have run meanwhile: only restore if the slot still matches */
    if ((size_t)idx < g_nsamples && g_samples[idx].ptr == (uintptr_t)p && !g_samples[idx].live &&
        table_insert((uintptr_t)p, (uint64_t)idx) == 1) {
        g_samples[idx].live = 1;
        g_nfreed--;
        g_live_weight += g_samples[idx].weight;
        filter_add((uintptr_t)p);
    }
    pthread_mutex_unlock(&g_lock);
}

/* ---- stacks (GIL held) ---- */

static uint64_t frames_hash(const frame_t *f, int n) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < n; i++) {
        h = (h ^ (uint64_t)(uintptr_t)f[i].code) * 1099511628211ull;
        h = (h ^ (uint64_t)(uint32_t)f[i].lasti) * 1099511628211ull;
    }
    return h ^ (uint64_t)n;
}

static int stack_index_grow(void) {
    size_t cap = g_stack_index_cap ? g_stack_index_cap * 2 : 1024;
    uint32_t *idx = calloc(cap, sizeof(uint32_t));
    if (idx == NULL) return -1;
    for (size_t s = 0; s < g_nstacks; s++) {
        size_t i = (size_t)g_stacks[s].hash & (cap - 1);
        while (idx[i]) i = (i + 1) & (cap - 1);
        idx[i] = (uint32_t)s + 1;
    }
    free(g_stack_index);
    g_stack_index = idx;
    g_stack_index_cap = cap;
    return 0;
}

static uint32_t intern_stack(const frame_t *f, int n) {
    uint64_t h = frames_hash(f, n);
    if ((g_nstacks + 1) * 2 > g_stack_index_cap && stack_index_grow() < 0) return NO_STACK;
    size_t mask = g_stack_index_cap - 1, i = (size_t)h & mask;
    while (g_stack_index[i]) {
        stack_t_ *st = &g_stacks[g_stack_index[i] - 1];
        if (st->hash == h && st->n == (uint32_t)n && memcmp(&g_frames[st->off], f, n * sizeof(frame_t)) == 0)
            return g_stack_index[i] - 1;
        i = (i + 1) & mask;
    }
    if (g_nstacks == g_cap_stacks) {
        size_t cap = g_cap_stacks ? g_cap_stacks * 2 : 1024;
        stack_t_ *s = realloc(g_stacks, cap * sizeof(stack_t_));
        if (s == NULL) return NO_STACK;
        g_stacks = s;
        g_cap_stacks = cap;
    }
    if (g_nframes + (size_t)n > g_cap_frames) {
        size_t cap = g_cap_frames ? g_cap_frames * 2 : 8192;
        while (cap < g_nframes + (size_t)n) cap *= 2;
        frame_t *fr = realloc(g_frames, cap * sizeof(frame_t));
        if (fr == NULL) return NO_STACK;
        g_frames = fr;
        g_cap_frames = cap;
    }
    memcpy(&g_frames[g_nframes], f, n * sizeof(frame_t));
    for (int k = 0; k < n; k++) Py_INCREF(f[k].code);
    g_stacks[g_nstacks].hash = h;
    g_stacks[g_nstacks].off = (uint32_t)g_nframes;
    g_stacks[g_nstacks].n = (uint32_t)n;
    g_nframes += n;
    g_stack_index[i] = (uint32_t)g_nstacks + 1;
    return (uint32_t)g_nstacks++;
}

/* Capture the calling thread's Python stack; the caller holds the GIL. */
static uint32_t capture_stack(PyThreadState *tstate) {
    frame_t buf[MAX_DEPTH];
    int n = 0;
    if (tstate == NULL || tstate->cframe == NULL || _Py_IsFinalizing()) return NO_STACK;
    for (_PyInterpreterFrame *f = tstate->cframe->current_frame; f != NULL && n < g_depth; f = f->previous) {
        if (_PyFrame_IsIncomplete(f)) continue;
        buf[n].code = f->f_code;
        buf[n].lasti = _PyInterpreterFrame_LASTI(f);
        n++;
    }
    if (n == 0) return NO_STACK;
    return intern_stack(buf, n);
}

/* The calling thread's thread state if it holds the GIL, else NULL. */
static PyThreadState *gil_holder_tstate(void) {
    PyThreadState *cur = _PyThreadState_GET();
    if (cur == NULL) return NULL;
    return cur == PyGILState_GetThisThreadState() ? cur : NULL;
}

static void sample_alloc(void *p, size_t size, int domain, PyThreadState *tstate) {
    t_busy = 1;
    uint32_t stack = tstate ? capture_stack(tstate) : NO_STACK;
    record_sample((uintptr_t)p, size, domain, stack, t_tag);
    t_busy = 0;
}

/* ---- PyMem hooks (GIL held) ---- */

/* Slow path: the countdown was crossed (or a probe, or we are idle). */
static void *mem_crossed(hook_t *h, void *p, size_t size) {
    if (t_probe) {
        if (t_probe == h->domain + 1) t_probe_seen = 1;
        g_countdown = g_running ? draw_countdown() : INT64_MAX;
        return p;
    }
    if (!g_running) {
        g_countdown = INT64_MAX;
        return p;
    }
    g_countdown = draw_countdown();
    if (p != NULL && !t_busy && size > 0) sample_alloc(p, size, h->domain, _PyThreadState_GET());
    return p;
}

#define LIKELY(x) __builtin_expect(!!(x), 1)

/* Slow paths live in separate non-inlined functions so that each fast path is
 * frameless: decrement the countdown, then tail-call the previous allocator. */
__attribute__((noinline)) static void *malloc_slow(hook_t *h, size_t size) {
    return mem_crossed(h, h->prev.malloc(h->prev.ctx, size), size);
}

__attribute__((noinline)) static void *calloc_slow(hook_t *h, size_t nelem, size_t elsize) {
    return mem_crossed(h, h->prev.calloc(h->prev.ctx, nelem, elsize), nelem * elsize);
}

__attribute__((noinline)) static void free_slow(hook_t *h, void *p) {
    untrack(p);
    h->prev.free(h->prev.ctx, p);
}

static void *hook_malloc(void *ctx, size_t size) {
    hook_t *h = ctx;
    if (LIKELY(g_countdown > (int64_t)size)) {
        g_countdown -= (int64_t)size;
        return h->prev.malloc(h->prev.ctx, size);
    }
    return malloc_slow(h, size);
}

static void *hook_calloc(void *ctx, size_t nelem, size_t elsize) {
    hook_t *h = ctx;
    size_t size = nelem * elsize;
    if (LIKELY(g_countdown > (int64_t)size)) {
        g_countdown -= (int64_t)size;
        return h->prev.calloc(h->prev.ctx, nelem, elsize);
    }
    return calloc_slow(h, nelem, elsize);
}

__attribute__((noinline)) static void *realloc_slow(hook_t *h, void *old, size_t size) {
    int64_t idx = -1;
    if (old != NULL && filter_maybe(old)) idx = untrack(old);
    void *p = h->prev.realloc(h->prev.ctx, old, size);
    if (p == NULL) {
        if (idx >= 0) retrack(idx, old);
        return NULL;
    }
    if (g_countdown > (int64_t)size) {
        g_countdown -= (int64_t)size;
        return p;
    }
    return mem_crossed(h, p, size);
}

static void *hook_realloc(void *ctx, void *old, size_t size) {
    hook_t *h = ctx;
    if (LIKELY(g_countdown > (int64_t)size && (old == NULL || !filter_maybe(old)))) {
        g_countdown -= (int64_t)size;
        return h->prev.realloc(h->prev.ctx, old, size);
    }
    return realloc_slow(h, old, size);
}

static void hook_free(void *ctx, void *p) {
    hook_t *h = ctx;
    if (__builtin_expect(filter_maybe(p), 0)) { /* NULL hashes like any pointer; untrack() rejects it */
        free_slow(h, p);
        return;
    }
    h->prev.free(h->prev.ctx, p);
}

/* ---- numpy data-memory handler (GIL not guaranteed) ---- */

static void *np_after_alloc(void *p, size_t size) {
    int hit = 0;
    if (p == NULL || size == 0) return p;
    pthread_mutex_lock(&g_lock);
    if (g_running) {
        g_np_countdown -= (int64_t)size;
        if (g_np_countdown <= 0) {
            hit = 1;
            g_np_countdown = draw_np_countdown();
        }
    }
    pthread_mutex_unlock(&g_lock);
    if (hit && !t_busy) sample_alloc(p, size, DOM_NUMPY, gil_holder_tstate());
    return p;
}

static void *np_malloc(void *ctx, size_t size) {
    (void)ctx;
    void *p = g_np_prev->allocator.malloc(g_np_prev->allocator.ctx, size);
    return np_after_alloc(p, size);
}

static void *np_calloc(void *ctx, size_t nelem, size_t elsize) {
    (void)ctx;
    void *p = g_np_prev->allocator.calloc(g_np_prev->allocator.ctx, nelem, elsize);
    return np_after_alloc(p, nelem * elsize);
}

static void *np_realloc(void *ctx, void *old, size_t size) {
    (void)ctx;
    int64_t idx = -1;
    if (old != NULL && filter_maybe(old)) idx = untrack(old);
    void *p = g_np_prev->allocator.realloc(g_np_prev->allocator.ctx, old, size);
    if (p == NULL) {
        if (idx >= 0) retrack(idx, old);
        return NULL;
    }
    return np_after_alloc(p, size);
}

static void np_free(void *ctx, void *p, size_t size) {
    (void)ctx;
    if (p != NULL && filter_maybe(p)) untrack(p);
    g_np_prev->allocator.free(g_np_prev->allocator.ctx, p, size);
}

/* ---- installation ---- */

static int hook_is_top(int i) {
    PyMemAllocatorEx cur;
    PyMemAllocatorDomain dom = i == DOM_MEM ? PYMEM_DOMAIN_MEM : PYMEM_DOMAIN_OBJ;
    PyMem_GetAllocator(dom, &cur);
    return cur.malloc == hook_malloc && cur.ctx == &g_hooks[i];
}

/* True if an allocation in this domain passes through our hook (GIL held). */
static int hook_in_chain(int i) {
    if (!g_hooks[i].installed) return 0;
    if (hook_is_top(i)) return 1;
    int64_t saved = g_countdown;
    t_probe = i + 1;
    t_probe_seen = 0;
    g_countdown = 0;
    void *p = i == DOM_MEM ? PyMem_Malloc(16) : PyObject_Malloc(16);
    if (i == DOM_MEM) PyMem_Free(p);
    else PyObject_Free(p);
    t_probe = 0;
    g_countdown = saved;
    return t_probe_seen;
}

static void install_hooks(void) {
    for (int i = 0; i < 2; i++) {
        if (hook_in_chain(i)) continue;
        PyMemAllocatorDomain dom = i == DOM_MEM ? PYMEM_DOMAIN_MEM : PYMEM_DOMAIN_OBJ;
        PyMem_GetAllocator(dom, &g_hooks[i].prev);
        g_ours[i].ctx = &g_hooks[i];
        g_ours[i].malloc = hook_malloc;
        g_ours[i].calloc = hook_calloc;
        g_ours[i].realloc = hook_realloc;
        g_ours[i].free = hook_free;
        PyMem_SetAllocator(dom, &g_ours[i]);
        g_hooks[i].installed = 1;
    }
}

/* Uninstall where we are on top; elsewhere stay in the chain as a pass-through. */
static void uninstall_hooks(void) {
    for (int i = 0; i < 2; i++) {
        if (g_hooks[i].installed && hook_is_top(i)) {
            PyMemAllocatorDomain dom = i == DOM_MEM ? PYMEM_DOMAIN_MEM : PYMEM_DOMAIN_OBJ;
            PyMem_SetAllocator(dom, &g_hooks[i].prev);
            g_hooks[i].installed = 0;
        }
    }
}

/* Discard every sample and stack. Caller holds the GIL; sampling is off. */
static void clear_state(void) {
    pthread_mutex_lock(&g_lock);
    sample_t *samples = g_samples;
    slot_t *table = g_table;
    g_samples = NULL;
    g_nsamples = g_cap_samples = g_nfreed = 0;
    g_table = NULL;
    g_table_cap = g_table_used = 0;
    __atomic_store_n(&g_filter, &g_filter_zero, __ATOMIC_RELEASE);
    g_live_weight = g_peak_weight = 0.0;
    g_evicted_seq = g_seq - 1;
    pthread_mutex_unlock(&g_lock);
    free(samples);
    free(table);

    frame_t *frames = g_frames;
    size_t nframes = g_nframes;
    free(g_stacks);
    free(g_stack_index);
    g_frames = NULL;
    g_stacks = NULL;
    g_stack_index = NULL;
    g_nframes = g_cap_frames = g_nstacks = g_cap_stacks = g_stack_index_cap = 0;
    int busy = t_busy;
    t_busy = 1;
    for (size_t k = 0; k < nframes; k++) Py_DECREF(frames[k].code);
    t_busy = busy;
    free(frames);
}

static void at_fork_prepare(void) { pthread_mutex_lock(&g_lock); }
static void at_fork_parent(void) { pthread_mutex_unlock(&g_lock); }
static void at_fork_child(void) {
    pthread_mutex_init(&g_lock, NULL);
    /* The child keeps the hooks as pass-through until Python resets it. */
    g_running = 0;
    g_countdown = INT64_MAX;
    g_np_countdown = INT64_MAX;
}

/* ---- module functions ---- */

static int check_interval(double interval) {
    if (!(interval >= 1.0 && interval <= 1e15)) {
        PyErr_SetString(PyExc_ValueError, "interval must be a number of bytes from 1 to 1e15");
        return -1;
    }
    return 0;
}

static PyObject *m_start(PyObject *self, PyObject *args) {
    double interval;
    int depth;
    if (!PyArg_ParseTuple(args, "di", &interval, &depth)) return NULL;
    if (check_interval(interval) < 0) return NULL;
    if (depth < 1 || depth > MAX_DEPTH) return PyErr_Format(PyExc_ValueError, "depth must be 1 to %d", MAX_DEPTH);
    if (g_running) {
        /* already running: only make sure nobody dropped our hooks */
        install_hooks();
        Py_RETURN_NONE;
    }
    clear_state();
    g_mean = interval;
    g_depth = depth;
    install_hooks();
    pthread_mutex_lock(&g_lock);
    g_np_countdown = draw_np_countdown();
    pthread_mutex_unlock(&g_lock);
    g_countdown = draw_countdown();
    g_running = 1;
    Py_RETURN_NONE;
}

static PyObject *m_stop(PyObject *self, PyObject *unused) {
    pthread_mutex_lock(&g_lock);
    g_running = 0;
    g_np_countdown = INT64_MAX;
    pthread_mutex_unlock(&g_lock);
    g_countdown = INT64_MAX;
    uninstall_hooks();
    clear_state();
    Py_RETURN_NONE;
}

static PyObject *m_is_running(PyObject *self, PyObject *unused) { return PyBool_FromLong(g_running); }

static PyObject *m_hooks(PyObject *self, PyObject *unused) {
    return Py_BuildValue("{s:O,s:O,s:O}", "mem", hook_in_chain(DOM_MEM) ? Py_True : Py_False, "obj",
                         hook_in_chain(DOM_OBJ) ? Py_True : Py_False, "numpy",
                         (g_np_capsule && PyCapsule_GetPointer(g_np_capsule, "mem_handler") == &g_np_handler)
                             ? Py_True
                             : Py_False);
}

static PyObject *m_set_interval(PyObject *self, PyObject *args) {
    double interval;
    if (!PyArg_ParseTuple(args, "d", &interval)) return NULL;
    if (check_interval(interval) < 0) return NULL;
    pthread_mutex_lock(&g_lock);
    g_mean = interval;
    if (g_running) g_np_countdown = draw_np_countdown();
    pthread_mutex_unlock(&g_lock);
    if (g_running) g_countdown = draw_countdown();
    Py_RETURN_NONE;
}

static PyObject *m_seed(PyObject *self, PyObject *args) {
    unsigned long long seed;
    if (!PyArg_ParseTuple(args, "K", &seed)) return NULL;
    pthread_mutex_lock(&g_lock);
    g_rng = seed ? seed : 0x9E3779B97F4A7C15ull;
    g_np_rng = g_rng ^ 0xD1B54A32D192ED03ull;
    if (g_np_rng == 0) g_np_rng = 1;
    pthread_mutex_unlock(&g_lock);
    Py_RETURN_NONE;
}

static PyObject *m_set_tag(PyObject *self, PyObject *name) {
    uint16_t id = 0;
    if (name != Py_None) {
        if (!PyUnicode_Check(name)) return PyErr_Format(PyExc_TypeError, "tag must be a str or None, not %.100s", Py_TYPE(name)->tp_name);
        Py_ssize_t n = PyList_GET_SIZE(g_tag_names), i;
        for (i = 1; i < n; i++) {
            int eq = PyUnicode_Compare(PyList_GET_ITEM(g_tag_names, i), name);
            if (eq == -1 && PyErr_Occurred()) return NULL;
            if (eq == 0) break;
        }
        if (i == n) {
            if (n >= 65535) return PyErr_Format(PyExc_OverflowError, "too many distinct tags (65535)");
            if (PyList_Append(g_tag_names, name) < 0) return NULL;
        }
        id = (uint16_t)i;
    }
    PyObject *prev = PyList_GET_ITEM(g_tag_names, t_tag);
    t_tag = id;
    Py_INCREF(prev);
    return prev;
}

static PyObject *m_get_tag(PyObject *self, PyObject *unused) {
    PyObject *tag = PyList_GET_ITEM(g_tag_names, t_tag);
    Py_INCREF(tag);
    return tag;
}

static PyObject *m_quiet(PyObject *self, PyObject *flag) {
    int prev = t_busy, v = PyObject_IsTrue(flag);
    if (v < 0) return NULL;
    t_busy = v;
    return PyBool_FromLong(prev);
}

static PyObject *m_next_seq(PyObject *self, PyObject *unused) {
    pthread_mutex_lock(&g_lock);
    uint64_t s = g_seq;
    pthread_mutex_unlock(&g_lock);
    return PyLong_FromUnsignedLongLong(s);
}

static PyObject *m_live(PyObject *self, PyObject *unused) {
    pthread_mutex_lock(&g_lock);
    double live = g_live_weight, peak = g_peak_weight;
    pthread_mutex_unlock(&g_lock);
    return Py_BuildValue("(dd)", live, peak);
}

static PyObject *m_reset_peak(PyObject *self, PyObject *unused) {
    pthread_mutex_lock(&g_lock);
    g_peak_weight = g_live_weight;
    pthread_mutex_unlock(&g_lock);
    Py_RETURN_NONE;
}

/* samples(since_seq) -> list of (stack, tid, tag, weight, live, size, ts_ns, seq, domain) */
static PyObject *m_samples(PyObject *self, PyObject *args) {
    unsigned long long since;
    if (!PyArg_ParseTuple(args, "K", &since)) return NULL;
    sample_t *copy = NULL;
    size_t n = 0;
    pthread_mutex_lock(&g_lock);
    size_t first = 0, hi = g_nsamples; /* samples are in seq order */
    while (first < hi) {
        size_t mid = first + (hi - first) / 2;
        if (g_samples[mid].seq < since) first = mid + 1;
        else hi = mid;
    }
    if (g_nsamples > first) {
        copy = malloc((g_nsamples - first) * sizeof(sample_t));
        if (copy != NULL) {
            n = g_nsamples - first;
            memcpy(copy, &g_samples[first], n * sizeof(sample_t));
        }
    }
    pthread_mutex_unlock(&g_lock);
    if (n == 0 && first < g_nsamples) return PyErr_NoMemory();
    int busy = t_busy;
    t_busy = 1;
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list != NULL && i < n; i++) {
        sample_t *s = &copy[i];
        PyObject *stack = s->stack == NO_STACK ? (Py_INCREF(Py_None), Py_None) : PyLong_FromUnsignedLong(s->stack);
        PyObject *tag = PyList_GET_ITEM(g_tag_names, s->tag < PyList_GET_SIZE(g_tag_names) ? s->tag : 0);
        PyObject *item = Py_BuildValue("(NKOdOKKKi)", stack, (unsigned long long)s->tid, tag, s->weight,
                                       s->live ? Py_True : Py_False, (unsigned long long)s->size,
                                       (unsigned long long)s->ts_ns, (unsigned long long)s->seq, (int)s->domain);
        if (item == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, item);
    }
    t_busy = busy;
    free(copy);
    return list;
}

/* stack(id) -> tuple of (filename, lineno), innermost first */
static PyObject *m_stack(PyObject *self, PyObject *arg) {
    Py_ssize_t id = PyLong_AsSsize_t(arg);
    if (id == -1 && PyErr_Occurred()) return NULL;
    if (id < 0 || (size_t)id >= g_nstacks) return PyErr_Format(PyExc_IndexError, "no stack %zd", id);
    stack_t_ st = g_stacks[id];
    PyObject *out = PyTuple_New(st.n);
    if (out == NULL) return NULL;
    for (uint32_t k = 0; k < st.n; k++) {
        frame_t f = g_frames[st.off + k];
        int line = PyCode_Addr2Line(f.code, f.lasti * (int)sizeof(_Py_CODEUNIT));
        PyObject *item = Py_BuildValue("(Oi)", f.code->co_filename, line);
        if (item == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyTuple_SET_ITEM(out, k, item);
    }
    return out;
}

static PyObject *m_stats(PyObject *self, PyObject *unused) {
    pthread_mutex_lock(&g_lock);
    size_t nsamples = g_nsamples, nfreed = g_nfreed;
    size_t mem = g_cap_samples * sizeof(sample_t) + g_table_cap * sizeof(slot_t) + 2 * (size_t)g_filter->size;
    uint64_t dropped = g_dropped, evicted = g_evicted_seq, seq = g_seq;
    uint64_t passes = g_filter_passes, hits = g_filter_hits, fbits = g_filter->size;
    pthread_mutex_unlock(&g_lock);
    mem += g_cap_frames * sizeof(frame_t) + g_cap_stacks * sizeof(stack_t_) + g_stack_index_cap * sizeof(uint32_t);
    PyObject *d = Py_BuildValue("{s:n,s:n,s:n,s:n,s:K,s:K,s:K,s:d,s:i,s:n}", "samples", (Py_ssize_t)nsamples, "freed_samples",
                         (Py_ssize_t)nfreed, "stacks", (Py_ssize_t)g_nstacks, "memory_bytes", (Py_ssize_t)mem,
                         "dropped", (unsigned long long)dropped, "evicted_through_seq", (unsigned long long)evicted,
                         "next_seq", (unsigned long long)seq, "interval", g_mean, "depth", g_depth, "freed_cap",
                         (Py_ssize_t)g_freed_cap);
    if (d == NULL) return NULL;
    PyObject *f = Py_BuildValue("{s:K,s:K,s:K}", "passes", (unsigned long long)passes, "hits",
                                (unsigned long long)hits, "counters", (unsigned long long)fbits);
    if (f == NULL || PyDict_SetItemString(d, "filter", f) < 0) {
        Py_XDECREF(f);
        Py_DECREF(d);
        return NULL;
    }
    Py_DECREF(f);
    return d;
}

static PyObject *m_set_freed_cap(PyObject *self, PyObject *arg) {
    Py_ssize_t cap = PyLong_AsSsize_t(arg);
    if (cap == -1 && PyErr_Occurred()) return NULL;
    if (cap < 16) return PyErr_Format(PyExc_ValueError, "freed_cap must be at least 16");
    pthread_mutex_lock(&g_lock);
    g_freed_cap = (size_t)cap;
    pthread_mutex_unlock(&g_lock);
    Py_RETURN_NONE;
}

/* hook_numpy(array_api_capsule): chain onto numpy's *default* handler capsule.
 * Call it inside an empty contextvars.Context so PyDataMem_GetHandler returns
 * the default (the value every context and thread sees unless overridden). */
static PyObject *m_hook_numpy(PyObject *self, PyObject *api) {
    if (!PyCapsule_CheckExact(api)) return PyErr_Format(PyExc_TypeError, "expected numpy's _ARRAY_API capsule");
    void **table = PyCapsule_GetPointer(api, PyCapsule_GetName(api));
    if (table == NULL) return NULL;
    PyObject *(*get_handler)(void) = (PyObject * (*)(void)) table[305];
    PyObject *cap = get_handler();
    if (cap == NULL) return NULL;
    np_handler_t *cur = PyCapsule_GetPointer(cap, "mem_handler");
    if (cur == NULL) {
        Py_DECREF(cap);
        return NULL;
    }
    if (cur == &g_np_handler) { /* already ours */
        Py_DECREF(cap);
        Py_RETURN_FALSE;
    }
    if (cur->version != 1) {
        Py_DECREF(cap);
        return PyErr_Format(PyExc_RuntimeError, "numpy data-memory handler version %d is not supported", cur->version);
    }
    if (g_np_capsule != NULL && g_np_capsule != cap) {
        /* numpy was reloaded or its default replaced: forget the old one */
        Py_CLEAR(g_np_capsule);
    }
    g_np_prev = cur;
    if (PyCapsule_SetPointer(cap, &g_np_handler) < 0) {
        Py_DECREF(cap);
        return NULL;
    }
    Py_XSETREF(g_np_capsule, cap);
    Py_RETURN_TRUE;
}

/* unhook_numpy(): restore numpy's default handler if ours is still in place. */
static PyObject *m_unhook_numpy(PyObject *self, PyObject *unused) {
    if (g_np_capsule == NULL) Py_RETURN_FALSE;
    void *cur = PyCapsule_GetPointer(g_np_capsule, "mem_handler");
    if (cur == NULL) return NULL;
    if (cur != &g_np_handler) Py_RETURN_FALSE;
    if (PyCapsule_SetPointer(g_np_capsule, g_np_prev) < 0) return NULL;
    Py_RETURN_TRUE;
}

static PyObject *m_after_fork_child(PyObject *self, PyObject *unused) {
    g_running = 0;
    g_countdown = INT64_MAX;
    uninstall_hooks();
    clear_state();
    t_tag = 0;
    g_rng ^= now_ns() ^ ((uint64_t)getpid() << 32); /* do not sample in step with the parent */
    if (g_rng == 0) g_rng = 1;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"start", m_start, METH_VARARGS, "start(interval, depth): install the hooks and start sampling."},
    {"stop", m_stop, METH_NOARGS, "stop(): stop sampling, unhook where still on top, drop all samples."},
    {"is_running", m_is_running, METH_NOARGS, "is_running() -> bool"},
    {"hooks", m_hooks, METH_NOARGS, "hooks() -> {'mem', 'obj', 'numpy'}: whether allocations pass through us."},
    {"set_interval", m_set_interval, METH_VARARGS, "set_interval(bytes): change the mean sampling interval."},
    {"seed", m_seed, METH_VARARGS, "seed(int): seed the sampling random generator (tests)."},
    {"set_tag", m_set_tag, METH_O, "set_tag(name or None) -> previous tag of this thread."},
    {"get_tag", m_get_tag, METH_NOARGS, "get_tag() -> this thread's tag."},
    {"quiet", m_quiet, METH_O, "quiet(flag) -> previous: suppress sampling on this thread."},
    {"next_seq", m_next_seq, METH_NOARGS, "next_seq() -> sequence number the next sample will get."},
    {"live", m_live, METH_NOARGS, "live() -> (estimated live bytes, estimated peak bytes)."},
    {"reset_peak", m_reset_peak, METH_NOARGS, "reset_peak(): peak := live."},
    {"samples", m_samples, METH_VARARGS,
     "samples(since_seq) -> [(stack, tid, tag, weight, live, size, ts_ns, seq, domain)]."},
    {"stack", m_stack, METH_O, "stack(id) -> ((filename, lineno), ...), innermost first."},
    {"stats", m_stats, METH_NOARGS, "stats() -> dict of internal counters and memory use."},
    {"set_freed_cap", m_set_freed_cap, METH_O, "set_freed_cap(n): freed samples kept for allocated_* figures."},
    {"hook_numpy", m_hook_numpy, METH_O, "hook_numpy(_ARRAY_API capsule) -> bool: chain onto numpy's default handler."},
    {"unhook_numpy", m_unhook_numpy, METH_NOARGS, "unhook_numpy() -> bool: restore numpy's default handler."},
    {"after_fork_child", m_after_fork_child, METH_NOARGS, "after_fork_child(): reset in a forked child."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "cgmem_nb.engine._sampler", "Byte-sampling allocation hooks (CPython 3.11).", -1, methods,
};

PyMODINIT_FUNC PyInit__sampler(void) {
    if ((Py_Version >> 16) != (PY_VERSION_HEX >> 16)) {
        PyErr_Format(PyExc_ImportError, "cgmem_nb._sampler was built for another Python version");
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (g_tag_names == NULL) {
        g_tag_names = PyList_New(1);
        if (g_tag_names == NULL) {
            Py_DECREF(m);
            return NULL;
        }
        Py_INCREF(Py_None);
        PyList_SET_ITEM(g_tag_names, 0, Py_None);
        g_rng ^= now_ns() ^ ((uint64_t)getpid() << 32);
        if (g_rng == 0) g_rng = 1;
        g_np_rng ^= g_rng * 0x2545F4914F6CDD1Dull;
        if (g_np_rng == 0) g_np_rng = 1;
        filters_init();
        g_np_handler.allocator.malloc = np_malloc;
        g_np_handler.allocator.calloc = np_calloc;
        g_np_handler.allocator.realloc = np_realloc;
        g_np_handler.allocator.free = np_free;
        pthread_atfork(at_fork_prepare, at_fork_parent, at_fork_child);
    }
    return m;
}

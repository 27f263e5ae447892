/*
 * hooks_pymem.c -- a hook source: the PYMEM_DOMAIN_MEM and PYMEM_DOMAIN_OBJ
 * allocators (RAW is left alone). These run with the GIL held, which protects
 * their countdown. Fast paths are frameless: decrement the countdown, then
 * tail-call the previous allocator; everything else is out of line.
 */
#include "sampler.h"

enum { HOOK_MEM = 0, HOOK_OBJ = 1 };

typedef struct {
    int which;  /* HOOK_MEM or HOOK_OBJ */
    int domain; /* CG_DOMAIN_PYMEM or CG_DOMAIN_PYOBJ */
    PyMemAllocatorEx prev;
    int installed; /* we believe our hook is somewhere in the chain */
} hook_t;

static hook_t g_hooks[2] = {{HOOK_MEM, CG_DOMAIN_PYMEM, {0}, 0}, {HOOK_OBJ, CG_DOMAIN_PYOBJ, {0}, 0}};
static PyMemAllocatorEx g_ours[2];

int64_t cg_pymem_countdown = INT64_MAX;
uint64_t cg_pymem_rng = 0x9E3779B97F4A7C15ull;
static __thread int t_probe = 0, t_probe_seen = 0;

static inline PyMemAllocatorDomain domain_of(int which) { return which == HOOK_MEM ? PYMEM_DOMAIN_MEM : PYMEM_DOMAIN_OBJ; }

/* Slow path: the countdown was crossed (or a probe, or we are idle). */
static void *crossed(hook_t *h, void *p, size_t size) {
    if (t_probe) {
        if (t_probe == h->which + 1) t_probe_seen = 1;
        cg_pymem_countdown = cg_running ? cg_draw(&cg_pymem_rng) : INT64_MAX;
        return p;
    }
    if (!cg_running) {
        cg_pymem_countdown = INT64_MAX;
        return p;
    }
    cg_pymem_countdown = cg_draw(&cg_pymem_rng);
    if (p != NULL && !cg_t_busy && size > 0) cg_sample(p, size, h->domain, cg_tstate_unchecked());
    return p;
}

__attribute__((noinline)) static void *malloc_slow(hook_t *h, size_t size) {
    return crossed(h, h->prev.malloc(h->prev.ctx, size), size);
}

__attribute__((noinline)) static void *calloc_slow(hook_t *h, size_t nelem, size_t elsize) {
    return crossed(h, h->prev.calloc(h->prev.ctx, nelem, elsize), nelem * elsize);
}

__attribute__((noinline)) static void free_slow(hook_t *h, void *p) {
    cg_untrack(p);
    h->prev.free(h->prev.ctx, p);
}

__attribute__((noinline)) static void *realloc_slow(hook_t *h, void *old, size_t size) {
    int64_t idx = -1;
    if (old != NULL && cg_maybe_tracked(old)) idx = cg_untrack(old);
    void *p = h->prev.realloc(h->prev.ctx, old, size);
    if (p == NULL) {
        if (idx >= 0) cg_retrack(idx, old);
        return NULL;
    }
    if (cg_pymem_countdown > (int64_t)size) {
        cg_pymem_countdown -= (int64_t)size;
        return p;
    }
    return crossed(h, p, size);
}

static void *hook_malloc(void *ctx, size_t size) {
    hook_t *h = ctx;
    if (CG_LIKELY(cg_pymem_countdown > (int64_t)size)) {
        cg_pymem_countdown -= (int64_t)size;
        return h->prev.malloc(h->prev.ctx, size);
    }
    return malloc_slow(h, size);
}

static void *hook_calloc(void *ctx, size_t nelem, size_t elsize) {
    hook_t *h = ctx;
    size_t size = nelem * elsize;
    if (CG_LIKELY(cg_pymem_countdown > (int64_t)size)) {
        cg_pymem_countdown -= (int64_t)size;
        return h->prev.calloc(h->prev.ctx, nelem, elsize);
    }
    return calloc_slow(h, nelem, elsize);
}

static void *hook_realloc(void *ctx, void *old, size_t size) {
    hook_t *h = ctx;
    if (CG_LIKELY(cg_pymem_countdown > (int64_t)size && (old == NULL || !cg_maybe_tracked(old)))) {
        cg_pymem_countdown -= (int64_t)size;
        return h->prev.realloc(h->prev.ctx, old, size);
    }
    return realloc_slow(h, old, size);
}

static void hook_free(void *ctx, void *p) {
    hook_t *h = ctx;
    if (CG_UNLIKELY(cg_maybe_tracked(p))) { /* NULL hashes like any pointer; cg_untrack() rejects it */
        free_slow(h, p);
        return;
    }
    h->prev.free(h->prev.ctx, p);
}

/* ---- installation (GIL held) ---- */

static int hook_is_top(int which) {
    PyMemAllocatorEx cur;
    PyMem_GetAllocator(domain_of(which), &cur);
    return cur.malloc == hook_malloc && cur.ctx == &g_hooks[which];
}

int cg_pymem_in_chain(int which) {
    if (!g_hooks[which].installed) return 0;
    if (hook_is_top(which)) return 1;
    /* Someone sits above us: allocate with a crossed countdown and see whether our
     * slow path runs. A thread of a subinterpreter with its own GIL (3.12+) may
     * redraw the countdown in between, hiding us; a false "not in the chain" would
     * make install link our hook into a loop, so the probe is tried three times. */
    int64_t saved = cg_pymem_countdown;
    t_probe = which + 1;
    t_probe_seen = 0;
    for (int attempt = 0; attempt < 3 && !t_probe_seen; attempt++) {
        cg_pymem_countdown = 0;
        void *p = which == HOOK_MEM ? PyMem_Malloc(16) : PyObject_Malloc(16);
        if (which == HOOK_MEM) PyMem_Free(p);
        else PyObject_Free(p);
    }
    t_probe = 0;
    cg_pymem_countdown = saved;
    return t_probe_seen;
}

void cg_pymem_install(void) {
    for (int i = 0; i < 2; i++) {
        if (cg_pymem_in_chain(i)) continue;
        PyMem_GetAllocator(domain_of(i), &g_hooks[i].prev);
        g_ours[i].ctx = &g_hooks[i];
        g_ours[i].malloc = hook_malloc;
        g_ours[i].calloc = hook_calloc;
        g_ours[i].realloc = hook_realloc;
        g_ours[i].free = hook_free;
        PyMem_SetAllocator(domain_of(i), &g_ours[i]);
        g_hooks[i].installed = 1;
    }
}

/* Uninstall where we are on top; elsewhere stay in the chain as a pass-through. */
void cg_pymem_uninstall(void) {
    for (int i = 0; i < 2; i++) {
        if (g_hooks[i].installed && hook_is_top(i)) {
            PyMem_SetAllocator(domain_of(i), &g_hooks[i].prev);
            g_hooks[i].installed = 0;
        }
    }
}

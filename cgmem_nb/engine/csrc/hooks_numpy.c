/*
 * hooks_numpy.c -- a hook source: numpy's default NEP 49 data-memory handler.
 * numpy may call it without the GIL, so its countdown lives under cg_lock, and a
 * stack is captured only when the calling thread holds the GIL (else the sample
 * is charged to the announced statement, attribution.c).
 */
#include "sampler.h"

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

/* Slot of PyDataMem_GetHandler in numpy's _ARRAY_API table. */
#define NP_API_GET_HANDLER 305

int64_t cg_numpy_countdown = INT64_MAX;
uint64_t cg_numpy_rng = 0xD1B54A32D192ED03ull;

static PyObject *g_capsule = NULL; /* numpy's default handler capsule */
static np_handler_t *g_prev = NULL;
/* Never rewritten: a thread without the GIL may be reading it at any time. */
static np_handler_t g_handler = {"cgmem_nb_sampler", 1, {NULL, NULL, NULL, NULL, NULL}};

static void *after_alloc(void *p, size_t size) {
    int hit = 0;
    if (p == NULL || size == 0) return p;
    pthread_mutex_lock(&cg_lock);
    if (cg_running) {
        cg_numpy_countdown -= (int64_t)size;
        if (cg_numpy_countdown <= 0) {
            hit = 1;
            cg_numpy_countdown = cg_draw(&cg_numpy_rng);
        }
    }
    pthread_mutex_unlock(&cg_lock);
    if (hit && !cg_t_busy) cg_sample_any(p, size, CG_DOMAIN_NUMPY);
    return p;
}

/* numpy's default handler allocates with malloc through numpy's own relocation
 * slots, which the native hooks patch: the guard keeps them from counting the
 * buffer a second time. */
static void *np_malloc(void *ctx, size_t size) {
    (void)ctx;
    int busy = cg_t_busy;
    cg_t_busy = 1;
    void *p = g_prev->allocator.malloc(g_prev->allocator.ctx, size);
    cg_t_busy = busy;
    return after_alloc(p, size);
}

static void *np_calloc(void *ctx, size_t nelem, size_t elsize) {
    (void)ctx;
    int busy = cg_t_busy;
    cg_t_busy = 1;
    void *p = g_prev->allocator.calloc(g_prev->allocator.ctx, nelem, elsize);
    cg_t_busy = busy;
    return after_alloc(p, nelem * elsize);
}

static void *np_realloc(void *ctx, void *old, size_t size) {
    (void)ctx;
    int64_t idx = -1;
    if (old != NULL && cg_maybe_tracked(old)) idx = cg_untrack(old);
    int busy = cg_t_busy;
    cg_t_busy = 1;
    void *p = g_prev->allocator.realloc(g_prev->allocator.ctx, old, size);
    cg_t_busy = busy;
    if (p == NULL) {
        if (idx >= 0) cg_retrack(idx, old);
        return NULL;
    }
    return after_alloc(p, size);
}

static void np_free(void *ctx, void *p, size_t size) {
    (void)ctx;
    if (p != NULL && cg_maybe_tracked(p)) cg_untrack(p);
    g_prev->allocator.free(g_prev->allocator.ctx, p, size);
}

void cg_numpy_init(void) {
    g_handler.allocator.malloc = np_malloc;
    g_handler.allocator.calloc = np_calloc;
    g_handler.allocator.realloc = np_realloc;
    g_handler.allocator.free = np_free;
}

int cg_numpy_hooked(void) {
    return g_capsule != NULL && PyCapsule_GetPointer(g_capsule, "mem_handler") == &g_handler;
}

/* Chain onto numpy's *default* handler capsule. The caller runs this inside an
 * empty contextvars.Context so PyDataMem_GetHandler returns the default (the
 * value every context and thread sees unless overridden). */
PyObject *cg_numpy_hook(PyObject *api) {
    if (!PyCapsule_CheckExact(api)) return PyErr_Format(PyExc_TypeError, "expected numpy's _ARRAY_API capsule");
    void **table = PyCapsule_GetPointer(api, PyCapsule_GetName(api));
    if (table == NULL) return NULL;
    PyObject *(*get_handler)(void) = (PyObject * (*)(void)) table[NP_API_GET_HANDLER];
    PyObject *cap = get_handler();
    if (cap == NULL) return NULL;
    np_handler_t *cur = PyCapsule_GetPointer(cap, "mem_handler");
    if (cur == NULL) {
        Py_DECREF(cap);
        return NULL;
    }
    if (cur == &g_handler) { /* already ours */
        Py_DECREF(cap);
        Py_RETURN_FALSE;
    }
    if (cur->version != 1) {
        Py_DECREF(cap);
        return PyErr_Format(PyExc_RuntimeError, "numpy data-memory handler version %d is not supported", cur->version);
    }
    if (g_capsule != NULL && g_capsule != cap) {
        /* numpy was reloaded or its default replaced: forget the old one */
        Py_CLEAR(g_capsule);
    }
    g_prev = cur;
    if (PyCapsule_SetPointer(cap, &g_handler) < 0) {
        Py_DECREF(cap);
        return NULL;
    }
    PyObject *old = g_capsule;
    g_capsule = cap; /* keeps the reference get_handler() gave us */
    Py_XDECREF(old);
    Py_RETURN_TRUE;
}

/* Restore numpy's default handler if ours is still in place. */
PyObject *cg_numpy_unhook(void) {
    if (g_capsule == NULL) Py_RETURN_FALSE;
    void *cur = PyCapsule_GetPointer(g_capsule, "mem_handler");
    if (cur == NULL) return NULL;
    if (cur != &g_handler) Py_RETURN_FALSE;
    if (PyCapsule_SetPointer(g_capsule, g_prev) < 0) return NULL;
    Py_RETURN_TRUE;
}

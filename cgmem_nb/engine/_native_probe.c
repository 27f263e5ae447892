/*
 * cgmem_nb.engine._native_probe -- a thin entry point to exercise the native hooks
 * on their own, with a minimal sample store (weights per domain and library, peak,
 * samples from threads without the GIL). The profiler proper feeds the same hooks
 * into the sampling core of cgmem_nb.engine._sampler.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_elf_patch.h"
#include "_native_hooks.h"

typedef struct {
    uintptr_t key; /* 0 empty, 1 tombstone */
    double weight;
    uint16_t lib;
    uint8_t domain;
    uint8_t worker;
} entry_t;

#define TABLE_LOG2 20
#define TABLE_CAP (1u << TABLE_LOG2)
#define FILTER_CAP (1u << 20)

static entry_t *g_table = NULL;
static size_t g_used = 0, g_tombs = 0;
static uint8_t g_filter[FILTER_CAP];
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static double g_mean = 32768.0;
static double g_live[CG_NATIVE_NDOMAINS], g_peak_dom[CG_NATIVE_NDOMAINS];
static double g_live_total = 0, g_peak_total = 0, g_worker_live = 0, g_worker_total = 0;
static uint64_t g_dropped = 0;

static inline size_t h1(uintptr_t p) { return (size_t)(((uint64_t)(p >> 4) * 0x9E3779B97F4A7C15ull) >> (64 - TABLE_LOG2)); }
static inline size_t hf(uintptr_t p) { return (size_t)(((uint64_t)(p >> 4) * 0xD6E8FEB86659FD93ull) >> 44); }

/* Drop tombstones (under g_lock): re-insert the live entries into a clean table. */
static void rehash(void) {
    entry_t *old = g_table, *t = calloc(TABLE_CAP, sizeof(entry_t));
    if (t == NULL) return;
    for (size_t i = 0; i < TABLE_CAP; i++) {
        if (old[i].key <= 1) continue;
        size_t j = h1(old[i].key);
        while (t[j].key) j = (j + 1) & (TABLE_CAP - 1);
        t[j] = old[i];
    }
    g_table = t;
    g_tombs = 0;
    free(old);
}

static void p_record(void *ptr, size_t size, int domain, uint16_t lib) {
    double x = (double)size / g_mean;
    double w = x > 40.0 ? (double)size : (double)size / -expm1(-x);
    int worker = !PyGILState_Check();
    uintptr_t k = (uintptr_t)ptr;
    pthread_mutex_lock(&g_lock);
    if (g_table != NULL && g_tombs > TABLE_CAP / 4) rehash();
    if (g_table == NULL || g_used * 2 > TABLE_CAP) {
        g_dropped++;
        pthread_mutex_unlock(&g_lock);
        return;
    }
    size_t i = h1(k);
    while (g_table[i].key > 1 && g_table[i].key != k) i = (i + 1) & (TABLE_CAP - 1);
    if (g_table[i].key == k) { /* reused address: the old block was freed unseen */
        entry_t *e = &g_table[i];
        g_live[e->domain] -= e->weight;
        g_live_total -= e->weight;
        if (e->worker) g_worker_live -= e->weight;
    } else {
        g_used++;
        if (g_filter[hf(k)] != 255) g_filter[hf(k)]++;
    }
    entry_t *e = &g_table[i];
    e->key = k;
    e->weight = w;
    e->lib = lib;
    e->domain = (uint8_t)domain;
    e->worker = (uint8_t)worker;
    g_live[domain] += w;
    g_live_total += w;
    if (worker) {
        g_worker_live += w;
        g_worker_total += w;
    }
    if (g_live[domain] > g_peak_dom[domain]) g_peak_dom[domain] = g_live[domain];
    if (g_live_total > g_peak_total) g_peak_total = g_live_total;
    pthread_mutex_unlock(&g_lock);
}

static int p_maybe(const void *ptr) { return __atomic_load_n(&g_filter[hf((uintptr_t)ptr)], __ATOMIC_RELAXED) != 0; }

static int64_t p_untrack(const void *ptr) {
    uintptr_t k = (uintptr_t)ptr;
    int64_t found = -1;
    pthread_mutex_lock(&g_lock);
    if (g_table != NULL) {
        size_t i = h1(k);
        while (g_table[i].key != 0) {
            if (g_table[i].key == k) {
                entry_t *e = &g_table[i];
                g_live[e->domain] -= e->weight;
                g_live_total -= e->weight;
                if (e->worker) g_worker_live -= e->weight;
                e->key = 1; /* tombstone; the entry's fields stay for retrack */
                g_used--;
                g_tombs++;
                if (g_filter[hf(k)] != 255 && g_filter[hf(k)] != 0) g_filter[hf(k)]--;
                found = (int64_t)i;
                break;
            }
            i = (i + 1) & (TABLE_CAP - 1);
        }
    }
    pthread_mutex_unlock(&g_lock);
    return found;
}

static void p_retrack(int64_t idx, const void *ptr) {
    pthread_mutex_lock(&g_lock);
    if (g_table != NULL && idx >= 0 && g_table[idx].key == 1) {
        entry_t *e = &g_table[idx];
        e->key = (uintptr_t)ptr;
        g_used++;
        g_tombs--;
        g_live[e->domain] += e->weight;
        g_live_total += e->weight;
        if (e->worker) g_worker_live += e->weight;
        if (g_filter[hf((uintptr_t)ptr)] != 255) g_filter[hf((uintptr_t)ptr)]++;
    }
    pthread_mutex_unlock(&g_lock);
}

static const cg_native_sink_t g_probe_sink = {p_record, p_maybe, p_untrack, p_retrack};

static void clear(void) {
    pthread_mutex_lock(&g_lock);
    if (g_table) memset(g_table, 0, TABLE_CAP * sizeof(entry_t));
    memset(g_filter, 0, sizeof g_filter);
    g_used = g_tombs = 0;
    memset(g_live, 0, sizeof g_live);
    memset(g_peak_dom, 0, sizeof g_peak_dom);
    g_live_total = g_peak_total = g_worker_live = g_worker_total = 0;
    g_dropped = 0;
    pthread_mutex_unlock(&g_lock);
}

static PyObject *m_start(PyObject *self, PyObject *args) {
    double interval;
    if (!PyArg_ParseTuple(args, "d", &interval)) return NULL;
    if (!(interval >= 1.0)) return PyErr_Format(PyExc_ValueError, "interval must be at least 1 byte");
    if (cg_native_setup(&g_probe_sink, (const void *)PyObject_Malloc) < 0)
        return PyErr_Format(PyExc_RuntimeError, "%s", cg_native_error());
    if (g_table == NULL) {
        g_table = calloc(TABLE_CAP, sizeof(entry_t));
        if (g_table == NULL) return PyErr_NoMemory();
    }
    clear();
    g_mean = interval;
    long n;
    Py_BEGIN_ALLOW_THREADS n = cg_native_start(interval);
    Py_END_ALLOW_THREADS return PyLong_FromLong(n);
}

static PyObject *m_refresh(PyObject *self, PyObject *unused) {
    if (!cg_native_running()) return PyErr_Format(PyExc_RuntimeError, "not running");
    long n;
    Py_BEGIN_ALLOW_THREADS n = cg_native_start(g_mean);
    Py_END_ALLOW_THREADS return PyLong_FromLong(n);
}

static PyObject *m_stop(PyObject *self, PyObject *unused) {
    Py_BEGIN_ALLOW_THREADS cg_native_stop();
    Py_END_ALLOW_THREADS Py_RETURN_NONE;
}

static PyObject *m_live(PyObject *self, PyObject *unused) {
    pthread_mutex_lock(&g_lock);
    PyObject *d = Py_BuildValue("{s:(dd),s:(dd),s:(dd),s:(dd),s:d,s:d,s:K}", "malloc", g_live[0], g_peak_dom[0], "mmap",
                                g_live[1], g_peak_dom[1], "pool", g_live[2], g_peak_dom[2], "total", g_live_total,
                                g_peak_total, "worker_live", g_worker_live, "worker_total", g_worker_total, "dropped",
                                (unsigned long long)g_dropped);
    pthread_mutex_unlock(&g_lock);
    return d;
}

static PyObject *m_reset_peak(PyObject *self, PyObject *unused) {
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < CG_NATIVE_NDOMAINS; i++) g_peak_dom[i] = g_live[i];
    g_peak_total = g_live_total;
    pthread_mutex_unlock(&g_lock);
    Py_RETURN_NONE;
}

static PyObject *m_live_by_lib(PyObject *self, PyObject *unused) {
    double *by = calloc(65536, sizeof(double));
    if (by == NULL) return PyErr_NoMemory();
    pthread_mutex_lock(&g_lock);
    for (size_t i = 0; g_table && i < TABLE_CAP; i++)
        if (g_table[i].key > 1 && g_table[i].domain == CG_NATIVE_POOL) by[g_table[i].lib] += g_table[i].weight;
    pthread_mutex_unlock(&g_lock);
    PyObject *d = PyDict_New();
    for (int i = 0; d && i < 65536; i++) {
        if (by[i] == 0) continue;
        PyObject *v = PyFloat_FromDouble(by[i]);
        if (v == NULL || PyDict_SetItemString(d, cg_elf_object_path((uint16_t)i), v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(d);
            free(by);
            return NULL;
        }
        Py_DECREF(v);
    }
    free(by);
    return d;
}

static PyObject *m_objects(PyObject *self, PyObject *unused) {
    size_t cap = 4096;
    cg_object_info_t *info = calloc(cap, sizeof *info);
    if (info == NULL) return PyErr_NoMemory();
    size_t n = cg_elf_objects(info, cap);
    PyObject *list = PyList_New(0);
    for (size_t i = 0; list && i < n; i++) {
        PyObject *t = Py_BuildValue("(sIIIi)", info[i].path, info[i].groups, info[i].slots, info[i].foreign, info[i].failed);
        if (t == NULL || PyList_Append(list, t) < 0) Py_CLEAR(list);
        Py_XDECREF(t);
    }
    free(info);
    return list;
}

static PyObject *m_pools(PyObject *self, PyObject *unused) {
    cg_pool_info_t info[16];
    size_t n = cg_native_pools(info, 16);
    PyObject *list = PyList_New(0);
    for (size_t i = 0; list && i < n; i++) {
        PyObject *t = Py_BuildValue("(sssI)", info[i].path, info[i].kind, info[i].state, (unsigned)info[i].lib);
        if (t == NULL || PyList_Append(list, t) < 0) Py_CLEAR(list);
        Py_XDECREF(t);
    }
    return list;
}

static PyObject *m_counters(PyObject *self, PyObject *unused) {
    cg_native_counters_t c;
    cg_native_counters(&c);
    return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:l}", "malloc", (unsigned long long)c.samples[0], "mmap",
                         (unsigned long long)c.samples[1], "pool", (unsigned long long)c.samples[2], "dlopens",
                         (unsigned long long)c.dlopens, "pending", (unsigned long long)c.pending, "slots",
                         cg_elf_patched_slots());
}

static PyObject *m_seed(PyObject *self, PyObject *arg) {
    unsigned long long s = PyLong_AsUnsignedLongLong(arg);
    if (PyErr_Occurred()) return NULL;
    cg_native_seed(s);
    Py_RETURN_NONE;
}

static PyObject *m_quiet(PyObject *self, PyObject *flag) {
    int v = PyObject_IsTrue(flag);
    if (v < 0) return NULL;
    return PyBool_FromLong(cg_native_set_busy(v));
}

static PyObject *m_poll(PyObject *self, PyObject *unused) {
    cg_native_poll();
    Py_RETURN_NONE;
}

static PyObject *m_running(PyObject *self, PyObject *unused) { return PyBool_FromLong(cg_native_running()); }

static PyObject *m_after_fork_child(PyObject *self, PyObject *unused) {
    cg_native_after_fork_child();
    clear();
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"start", m_start, METH_VARARGS, "start(interval) -> slots patched"},
    {"refresh", m_refresh, METH_NOARGS, "refresh() -> slots patched or repaired (new libraries, slots another tool gave back)"},
    {"stop", m_stop, METH_NOARGS, "stop(): restore every slot, remove pool hooks"},
    {"live", m_live, METH_NOARGS, "live() -> {domain: (live, peak)} estimates"},
    {"reset_peak", m_reset_peak, METH_NOARGS, "reset_peak()"},
    {"live_by_lib", m_live_by_lib, METH_NOARGS, "live_by_lib() -> {library path: live pool bytes}"},
    {"objects", m_objects, METH_NOARGS, "objects() -> [(path, groups, slots, foreign, failed)]"},
    {"pools", m_pools, METH_NOARGS, "pools() -> [(path, kind, state, lib)]"},
    {"counters", m_counters, METH_NOARGS, "counters() -> dict"},
    {"seed", m_seed, METH_O, "seed(n)"},
    {"quiet", m_quiet, METH_O, "quiet(flag) -> previous"},
    {"poll", m_poll, METH_NOARGS, "poll(): patch libraries whose dlopen could not be followed"},
    {"running", m_running, METH_NOARGS, "running() -> bool"},
    {"after_fork_child", m_after_fork_child, METH_NOARGS, "after_fork_child()"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "cgmem_nb.engine._native_probe",
                                    "Native allocation hooks on their own (tests and research).", -1, methods};

static void fork_prepare(void) { pthread_mutex_lock(&g_lock); }
static void fork_parent(void) { pthread_mutex_unlock(&g_lock); }
static void fork_child(void) { pthread_mutex_init(&g_lock, NULL); }

PyMODINIT_FUNC PyInit__native_probe(void) {
    static int once = 0;
    if (!once) {
        pthread_atfork(fork_prepare, fork_parent, fork_child);
        once = 1;
    }
    return PyModule_Create(&module);
}

/*
 * module.c -- cgmem_nb.engine._sampler, the Python face of the sampler
 * (documented in _sampler.pyi; used only by cgmem_nb/engine/sampled.py).
 */
#include "sampler.h"

#include "elf_patch.h"
#include "hooks_native.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static PyObject *g_tag_names = NULL;   /* list: index -> str, 0 = None */
static PyObject *g_domain_names = NULL; /* tuple: CG_DOMAIN_* -> str */
static PyObject *g_via_names = NULL;    /* tuple: CG_VIA_* -> str or None */
static PyTypeObject *g_sample_type = NULL;

static PyStructSequence_Field sample_fields[] = {
    {"stack", "stack id for stack(), or None when no Python frame was available"},
    {"thread_id", "threading.get_ident() of the allocating thread"},
    {"tag", "the thread's category tag (set_tag) at the allocation, or None"},
    {"weight", "bytes this sample stands for: size / (1 - exp(-size / interval))"},
    {"live", "True while the block has not been freed"},
    {"size", "bytes of the sampled allocation"},
    {"ts_ns", "time.monotonic_ns() of the allocation"},
    {"seq", "sequence number (increasing; see next_seq())"},
    {"domain", "where it was allocated: 'pymem', 'pyobj', 'numpy', 'malloc', 'mmap' or 'pool'"},
    {"via", "None for the thread's own stack; 'GIL released' or 'worker thread' when charged to the announced statement"},
    {NULL, NULL},
};

static PyStructSequence_Desc sample_desc = {
    "cgmem_nb.engine._sampler.Sample", "One sampled allocation.", sample_fields, 10,
};

static const char *DOMAIN_NAMES[CG_NDOMAINS] = {"pymem", "pyobj", "numpy", "malloc", "mmap", "pool"};
static const char *VIA_NAMES[3] = {NULL, "GIL released", "worker thread"};

/* ---- life cycle ---- */

static void clear_state(void) {
    cg_announce_clear(); /* before the stack ids it names go */
    cg_core_clear();
    cg_stacks_clear();
}

static void at_fork_prepare(void) { pthread_mutex_lock(&cg_lock); }
static void at_fork_parent(void) { pthread_mutex_unlock(&cg_lock); }
static void at_fork_child(void) {
    cg_core_after_fork_child();
    /* The child keeps the hooks as pass-through until Python resets it. */
    cg_running = 0;
    cg_pymem_countdown = INT64_MAX;
    cg_numpy_countdown = INT64_MAX;
}

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
    if (depth < 1 || depth > CG_MAX_DEPTH) return PyErr_Format(PyExc_ValueError, "depth must be 1 to %d", CG_MAX_DEPTH);
    if (cg_running) {
        /* already running: only make sure nobody dropped our hooks */
        cg_pymem_install();
        Py_RETURN_NONE;
    }
    clear_state();
    cg_mean = interval;
    cg_depth = depth;
    cg_pymem_install();
    pthread_mutex_lock(&cg_lock);
    cg_numpy_countdown = cg_draw(&cg_numpy_rng);
    pthread_mutex_unlock(&cg_lock);
    cg_pymem_countdown = cg_draw(&cg_pymem_rng);
    cg_running = 1;
    Py_RETURN_NONE;
}

static PyObject *m_stop(PyObject *self, PyObject *unused) {
    if (cg_native_running()) {
        Py_BEGIN_ALLOW_THREADS cg_native_stop(0);
        Py_END_ALLOW_THREADS
    }
    pthread_mutex_lock(&cg_lock);
    cg_running = 0;
    cg_numpy_countdown = INT64_MAX;
    pthread_mutex_unlock(&cg_lock);
    cg_pymem_countdown = INT64_MAX;
    cg_pymem_uninstall();
    clear_state();
    Py_RETURN_NONE;
}

static PyObject *m_is_running(PyObject *self, PyObject *unused) { return PyBool_FromLong(cg_running); }

static PyObject *m_hooks(PyObject *self, PyObject *unused) {
    return Py_BuildValue("{s:O,s:O,s:O,s:O}", "mem", cg_pymem_in_chain(0) ? Py_True : Py_False, "obj",
                         cg_pymem_in_chain(1) ? Py_True : Py_False, "numpy", cg_numpy_hooked() ? Py_True : Py_False,
                         "native", cg_native_running() ? Py_True : Py_False);
}

static PyObject *m_set_interval(PyObject *self, PyObject *args) {
    double interval;
    if (!PyArg_ParseTuple(args, "d", &interval)) return NULL;
    if (check_interval(interval) < 0) return NULL;
    pthread_mutex_lock(&cg_lock);
    cg_mean = interval;
    if (cg_running) cg_numpy_countdown = cg_draw(&cg_numpy_rng);
    pthread_mutex_unlock(&cg_lock);
    if (cg_running) cg_pymem_countdown = cg_draw(&cg_pymem_rng);
    cg_native_interval_changed();
    Py_RETURN_NONE;
}

static PyObject *m_seed(PyObject *self, PyObject *args) {
    unsigned long long seed;
    if (!PyArg_ParseTuple(args, "K", &seed)) return NULL;
    pthread_mutex_lock(&cg_lock);
    cg_pymem_rng = seed ? seed : 0x9E3779B97F4A7C15ull;
    cg_numpy_rng = cg_pymem_rng ^ 0xD1B54A32D192ED03ull;
    if (cg_numpy_rng == 0) cg_numpy_rng = 1;
    pthread_mutex_unlock(&cg_lock);
    cg_native_seed(seed ^ 0x2545F4914F6CDD1Dull);
    Py_RETURN_NONE;
}

static PyObject *m_set_tag(PyObject *self, PyObject *name) {
    uint16_t id = 0;
    if (name != Py_None) {
        if (!PyUnicode_Check(name))
            return PyErr_Format(PyExc_TypeError, "tag must be a str or None, not %.100s", Py_TYPE(name)->tp_name);
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
    PyObject *prev = PyList_GET_ITEM(g_tag_names, cg_t_tag);
    cg_t_tag = id;
    Py_INCREF(prev);
    return prev;
}

static PyObject *m_get_tag(PyObject *self, PyObject *unused) {
    PyObject *tag = PyList_GET_ITEM(g_tag_names, cg_t_tag);
    Py_INCREF(tag);
    return tag;
}

static PyObject *m_quiet(PyObject *self, PyObject *flag) {
    int prev = cg_t_busy, v = PyObject_IsTrue(flag);
    if (v < 0) return NULL;
    cg_t_busy = v;
    return PyBool_FromLong(prev);
}

static PyObject *m_next_seq(PyObject *self, PyObject *unused) {
    return PyLong_FromUnsignedLongLong(cg_core_next_seq());
}

static PyObject *m_live(PyObject *self, PyObject *unused) {
    double live, peak;
    cg_core_live(&live, &peak);
    return Py_BuildValue("(dd)", live, peak);
}

static PyObject *m_reset_peak(PyObject *self, PyObject *unused) {
    cg_core_reset_peak();
    Py_RETURN_NONE;
}

static PyObject *make_sample(const cg_sample_t *s) {
    PyObject *item = PyStructSequence_New(g_sample_type);
    if (item == NULL) return NULL;
    PyObject *stack = s->stack == CG_NO_STACK ? Py_NewRef(Py_None) : PyLong_FromUnsignedLong(s->stack);
    PyObject *tag = PyList_GET_ITEM(g_tag_names, s->tag < PyList_GET_SIZE(g_tag_names) ? s->tag : 0);
    int d = s->domain & CG_DOMAIN_MASK, v = s->domain >> CG_VIA_SHIFT;
    PyObject *domain = PyTuple_GET_ITEM(g_domain_names, d < CG_NDOMAINS ? d : 0);
    PyObject *via = PyTuple_GET_ITEM(g_via_names, v < 3 ? v : 0);
    PyObject *values[10] = {
        stack,
        PyLong_FromUnsignedLongLong((unsigned long long)s->tid),
        Py_NewRef(tag),
        PyFloat_FromDouble(s->weight),
        PyBool_FromLong(s->live),
        PyLong_FromUnsignedLongLong((unsigned long long)s->size),
        PyLong_FromUnsignedLongLong((unsigned long long)s->ts_ns),
        PyLong_FromUnsignedLongLong((unsigned long long)s->seq),
        Py_NewRef(domain),
        Py_NewRef(via),
    };
    int failed = 0;
    for (int k = 0; k < 10; k++) {
        if (values[k] == NULL) failed = 1;
        PyStructSequence_SetItem(item, k, values[k]); /* steals; NULL is released with the item */
    }
    if (failed) Py_CLEAR(item);
    return item;
}

/* A list of Sample from a malloc'ed copy, which it frees. */
static PyObject *sample_list(cg_sample_t *copy, size_t n) {
    int busy = cg_t_busy;
    cg_t_busy = 1;
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list != NULL && i < n; i++) {
        PyObject *item = make_sample(&copy[i]);
        if (item == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, item);
    }
    cg_t_busy = busy;
    free(copy);
    return list;
}

static PyObject *m_samples(PyObject *self, PyObject *args) {
    unsigned long long since;
    if (!PyArg_ParseTuple(args, "K", &since)) return NULL;
    cg_sample_t *copy = NULL;
    size_t n = 0;
    if (cg_core_samples_since((uint64_t)since, &copy, &n) < 0) return PyErr_NoMemory();
    return sample_list(copy, n);
}

/* Groups of a malloc'ed copy of samples, which it frees:
 * [(stack, tid, tag, domain, via, live_w, live_n, alloc_w, alloc_n)]. */
static PyObject *group_list(cg_sample_t *copy, size_t n) {
    cg_group_t *groups = NULL;
    size_t ng = 0;
    int rc = cg_group_samples(copy, n, &groups, &ng);
    free(copy);
    if (rc < 0) return PyErr_NoMemory();
    int busy = cg_t_busy;
    cg_t_busy = 1;
    PyObject *list = PyList_New((Py_ssize_t)ng);
    for (size_t i = 0; list != NULL && i < ng; i++) {
        const cg_group_t *g = &groups[i];
        PyObject *tag = PyList_GET_ITEM(g_tag_names, g->tag < PyList_GET_SIZE(g_tag_names) ? g->tag : 0);
        PyObject *stack = g->stack == CG_NO_STACK ? Py_NewRef(Py_None) : PyLong_FromUnsignedLong(g->stack);
        int d = g->domain & CG_DOMAIN_MASK, v = g->domain >> CG_VIA_SHIFT;
        PyObject *domain = PyTuple_GET_ITEM(g_domain_names, d < CG_NDOMAINS ? d : 0);
        PyObject *via = PyTuple_GET_ITEM(g_via_names, v < 3 ? v : 0);
        PyObject *item = stack == NULL ? NULL
                                       : Py_BuildValue("(NKOOOdddd)", stack, (unsigned long long)g->tid, tag, domain, via,
                                                       g->live_weight, g->live_count, g->alloc_weight, g->alloc_count);
        if (item == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, item);
    }
    cg_t_busy = busy;
    free(groups);
    return list;
}

static PyObject *m_groups(PyObject *self, PyObject *args) {
    unsigned long long since;
    int at_peak;
    if (!PyArg_ParseTuple(args, "Kp", &since, &at_peak)) return NULL;
    cg_sample_t *copy = NULL;
    size_t n = 0;
    double peak = 0.0;
    int rc = at_peak ? cg_core_peak_samples((uint64_t)since, &copy, &n, &peak)
                     : cg_core_samples_since((uint64_t)since, &copy, &n);
    if (rc < 0) return PyErr_NoMemory();
    return group_list(copy, n);
}

static PyObject *m_peak_samples(PyObject *self, PyObject *args) {
    unsigned long long since;
    if (!PyArg_ParseTuple(args, "K", &since)) return NULL;
    cg_sample_t *copy = NULL;
    size_t n = 0;
    double peak = 0.0;
    if (cg_core_peak_samples((uint64_t)since, &copy, &n, &peak) < 0) return PyErr_NoMemory();
    PyObject *list = sample_list(copy, n);
    if (list == NULL) return NULL;
    PyObject *out = Py_BuildValue("(dN)", peak, list);
    return out;
}

static PyObject *m_stack(PyObject *self, PyObject *arg) {
    Py_ssize_t id = PyLong_AsSsize_t(arg);
    if (id == -1 && PyErr_Occurred()) return NULL;
    uint32_t n = 0;
    const cg_frame_t *frames = id >= 0 && id < (Py_ssize_t)CG_NO_STACK ? cg_stack_frames((uint32_t)id, &n) : NULL;
    if (frames == NULL) return PyErr_Format(PyExc_IndexError, "no stack %zd", id);
    PyObject *out = PyTuple_New(n);
    if (out == NULL) return NULL;
    for (uint32_t k = 0; k < n; k++) {
        int line = PyCode_Addr2Line(frames[k].code, (int)frames[k].lasti);
        PyObject *item = Py_BuildValue("(Oi)", frames[k].code->co_filename, line);
        if (item == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyTuple_SET_ITEM(out, k, item);
    }
    return out;
}

static PyObject *m_stats(PyObject *self, PyObject *unused) {
    cg_core_stats_t st;
    cg_core_stats(&st);
    size_t mem = st.memory_bytes + cg_stacks_memory();
    PyObject *d = Py_BuildValue("{s:n,s:n,s:n,s:n,s:K,s:K,s:K,s:d,s:i,s:n}", "samples", (Py_ssize_t)st.samples,
                                "freed_samples", (Py_ssize_t)st.freed_samples, "stacks", (Py_ssize_t)cg_stacks_count(),
                                "memory_bytes", (Py_ssize_t)mem, "dropped", (unsigned long long)st.dropped,
                                "evicted_through_seq", (unsigned long long)st.evicted_through_seq, "next_seq",
                                (unsigned long long)st.next_seq, "interval", cg_mean, "depth", cg_depth, "freed_cap",
                                (Py_ssize_t)st.freed_cap);
    if (d == NULL) return NULL;
    PyObject *f = Py_BuildValue("{s:K,s:K,s:K}", "passes", (unsigned long long)st.filter_passes, "hits",
                                (unsigned long long)st.filter_hits, "counters", (unsigned long long)st.filter_counters);
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
    if (cap < 16 || cg_core_set_freed_cap((size_t)cap) < 0) return PyErr_Format(PyExc_ValueError, "freed_cap must be at least 16");
    Py_RETURN_NONE;
}

static PyObject *m_hook_numpy(PyObject *self, PyObject *api) { return cg_numpy_hook(api); }

static PyObject *m_unhook_numpy(PyObject *self, PyObject *unused) { return cg_numpy_unhook(); }

static PyObject *m_after_fork_child(PyObject *self, PyObject *unused) {
    cg_native_after_fork_child();
    cg_running = 0;
    cg_pymem_countdown = INT64_MAX;
    cg_pymem_uninstall();
    clear_state();
    cg_t_tag = 0;
    cg_pymem_rng ^= cg_now_ns() ^ ((uint64_t)getpid() << 32); /* do not sample in step with the parent */
    if (cg_pymem_rng == 0) cg_pymem_rng = 1;
    Py_RETURN_NONE;
}

/* ---- native allocations (hooks_native.c) ---- */

static PyObject *m_native_start(PyObject *self, PyObject *unused) {
    if (!cg_running) return PyErr_Format(PyExc_RuntimeError, "start() the sampler before its native hooks");
    if (cg_native_setup((const void *)PyObject_Malloc) < 0) return PyErr_Format(PyExc_RuntimeError, "%s", cg_native_error());
    long n;
    Py_BEGIN_ALLOW_THREADS n = cg_native_start();
    Py_END_ALLOW_THREADS
    if (n < 0) return PyErr_Format(PyExc_RuntimeError, "%s", cg_native_error());
    return PyLong_FromLong(n);
}

static PyObject *m_native_stop(PyObject *self, PyObject *keep) {
    int k = PyObject_IsTrue(keep);
    if (k < 0) return NULL;
    Py_BEGIN_ALLOW_THREADS cg_native_stop(k);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *m_native_poll(PyObject *self, PyObject *unused) {
    cg_native_poll();
    Py_RETURN_NONE;
}

static PyObject *m_native_objects(PyObject *self, PyObject *unused) {
    size_t cap = 4096;
    cg_object_info_t *info = calloc(cap, sizeof *info);
    if (info == NULL) return PyErr_NoMemory();
    size_t n = cg_elf_objects(info, cap);
    PyObject *list = PyList_New(0);
    for (size_t i = 0; list != NULL && i < n; i++) {
        PyObject *t = Py_BuildValue("(sIIIi)", info[i].path, info[i].groups, info[i].slots, info[i].foreign, info[i].failed);
        if (t == NULL || PyList_Append(list, t) < 0) Py_CLEAR(list);
        Py_XDECREF(t);
    }
    free(info);
    return list;
}

static PyObject *m_native_pools(PyObject *self, PyObject *unused) {
    cg_pool_info_t info[16];
    size_t n = cg_native_pools(info, 16);
    PyObject *list = PyList_New(0);
    for (size_t i = 0; list != NULL && i < n; i++) {
        PyObject *t = Py_BuildValue("(sss)", info[i].path, info[i].kind, info[i].state);
        if (t == NULL || PyList_Append(list, t) < 0) Py_CLEAR(list);
        Py_XDECREF(t);
    }
    return list;
}

static PyObject *m_native_counters(PyObject *self, PyObject *unused) {
    cg_native_counters_t c;
    cg_native_counters(&c);
    return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:l}", "malloc", (unsigned long long)c.samples[0], "mmap",
                         (unsigned long long)c.samples[1], "pool", (unsigned long long)c.samples[2], "dlopens",
                         (unsigned long long)c.dlopens, "pending", (unsigned long long)c.pending, "slots", c.slots);
}

static PyObject *m_announce(PyObject *self, PyObject *frame) {
    if (frame == Py_None) cg_announce_clear();
    else if (cg_announce(frame) < 0) return NULL;
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
    {"samples", m_samples, METH_VARARGS, "samples(since_seq) -> [Sample, ...] in sequence order."},
    {"stack", m_stack, METH_O, "stack(id) -> ((filename, lineno), ...), innermost first."},
    {"stats", m_stats, METH_NOARGS, "stats() -> dict of internal counters and memory use."},
    {"set_freed_cap", m_set_freed_cap, METH_O, "set_freed_cap(n): freed samples kept for allocated_* figures."},
    {"hook_numpy", m_hook_numpy, METH_O, "hook_numpy(_ARRAY_API capsule) -> bool: chain onto numpy's default handler."},
    {"unhook_numpy", m_unhook_numpy, METH_NOARGS, "unhook_numpy() -> bool: restore numpy's default handler."},
    {"after_fork_child", m_after_fork_child, METH_NOARGS, "after_fork_child(): reset in a forked child."},
    {"peak_samples", m_peak_samples, METH_VARARGS, "peak_samples(since_seq) -> (peak bytes, [Sample live at the peak])."},
    {"groups", m_groups, METH_VARARGS, "groups(since_seq, at_peak) -> [(stack, thread, tag, domain, via, live, live_n, allocated, allocated_n)]."},
    {"native_start", m_native_start, METH_NOARGS, "native_start() -> slots written: sample native allocations too."},
    {"native_stop", m_native_stop, METH_O, "native_stop(keep): stop native sampling; keep leaves the slots patched."},
    {"native_poll", m_native_poll, METH_NOARGS, "native_poll(): patch libraries whose dlopen could not be followed."},
    {"native_objects", m_native_objects, METH_NOARGS, "native_objects() -> [(path, groups, slots, foreign, failed)]."},
    {"native_pools", m_native_pools, METH_NOARGS, "native_pools() -> [(path, kind, state)]."},
    {"native_counters", m_native_counters, METH_NOARGS, "native_counters() -> dict of counters."},
    {"announce", m_announce, METH_O, "announce(frame or None): the statement running now."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "cgmem_nb.engine._sampler", "Byte-sampling allocation hooks (see _sampler.pyi).", -1, methods,
};

static int init_once(void) {
    g_tag_names = PyList_New(1);
    if (g_tag_names == NULL) return -1;
    PyList_SET_ITEM(g_tag_names, 0, Py_NewRef(Py_None));
    g_via_names = PyTuple_New(3);
    if (g_via_names == NULL) return -1;
    for (int k = 0; k < 3; k++) {
        PyObject *name = VIA_NAMES[k] ? PyUnicode_InternFromString(VIA_NAMES[k]) : Py_NewRef(Py_None);
        if (name == NULL) return -1;
        PyTuple_SET_ITEM(g_via_names, k, name);
    }
    g_domain_names = PyTuple_New(CG_NDOMAINS);
    if (g_domain_names == NULL) return -1;
    for (int k = 0; k < CG_NDOMAINS; k++) {
        PyObject *name = PyUnicode_InternFromString(DOMAIN_NAMES[k]);
        if (name == NULL) return -1;
        PyTuple_SET_ITEM(g_domain_names, k, name);
    }
    g_sample_type = PyStructSequence_NewType(&sample_desc);
    if (g_sample_type == NULL) return -1;
    cg_pymem_rng ^= cg_now_ns() ^ ((uint64_t)getpid() << 32);
    if (cg_pymem_rng == 0) cg_pymem_rng = 1;
    cg_numpy_rng ^= cg_pymem_rng * 0x2545F4914F6CDD1Dull;
    if (cg_numpy_rng == 0) cg_numpy_rng = 1;
    cg_core_init();
    cg_numpy_init();
    pthread_atfork(at_fork_prepare, at_fork_parent, at_fork_child);
    return 0;
}

PyMODINIT_FUNC PyInit__sampler(void) {
    if ((Py_Version >> 16) != (PY_VERSION_HEX >> 16)) {
        PyErr_Format(PyExc_ImportError, "cgmem_nb._sampler was built for CPython %d.%d, not this one",
                     PY_MAJOR_VERSION, PY_MINOR_VERSION);
        return NULL;
    }
    if (g_sample_type == NULL && init_once() < 0) {
        Py_CLEAR(g_tag_names);
        Py_CLEAR(g_domain_names);
        Py_CLEAR(g_via_names);
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddObjectRef(m, "Sample", (PyObject *)g_sample_type) < 0 ||
        PyModule_AddObjectRef(m, "DOMAINS", g_domain_names) < 0 ||
        PyModule_AddStringConstant(m, "STACK_WALK", "public frame API") < 0 ||
        PyModule_AddIntConstant(m, "MAX_DEPTH", CG_MAX_DEPTH) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

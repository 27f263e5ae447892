/* Relocation patching for loaded ELF objects; see _elf_patch.h. */
#define _GNU_SOURCE
#include "elf_patch.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__x86_64__)
#define CG_R_JUMP_SLOT R_X86_64_JUMP_SLOT
#define CG_R_GLOB_DAT R_X86_64_GLOB_DAT
#define CG_R_ABS R_X86_64_64
#elif defined(__aarch64__)
#define CG_R_JUMP_SLOT R_AARCH64_JUMP_SLOT
#define CG_R_GLOB_DAT R_AARCH64_GLOB_DAT
#define CG_R_ABS R_AARCH64_ABS64
#else
#error "cgmem_nb native hooks: only x86_64 and aarch64 relocations are known"
#endif

#define R_SYM ELF64_R_SYM
#define R_TYPE ELF64_R_TYPE

typedef struct {
    void **slot;
    void *old;
    void *ours;
} patch_t;

typedef struct {
    uintptr_t slot;
    uint32_t si; /* index in the symbol table */
} cand_t;

typedef struct {
    uintptr_t base;
    const void *phdr;
    char path[256];
    cand_t *cands; /* slots naming one of our symbols, found by the first scan */
    size_t ncands, capcands;
    int scanned;
    int defines_pool;
    unsigned groups;
    unsigned foreign;
    int failed;
    int loaded;
    int active; /* patched now (log valid) */
    patch_t *log;
    size_t nlog, caplog;
} obj_rec_t;

static const cg_patch_sym_t *g_syms = NULL;
static size_t g_nsyms = 0;
static cg_policy_fn g_policy = NULL;
static void *g_policy_arg = NULL;
static unsigned char g_first_chars[256];

static obj_rec_t *g_objs = NULL;
static size_t g_nobjs = 0, g_capobjs = 0;

static pthread_mutex_t g_patch_lock;
static pthread_once_t g_lock_once = PTHREAD_ONCE_INIT;

static void lock_init(void) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&g_patch_lock, &a);
    pthread_mutexattr_destroy(&a);
}

void cg_elf_lock(void) {
    pthread_once(&g_lock_once, lock_init);
    pthread_mutex_lock(&g_patch_lock);
}

void cg_elf_unlock(void) { pthread_mutex_unlock(&g_patch_lock); }

int cg_elf_trylock(void) {
    pthread_once(&g_lock_once, lock_init);
    return pthread_mutex_trylock(&g_patch_lock) == 0;
}

void cg_elf_atfork_prepare(void) { cg_elf_lock(); }
void cg_elf_atfork_parent(void) { cg_elf_unlock(); }
void cg_elf_atfork_child(void) { lock_init(); }

int cg_elf_init(const cg_patch_sym_t *syms, size_t nsyms, cg_policy_fn policy, void *arg) {
    pthread_once(&g_lock_once, lock_init);
    g_syms = syms;
    g_nsyms = nsyms;
    g_policy = policy;
    g_policy_arg = arg;
    memset(g_first_chars, 0, sizeof g_first_chars);
    for (size_t i = 0; i < nsyms; i++) g_first_chars[(unsigned char)syms[i].name[0]] = 1;
    return 0;
}

/* ---- the dynamic section of one object ---- */

typedef struct {
    uintptr_t base, lo, hi;
    const ElfW(Sym) *symtab;
    const char *strtab;
    size_t strsz;
    const void *jmprel;
    size_t pltrelsz;
    long pltrel; /* DT_REL or DT_RELA */
    const ElfW(Rela) *rela;
    size_t relasz;
    const ElfW(Rel) *rel;
    size_t relsz;
    uintptr_t relro_lo, relro_hi; /* page-aligned part that the loader made read-only */
    const ElfW(Phdr) *phdr;
    int phnum;
} dyninfo_t;

static uintptr_t relocated(uintptr_t base, uintptr_t v) {
    /* glibc hands out the dynamic entries already relocated; other loaders may not */
    return v < base ? base + v : v;
}

static int read_dyn(const struct dl_phdr_info *info, dyninfo_t *d) {
    memset(d, 0, sizeof *d);
    d->base = info->dlpi_addr;
    d->phdr = info->dlpi_phdr;
    d->phnum = info->dlpi_phnum;
    d->lo = UINTPTR_MAX;
    const ElfW(Dyn) *dyn = NULL;
    long page = sysconf(_SC_PAGESIZE);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_DYNAMIC) dyn = (const ElfW(Dyn) *)(info->dlpi_addr + ph->p_vaddr);
        if (ph->p_type == PT_LOAD) {
            uintptr_t a = info->dlpi_addr + ph->p_vaddr, b = a + ph->p_memsz;
            if (a < d->lo) d->lo = a;
            if (b > d->hi) d->hi = b;
        }
        if (ph->p_type == PT_GNU_RELRO) {
            uintptr_t a = info->dlpi_addr + ph->p_vaddr, b = a + ph->p_memsz;
            d->relro_lo = a & ~(uintptr_t)(page - 1);
            d->relro_hi = b & ~(uintptr_t)(page - 1);
        }
    }
    if (dyn == NULL) return -1;
    for (; dyn->d_tag != DT_NULL; dyn++) {
        uintptr_t v = dyn->d_un.d_ptr;
        switch (dyn->d_tag) {
        case DT_SYMTAB: d->symtab = (const ElfW(Sym) *)relocated(d->base, v); break;
        case DT_STRTAB: d->strtab = (const char *)relocated(d->base, v); break;
        case DT_STRSZ: d->strsz = dyn->d_un.d_val; break;
        case DT_JMPREL: d->jmprel = (const void *)relocated(d->base, v); break;
        case DT_PLTRELSZ: d->pltrelsz = dyn->d_un.d_val; break;
        case DT_PLTREL: d->pltrel = (long)dyn->d_un.d_val; break;
        case DT_RELA: d->rela = (const ElfW(Rela) *)relocated(d->base, v); break;
        case DT_RELASZ: d->relasz = dyn->d_un.d_val; break;
        case DT_REL: d->rel = (const ElfW(Rel) *)relocated(d->base, v); break;
        case DT_RELSZ: d->relsz = dyn->d_un.d_val; break;
        default: break;
        }
    }
    if (d->symtab == NULL || d->strtab == NULL) return -1;
    return 0;
}

/* Writable at all (a PF_W segment holds it)? */
static int slot_writable_segment(const dyninfo_t *d, uintptr_t slot) {
    for (int i = 0; i < d->phnum; i++) {
        const ElfW(Phdr) *ph = &d->phdr[i];
        if (ph->p_type != PT_LOAD) continue;
        uintptr_t a = d->base + ph->p_vaddr, b = a + ph->p_memsz;
        if (slot >= a && slot + sizeof(void *) <= b) return (ph->p_flags & PF_W) != 0;
    }
    return 0;
}

static int sym_index(const char *name) {
    if (!g_first_chars[(unsigned char)name[0]]) return -1;
    for (size_t i = 0; i < g_nsyms; i++)
        if (strcmp(g_syms[i].name, name) == 0) return (int)i;
    return -1;
}

/* Visit the interesting relocations of an object: fn(d, sym_index, slot, sym, arg). */
typedef void (*reloc_visit_fn)(const dyninfo_t *d, int si, uintptr_t slot, const ElfW(Sym) *sym, void *arg);

static void visit_one(const dyninfo_t *d, uintptr_t info, uintptr_t offset, long addend, reloc_visit_fn fn, void *arg) {
    unsigned type = (unsigned)R_TYPE(info);
    if (type != CG_R_JUMP_SLOT && type != CG_R_GLOB_DAT && type != CG_R_ABS) return;
    if (type == CG_R_ABS && addend != 0) return;
    size_t idx = R_SYM(info);
    if (idx == 0) return;
    const ElfW(Sym) *sym = &d->symtab[idx];
    if (d->strsz && sym->st_name >= d->strsz) return;
    const char *name = d->strtab + sym->st_name;
    int si = sym_index(name);
    if (si < 0) return;
    fn(d, si, d->base + offset, sym, arg);
}

static void visit_relocs(const dyninfo_t *d, reloc_visit_fn fn, void *arg) {
    if (d->rela)
        for (size_t i = 0; i < d->relasz / sizeof(ElfW(Rela)); i++)
            visit_one(d, d->rela[i].r_info, d->rela[i].r_offset, (long)d->rela[i].r_addend, fn, arg);
    if (d->rel)
        for (size_t i = 0; i < d->relsz / sizeof(ElfW(Rel)); i++) visit_one(d, d->rel[i].r_info, d->rel[i].r_offset, 0, fn, arg);
    if (d->jmprel) {
        if (d->pltrel == DT_RELA) {
            const ElfW(Rela) *r = d->jmprel;
            for (size_t i = 0; i < d->pltrelsz / sizeof(ElfW(Rela)); i++)
                visit_one(d, r[i].r_info, r[i].r_offset, (long)r[i].r_addend, fn, arg);
        } else if (d->pltrel == DT_REL) {
            const ElfW(Rel) *r = d->jmprel;
            for (size_t i = 0; i < d->pltrelsz / sizeof(ElfW(Rel)); i++) visit_one(d, r[i].r_info, r[i].r_offset, 0, fn, arg);
        }
    }
}

/* First scan of an object: remember the slots that name our symbols, and whether
 * the object defines a POOL symbol (then its address is the POOL target). */
static void collect_visit(const dyninfo_t *d, int si, uintptr_t slot, const ElfW(Sym) *sym, void *arg) {
    obj_rec_t *rec = arg;
    const cg_patch_sym_t *s = &g_syms[si];
    if ((s->group & CG_GROUP_POOL) && sym->st_shndx != SHN_UNDEF && sym->st_value != 0) {
        rec->defines_pool = 1;
        if (*s->target == NULL) *s->target = (void *)(d->base + sym->st_value);
    }
    if (rec->ncands == rec->capcands) {
        size_t cap = rec->capcands ? rec->capcands * 2 : 8;
        cand_t *c = realloc(rec->cands, cap * sizeof(cand_t));
        if (c == NULL) return;
        rec->cands = c;
        rec->capcands = cap;
    }
    rec->cands[rec->ncands].slot = slot;
    rec->cands[rec->ncands].si = (uint32_t)si;
    rec->ncands++;
}

typedef struct {
    obj_rec_t *rec;
    unsigned groups;
    long written;
    int make_rw_failed;
} patch_ctx_t;

static int log_push(obj_rec_t *rec, void **slot, void *old, void *ours) {
    if (rec->nlog == rec->caplog) {
        size_t cap = rec->caplog ? rec->caplog * 2 : 16;
        patch_t *p = realloc(rec->log, cap * sizeof(patch_t));
        if (p == NULL) return -1;
        rec->log = p;
        rec->caplog = cap;
    }
    rec->log[rec->nlog].slot = slot;
    rec->log[rec->nlog].old = old;
    rec->log[rec->nlog].ours = ours;
    rec->nlog++;
    return 0;
}

static void patch_slot(const dyninfo_t *d, int si, uintptr_t slot, patch_ctx_t *c) {
    const cg_patch_sym_t *s = &g_syms[si];
    if (!(s->group & c->groups)) return;
    if (!slot_writable_segment(d, slot)) {
        c->rec->foreign++;
        return;
    }
    void **p = (void **)slot;
    void *cur = __atomic_load_n(p, __ATOMIC_RELAXED);
    void *expected = *s->target;
    if (cur == s->hook) return; /* already ours (logged when we wrote it) */
    int lazy_stub = (uintptr_t)cur >= d->lo && (uintptr_t)cur < d->hi && !(s->group & CG_GROUP_POOL);
    if (expected == NULL || (cur != expected && !lazy_stub)) {
        c->rec->foreign++;
        return;
    }
    if (log_push(c->rec, p, cur, s->hook) < 0) return;
    __atomic_store_n(p, s->hook, __ATOMIC_RELEASE);
    c->written++;
}

static int set_relro(const dyninfo_t *d, int prot) {
    if (d->relro_hi <= d->relro_lo) return 0;
    return mprotect((void *)d->relro_lo, d->relro_hi - d->relro_lo, prot);
}

/* ---- the object table ---- */

typedef struct {
    uintptr_t base;
    const void *phdr;
    int phnum;
    char path[256];
} seen_t;

typedef struct {
    seen_t *items;
    size_t n, cap;
} seen_list_t;

static int collect_cb(struct dl_phdr_info *info, size_t size, void *arg) {
    seen_list_t *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        seen_t *s = realloc(l->items, cap * sizeof(seen_t));
        if (s == NULL) return 1;
        l->items = s;
        l->cap = cap;
    }
    seen_t *s = &l->items[l->n++];
    s->base = info->dlpi_addr;
    s->phdr = info->dlpi_phdr;
    s->phnum = info->dlpi_phnum;
    const char *name = info->dlpi_name ? info->dlpi_name : "";
    strncpy(s->path, name, sizeof s->path - 1);
    s->path[sizeof s->path - 1] = 0;
    return 0;
}

static obj_rec_t *find_rec(uintptr_t base, const void *phdr) {
    for (size_t i = 0; i < g_nobjs; i++)
        if (g_objs[i].loaded && g_objs[i].base == base && g_objs[i].phdr == phdr) return &g_objs[i];
    return NULL;
}

static obj_rec_t *new_rec(const seen_t *s) {
    obj_rec_t *r = NULL;
    for (size_t i = 0; i < g_nobjs && r == NULL; i++) /* reuse the slot of an unloaded object */
        if (!g_objs[i].loaded) r = &g_objs[i];
    if (r == NULL) {
        if (g_nobjs == g_capobjs) {
            size_t cap = g_capobjs ? g_capobjs * 2 : 128;
            if (cap > 65535) return NULL;
            obj_rec_t *o = realloc(g_objs, cap * sizeof(obj_rec_t));
            if (o == NULL) return NULL;
            g_objs = o;
            g_capobjs = cap;
        }
        r = &g_objs[g_nobjs++];
        memset(r, 0, sizeof *r);
    }
    free(r->log);
    free(r->cands);
    memset(r, 0, sizeof *r);
    r->base = s->base;
    r->phdr = s->phdr;
    memcpy(r->path, s->path, sizeof r->path);
    r->loaded = 1;
    return r;
}

static long patch_object(obj_rec_t *rec, const seen_t *s) {
    struct dl_phdr_info info;
    memset(&info, 0, sizeof info);
    info.dlpi_addr = s->base;
    info.dlpi_name = s->path;
    info.dlpi_phdr = s->phdr;
    info.dlpi_phnum = (ElfW(Half))s->phnum;
    dyninfo_t d;
    rec->active = 1;
    rec->foreign = 0;
    if (read_dyn(&info, &d) < 0) {
        rec->groups = 0;
        return 0; /* no dynamic section: nothing to patch (not a failure) */
    }
    if (!rec->scanned) {
        visit_relocs(&d, collect_visit, rec);
        rec->scanned = 1;
    }
    cg_object_t obj = {s->path, s->base, d.lo, d.hi, CG_GROUP_ALLOC | CG_GROUP_MMAP | CG_GROUP_DL | CG_GROUP_POOL | CG_GROUP_GIL,
                       (uint16_t)(rec - g_objs), rec->defines_pool, d.strtab, d.strsz};
    if (g_policy) g_policy(&obj, g_policy_arg);
    rec->groups = obj.groups;
    if (obj.groups == 0) return 0;
    if (set_relro(&d, PROT_READ | PROT_WRITE) < 0) {
        rec->failed = errno ? errno : -1;
        rec->groups = 0;
        return 0;
    }
    patch_ctx_t c = {rec, obj.groups, 0, 0};
    for (size_t i = 0; i < rec->ncands; i++) patch_slot(&d, (int)rec->cands[i].si, rec->cands[i].slot, &c);
    set_relro(&d, PROT_READ);
    return c.written;
}

/* Keep an object loaded while we work on it: a reference from dlopen(RTLD_NOLOAD)
 * on its path, checked to be the same object. Returns the handle, (void *)1 for the
 * main program (never unloaded), or NULL when it cannot be pinned. */
static void *pin(const seen_t *s, size_t index) {
    if (s->path[0] == 0) return index == 0 ? (void *)1 : NULL;
    if (strstr(s->path, "linux-vdso") || strstr(s->path, "linux-gate")) return NULL;
    void *h = dlopen(s->path, RTLD_LAZY | RTLD_NOLOAD);
    if (h == NULL) return NULL;
    struct link_map *lm = NULL;
    if (dlinfo(h, RTLD_DI_LINKMAP, &lm) != 0 || lm == NULL || lm->l_addr != s->base) {
        dlclose(h);
        return NULL;
    }
    return h;
}

static void unpin(void *h) {
    if (h != NULL && h != (void *)1) dlclose(h);
}

static void mark_gone(const seen_list_t *l) {
    for (size_t i = 0; i < g_nobjs; i++) {
        int found = 0;
        for (size_t k = 0; k < l->n && !found; k++) found = g_objs[i].base == l->items[k].base && g_objs[i].phdr == l->items[k].phdr;
        if (!found && g_objs[i].loaded) {
            g_objs[i].loaded = 0;
            g_objs[i].active = 0;
            g_objs[i].nlog = 0;
        }
    }
}

long cg_elf_patch_all(void) {
    long written = 0;
    seen_list_t l = {NULL, 0, 0};
    cg_elf_lock();
    dl_iterate_phdr(collect_cb, &l);
    mark_gone(&l);
    for (size_t k = 0; k < l.n; k++) {
        obj_rec_t *rec = find_rec(l.items[k].base, l.items[k].phdr);
        if (rec != NULL && rec->active) continue;
        void *h = pin(&l.items[k], k);
        if (h == NULL) continue;
        if (rec == NULL) rec = new_rec(&l.items[k]);
        if (rec != NULL) written += patch_object(rec, &l.items[k]);
        unpin(h);
    }
    cg_elf_unlock();
    free(l.items);
    return written;
}

long cg_elf_unpatch_all(void) {
    long restored = 0;
    seen_list_t l = {NULL, 0, 0};
    cg_elf_lock();
    dl_iterate_phdr(collect_cb, &l);
    mark_gone(&l);
    for (size_t k = 0; k < l.n; k++) {
        obj_rec_t *rec = find_rec(l.items[k].base, l.items[k].phdr);
        if (rec == NULL || !rec->active) continue;
        const seen_t *s = &l.items[k];
        void *h = pin(s, k);
        if (h == NULL) continue; /* cannot be sure it stays: leave it (our hooks stay harmless) */
        if (rec->nlog) {
            struct dl_phdr_info info;
            memset(&info, 0, sizeof info);
            info.dlpi_addr = s->base;
            info.dlpi_name = s->path;
            info.dlpi_phdr = s->phdr;
            info.dlpi_phnum = (ElfW(Half))s->phnum;
            dyninfo_t d;
            if (read_dyn(&info, &d) == 0 && set_relro(&d, PROT_READ | PROT_WRITE) == 0) {
                for (size_t j = 0; j < rec->nlog; j++) {
                    patch_t *p = &rec->log[j];
                    if (__atomic_load_n(p->slot, __ATOMIC_RELAXED) == p->ours) {
                        __atomic_store_n(p->slot, p->old, __ATOMIC_RELEASE);
                        restored++;
                    }
                }
                set_relro(&d, PROT_READ);
            }
        }
        rec->nlog = 0;
        rec->active = 0;
        unpin(h);
    }
    cg_elf_unlock();
    free(l.items);
    return restored;
}

long cg_elf_repair(void) {
    long repaired = 0;
    seen_list_t l = {NULL, 0, 0};
    cg_elf_lock();
    dl_iterate_phdr(collect_cb, &l);
    mark_gone(&l);
    for (size_t k = 0; k < l.n; k++) {
        obj_rec_t *rec = find_rec(l.items[k].base, l.items[k].phdr);
        if (rec == NULL || !rec->active || rec->nlog == 0) continue;
        const seen_t *s = &l.items[k];
        void *h = pin(s, k);
        if (h == NULL) continue;
        size_t lost = 0;
        for (size_t j = 0; j < rec->nlog; j++)
            lost += __atomic_load_n(rec->log[j].slot, __ATOMIC_RELAXED) == rec->log[j].old;
        if (lost) {
            struct dl_phdr_info info;
            memset(&info, 0, sizeof info);
            info.dlpi_addr = s->base;
            info.dlpi_name = s->path;
            info.dlpi_phdr = s->phdr;
            info.dlpi_phnum = (ElfW(Half))s->phnum;
            dyninfo_t d;
            if (read_dyn(&info, &d) == 0 && set_relro(&d, PROT_READ | PROT_WRITE) == 0) {
                for (size_t j = 0; j < rec->nlog; j++) {
                    patch_t *p = &rec->log[j];
                    if (__atomic_load_n(p->slot, __ATOMIC_RELAXED) == p->old) {
                        __atomic_store_n(p->slot, p->ours, __ATOMIC_RELEASE);
                        repaired++;
                    }
                }
                set_relro(&d, PROT_READ);
            }
        }
        unpin(h);
    }
    cg_elf_unlock();
    free(l.items);
    return repaired;
}

int cg_elf_forget_unloaded(void) {
    seen_list_t l = {NULL, 0, 0};
    if (!cg_elf_trylock()) return 0;
    dl_iterate_phdr(collect_cb, &l);
    mark_gone(&l);
    cg_elf_unlock();
    free(l.items);
    return 1;
}

size_t cg_elf_objects(cg_object_info_t *out, size_t n) {
    size_t w = 0;
    cg_elf_lock();
    for (size_t i = 0; i < g_nobjs && w < n; i++) {
        obj_rec_t *r = &g_objs[i];
        if (!r->loaded) continue;
        memcpy(out[w].path, r->path, sizeof out[w].path);
        out[w].groups = r->active ? r->groups : 0;
        out[w].slots = (unsigned)r->nlog;
        out[w].foreign = r->foreign;
        out[w].failed = r->failed;
        out[w].loaded = r->loaded;
        w++;
    }
    cg_elf_unlock();
    return w;
}

long cg_elf_patched_slots(void) {
    long n = 0;
    cg_elf_lock();
    for (size_t i = 0; i < g_nobjs; i++)
        if (g_objs[i].loaded && g_objs[i].active) n += (long)g_objs[i].nlog;
    cg_elf_unlock();
    return n;
}

const char *cg_elf_object_path(uint16_t id) {
    return id < g_nobjs ? g_objs[id].path : "";
}

/* ---- symbols in the file on disk (.symtab survives in many wheels) ---- */

static int ends_with_suffix(const char *name, size_t len, const char *suffix, size_t slen) {
    if (len < slen || memcmp(name + len - slen, suffix, slen) != 0) return 0;
    return len == slen || name[len - slen - 1] == '_';
}

uintptr_t cg_elf_find_symbol_suffix(const char *path, const char *suffix, char *name_out, size_t name_cap) {
    const char *file = (path == NULL || path[0] == 0) ? "/proc/self/exe" : path;
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size < (off_t)sizeof(ElfW(Ehdr))) {
        close(fd);
        return 0;
    }
    size_t size = (size_t)st.st_size;
    const unsigned char *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return 0;
    uintptr_t found = 0;
    const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)m;
    size_t slen = strlen(suffix);
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_shoff == 0 ||
        eh->e_shentsize != sizeof(ElfW(Shdr)) || eh->e_shoff + (size_t)eh->e_shnum * sizeof(ElfW(Shdr)) > size)
        goto out;
    const ElfW(Shdr) *sh = (const ElfW(Shdr) *)(m + eh->e_shoff);
    for (int pass = 0; pass < 2 && !found; pass++) {
        unsigned want = pass == 0 ? SHT_SYMTAB : SHT_DYNSYM;
        for (unsigned i = 0; i < eh->e_shnum && !found; i++) {
            if (sh[i].sh_type != want || sh[i].sh_link >= eh->e_shnum) continue;
            const ElfW(Shdr) *strh = &sh[sh[i].sh_link];
            if (sh[i].sh_offset + sh[i].sh_size > size || strh->sh_offset + strh->sh_size > size) continue;
            const char *strtab = (const char *)(m + strh->sh_offset);
            size_t strsz = strh->sh_size;
            /* cheap test first: is the name anywhere in the string table? */
            char needle[64];
            if (slen + 2 > sizeof needle) continue;
            memcpy(needle, suffix, slen);
            needle[slen] = 0;
            if (memmem(strtab, strsz, needle, slen + 1) == NULL) continue;
            const ElfW(Sym) *syms = (const ElfW(Sym) *)(m + sh[i].sh_offset);
            size_t nsyms = sh[i].sh_size / sizeof(ElfW(Sym));
            for (size_t k = 0; k < nsyms; k++) {
                if (syms[k].st_shndx == SHN_UNDEF || syms[k].st_value == 0 || syms[k].st_name >= strsz) continue;
                const char *name = strtab + syms[k].st_name;
                size_t len = strnlen(name, strsz - syms[k].st_name);
                if (!ends_with_suffix(name, len, suffix, slen)) continue;
                found = (uintptr_t)syms[k].st_value;
                if (name_out && name_cap) {
                    size_t c = len < name_cap - 1 ? len : name_cap - 1;
                    memcpy(name_out, name, c);
                    name_out[c] = 0;
                }
                break;
            }
        }
    }
out:
    munmap((void *)m, size);
    return found;
}

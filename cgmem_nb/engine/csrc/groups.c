/*
 * groups.c -- samples grouped by (stack, thread, tag, domain) in C (the domain byte carries how the
 * stack was found too), so that building a
 * session's result costs one pass over the samples and Python work per group only.
 */
#include "sampler.h"

#include <stdlib.h>

static inline uint64_t group_hash(uint32_t stack, uint64_t tid, uint16_t tag, uint8_t domain) {
    uint64_t h = (uint64_t)stack * 0x9E3779B97F4A7C15ull ^ tid * 0xC2B2AE3D27D4EB4Full ^
                 ((uint64_t)tag | (uint64_t)domain << 16) * 0x165667B19E3779F9ull;
    return h ^ (h >> 29);
}

int cg_group_samples(const cg_sample_t *samples, size_t n, cg_group_t **out, size_t *ngroups) {
    *out = NULL;
    *ngroups = 0;
    if (n == 0) return 0;
    size_t cap = 16;
    while (cap < 2 * n) cap <<= 1;
    uint32_t *slots = malloc(cap * sizeof(uint32_t)); /* group index + 1; 0 = empty */
    cg_group_t *groups = malloc(n * sizeof(cg_group_t));
    if (slots == NULL || groups == NULL) {
        free(slots);
        free(groups);
        return -1;
    }
    for (size_t i = 0; i < cap; i++) slots[i] = 0;
    size_t used = 0, mask = cap - 1;
    for (size_t i = 0; i < n; i++) {
        const cg_sample_t *s = &samples[i];
        size_t k = (size_t)group_hash(s->stack, s->tid, s->tag, s->domain) & mask;
        cg_group_t *g = NULL;
        while (slots[k] != 0) {
            cg_group_t *c = &groups[slots[k] - 1];
            if (c->stack == s->stack && c->tid == s->tid && c->tag == s->tag && c->domain == s->domain) {
                g = c;
                break;
            }
            k = (k + 1) & mask;
        }
        if (g == NULL) {
            g = &groups[used++];
            slots[k] = (uint32_t)used;
            g->stack = s->stack;
            g->tid = s->tid;
            g->tag = s->tag;
            g->domain = s->domain;
            g->live_weight = g->live_count = g->alloc_weight = g->alloc_count = 0.0;
        }
        double count = s->size ? s->weight / (double)s->size : 0.0;
        g->alloc_weight += s->weight;
        g->alloc_count += count;
        if (s->live) {
            g->live_weight += s->weight;
            g->live_count += count;
        }
    }
    free(slots);
    *out = groups;
    *ngroups = used;
    return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * test_queue_ring.c - white-box checks of the FIFO Queue's ring memory
 * (src/queue_ring.c compiled in here): where each size of ring lies. The
 * Queue's behaviour through its rings is test_queue.c's.
 */
#include <stdint.h>

#include "check.h"

/* The ring's entry points, renamed so that they cannot clash with the
 * library's own. */
#define cth__fifo_init ring_test_fifo_init
#define cth__fifo_destroy ring_test_fifo_destroy
#define cth__fifo_set_maxsize ring_test_fifo_set_maxsize
#define cth__fifo_push ring_test_fifo_push
#define cth__fifo_pop ring_test_fifo_pop
#define cth__fifo_mark_empty ring_test_fifo_mark_empty
#define cth__fifo_mark_full ring_test_fifo_mark_full
#define cth__fifo_flag_puts ring_test_fifo_flag_puts
#define cth__fifo_drain ring_test_fifo_drain
#define cth__fifo_item ring_test_fifo_item
#include "queue_ring.c"

/* A ring of cap cells: zeroed (every cell free for its first lap), its
 * cells on cache lines, all of them writable, the header just below. */
static struct ring *checked_ring(uint64_t cap)
{
    struct ring *r = ring_alloc(cap, 7, NULL);
    CHECK(r);
    CHECK_EQ(r->cap, cap);
    CHECK_EQ(r->base, 7);
    CHECK((uintptr_t)r->cells % 64 == 0);
    /* inside its allocation: a mapping of r->pages bytes, or the heap's */
    size_t bytes = r->pages ? r->pages
                            : offsetof(struct ring, cells) + cap * sizeof(struct cell) + 63;
    CHECK((uintptr_t)r >= (uintptr_t)r->mem);
    CHECK((uintptr_t)(r->cells + cap) <= (uintptr_t)r->mem + bytes);
    for (uint64_t i = 0; i < cap; i++)
        CHECK(atomic_load(&r->cells[i].turn) == 0 && r->cells[i].item == NULL);
    memset(r->cells, 0xab, cap * sizeof(struct cell));
    return r;
}

/* Cells of 2 MB or more start on a huge-page boundary, so that the whole
 * of them can lie on transparent huge pages. */
CTH_TEST(large_rings_on_huge_page_boundaries)
{
    for (uint64_t cap = HUGE_BYTES / sizeof(struct cell);
         cap <= 4 * HUGE_BYTES / sizeof(struct cell); cap *= 2) {
        struct ring *r = checked_ring(cap);
        CHECK((uintptr_t)r->cells % HUGE_BYTES == 0);
        /* no more than the cells and the header's page stay mapped */
        CHECK_EQ(r->pages, cap * sizeof(struct cell) + (size_t)sysconf(_SC_PAGESIZE));
        ring_free(r);
    }
}

/* Smaller rings: from the heap, or (from 64 kB of cells) a mapping of
 * their own, which is what lets an outgrown ring give its pages back. */
CTH_TEST(small_rings_from_heap_or_own_mapping)
{
    struct ring *small = checked_ring(16);
    CHECK_EQ(small->pages, 0);
    ring_free(small);
    struct ring *mid = checked_ring(RECLAIM_MIN_BYTES / sizeof(struct cell));
    CHECK(mid->pages >= RECLAIM_MIN_BYTES);
    CHECK((uintptr_t)mid->mem % (uintptr_t)sysconf(_SC_PAGESIZE) == 0);
    ring_free(mid);
}

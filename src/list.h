/* SPDX-License-Identifier: MIT */
/*
 * list.h - the intrusive doubly linked list every locked list of the
 * library uses (the thread registry, the timer service's workers and
 * backlog, the pool's jobs and live pools, local's tables, the queue's
 * waiters).
 *
 * A list is the pair of its ends, first and last; a node is the pair of
 * links embedded in the element it lists, turned back into the element by
 * cth__list_entry. All-zero storage is an empty list (a static one needs no
 * initializer). A node is on one list at a time; it is linked from push to
 * remove or pop, and its links mean nothing otherwise. Nothing here locks:
 * each list says which lock guards it.
 */
#ifndef CTH_LIST_H
#define CTH_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct cth__list_node {
    struct cth__list_node *next, *prev;
};

struct cth__list {
    struct cth__list_node *first, *last; /* NULL, NULL: empty */
};

/* The element of the given type whose member node is, or NULL for NULL. */
#define cth__list_entry(node, type, member)                                                        \
    ((type *)cth__list_container((node), offsetof(type, member)))

static inline void *cth__list_container(struct cth__list_node *node, size_t offset)
{
    return node ? (char *)node - offset : NULL;
}

static inline void cth__list_init(struct cth__list *list)
{
    list->first = list->last = NULL;
}

static inline bool cth__list_empty(const struct cth__list *list)
{
    return !list->first;
}

static inline void cth__list_push_back(struct cth__list *list, struct cth__list_node *node)
{
    node->next = NULL;
    node->prev = list->last;
    if (list->last)
        list->last->next = node;
    else
        list->first = node;
    list->last = node;
}

static inline void cth__list_push_front(struct cth__list *list, struct cth__list_node *node)
{
    node->prev = NULL;
    node->next = list->first;
    if (list->first)
        list->first->prev = node;
    else
        list->last = node;
    list->first = node;
}

/* Unlink a node that is on list. */
static inline void cth__list_remove(struct cth__list *list, struct cth__list_node *node)
{
    if (node->prev)
        node->prev->next = node->next;
    else
        list->first = node->next;
    if (node->next)
        node->next->prev = node->prev;
    else
        list->last = node->prev;
}

/* Unlink and return the first node, or NULL when the list is empty. */
static inline struct cth__list_node *cth__list_pop_front(struct cth__list *list)
{
    struct cth__list_node *node = list->first;
    if (node)
        cth__list_remove(list, node);
    return node;
}

#endif

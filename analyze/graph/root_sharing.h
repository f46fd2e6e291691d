/* What roots hold together. The dominator tree gives what each root alone retains; memory that
 * two or more roots reach (a list bound to two module globals) is retained by none of them and
 * would vanish from a table of roots. Every such byte sits under a "shared" node, one whose
 * immediate dominator is the super-root without being a root, and an edge that leaves the
 * subtree of a root or of a shared node always lands on a shared node (were it to land deeper
 * in one, that node's head would dominate both ends). So a small graph of roots and shared
 * nodes says which roots reach which shared memory: each root's reachable bytes (what it holds)
 * and the groups of roots that jointly hold memory. */
#ifndef HEAPSNAP_ROOT_SHARING_H
#define HEAPSNAP_ROOT_SHARING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "analyze/graph/graph.h"
#include "common/error.h"

/* Roots that share memory are named in groups of up to this many; a group with more roots is
 * told by its count. */
#define ROOT_GROUP_NAMED 8

struct root_holding_group {
	uint32_t members[ROOT_GROUP_NAMED]; /* root ids (as given by the caller), ascending */
	uint32_t member_count;		    /* named members */
	bool more;			    /* held by more roots than ROOT_GROUP_NAMED */
	uint64_t bytes;			    /* held by them together, by no one of them alone */
};

struct root_sharing {
	/* per root id: bytes it alone retains (with every root of its id: the memory that only its
	   pieces reach is its own) */
	uint64_t *retained;
	uint64_t *holds; /* per root id: bytes reachable from it (its own retained included) */
	uint8_t *holds_exact; /* per root id: 0 when holds leaves out groups of many roots */
	struct root_holding_group *groups; /* by bytes, largest first */
	size_t group_count;
	uint64_t shared_bytes; /* in all groups: reachable, retained by no single root */
};

/* root_of[r] maps graph root r to the caller's root id (< id_count): roots of one name are one.
 * Needs the dominator tree. A root's holds count a group of more than ROOT_GROUP_NAMED roots
 * only for the `exact_count` roots that hold the most otherwise (each is a walk of the small
 * graph); the others' leave such groups out (holds_exact says which). -1 when out of memory. */
int root_sharing_find(const struct graph *graph, const uint32_t *root_of, uint32_t id_count,
		      size_t exact_count, struct root_sharing *sharing, struct hs_error *err);
void root_sharing_free(struct root_sharing *sharing);

#endif

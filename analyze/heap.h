/* What the heap walkers produce: the allocations of every allocator walked, each with the address
 * the program got, its usable size and whether it is live or free, plus totals per arena and, per
 * allocator, its version and how it was found. Walkers (glibc malloc or jemalloc, then pymalloc on
 * top) fill one `struct heap` together; nothing after them depends on which walker ran. */
#ifndef HEAPSNAP_HEAP_H
#define HEAPSNAP_HEAP_H

#include <stddef.h>
#include <stdint.h>

#include "analyze/address_space.h"

enum allocation_state { ALLOCATION_LIVE, ALLOCATION_FREE };

#define HEAP_ARENAS_MAX 32767

/* Where a block is, in words every allocator shares, which says why it is free (or that it is
 * the allocator's own). Each allocator names its places in its own words (allocator.h): glibc's
 * PLACE_FAST_LIST is a "fastbin", jemalloc's PLACE_THREAD_CACHE a "tcache". */
enum allocation_place {
	PLACE_IN_USE,	    /* handed to the program */
	PLACE_LARGE,	    /* handed to the program, in a mapping or extent of its own */
	PLACE_THREAD_CACHE, /* free, cached per thread */
	PLACE_FAST_LIST,    /* free, in a list of one size kept unmerged for speed (fast bin) */
	PLACE_FREE_LIST,    /* free, in a bin, a free list or a free slot of a slab or span */
	PLACE_TOP,	    /* free, the untouched end of an arena (top chunk, wilderness) */
	PLACE_METADATA,	    /* the allocator's own (a tcache structure) */
	PLACE_POOL,	    /* handed to the program, a block of a pool (pymalloc) */
	PLACE_POOL_FREE,    /* free, in a pool's free list */
	PLACE_RETAINED,	    /* free, whole pages the allocator keeps for reuse (dirty extents) */
	PLACE_COUNT,	    /* (not a place: how many there are, the size of a table of them) */
};

/* 24 bytes: a heap holds tens of millions of them. */
struct allocation {
	uint64_t address;   /* as returned by malloc */
	uint64_t size : 44; /* usable size, as malloc_usable_size returns it (< 16 TiB) */
	uint64_t state : 1; /* enum allocation_state */
	uint64_t place : 4; /* enum allocation_place */
	uint64_t arena : 15; /* index into heap.arenas (fewer than HEAP_ARENAS_MAX) */
	uint64_t first_word; /* the first 8 bytes at `address`: a free chunk's list link, a live
				object's header (a vtable, a reference count); read during the walk so
				nothing later has to seek back into the snapshot for it */
};

struct heap_arena {
	uint64_t address; /* of its malloc_state (or of the first mmapped chunk) */
	char kind[16];	  /* "main", "thread", "mmapped" */
	uint8_t allocator; /* index into heap.allocators: the one that walked it */
	uint64_t system_bytes; /* memory the allocator took from the system for it */
	uint64_t live_count, live_bytes, free_count, free_bytes;
	uint64_t top_bytes; /* of free_bytes, those in the top chunk (free, but not fragmentation) */
};

/* One allocator walked into the heap. */
struct heap_allocator {
	const struct allocator *allocator; /* its names and walk (allocators/allocator.h) */
	char version[32];		   /* "2.36", or empty when unknown */
	char method[32]; /* how its structures were found: "debug info" or "heuristics" */
};

#define HEAP_ALLOCATORS_MAX 4

struct heap {
	/* in the order walked: the malloc first, then what is layered on it (pymalloc) */
	struct heap_allocator allocators[HEAP_ALLOCATORS_MAX];
	size_t allocator_count;
	struct allocation *allocations; /* sorted by address */
	size_t count, capacity;
	struct heap_arena *arenas;
	size_t arena_count;
	/* the allocator's own bookkeeping outside the heap (glibc's main_arena and mp_, jemalloc's
	 * data and the mappings of its metadata): its pointers (a stale last_remainder,
	 * sbrk_base, an extent's address) are not references to objects */
	struct heap_range {
		uint64_t start, end;
	} bookkeeping[64];
	size_t bookkeeping_count;
	/* what the walker found corrupt and could not walk: the report counts it beside the
	 * warnings, so a partial answer is never read as a whole one */
	struct heap_damage {
		uint64_t spots;		   /* corrupt chunk headers, links and structures */
		uint64_t first_address;	   /* of the first one found */
		uint64_t bytes_not_walked; /* heap bytes skipped past a corrupt chunk header */
	} damage;
	/* the address index behind heap_find, built by heap_finish */
	struct heap_span *spans;
	size_t span_count;
	/* a walker whose allocator keeps its metadata apart from the blocks (jemalloc) need not
	 * read the heap's memory, and leaves blocks' first words 0: heap_read_first_words reads
	 * them when something needs them (C++ types, a runtime's objects), else the heap's memory
	 * is read once only, by the graph */
	bool first_words_unread;
};

/* A run of allocations without big gaps, with the first allocation overlapping each granule of
 * it (256 bytes, where that does not make many more granules than allocations). */
struct heap_span {
	uint64_t start, end; /* granule-aligned */
	uint32_t shift;	     /* a granule is 1 << shift bytes */
	uint32_t *first;     /* per granule: the first allocation ending after its start */
};

struct allocator;

void heap_free(struct heap *heap);
/* Starts the walk of `allocator`: the arenas added from now on are its. NULL when there are
 * HEAP_ALLOCATORS_MAX already. */
struct heap_allocator *heap_begin_allocator(struct heap *heap, const struct allocator *allocator);
void heap_add_bookkeeping(struct heap *heap, uint64_t start, uint64_t end);
/* Whether addr lies in the allocator's bookkeeping. */
int heap_is_bookkeeping(const struct heap *heap, uint64_t addr);
/* Counts one corrupt spot at `address`, past which `bytes_skipped` heap bytes were not walked. */
void heap_note_damage(struct heap *heap, uint64_t address, uint64_t bytes_skipped);
int heap_add(struct heap *heap, const struct allocation *allocation);
/* -1 when out of memory or when there are HEAP_ARENAS_MAX already. */
int heap_add_arena(struct heap *heap, const struct heap_arena *arena);
/* Sorts by address, builds the address index and fills the per-arena totals. */
void heap_finish(struct heap *heap);
/* Fills the per-arena totals again, after allocations changed state (not address). */
void heap_count_totals(struct heap *heap);
/* The allocation containing addr (its usable bytes), or NULL: a binary search among the few
 * spans, then a look at the few allocations of one granule. */
const struct allocation *heap_find(const struct heap *heap, uint64_t addr);

/* Reads every allocation's first word where a walker left them unread (first_words_unread),
 * in one pass in address order; a word that cannot be read stays 0. */
void heap_read_first_words(struct heap *heap, struct address_space *space);

#endif

/* The allocation-site table of the in-process hook: for each live allocation, the return addresses
 * of the call that made it (into the function that called malloc, calloc, realloc or an aligned
 * allocator, then its callers as far as hook_malloc.c could follow them), kept from the allocation
 * to its free. A hash table split in shards, each behind a spin lock of its own
 * and grown in memory it maps itself (never malloc: the table is updated from inside malloc).
 * The fork that writes a
 * snapshot reads the table without taking the locks: a thread stopped inside an update leaves at
 * worst one entry half-written, which is skipped. */
#include "capture/hook/hook_sites.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define SHARDS 64
#define INITIAL_CAPACITY 4096 /* entries per shard */
#define EMPTY 0
#define REMOVED 1

struct entry {
	uint64_t address;
	uint64_t pc[HEAPSNAP_SITE_FRAMES];
};

struct shard {
	atomic_flag lock;
	struct entry *entries;
	size_t capacity, used, live; /* used: live plus removed */
	char padding[64];	     /* one cache line per shard's lock */
};

int hook_sites_on;
static struct shard shards[SHARDS];

static uint64_t hash_address(uint64_t address)
{
	return (address >> 4) * 0x9E3779B97F4A7C15ull;
}

static struct entry *map_entries(size_t capacity)
{
	void *mapped = mmap(NULL, capacity * sizeof(struct entry), PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return mapped == MAP_FAILED ? NULL : mapped;
}

int hook_sites_start(void)
{
	for (size_t i = 0; i < SHARDS; i++) {
		atomic_flag_clear(&shards[i].lock);
		shards[i].entries = map_entries(INITIAL_CAPACITY);
		if (shards[i].entries == NULL)
			return -1;
		shards[i].capacity = INITIAL_CAPACITY;
	}
	hook_sites_on = 1;
	return 0;
}

static struct shard *lock_shard(uint64_t hash)
{
	struct shard *shard = &shards[hash >> 58]; /* the top 6 bits: 64 shards */
	while (atomic_flag_test_and_set_explicit(&shard->lock, memory_order_acquire))
		sched_yield();
	return shard;
}

static void unlock_shard(struct shard *shard)
{
	atomic_flag_clear_explicit(&shard->lock, memory_order_release);
}

/* Rehashes into a table twice as big (or as big, when removed entries fill it). */
static int grow(struct shard *shard)
{
	size_t capacity = shard->live * 2 >= shard->capacity ? shard->capacity * 2 : shard->capacity;
	struct entry *entries = map_entries(capacity);
	if (entries == NULL)
		return -1;
	for (size_t i = 0; i < shard->capacity; i++) {
		const struct entry *old = &shard->entries[i];
		if (old->address <= REMOVED)
			continue;
		size_t slot = hash_address(old->address) & (capacity - 1);
		while (entries[slot].address != EMPTY)
			slot = (slot + 1) & (capacity - 1);
		entries[slot] = *old;
	}
	munmap(shard->entries, shard->capacity * sizeof(struct entry));
	shard->entries = entries;
	shard->capacity = capacity;
	shard->used = shard->live;
	return 0;
}

void hook_sites_add(const void *address, const uint64_t frames[HEAPSNAP_SITE_FRAMES])
{
	uint64_t key = (uint64_t)(uintptr_t)address, hash = hash_address(key);
	struct shard *shard = lock_shard(hash);
	if ((shard->used + 1) * 4 > shard->capacity * 3 && grow(shard) != 0) {
		unlock_shard(shard);
		return; /* out of memory: this allocation goes unrecorded */
	}
	size_t mask = shard->capacity - 1, slot = hash & mask;
	struct entry *free_slot = NULL;
	for (;; slot = (slot + 1) & mask) {
		struct entry *entry = &shard->entries[slot];
		if (entry->address == key) { /* freed behind our back (a realloc in place) */
			memcpy(entry->pc, frames, sizeof entry->pc);
			unlock_shard(shard);
			return;
		}
		if (entry->address == REMOVED && free_slot == NULL)
			free_slot = entry;
		if (entry->address == EMPTY)
			break;
	}
	if (free_slot == NULL) {
		free_slot = &shard->entries[slot];
		shard->used++;
	}
	memcpy(free_slot->pc, frames, sizeof free_slot->pc);
	free_slot->address = key;
	shard->live++;
	unlock_shard(shard);
}

void hook_sites_remove(const void *address)
{
	uint64_t key = (uint64_t)(uintptr_t)address, hash = hash_address(key);
	struct shard *shard = lock_shard(hash);
	size_t mask = shard->capacity - 1;
	for (size_t slot = hash & mask, probes = 0; probes < shard->capacity;
	     slot = (slot + 1) & mask, probes++) {
		struct entry *entry = &shard->entries[slot];
		if (entry->address == EMPTY)
			break;
		if (entry->address == key) {
			entry->address = REMOVED;
			shard->live--;
			break;
		}
	}
	unlock_shard(shard);
}

static int by_address(const void *left, const void *right)
{
	const struct heapsnap_site_note *a = left, *b = right;
	return (a->address > b->address) - (a->address < b->address);
}

struct heapsnap_site_note *hook_sites_collect(size_t *count)
{
	size_t total = 0;
	for (size_t i = 0; i < SHARDS; i++)
		total += shards[i].live;
	struct heapsnap_site_note *sites = malloc((total + 1) * sizeof *sites);
	*count = 0;
	if (sites == NULL)
		return NULL;
	for (size_t i = 0; i < SHARDS; i++)
		for (size_t k = 0; k < shards[i].capacity && *count < total; k++) {
			const struct entry *entry = &shards[i].entries[k];
			if (entry->address > REMOVED && entry->pc[0] != 0) {
				struct heapsnap_site_note *site = &sites[(*count)++];
				site->address = entry->address;
				memcpy(site->pc, entry->pc, sizeof site->pc);
			}
		}
	qsort(sites, *count, sizeof *sites, by_address);
	return sites;
}

/* Faulting memory in ahead of the analysis on a helper thread (see prefault.h). */
#include "prefault.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "common/clock.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define STEP (2u << 20) /* faulted in a piece at a time: a huge page */
#define QUEUE 64

static struct {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool running, stopping;
	struct range {
		uintptr_t start, end;
	} queue[QUEUE]; /* ranges asked for, oldest first */
	size_t head, count;
	uintptr_t heap_done; /* malloc's heap (the program break) is faulted in up to here */
} helper = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static void populate(uintptr_t start, uintptr_t end)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	start = start / page * page;
	for (uintptr_t at = start; at < end; at += STEP) {
		uintptr_t to = end - at < STEP ? end : at + STEP;
		/* refused (an old kernel, memory gone meanwhile): only a missed speed-up */
		madvise((void *)at, (size_t)(to - at), MADV_POPULATE_WRITE);
	}
}

static void *prefault_helper(void *unused)
{
	(void)unused;
	pthread_mutex_lock(&helper.lock);
	while (!helper.stopping) {
		if (helper.count > 0) {
			struct range range = helper.queue[helper.head];
			helper.head = (helper.head + 1) % QUEUE;
			helper.count--;
			pthread_mutex_unlock(&helper.lock);
			populate(range.start, range.end);
			pthread_mutex_lock(&helper.lock);
			continue;
		}
		/* malloc's heap: whatever it took from the kernel since the last look */
		uintptr_t brk_end = (uintptr_t)sbrk(0);
		if (brk_end > helper.heap_done && brk_end != (uintptr_t)-1) {
			uintptr_t from = helper.heap_done;
			helper.heap_done = brk_end;
			pthread_mutex_unlock(&helper.lock);
			populate(from, brk_end);
			pthread_mutex_lock(&helper.lock);
			continue;
		}
		/* the heap grows without telling: looked at every 2 ms */
		struct timespec until = realtime_deadline(2000000);
		pthread_cond_timedwait(&helper.wake, &helper.lock, &until);
	}
	pthread_mutex_unlock(&helper.lock);
	return NULL;
}

int prefault_start(void)
{
	pthread_mutex_lock(&helper.lock);
	int result = 0;
	if (!helper.running) {
		helper.stopping = false;
		helper.heap_done = (uintptr_t)sbrk(0);
		if (pthread_create(&helper.thread, NULL, prefault_helper, NULL) == 0)
			helper.running = true;
		else
			result = -1;
	}
	pthread_mutex_unlock(&helper.lock);
	return result;
}

void prefault_ahead(void *address, size_t length)
{
	pthread_mutex_lock(&helper.lock);
	if (helper.running && helper.count < QUEUE) {
		helper.queue[(helper.head + helper.count) % QUEUE] =
			(struct range){(uintptr_t)address, (uintptr_t)address + length};
		helper.count++;
		pthread_cond_signal(&helper.wake);
	}
	pthread_mutex_unlock(&helper.lock);
}

void prefault_stop(void)
{
	pthread_mutex_lock(&helper.lock);
	bool running = helper.running;
	helper.stopping = true;
	pthread_cond_signal(&helper.wake);
	pthread_mutex_unlock(&helper.lock);
	if (running)
		pthread_join(helper.thread, NULL);
	pthread_mutex_lock(&helper.lock);
	helper.running = false;
	helper.count = 0;
	pthread_mutex_unlock(&helper.lock);
}

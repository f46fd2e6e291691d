/* What the BPF programs of sites.bpf.c and the user-space recorder (capture/sites_recorder.c)
 * share: the allocation event sent through the ring buffer (registers and a copy of the stack's
 * top, unwound in user space), the live-allocation map's value, and the counters. Included by
 * both the BPF build (clang -target bpf) and the C build, so only fixed-width kernel types. */
#ifndef HEAPSNAP_SITES_EVENTS_H
#define HEAPSNAP_SITES_EVENTS_H

#include <linux/types.h>

/* The bytes of stack copied from the stack pointer at the allocator's entry: as perf's
 * --call-graph dwarf default, enough for the frames the site keeps in most programs. */
#define SITES_STACK_BYTES 8192
/* x86-64 registers in DWARF numbering: rax rdx rcx rbx rsi rdi rbp rsp r8..r15 */
#define SITES_DWARF_REGISTERS 16

struct sites_event {
	__u64 seq; /* the allocation's number, the key user space files its unwound stack under */
	__u64 ip;  /* the allocator's entry */
	__u64 regs[SITES_DWARF_REGISTERS];
	__u32 tid;
	__u32 stack_size; /* bytes of `stack` copied, from regs[7] (rsp) up */
	__u8 stack[SITES_STACK_BYTES];
};

/* The live map's value, keyed by the address the allocator returned. */
struct sites_live {
	__u64 size;
	__u64 seq;
	__u64 time_ns; /* bpf_ktime_get_ns at the return */
};

/* Indexes of the counters array (a per-CPU array summed by user space). */
enum sites_counter {
	SITES_ALLOCATIONS,   /* allocator calls seen during the window */
	SITES_SAMPLED,	     /* of them, chosen by sampling (all when not sampling) */
	SITES_NO_STACK,	     /* sampled, but the ring buffer was full: no stack */
	SITES_MAP_FULL,	     /* returned, but the live map was full: not recorded */
	SITES_FREES,	     /* frees (and reallocs) of recorded allocations */
	SITES_COUNTERS
};

#endif

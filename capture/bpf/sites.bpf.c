/* The BPF side of `heapsnap capture --sites`: uprobes on the entry of the target's allocation
 * functions send the registers and the stack's top to user space (which unwinds them with the
 * modules' CFI) under a sequence number; uretprobes file the returned address in the live map
 * with that number; frees delete from it. Only the target's threads count (tgid), and nothing
 * once user space sets `stopped` (when the capture has stopped the target, so that the map is the
 * heap of that moment). Sampling (`sample_bytes`): one allocation per that many bytes on average,
 * by a per-CPU countdown drawn uniformly in [0, 2 * sample_bytes). x86-64 only. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "capture/bpf/sites_events.h"

/* The kernel's struct pt_regs on x86-64, as a uprobe's context (the fields this file reads; the
 * layout is the kernel's ABI for BPF programs of this type). */
struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di, orig_ax, ip,
		cs, flags, sp, ss;
};

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 target_tgid = 0;
const volatile __u64 sample_bytes = 0; /* 0: every allocation */
volatile __u32 stopped = 0;
__u64 next_seq = 0;

enum pending_kind { PLAIN, REALLOC, MEMALIGN_OUT };

struct pending {
	__u64 seq; /* 0: not sampled, or its stack was lost */
	__u64 size;
	__u64 argument; /* realloc: the old pointer; posix_memalign: where the pointer goes */
	__u32 kind;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1); /* set by user space (--sites-max) */
	__type(key, __u64);
	__type(value, struct sites_live);
} live SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct pending);
} pending_calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1); /* set by user space */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SITES_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __s64);
} countdown SEC(".maps");

static void count(__u32 which)
{
	__u64 *value = bpf_map_lookup_elem(&counters, &which);
	if (value)
		*value += 1;
}

static int ours(void)
{
	return !stopped && (bpf_get_current_pid_tgid() >> 32) == target_tgid;
}

static int sampled(__u64 size)
{
	if (sample_bytes == 0)
		return 1;
	__u32 zero = 0;
	__s64 *left = bpf_map_lookup_elem(&countdown, &zero);
	if (!left)
		return 0;
	*left -= (__s64)size;
	if (*left > 0)
		return 0;
	*left = (__s64)(bpf_get_prandom_u32() % (2 * sample_bytes)) + 1;
	return 1;
}

/* The stack's top copied: SITES_STACK_BYTES when mapped, else up to the end of sp's page (a
 * thread's stack may end closer than that). */
static __u32 copy_stack(struct sites_event *event, __u64 sp)
{
	if (bpf_probe_read_user(event->stack, SITES_STACK_BYTES, (const void *)sp) == 0)
		return SITES_STACK_BYTES;
	__u32 in_page = 4096 - (__u32)(sp & 4095);
	if (in_page > SITES_STACK_BYTES)
		return 0;
	if (bpf_probe_read_user(event->stack, in_page, (const void *)sp) == 0)
		return in_page;
	return 0;
}

static int enter(struct pt_regs *regs, __u64 size, __u64 argument, __u32 kind)
{
	if (!ours())
		return 0;
	count(SITES_ALLOCATIONS);
	struct pending call = {.size = size, .argument = argument, .kind = kind};
	struct sites_event *event = NULL;
	if (sampled(size)) {
		count(SITES_SAMPLED);
		event = bpf_ringbuf_reserve(&events, sizeof *event, 0);
		if (!event)
			count(SITES_NO_STACK);
		else
			call.seq = __sync_fetch_and_add(&next_seq, 1) + 1;
	}
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	/* filed before the event is sent, so that user space, seeing the event, finds the call in
	   flight or returned; a realloc must be seen returning even unsampled: it frees */
	if (call.seq || kind == REALLOC)
		bpf_map_update_elem(&pending_calls, &tid, &call, BPF_ANY);
	if (event) {
		event->seq = call.seq;
		event->ip = regs->ip;
		event->tid = tid;
		__u64 dwarf[SITES_DWARF_REGISTERS] = {
			regs->ax, regs->dx, regs->cx, regs->bx, regs->si, regs->di,
			regs->bp, regs->sp, regs->r8, regs->r9, regs->r10, regs->r11,
			regs->r12, regs->r13, regs->r14, regs->r15};
		__builtin_memcpy(event->regs, dwarf, sizeof dwarf);
		event->stack_size = copy_stack(event, regs->sp);
		bpf_ringbuf_submit(event, 0);
	}
	return 0;
}

static void forget(__u64 address)
{
	if (address && bpf_map_delete_elem(&live, &address) == 0)
		count(SITES_FREES);
}

static int leave(__u64 returned)
{
	if ((bpf_get_current_pid_tgid() >> 32) != target_tgid)
		return 0;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct pending *call = bpf_map_lookup_elem(&pending_calls, &tid);
	if (!call)
		return 0;
	struct pending copy = *call;
	bpf_map_delete_elem(&pending_calls, &tid);
	if (stopped)
		return 0;
	__u64 address = returned;
	if (copy.kind == MEMALIGN_OUT) {
		address = 0;
		if (returned != 0 ||
		    bpf_probe_read_user(&address, sizeof address, (const void *)copy.argument) != 0)
			return 0;
	}
	if (copy.kind == REALLOC && (address != 0 || copy.size == 0))
		forget(copy.argument); /* moved, or freed by realloc(p, 0) */
	if (address == 0 || copy.seq == 0)
		return 0;
	struct sites_live value = {.size = copy.size, .seq = copy.seq,
				   .time_ns = bpf_ktime_get_ns()};
	if (bpf_map_update_elem(&live, &address, &value, BPF_ANY) != 0)
		count(SITES_MAP_FULL);
	return 0;
}

SEC("uprobe")
int malloc_enter(struct pt_regs *regs)
{
	return enter(regs, regs->di, 0, PLAIN);
}

SEC("uprobe")
int calloc_enter(struct pt_regs *regs)
{
	return enter(regs, regs->di * regs->si, 0, PLAIN);
}

SEC("uprobe")
int realloc_enter(struct pt_regs *regs)
{
	return enter(regs, regs->si, regs->di, REALLOC);
}

/* aligned_alloc(alignment, size), memalign(alignment, size) */
SEC("uprobe")
int aligned_enter(struct pt_regs *regs)
{
	return enter(regs, regs->si, 0, PLAIN);
}

/* posix_memalign(&pointer, alignment, size): the pointer is read at the return */
SEC("uprobe")
int posix_memalign_enter(struct pt_regs *regs)
{
	return enter(regs, regs->dx, regs->di, MEMALIGN_OUT);
}

SEC("uretprobe")
int allocation_return(struct pt_regs *regs)
{
	return leave(regs->ax);
}

SEC("uprobe")
int free_enter(struct pt_regs *regs)
{
	if (ours())
		forget(regs->di);
	return 0;
}

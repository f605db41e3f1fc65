/* The few kernel types and helpers tw's programs read, written out by hand
 * so that the object builds from this folder alone (no vmlinux.h, no libbpf
 * headers). Every struct carries preserve_access_index: field offsets are
 * CO-RE relocations, resolved against the running kernel's BTF at load
 * time, so only the field names and nesting must match the kernel
 * (include/net/sock.h struct sock_common, include/net/net_namespace.h). */
#ifndef TW_KERNEL_H
#define TW_KERNEL_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef int __s32;
typedef long long __s64;

#define __ka __attribute__((preserve_access_index))
#define __always_inline inline __attribute__((always_inline))

struct ns_common {
	unsigned int inum;
} __ka;

struct net {
	struct ns_common ns;
} __ka;

typedef struct {
	struct net *net;
} __ka possible_net_t;

struct in6_addr {
	union {
		__u8 u6_addr8[16];
	} in6_u;
} __ka;

struct sock_common {
	union {
		__u64 skc_addrpair;
		struct {
			__u32 skc_daddr;
			__u32 skc_rcv_saddr;
		};
	};
	union {
		__u32 skc_portpair;
		struct {
			__u16 skc_dport;
			__u16 skc_num;
		};
	};
	unsigned short skc_family;
	volatile unsigned char skc_state;
	possible_net_t skc_net;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
	union {
		unsigned long skc_flags;
	};
} __ka;

struct sock {
	struct sock_common __sk_common;
} __ka;

/* include/net/inet_sock.h. inet_sport, unlike skc_num, survives
 * tcp_set_state(TCP_CLOSE): inet_put_port() zeroes inet_num before the
 * state tracepoint fires. */
struct inet_sock {
	struct sock sk;
	__u16 inet_sport;
} __ka;

struct net_device {
	possible_net_t nd_net;
} __ka;

/* include/linux/skbuff.h: only what finds a segment's headers. */
struct sk_buff {
	union {
		struct {
			struct sk_buff *next;
			struct sk_buff *prev;
			union {
				struct net_device *dev;
				unsigned long dev_scratch;
			};
		};
	};
	union {
		struct {
			__u16 transport_header;
			__u16 network_header;
		};
	};
	unsigned char *head;
} __ka;

/* BPF map and program types, helper ids (include/uapi/linux/bpf.h). */
enum {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_RINGBUF = 27,
};

/* bpf_ringbuf_submit() flags */
#define BPF_RB_NO_WAKEUP 1

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, __u64 flags) = (void *)2;
static long (*bpf_map_delete_elem)(void *map, const void *key) = (void *)3;
static __u64 (*bpf_ktime_get_ns)(void) = (void *)5;
static long (*bpf_probe_read_kernel)(void *dst, __u32 size, const void *unsafe_ptr) = (void *)113;
static __u64 (*bpf_get_current_pid_tgid)(void) = (void *)14;
static long (*bpf_get_current_comm)(void *buf, __u32 size_of_buf) = (void *)16;
static void *(*bpf_ringbuf_reserve)(void *ringbuf, __u64 size, __u64 flags) = (void *)131;
static void (*bpf_ringbuf_submit)(void *data, __u64 flags) = (void *)132;

/* BPF_PROG: a tracing program's context is an array of u64, one per
 * argument (and the return value last, for fexit). */
#define ARG(ctx, n, type) ((type)(ctx)[n])

#endif

/* tw trace: TCP events from the kernel into one ring buffer.
 *
 * Every program is a BTF-typed tracepoint (tp_btf): they need no tracefs,
 * and, unlike fentry/fexit, no ftrace trampoline, which some kernels refuse
 * (EPERM) even to root. Three tracepoints carry everything:
 * sock:inet_sock_set_state (include/trace/events/sock.h), tcp:tcp_send_reset
 * and tcp:tcp_receive_reset, plus tcp:tcp_retransmit_skb.
 *
 * The programs see every network namespace; config[0] holds the namespace
 * inode to keep (0: all). struct tw_event is decoded by
 * src/source/events/decode.rs; keep the two in step. */
#include "kernel.h"

#define AF_INET 2
#define AF_INET6 10

/* include/net/tcp_states.h */
#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_SYN_RECV 3
#define TCP_FIN_WAIT1 4
#define TCP_FIN_WAIT2 5
#define TCP_TIME_WAIT 6
#define TCP_CLOSE 7
#define TCP_LISTEN 10
#define TCP_CLOSING 11

/* include/net/sock.h enum sock_flags */
#define SOCK_DONE 1

enum tw_kind {
	TW_CONNECT = 1,      /* an outbound connection was established */
	TW_ACCEPT = 2,       /* an inbound connection was established */
	TW_CLOSE_FIRST = 3,  /* close()/shutdown() sent the first FIN */
	TW_TIME_WAIT = 4,    /* tcp_time_wait(): TIME_WAIT or FIN_WAIT2 minisocket */
	TW_TW_REUSE = 5,     /* connect() took over a TIME_WAIT 4-tuple */
	TW_CONNECT_FAIL = 6, /* connect() found no local port: EADDRNOTAVAIL */
	TW_RST_SENT = 7,
	TW_RST_RECV = 8,
	TW_RETRANSMIT = 9,
};

enum tw_dir { DIR_UNKNOWN = 0, DIR_IN = 1, DIR_OUT = 2 };

struct tw_event {
	__u64 ts;
	__u32 netns;
	__u32 pid;
	__u8 kind;
	__u8 family;
	__u8 state;
	__u8 dir;
	__u16 sport;
	__u16 dport;
	__u8 saddr[16];
	__u8 daddr[16];
	char comm[16];
};

/* Who a socket belongs to, for events in softirq or timer context, where
 * `current` is whatever task was interrupted. */
struct owner {
	__u32 pid;
	__u8 dir;
	__u8 pad[3];
	char comm[16];
};

/* A listening port, whose owner accepted connections are credited to. */
struct port_key {
	__u32 netns;
	__u16 port;
	__u16 pad;
};

/* A connection's identity, for telling a takeover of a TIME_WAIT. */
struct tuple {
	__u32 netns;
	__u16 sport;
	__u16 dport;
	__u8 saddr[16];
	__u8 daddr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1 << 16);
	__type(key, __u64);
	__type(value, struct owner);
} owners SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1 << 12);
	__type(key, struct port_key);
	__type(value, struct owner);
} listeners SEC(".maps");

/* TIME_WAITs of outbound connections, newest 65536: at most one port
 * range's worth per destination can exist, and a takeover happens only
 * where ports run short. Value: when it was made (ns). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1 << 16);
	__type(key, struct tuple);
	__type(value, __u64);
} time_waits SEC(".maps");

/* [0]: the namespace inode to keep, 0 for every namespace. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} config SEC(".maps");

/* [0]: events lost to a full ring buffer. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/* [0]: the socket this CPU last saw a reset for, until the next CLOSE.
 * tcp_reset() and tcp_send_active_reset() fire their tracepoint just before
 * tcp_done() moves the socket to CLOSE on the same CPU, so a CLOSE from
 * FIN_WAIT2 or CLOSING that follows a reset is not a TIME_WAIT. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} last_reset SEC(".maps");

/* The TIME_WAIT lifetime (TCP_TIMEWAIT_LEN, include/net/tcp.h). */
#define TIMEWAIT_NS (60ULL * 1000000000ULL)

static __always_inline __u32 sk_netns(const struct sock *sk)
{
	return sk->__sk_common.skc_net.net->ns.inum;
}

static __always_inline int wanted(__u32 netns)
{
	__u32 zero = 0;
	__u32 *want = bpf_map_lookup_elem(&config, &zero);
	return !want || *want == 0 || *want == netns;
}

/* The local port, host order; 0 before connect() chose one. */
static __always_inline __u16 local_port(const struct sock *sk)
{
	/* A read, not a load: the verifier types sk as struct sock only. */
	__u16 port = 0;
	bpf_probe_read_kernel(&port, sizeof(port), &((const struct inet_sock *)sk)->inet_sport);
	return __builtin_bswap16(port);
}

static __always_inline void addrs(const struct sock *sk, __u8 *saddr, __u8 *daddr)
{
	if (sk->__sk_common.skc_family == AF_INET6) {
		__builtin_memcpy(saddr, sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8, 16);
		__builtin_memcpy(daddr, sk->__sk_common.skc_v6_daddr.in6_u.u6_addr8, 16);
	} else {
		__u32 s = sk->__sk_common.skc_rcv_saddr, d = sk->__sk_common.skc_daddr;
		__builtin_memset(saddr, 0, 16);
		__builtin_memset(daddr, 0, 16);
		__builtin_memcpy(saddr, &s, 4);
		__builtin_memcpy(daddr, &d, 4);
	}
}

static __always_inline void tuple_of(const struct sock *sk, __u32 netns, struct tuple *t)
{
	t->netns = netns;
	t->sport = local_port(sk);
	t->dport = sk->__sk_common.skc_dport;
	addrs(sk, t->saddr, t->daddr);
}

/* Queues one event. who: a process to credit, else (NULL) the current
 * task when `current` is set, else the socket's owner. */
static __always_inline void emit(const struct sock *sk, __u32 netns, __u8 kind, __u8 state,
				 int current, const struct owner *who)
{
	struct tw_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(&lost, &zero);
		if (n)
			*n += 1;
		return;
	}
	e->ts = bpf_ktime_get_ns();
	e->netns = netns;
	e->kind = kind;
	e->state = state;
	e->family = (__u8)sk->__sk_common.skc_family;
	e->sport = local_port(sk);
	e->dport = __builtin_bswap16(sk->__sk_common.skc_dport);
	addrs(sk, e->saddr, e->daddr);
	__u64 key = (__u64)sk;
	const struct owner *o = bpf_map_lookup_elem(&owners, &key);
	e->dir = o ? o->dir : DIR_UNKNOWN;
	if (who) {
		e->pid = who->pid;
		__builtin_memcpy(e->comm, who->comm, 16);
	} else if (current) {
		e->pid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
	} else if (o) {
		e->pid = o->pid;
		__builtin_memcpy(e->comm, o->comm, 16);
	} else {
		e->pid = 0;
		__builtin_memset(e->comm, 0, 16);
	}
	/* No wakeup: tw drains the buffer on its own clock (every 100-200 ms),
	 * so a busy box costs no wakeup per event. */
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

/* The current task becomes the socket's owner (dir 0 keeps the old dir). */
static __always_inline void own(const struct sock *sk, __u8 dir)
{
	__u64 key = (__u64)sk;
	struct owner o = {};
	struct owner *old = bpf_map_lookup_elem(&owners, &key);
	o.pid = bpf_get_current_pid_tgid() >> 32;
	o.dir = dir ? dir : (old ? old->dir : DIR_UNKNOWN);
	bpf_get_current_comm(o.comm, sizeof(o.comm));
	bpf_map_update_elem(&owners, &key, &o, 0);
}

/* sock:inet_sock_set_state(sk, oldstate, newstate) is handled by two
 * programs with disjoint transitions: tw_state_call takes those made by a
 * system call in the calling task (listen, connect, close), tw_state_done
 * those made on receipt of a segment or by a timer (softirq, mostly).
 *
 * Why two: the kernel runs a tracing program at most once per CPU at a
 * time (bpf_trace_run*() in kernel/trace/bpf_trace.c skips a nested run
 * and counts it in the program's recursion_misses). A softirq that
 * interrupts the program in process context (a close() on this CPU, say)
 * and moves another socket from FIN_WAIT2 to CLOSE would find it running
 * and its TIME_WAIT would go unseen: about 3 in 100,000 at 5,000
 * connections/s with one program. With two, the softirq's transitions
 * belong to a program that is in process context only briefly (its first
 * test) or when a socket's backlog is processed in release_sock(); for
 * those, tw_state_again does the work of a skipped tw_state_done. What is
 * still skipped is counted (Tracer::skipped). */
SEC("tp_btf/inet_sock_set_state")
int tw_state_call(unsigned long long *ctx)
{
	const struct sock *sk = ARG(ctx, 0, const struct sock *);
	int old = (int)ctx[1], new = (int)ctx[2];
	if (!(new == TCP_LISTEN || (old == TCP_CLOSE && new == TCP_SYN_SENT) ||
	      (old == TCP_SYN_SENT && new == TCP_CLOSE) ||
	      (new == TCP_FIN_WAIT1 && (old == TCP_ESTABLISHED || old == TCP_SYN_RECV)) ||
	      (old == TCP_LISTEN && new == TCP_CLOSE)))
		return 0;
	__u64 key = (__u64)sk;
	__u32 netns = sk_netns(sk);
	if (!wanted(netns)) {
		if (new == TCP_CLOSE)
			bpf_map_delete_elem(&owners, &key);
		return 0;
	}

	/* listen(): inet_csk_listen_start(), in the listening task. */
	if (new == TCP_LISTEN) {
		struct port_key p = { .netns = netns, .port = sk->__sk_common.skc_num };
		struct owner o = {};
		o.pid = bpf_get_current_pid_tgid() >> 32;
		o.dir = DIR_IN;
		bpf_get_current_comm(o.comm, sizeof(o.comm));
		bpf_map_update_elem(&listeners, &p, &o, 0);
		return 0;
	}
	/* connect(): tcp_v4_connect()/tcp_v6_connect() set SYN_SENT before
	 * choosing the local port, in the connecting task. */
	if (old == TCP_CLOSE && new == TCP_SYN_SENT) {
		own(sk, DIR_OUT);
		return 0;
	}
	/* connect() failed; still in the connecting task. A socket with no
	 * local port means __inet_hash_connect() found none free: that is
	 * connect()'s EADDRNOTAVAIL (net/ipv4/inet_hashtables.c). Other
	 * failures (refused, timed out) come after a port was chosen. */
	if (old == TCP_SYN_SENT && new == TCP_CLOSE) {
		if (local_port(sk) == 0)
			emit(sk, netns, TW_CONNECT_FAIL, 0, 1, 0);
		bpf_map_delete_elem(&owners, &key);
		return 0;
	}
	if (old == TCP_LISTEN) {
		struct port_key p = { .netns = netns, .port = local_port(sk) };
		bpf_map_delete_elem(&listeners, &p);
		return 0;
	}
	/* ESTABLISHED (or SYN_RECV) -> FIN_WAIT1 happens only in
	 * tcp_close_state(), called by close() and shutdown() in the closing
	 * task: it closed first. It becomes the owner, so the TIME_WAIT made
	 * later in softirq names it. */
	own(sk, 0);
	emit(sk, netns, TW_CLOSE_FIRST, (__u8)old, 1, 0);
	return 0;
}

/* tw_state_done's work for one transition (new is CLOSE or ESTABLISHED). */
static __always_inline void state_done(const struct sock *sk, int old, int new)
{
	__u64 key = (__u64)sk;
	/* Was this CLOSE the tcp_done() right after a reset of this socket?
	 * Every CLOSE clears the mark, so a reset that closed nothing (a reply
	 * to a stray segment) cannot match a later socket at the same
	 * address. */
	int was_reset = 0;
	if (new == TCP_CLOSE) {
		__u32 zero = 0;
		__u64 *r = bpf_map_lookup_elem(&last_reset, &zero);
		if (r) {
			was_reset = *r == key;
			*r = 0;
		}
		/* tw_state_call's. */
		if (old == TCP_SYN_SENT || old == TCP_LISTEN)
			return;
	}
	__u32 netns = sk_netns(sk);
	if (!wanted(netns)) {
		if (new == TCP_CLOSE)
			bpf_map_delete_elem(&owners, &key);
		return;
	}

	if (old == TCP_SYN_SENT && new == TCP_ESTABLISHED) {
		/* A TIME_WAIT of this 4-tuple younger than TIME_WAIT's lifetime
		 * was taken over: tcp_twsk_unique() let connect() reuse it. */
		struct tuple t = {};
		tuple_of(sk, netns, &t);
		__u64 *made = bpf_map_lookup_elem(&time_waits, &t);
		if (made) {
			if (bpf_ktime_get_ns() - *made < TIMEWAIT_NS)
				emit(sk, netns, TW_TW_REUSE, 0, 0, 0);
			bpf_map_delete_elem(&time_waits, &t);
		}
		emit(sk, netns, TW_CONNECT, 0, 0, 0);
		return;
	}
	/* A child of a listener completed the handshake (softirq): credited to
	 * the listening port's owner. */
	if (old == TCP_SYN_RECV && new == TCP_ESTABLISHED) {
		struct port_key p = { .netns = netns, .port = sk->__sk_common.skc_num };
		struct owner *l = bpf_map_lookup_elem(&listeners, &p);
		struct owner o = {};
		if (l) {
			o = *l;
			o.dir = DIR_IN;
		} else {
			o.dir = DIR_IN;
		}
		bpf_map_update_elem(&owners, &key, &o, 0);
		emit(sk, netns, TW_ACCEPT, 0, 0, &o);
		return;
	}
	if (new != TCP_CLOSE)
		return;
	/* tcp_time_wait() (net/ipv4/tcp_minisocks.c) ends in tcp_done(): the
	 * full socket goes FIN_WAIT2 or CLOSING -> CLOSE as its minisocket
	 * takes over (inet_sock_set_state never reports TIME_WAIT itself).
	 * From CLOSING it is TIME_WAIT; from FIN_WAIT2 it is TIME_WAIT when
	 * the peer's FIN came (tcp_fin() set SOCK_DONE), else the FIN_WAIT2
	 * substate. A reset just before on this CPU means no minisocket. */
	if ((old == TCP_FIN_WAIT2 || old == TCP_CLOSING) && !was_reset) {
		__u8 sub = TCP_TIME_WAIT;
		if (old == TCP_FIN_WAIT2 && !(sk->__sk_common.skc_flags & (1UL << SOCK_DONE)))
			sub = TCP_FIN_WAIT2;
		emit(sk, netns, TW_TIME_WAIT, sub, 0, 0);
		struct owner *o = bpf_map_lookup_elem(&owners, &key);
		if (!o || o->dir != DIR_IN) {
			struct tuple t = {};
			__u64 now = bpf_ktime_get_ns();
			tuple_of(sk, netns, &t);
			bpf_map_update_elem(&time_waits, &t, &now, 0);
		}
	}
	bpf_map_delete_elem(&owners, &key);
}

/* The transitions tw_state_done ran for on this CPU lately, for
 * tw_state_again. No clock: a vCPU the hypervisor stops between the two
 * programs would make any age limit take a handled transition for a
 * skipped one. An entry the skipped tw_state_again of a nested transition
 * left behind is pushed out by later ones. */
#define DONE_SLOTS 32
struct done_ring {
	__u64 sk[DONE_SLOTS];
	__u32 states[DONE_SLOTS];
	__u32 next;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct done_ring);
} done SEC(".maps");

/* A transition is the socket and its two states (a socket changes state
 * under its lock, so one socket never has two transitions in flight). */

SEC("tp_btf/inet_sock_set_state")
int tw_state_done(unsigned long long *ctx)
{
	const struct sock *sk = ARG(ctx, 0, const struct sock *);
	int old = (int)ctx[1], new = (int)ctx[2];
	if (new != TCP_CLOSE && new != TCP_ESTABLISHED)
		return 0;
	state_done(sk, old, new);
	__u32 zero = 0;
	struct done_ring *r = bpf_map_lookup_elem(&done, &zero);
	if (r) {
		__u32 i = r->next % DONE_SLOTS;
		r->sk[i] = (__u64)sk;
		r->states[i] = (__u32)old << 8 | (__u32)new;
		r->next = i + 1;
	}
	return 0;
}

/* The same tracepoint's next program, attached after tw_state_done, so it
 * runs right after it for every transition. When the kernel skipped
 * tw_state_done (a softirq interrupting it in process context, the
 * backlog of a socket processed in release_sock()), its transition is not
 * in the ring, and this does the work instead. Were this program the one
 * interrupted, the nested transition would find tw_state_done free, and
 * the ring keeps the outer one's entry unless more than DONE_SLOTS
 * transitions come in between. */
SEC("tp_btf/inet_sock_set_state")
int tw_state_again(unsigned long long *ctx)
{
	const struct sock *sk = ARG(ctx, 0, const struct sock *);
	int old = (int)ctx[1], new = (int)ctx[2];
	if (new != TCP_CLOSE && new != TCP_ESTABLISHED)
		return 0;
	__u32 zero = 0;
	struct done_ring *r = bpf_map_lookup_elem(&done, &zero);
	if (!r)
		return 0;
	__u64 key = (__u64)sk;
	__u32 states = (__u32)old << 8 | (__u32)new;
	for (int i = 0; i < DONE_SLOTS; i++) {
		if (r->sk[i] == key && r->states[i] == states) {
			r->sk[i] = 0;
			return 0;
		}
	}
	state_done(sk, old, new);
	return 0;
}

/* Marks a reset that will close a FIN_WAIT2 or CLOSING socket: only there
 * can it be taken for tcp_time_wait(). tcp_disconnect() (close() with
 * SO_LINGER 0) sends its reset after the CLOSE, from state CLOSE: never
 * marked, or the mark would outlive the socket and hide the TIME_WAIT of
 * the next one the slab puts at the same address. */
static __always_inline void mark_reset(const struct sock *sk)
{
	unsigned char state = sk->__sk_common.skc_state;
	if (state != TCP_FIN_WAIT2 && state != TCP_CLOSING)
		return;
	__u32 zero = 0;
	__u64 *r = bpf_map_lookup_elem(&last_reset, &zero);
	if (r)
		*r = (__u64)sk;
}

/* tcp:tcp_send_reset(sk, skb, reason). skb is NULL for an active reset
 * (tcp_send_active_reset(): close() with SO_LINGER 0 or unread data, an
 * abort), set for a reply to a segment (then sk is NULL when no socket
 * matched). An active reset is credited to the socket's owner, else to
 * the current task; a reply to an unmatched segment to no process. */
/* A reset sent in reply to a segment no socket took (a SYN to a closed
 * port, a segment for a connection long gone): no socket, so the
 * namespace is the receiving device's and the connection is read from the
 * segment's headers, swapped (its destination is our side). */
static __always_inline void emit_unmatched_reset(const struct sk_buff *skb)
{
	struct net_device *dev = 0;
	unsigned char *head = 0;
	__u16 nh = 0, th = 0;
	bpf_probe_read_kernel(&dev, sizeof(dev), &skb->dev);
	bpf_probe_read_kernel(&head, sizeof(head), &skb->head);
	bpf_probe_read_kernel(&nh, sizeof(nh), &skb->network_header);
	bpf_probe_read_kernel(&th, sizeof(th), &skb->transport_header);
	if (!dev || !head)
		return;
	struct net *net = 0;
	bpf_probe_read_kernel(&net, sizeof(net), &dev->nd_net.net);
	if (!net)
		return;
	__u32 netns = 0;
	bpf_probe_read_kernel(&netns, sizeof(netns), &net->ns.inum);
	if (!wanted(netns))
		return;
	__u8 ver = 0;
	bpf_probe_read_kernel(&ver, 1, head + nh);
	ver >>= 4;
	if (ver != 4 && ver != 6)
		return;
	__u16 ports[2] = {};
	bpf_probe_read_kernel(ports, sizeof(ports), head + th);
	struct tw_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(&lost, &zero);
		if (n)
			*n += 1;
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts = bpf_ktime_get_ns();
	e->netns = netns;
	e->kind = TW_RST_SENT;
	/* A reply to a segment that came in: inbound, so the peer's port
	 * (ephemeral) does not make a row of its own. */
	e->dir = DIR_IN;
	/* The segment's source is the peer, its destination our side. */
	e->dport = __builtin_bswap16(ports[0]);
	e->sport = __builtin_bswap16(ports[1]);
	if (ver == 4) {
		e->family = AF_INET;
		bpf_probe_read_kernel(e->daddr, 4, head + nh + 12);
		bpf_probe_read_kernel(e->saddr, 4, head + nh + 16);
	} else {
		e->family = AF_INET6;
		bpf_probe_read_kernel(e->daddr, 16, head + nh + 8);
		bpf_probe_read_kernel(e->saddr, 16, head + nh + 24);
	}
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

SEC("tp_btf/tcp_send_reset")
int tw_send_reset(unsigned long long *ctx)
{
	const struct sock *sk = ARG(ctx, 0, const struct sock *);
	const struct sk_buff *skb = ARG(ctx, 1, const struct sk_buff *);
	if (!sk) {
		if (skb)
			emit_unmatched_reset(skb);
		return 0;
	}
	mark_reset(sk);
	__u32 netns = sk_netns(sk);
	if (!wanted(netns))
		return 0;
	__u64 key = (__u64)sk;
	int mine = !skb && !bpf_map_lookup_elem(&owners, &key);
	emit(sk, netns, TW_RST_SENT, 0, mine, 0);
	return 0;
}

/* tcp:tcp_receive_reset(sk), from tcp_reset() (softirq). */
SEC("tp_btf/tcp_receive_reset")
int tw_receive_reset(unsigned long long *ctx)
{
	const struct sock *sk = ARG(ctx, 0, const struct sock *);
	mark_reset(sk);
	__u32 netns = sk_netns(sk);
	if (wanted(netns))
		emit(sk, netns, TW_RST_RECV, 0, 0, 0);
	return 0;
}

/* tcp:tcp_retransmit_skb(sk, skb, err). */
SEC("tp_btf/tcp_retransmit_skb")
int tw_retransmit(unsigned long long *ctx)
{
	const struct sock *sk = ARG(ctx, 0, const struct sock *);
	__u32 netns = sk_netns(sk);
	if (wanted(netns))
		emit(sk, netns, TW_RETRANSMIT, 0, 0, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

//! The text of every topic. Wrapped by hand to 78 columns, ASCII only.

use super::{Topic, TopicKind};

pub(super) static TOPICS: &[Topic] = &[
    // ---- States, in the kernel's order (include/net/tcp_states.h). ----
    Topic {
        name: "ESTABLISHED",
        aliases: &["estab"],
        kind: TopicKind::State,
        summary: "Both ends are open and data can flow; no timer ends it.",
        // tcp_retries2 = 15 gives at least 924.6 s (ip-sysctl.rst); keepalive
        // defaults 7200/75/9 (include/net/tcp.h TCP_KEEPALIVE_*).
        body: "\
Both sides are in it: the handshake finished and neither side has closed.
It lasts as long as the applications keep the connection. The kernel ends
it only on a reset, an error or a timeout:
- unacknowledged data and a silent peer: after tcp_retries2 = 15
  retransmissions, at least 924.6 s (about 15 minutes); TCP_USER_TIMEOUT
  shortens it per socket;
- an idle connection: never, unless the application set SO_KEEPALIVE.
  Then probes start after tcp_keepalive_time = 7200 s and the connection
  dies after tcp_keepalive_probes = 9 unanswered probes sent every
  tcp_keepalive_intvl = 75 s (7875 s in all).
Normal: thousands on a proxy that uses keep-alive or connection pools,
which is what keeps TIME_WAIT and ephemeral port use low.
A problem: a count that only grows (a pool that never closes, peers that
vanished behind a NAT or firewall that forgot the flow), or Recv-Q/Send-Q
that stay high (this side or the peer reads too slowly).
Who holds them: tw count --state established --by raddr
Largest queues: tw ls --state established
",
    },
    Topic {
        name: "SYN_SENT",
        aliases: &["syn-sent"],
        kind: TopicKind::State,
        summary: "connect() sent a SYN; waiting for the SYN-ACK (outbound).",
        // tcp_syn_retries = 6 and tcp_syn_linear_timeouts = 4 (6.5, commit
        // ccce324dabfe): last retransmission at 67 s, timeout at 131 s.
        body: "\
The connecting side, after connect() sent its SYN and before the SYN-ACK
came back. A healthy one lasts one round trip, so you rarely see it.
Without an answer the kernel resends the SYN and gives up after about
131 s with the defaults: tcp_syn_retries = 6 backed-off retries plus
tcp_syn_linear_timeouts = 4 quick 1 s ones first (added in Linux 6.5;
127 s before). connect() then fails with ETIMEDOUT. Proxies usually give
up sooner (nginx proxy_connect_timeout is 60 s by default, HAProxy
timeout connect).
A refusing host answers with RST at once (ECONNREFUSED): a pile of
SYN_SENT means nobody answers. Many of them to one destination: that
backend is down or unreachable, a firewall drops the SYNs silently, or
its accept queue is full and it drops them (ListenOverflows over there).
Spread over many destinations: this host's own path or firewall.
Find the destination: tw count --state syn-sent --by peer
",
    },
    Topic {
        name: "SYN_RECV",
        aliases: &["syn-recv", "syn-received", "new-syn-recv"],
        kind: TopicKind::State,
        summary: "A SYN reached a listener; waiting for the client's last ACK.",
        // Request sockets in ehash since 4.4 (commit 079096f103fa);
        // tcp_synack_retries = 5 -> 63 s (ip-sysctl.rst); queue checks in
        // tcp_conn_request().
        body: "\
The listening side, between the client's SYN and its final ACK. Since
Linux 4.4 these are small request sockets (kernel state NEW_SYN_RECV,
about 320 bytes, shown as SYN_RECV), not full sockets.
Without the ACK the SYN-ACK is resent tcp_synack_retries = 5 times and
the request is dropped after about 63 s.
Each listener's SYN queue is capped by its listen() backlog (see
net.core.somaxconn). When it is full and tcp_syncookies = 1 (the
default), the kernel answers with SYN cookies instead of queueing, logs
\"Possible SYN flooding on port ... Sending cookies.\" and counts TcpExt
TCPReqQFullDoCookies; with cookies off it drops the SYN (TCPReqQFullDrop).
Normal: a few, each for about one round trip. A problem: thousands from
many addresses (a SYN flood; cookies absorb it), or a steady crowd of
real clients, which means the application accepts too slowly or the
backlog is too small: check Recv-Q of the LISTEN socket and TcpExt
ListenOverflows, then fix the accept loop or raise the backlog.
Who: tw count --state syn-recv --by raddr
",
    },
    Topic {
        name: "FIN_WAIT1",
        aliases: &["fin-wait-1"],
        kind: TopicKind::State,
        summary: "Closed first and sent a FIN; waiting for its ACK.",
        // tcp_orphan_retries(): 0 means 8 "(>100 seconds with minimal RTO of
        // 200msec)"; non-orphans use tcp_retries2 (tcp_write_timeout()).
        body: "\
The side that closed first, right after close() or shutdown(SHUT_WR).
The FIN is queued behind any unsent data, so the state lasts until the
peer has acknowledged all of it: normally one round trip.
Many of them mean peers that stopped reading or vanished: a client with
a zero receive window, a dead phone, a broken path. A large Send-Q in
tw ls --state fin-wait-1 is data still waiting for the peer.
After close() the socket is an orphan (no process, no fd) but still a
full socket holding its send buffer. The kernel gives up after
tcp_orphan_retries retransmissions or window probes (0, the default,
means 8: about 100 s at the 200 ms minimum RTO, longer on slow paths),
or at once when orphans exceed tcp_max_orphans. A socket still owned by
a process (shutdown() without close()) uses tcp_retries2 instead, at
least 924.6 s.
Fixes: time out slow clients in the application (nginx send_timeout and
reset_timedout_connection); on a busy web server, lower
tcp_orphan_retries.
",
    },
    Topic {
        name: "FIN_WAIT2",
        aliases: &["fin-wait-2"],
        kind: TopicKind::State,
        summary: "Our FIN was acknowledged; waiting for the peer's FIN.",
        // __tcp_close() and tcp_rcv_state_process(): orphans become
        // tcp_time_wait(sk, TCP_FIN_WAIT2, tmo) minisockets when tmo <= 60 s.
        body: "\
The side that closed first, after the peer acknowledged its FIN: this
half is closed, the peer's half is still open. Two kinds look alike:
- Orphaned (the application called close()): kept as a small minisocket,
  like TIME_WAIT, shown as FIN_WAIT2 with a timewait timer, and dropped
  after tcp_fin_timeout = 60 s if the peer's FIN never comes. This is the
  only thing tcp_fin_timeout controls. A value above 60 keeps the socket
  a full socket for the extra time first. These minisockets count in
  sockstat's \"tw\" and in `ss -s` timewait, and against
  tcp_max_tw_buckets.
- Owned by a process (after shutdown(SHUT_WR)): a valid half-closed
  connection with no timer at all; it waits as long as the process does.
Many orphaned ones: peers that acknowledge our FIN but never close their
side (a buggy client, a device that half-closes). They expire on their
own; lowering tcp_fin_timeout shortens them.
Many owned ones: an application that half-closes and then waits forever.
See them: tw ls --state fin-wait-2 --sort timer
",
    },
    Topic {
        name: "TIME_WAIT",
        aliases: &["time-wait"],
        kind: TopicKind::State,
        summary: "Closed first; the 4-tuple is held 60 s against old segments.",
        // TCP_TIMEWAIT_LEN (include/net/tcp.h); tcp_timewait_state_process()
        // accepts a newer SYN; 256 bytes is tw_sock_TCP's object size on
        // x86-64 6.18; the timer wheel rounds up (kernel/time/timer.c).
        // HAProxy's closes: tests/proxy.rs (2.6, packet captures of FIN/RST).
        body: "\
The side that sent the first FIN holds the connection's 4-tuple for
TCP_TIMEWAIT_LEN = 60 s, fixed at compile time, so that a late duplicate
segment cannot land in a new connection with the same addresses and
ports, and so that a lost final ACK can be sent again.
Myth: tcp_fin_timeout shortens TIME_WAIT. It does not; it only times out
orphaned FIN_WAIT2. No upstream sysctl changes the 60 s.
Myth: TIME_WAIT sockets hold file descriptors. They hold no fd and no
process, only a small kernel minisocket (256 bytes, slab tw_sock_TCP).
Myth: TIME_WAIT is always bad. On a server it is harmless: a new SYN from
the same client port usually reopens it. It hurts only the connecting
side, when one source IP runs out of ports to one (dst IP, dst port):
new connections/s x 60 s > the ip_local_port_range size (28,232 ports
by default). 710 req/s x 60 s = 42,600: connect() fails, EADDRNOTAVAIL.
Fixes, best first: keep-alive or connection pooling; more source IPs
with IP_BIND_ADDRESS_NO_PORT; a wider port range; tcp_tw_reuse = 1 (needs
tcp_timestamps); closing with RST (SO_LINGER 0: TCPAbortOnData), which
skips TIME_WAIT but drops unsent data. HAProxy resets toward a server only
when it closes first (http-pretend-keepalive); with http-server-close the
servers mostly close first and hold the TIME_WAIT on their own ports.
`ss -s` and sockstat \"tw\" count FIN_WAIT2 minisockets too. A timer may
sit at 0 for a few seconds: the timer wheel fires late, never early.
Check: tw count --state time-wait --by peer; tw ports; tw doctor
",
    },
    Topic {
        name: "CLOSE",
        aliases: &["closed", "unconn", "bound-inactive"],
        kind: TopicKind::State,
        summary: "No connection: not connected yet or already done; rarely seen.",
        // tcp_set_state(TCP_CLOSE) unhashes; bound-only dumps: commit
        // 91051f003948 (6.8), reported as TCP_CLOSE, ss -B.
        body: "\
Kernel state 7: the socket has no connection. It is the state of a
socket that was never connected or listening, and of one that is done
(reset, timed out, or closed normally).
The kernel takes a socket out of its connection tables as it enters
CLOSE, so a dump of connections (ss, /proc/net/tcp, tw) almost never
shows one; ss prints such sockets as UNCONN.
Since Linux 6.8 a dump can ask for the bound-inactive pseudo-state
(ss -B, or ss state bound-inactive): sockets bound to a port but neither
connected nor listening, reported as CLOSE. Each one pins its local
port, for example a client that bind()s before connect() without
IP_BIND_ADDRESS_NO_PORT. tw leaves that pseudo-state out of its dumps on
purpose: asking for it makes the kernel also walk the bind table, where
every TIME_WAIT socket sits too.
No timer, no limit, nothing to tune. If you expected a connection here,
look at the application: it made or bound a socket and did nothing more.
See any that show up: tw ls --state close
",
    },
    Topic {
        name: "CLOSE_WAIT",
        aliases: &["close-wait"],
        kind: TopicKind::State,
        summary: "The peer closed; the application has not called close() yet.",
        body: "\
The side that did not close first: the peer's FIN arrived and was
acknowledged, and the kernel waits for the local application to call
close(). No kernel timer ends it: it lasts until the application closes
the socket or the process exits. (Only keepalive probes, if the socket
has SO_KEEPALIVE, or a write answered by a RST end it sooner.)
A few, briefly: normal, the application is about to close them.
Many, or old ones: an application bug or overload. The process still
holds the file descriptor, so they count against its fd limit. Usual
causes: a code path that forgets close() on error; a connection pool
that keeps sockets the server already closed (the server's idle timeout
is shorter than the pool's); an event loop too busy to notice the EOF.
Recv-Q may show bytes the application never read.
The fix is in the application; no sysctl helps. Find the process with
ss -tnp state close-wait (tw ls shows uid and inode) and the peers with
tw count --state close-wait --by peer
Alert on it: tw count --state close-wait --fail-above 100
",
    },
    Topic {
        name: "LAST_ACK",
        aliases: &["last-ack"],
        kind: TopicKind::State,
        summary: "Closed second; our FIN is out, waiting for its ACK.",
        body: "\
The side that closed second: it was in CLOSE_WAIT, the application called
close(), and its FIN is out; it waits for the ACK of that FIN, normally
one round trip. Then the socket is gone: the side that closes second gets
no TIME_WAIT.
After close() it is an orphan (no fd, no process). If the ACK does not
come, the FIN is resent up to tcp_orphan_retries times (0, the default,
means 8: about 100 s at the 200 ms minimum RTO, longer on slow paths),
then the socket is destroyed; meanwhile it counts against
tcp_max_orphans. A RST from the peer ends it at once.
Many of them: peers that vanished right after sending their FIN, packet
loss, or a firewall or NAT that drops the last packets of a flow it
already considers closed.
Usually harmless; on a busy server a lower tcp_orphan_retries shortens
them. Who: tw count --state last-ack --by raddr
",
    },
    Topic {
        name: "LISTEN",
        aliases: &["listening"],
        kind: TopicKind::State,
        summary: "Server socket; Recv-Q is its accept queue, Send-Q the cap.",
        // tcp_diag_get_info(): rqueue = sk_ack_backlog, wqueue =
        // sk_max_ack_backlog; somaxconn 4096 since 5.4 (ip-sysctl.rst).
        body: "\
A socket after listen(): it accepts connections on its port and lasts
until the application closes it. No timer.
The queue columns mean something else here: Recv-Q is the number of
connections the kernel completed that wait for accept(); Send-Q is the
backlog, min(listen() argument, net.core.somaxconn). nginx asks for 511
by default; somaxconn is 4096 (128 before Linux 5.4).
When the accept queue is full the kernel drops new SYNs and final ACKs,
and TcpExt ListenOverflows and ListenDrops grow; clients see connects
that take a second or more, or time out. Recv-Q near Send-Q, or those
counters rising, means the application does not accept() fast enough:
more workers or a faster accept loop first, then a larger backlog (the
application's setting and net.core.somaxconn both).
Also look for listeners you did not expect, and for SO_REUSEPORT groups
where one worker's queue fills while the others idle.
See them: tw ls --state listen
",
    },
    Topic {
        name: "CLOSING",
        aliases: &[],
        kind: TopicKind::State,
        summary: "Both sides sent FIN at once; waiting for the ACK of ours.",
        // tcp_rcv_state_process(): CLOSING + ACK -> tcp_time_wait(TIME_WAIT).
        body: "\
A simultaneous close: this side sent its FIN, then received the peer's
FIN before the ACK of its own. Both sides closed first, so both go on to
TIME_WAIT (60 s) when the missing ACK arrives.
Normally it lasts one round trip and you almost never see it. If the ACK
is lost, the FIN is resent; an orphaned socket gives up after
tcp_orphan_retries retransmissions (0 means 8) and counts against
tcp_max_orphans meanwhile.
Many of them: packet loss or a middlebox eating ACKs between the two
hosts, with a protocol where both ends close at the same moment. Compare
with the retransmission counters (Tcp RetransSegs in /proc/net/snmp) and
capture a few with tcpdump on the peer's address.
Who: tw count --state closing --by peer
",
    },
    // ---- Sysctls. ----
    Topic {
        name: "net.ipv4.ip_local_port_range",
        aliases: &["ip_local_port_range", "port-range", "ephemeral-ports"],
        kind: TopicKind::Sysctl,
        summary: "The ports connect() picks from: 32768-60999 (28,232) by default.",
        // Parity: __inet_hash_connect() "In first pass we try ports of @low
        // parity"; the warning is in sysctl_net_ipv4.c.
        body: "\
The range the kernel picks a local port from for connect() and bind(0).
Default 32768 60999: 28,232 ports. Per network namespace.
A port is busy only for the same (source IP, destination IP, destination
port), so one port can serve connections to different destinations. The
limit is 28,232 connections, TIME_WAIT included, from one source IP to
one ip:port. With 60 s of TIME_WAIT each, that is 28,232 / 60 = about
470 new connections per second, sustained, to a single backend address.
Beyond it connect() fails with EADDRNOTAVAIL (nginx: \"(99: Cannot assign
requested address) while connecting to upstream\").
connect() tries ports of the same parity as the start of the range
first, bind(0) the other half: keep the two ends of different parity
(the kernel warns otherwise). A socket that bind()s before connect()
picks its port at bind time and cannot share it with other destinations
unless it sets IP_BIND_ADDRESS_NO_PORT (Linux 4.2).
Widen it after checking no local service listens inside the new range
(or reserve its port, see ip_local_reserved_ports), for example
sysctl -w net.ipv4.ip_local_port_range=\"10000 65535\" (55,536 ports).
The IP_LOCAL_PORT_RANGE socket option (Linux 6.3) narrows it per socket.
Use per destination: tw ports
",
    },
    Topic {
        name: "net.ipv4.ip_local_reserved_ports",
        aliases: &["ip_local_reserved_ports", "reserved-ports"],
        kind: TopicKind::Sysctl,
        summary: "Ports connect() and bind(0) must skip; empty by default.",
        body: "\
A list of ports and ranges, such as \"8080,9000-9100\", that automatic port
assignment (connect(), bind() to port 0) never picks. An explicit bind()
to one of them still works, which is the point: reserve the ports your
own services listen on inside ip_local_port_range, so an outgoing
connection cannot take one first and make the service fail to start with
EADDRINUSE after a restart.
Default: empty. Writing the file replaces the whole list. Per network
namespace.
Every reserved port inside the range is one ephemeral port fewer: a wide
reservation quietly shrinks the 28,232 ports you think you have. Ports
just after a reserved block are picked a little more often.
Check: sysctl net.ipv4.ip_local_reserved_ports; tw ports
",
    },
    Topic {
        name: "net.ipv4.tcp_tw_reuse",
        aliases: &["tcp_tw_reuse", "tw-reuse"],
        kind: TopicKind::Sysctl,
        summary: "Lets connect() take over a TIME_WAIT 4-tuple; default 2 (loopback).",
        // Values 0/1/2 and default 2: commit 79e9fed46038 (4.18).
        // tcp_twsk_unique(): needs tw_ts_recent_stamp, never for FIN_WAIT2;
        // tcp_tw_reuse_delay: commits 19ce8cd30465, ca6a6f93867a (6.14).
        body: "\
0 off, 1 on, 2 on for loopback connections only. Default 2 since Linux
4.18 (before that the default was 0 and only 0 and 1 existed). Per
network namespace.
It matters only for outgoing connect(): when the port search finds the
4-tuple in TIME_WAIT, the new connection may take it over if the old one
used TCP timestamps and is 1 s old (tcp_tw_reuse_delay = 1000 ms since
Linux 6.14; before, a check with one-second granularity). Timestamps
make that safe: PAWS drops old segments of the previous connection.
It never applies to incoming connections or to FIN_WAIT2 minisockets,
and does nothing when tcp_timestamps = 0 or the peer sent no timestamps.
The default 2 does nothing for a proxy talking to remote backends. Set 1
on the connecting box when it runs out of ports to a few destinations,
after connection reuse (keep-alive, pools) and more source addresses.
It does not make the TIME_WAIT count drop much: entries are taken over
only when a port is needed. TcpExt TWRecycled counts each takeover.
Myth: it is tcp_tw_recycle by another name. It is not; see that topic.
Check: sysctl net.ipv4.tcp_tw_reuse; tw doctor
",
    },
    Topic {
        name: "net.ipv4.tcp_tw_recycle",
        aliases: &["tcp_tw_recycle", "tw-recycle"],
        kind: TopicKind::Sysctl,
        summary: "REMOVED in Linux 4.12; it broke clients behind NAT. Do not set it.",
        // Commit 4396e46187ca "tcp: remove tcp_tw_recycle" (4.12); random
        // timestamp offsets per connection arrived in 4.10.
        body: "\
Removed in Linux 4.12 (2017). On a current kernel the file does not
exist: \"sysctl -w net.ipv4.tcp_tw_recycle=1\" fails with \"cannot stat
/proc/sys/net/ipv4/tcp_tw_recycle: No such file or directory\", and a
sysctl.conf that still sets it makes \"sysctl -p\" report an error.
What it did: expired TIME_WAIT after about 3.5 RTO instead of 60 s, and
to stay safe remembered the last TCP timestamp seen from each remote IP
and dropped SYNs that carried an older one. Clients behind one NAT
address have unrelated timestamp clocks, so some of their SYNs were
dropped without a trace: random connection failures, only for some
users. Linux 4.10 started timestamps at a random offset per connection,
which broke it even without NAT.
Myth: a guide that tells you to set it still applies. It is out of date;
distrust its other TIME_WAIT advice too, and see tcp_tw_reuse and
TIME_WAIT instead.
",
    },
    Topic {
        name: "net.ipv4.tcp_timestamps",
        aliases: &["tcp_timestamps", "timestamps"],
        kind: TopicKind::Sysctl,
        summary: "TCP timestamps (RFC 7323); tcp_tw_reuse and PAWS need them. Keep 1.",
        body: "\
0 off, 1 on with a random offset per connection (the default), 2 on
without the offset. Per network namespace.
Timestamps add 12 bytes to each segment and give two things: PAWS, which
rejects old segments by their timestamp (what makes tcp_tw_reuse safe,
and what protects fast connections from wrapped sequence numbers), and
better round-trip time measurement.
A connection uses them only if both ends offer them in the handshake;
this setting decides what this host offers and accepts.
Setting 0 turns off PAWS and, in practice, tcp_tw_reuse (it needs the
timestamps of the old connection).
Myth: turn timestamps off so the host's uptime does not leak. Since
Linux 4.10 each connection starts at a random offset, so they reveal
nothing useful.
Check: sysctl net.ipv4.tcp_timestamps; tw doctor
",
    },
    Topic {
        name: "net.ipv4.tcp_fin_timeout",
        aliases: &["tcp_fin_timeout", "fin-timeout"],
        kind: TopicKind::Sysctl,
        summary: "How long an orphaned FIN_WAIT2 waits: 60 s. It is NOT TIME_WAIT.",
        // TCP_FIN_TIMEOUT = TCP_TIMEWAIT_LEN; tcp_fin_time() uses
        // tp->linger2 (TCP_LINGER2) first.
        body: "\
Default 60 (seconds), per network namespace. It controls one thing: how
long a connection this host closed, whose process already called close()
(an orphan), waits in FIN_WAIT2 for the peer's FIN before the kernel
drops it. Up to 60 s the orphan waits as a minisocket with a timewait
timer; a larger value keeps it a full socket for the extra time first.
The TCP_LINGER2 socket option overrides it per socket.
Myth: tcp_fin_timeout sets the TIME_WAIT length. It does not. TIME_WAIT
is TCP_TIMEWAIT_LEN = 60 s, fixed when the kernel is compiled; lowering
tcp_fin_timeout to 10 or 30, as many tuning guides say, leaves every
TIME_WAIT socket at 60 s. The confusion comes from both defaults being
60 s, and both kinds sharing one minisocket type and timer.
Lower it only if orphaned FIN_WAIT2 sockets pile up (peers that ACK our
FIN and never close). A FIN_WAIT2 owned by a process (after shutdown())
ignores it.
See: tw ls --state fin-wait-2 --sort timer
",
    },
    Topic {
        name: "net.ipv4.tcp_max_tw_buckets",
        aliases: &["tcp_max_tw_buckets", "tw-buckets"],
        kind: TopicKind::Sysctl,
        summary: "Cap on TIME_WAIT and FIN_WAIT2 minisockets per namespace.",
        // inet_twsk_alloc() returns NULL at the limit; tcp_time_wait() then
        // only counts LINUX_MIB_TCPTIMEWAITOVERFLOW (no log line in 4.x+).
        body: "\
The most TIME_WAIT sockets, orphaned FIN_WAIT2 minisockets included, a
network namespace may hold. The default is half the TCP established hash
table: 131072 with 262144 buckets (net.ipv4.tcp_ehash_entries), sized by
RAM at boot.
At the limit, a closing socket skips TIME_WAIT and is destroyed at once
(an orphaned FIN_WAIT2 is simply dropped), and TcpExt TCPTimeWaitOverflow
grows. Current kernels log nothing; old ones printed \"TCP: time wait
bucket table overflow\".
Each entry costs 256 bytes (slab tw_sock_TCP), so 1,000,000 of them take
about 256 MB: raising the limit is cheap.
Hitting it gives up TIME_WAIT's protection without a word, the same trade
as closing with RST. Lowering it on purpose to \"fix\" TIME_WAIT trades
correctness for a number that looks better.
Check: nstat -az TcpExtTCPTimeWaitOverflow; the \"tw\" field of
/proc/net/sockstat counts against this limit; tw doctor
",
    },
    Topic {
        name: "net.ipv4.tcp_max_orphans",
        aliases: &["tcp_max_orphans", "orphans"],
        kind: TopicKind::Sysctl,
        summary: "Cap on orphans: connections closed by the app, not yet finished.",
        // tcp_init(): sysctl_tcp_max_orphans = ehash entries / 2 (global);
        // tcp_check_oom() messages; TCPAbortOnMemory in __tcp_close() and
        // tcp_out_of_resources().
        body: "\
The most orphaned sockets the host keeps: connections the application
has closed (no fd, no process) that are still finishing, in FIN_WAIT1,
LAST_ACK, CLOSING, or a FIN_WAIT2 still held as a full socket.
TIME_WAIT and FIN_WAIT2 minisockets are not orphans and do not count.
The default is half the TCP established hash table (131072 with 262144
buckets); the limit and the count are global, not per namespace.
Over the limit the kernel resets orphans, at close() or at their next
retransmission, instead of letting them finish; it logs \"TCP: too many
orphaned sockets\" and counts TcpExt TCPAbortOnMemory. \"TCP: out of
memory -- consider tuning tcp_mem\" is the sibling message for memory.
Each orphan keeps its buffers, up to about 64 KB, so many orphans from
slow clients cost memory. Prefer timing out slow clients and lowering
tcp_orphan_retries to raising this limit.
Check: the \"orphan\" field of /proc/net/sockstat; tw doctor
",
    },
    Topic {
        name: "net.core.somaxconn",
        aliases: &["somaxconn", "backlog", "listen-backlog"],
        kind: TopicKind::Sysctl,
        summary: "Upper limit on every listen() backlog: 4096 since Linux 5.4 (was 128).",
        body: "\
The kernel silently caps every listen(fd, backlog) at this value; the
result is the listener's accept-queue size, Send-Q of a LISTEN socket in
ss and tw, and it also caps that listener's SYN queue (see SYN_RECV).
Default 4096 since Linux 5.4, 128 before. Per network namespace.
Raising it changes nothing until the application asks for a larger
backlog and listens again (nginx: listen ... backlog=N, 511 by default;
HAProxy: the backlog setting).
When the accept queue is full the kernel drops the SYN or the final ACK,
and TcpExt ListenOverflows grows (ListenDrops with it; ListenDrops also
counts other drops at a listener). The client resends its SYN after its
timeout, so each drop costs it a second or more.
A full queue means the application accepts too slowly; a bigger backlog
only absorbs bursts. Set tcp_abort_on_overflow = 1 only if clients should
get a RST instead of a retry.
Check: tw ls --state listen (Recv-Q against Send-Q);
nstat -az TcpExtListenOverflows TcpExtListenDrops; tw doctor
",
    },
    Topic {
        name: "net.netfilter.nf_conntrack_max",
        aliases: &[
            "nf_conntrack_max",
            "net.nf_conntrack_max",
            "nf_conntrack_count",
            "nf_conntrack_buckets",
            "conntrack",
        ],
        kind: TopicKind::Sysctl,
        summary: "Size of the connection tracking table; when full, new flows drop.",
        // nf_conntrack_init_start(): htable 262144 (64-bit, > 4 GB) or 65536
        // (> 1 GB), max_factor 1; __nf_conntrack_alloc() early_drop, then
        // "table full, dropping packet".
        body: "\
With netfilter connection tracking loaded (a stateful iptables or
nftables rule, NAT, Docker, kube-proxy), every flow to, from or through
the box takes an entry: nf_conntrack_count is the current number,
nf_conntrack_max the limit, nf_conntrack_buckets the hash table size.
Current kernels make max equal to the bucket count by default: 262144 on
a 64-bit box with more than 4 GB of RAM, 65536 above 1 GB.
At the limit conntrack first evicts entries not yet marked assured; if
it cannot, the packet that would start a new flow is dropped and dmesg
says \"nf_conntrack: table full, dropping packet\". Clients see SYNs
vanish: connects that stall for a second or more, then time out, while
the sockets themselves look fine. conntrack -S shows drop and early_drop.
Entries outlive sockets: an idle established flow is kept 5 days
(nf_conntrack_tcp_timeout_established = 432000) and a closed one 120 s
(see nf_conntrack_tcp_timeout_time_wait).
Fixes: raise nf_conntrack_max (an entry is about 256 bytes of slab, more
with extensions) and the buckets with it; exempt busy local traffic with
notrack rules; shorten the long timeouts.
Check: tw doctor compares count with max.
",
    },
    Topic {
        name: "net.netfilter.nf_conntrack_tcp_timeout_time_wait",
        aliases: &["nf_conntrack_tcp_timeout_time_wait", "conntrack-time-wait"],
        kind: TopicKind::Sysctl,
        summary: "How long conntrack keeps a closed TCP flow: 120 s, apart from sockets.",
        body: "\
Default 120 (seconds). Conntrack follows TCP state on its own, from the
packets it sees, and keeps a flow that closed with FINs in its own
TIME_WAIT for this long, independent of the sockets' 60 s TIME_WAIT and
of which side closed first. A flow closed with a RST goes to CLOSE for
nf_conntrack_tcp_timeout_close = 10 s instead.
So the table holds about (new flows per second x 120) closed entries: a
proxy accepting 1,000 client connections/s and opening 1,000 backend
connections/s keeps about 240,000 TIME_WAIT entries on top of the open
ones. Compare that with nf_conntrack_max.
Lowering it shrinks that part of the table. It does not touch the
sockets' TIME_WAIT, and socket tuning (tcp_tw_reuse, tcp_fin_timeout)
does not touch it.
Count them: conntrack -L -p tcp --state TIME_WAIT | wc -l
(conntrack-tools); tw doctor
",
    },
];

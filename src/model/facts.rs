//! System facts: sysctls, sockstat, TCP counters and conntrack, as read from
//! a /proc tree by `source::facts` (the live one or a capture).

use std::collections::BTreeMap;

use serde::Serialize;

use super::ports::{port_capacity, PortCapacity};
use super::PortRange;

/// Everything [`read`] found. Each leaf is `None` when its file (or, for the
/// counter files, its entry) is absent.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Facts {
    pub sysctl: Sysctls,
    pub conntrack: Conntrack,
    pub sockstat: Sockstat,
    pub tcp_ext: TcpExt,
    pub tcp: TcpSnmp,
    /// Whole counter files, for any counter not picked out above. Left out of
    /// the JSON schema because their keys change with the kernel version.
    #[serde(skip)]
    pub raw: Raw,
}

/// Sysctls under /proc/sys/net. All are per network namespace except
/// `tcp_max_orphans`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Sysctls {
    /// net.ipv4.ip_local_port_range: the ephemeral ports, both ends included.
    pub ip_local_port_range: Option<PortRange>,
    /// net.ipv4.ip_local_reserved_ports: ports connect() and bind(0) skip.
    pub ip_local_reserved_ports: Option<Vec<PortRange>>,
    /// net.ipv4.tcp_tw_reuse: 0 off, 1 on, 2 loopback only (the default).
    pub tcp_tw_reuse: Option<i64>,
    /// net.ipv4.tcp_timestamps: 0 off, 1 on with random offsets, 2 on without.
    /// tcp_tw_reuse needs timestamps on both sides.
    pub tcp_timestamps: Option<i64>,
    /// net.ipv4.tcp_fin_timeout, seconds: the life of an orphaned FIN_WAIT2,
    /// not of TIME_WAIT (fixed at TCP_TIMEWAIT_LEN = 60 s).
    pub tcp_fin_timeout: Option<i64>,
    /// net.ipv4.tcp_max_tw_buckets: beyond it new TIME_WAIT sockets are not
    /// kept and TcpExt TCPTimeWaitOverflow grows.
    pub tcp_max_tw_buckets: Option<i64>,
    /// net.ipv4.tcp_max_orphans. A global sysctl: only the initial network
    /// namespace shows it, so it is `None` inside a container.
    pub tcp_max_orphans: Option<i64>,
    /// net.core.somaxconn: the cap on every listen() backlog.
    pub somaxconn: Option<i64>,
}

/// Connection tracking (net/netfilter), all `None` when nf_conntrack is not
/// loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Conntrack {
    /// nf_conntrack_count: entries now, in this namespace.
    pub count: Option<i64>,
    /// nf_conntrack_max: at this count new flows are dropped. Global, and
    /// read-only outside the initial namespace.
    pub max: Option<i64>,
    /// nf_conntrack_buckets: hash table size.
    pub buckets: Option<i64>,
    /// nf_conntrack_tcp_timeout_time_wait, seconds (120 by default): conntrack
    /// keeps its own TIME_WAIT entries, twice as long as the socket's.
    pub tcp_timeout_time_wait: Option<i64>,
}

/// /proc/net/sockstat and sockstat6 (kernel: sockstat_seq_show in
/// net/ipv4/proc.c).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Sockstat {
    /// `TCP: inuse`: IPv4 TCP sockets of this namespace, TIME_WAIT excluded.
    pub tcp_inuse: Option<i64>,
    /// `TCP: orphan`: host-wide (tcp_orphan_count_sum), even inside a namespace.
    pub tcp_orphan: Option<i64>,
    /// `TCP: tw`: TIME_WAIT and FIN_WAIT2 minisockets of this namespace, IPv4
    /// and IPv6 together (tw_refcount of the namespace's death row, minus 1).
    pub tcp_tw: Option<i64>,
    /// `TCP: alloc`: host-wide count of allocated TCP sockets.
    pub tcp_alloc: Option<i64>,
    /// `TCP: mem`: host-wide TCP memory, in pages.
    pub tcp_mem: Option<i64>,
    /// `TCP6: inuse` from sockstat6; `None` without IPv6.
    pub tcp6_inuse: Option<i64>,
}

/// Picked from the TcpExt section of /proc/net/netstat: cumulative counters
/// of this namespace, IPv4 and IPv6 together.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TcpExt {
    /// `TW`: minisockets (TIME_WAIT or FIN_WAIT2) scheduled with a timeout
    /// over 4 s. Current kernels count them when scheduled, not when they
    /// expire (__inet_twsk_schedule in net/ipv4/inet_timewait_sock.c), so it
    /// includes live ones.
    pub tw: Option<i64>,
    /// `TWRecycled`: TIME_WAIT entries taken over by connect() (tcp_tw_reuse).
    pub tw_recycled: Option<i64>,
    /// `TWKilled`: minisockets scheduled with a timeout of 4 s or less.
    pub tw_killed: Option<i64>,
    /// `TCPTimeWaitOverflow`: closes that skipped TIME_WAIT because
    /// tcp_max_tw_buckets was reached.
    pub time_wait_overflow: Option<i64>,
    /// `ListenOverflows`: handshakes dropped on a full accept queue.
    pub listen_overflows: Option<i64>,
    /// `ListenDrops`: all drops at a listener, overflows included.
    pub listen_drops: Option<i64>,
}

/// Picked from the Tcp section of /proc/net/snmp: IPv4 and IPv6 together.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TcpSnmp {
    /// `ActiveOpens`: connect() calls that sent a SYN, cumulative.
    pub active_opens: Option<i64>,
    /// `PassiveOpens`: connections accepted by listeners, cumulative.
    pub passive_opens: Option<i64>,
    /// `CurrEstab`: sockets now in ESTABLISHED or CLOSE_WAIT.
    pub curr_estab: Option<i64>,
}

/// The counter files as read; each table is empty when its file is absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Raw {
    /// sockstat and sockstat6 together: `TCP` -> `tw`, `TCP6` -> `inuse`, ...
    pub sockstat: Table,
    /// /proc/net/netstat: `TcpExt`, `IpExt`, `MPTcpExt`, ...
    pub netstat: Table,
    /// /proc/net/snmp: `Ip`, `Icmp`, `Tcp`, `Udp`, ...
    pub snmp: Table,
}

/// Named values by section, e.g. `TcpExt` -> `TW` -> 4.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Table(pub BTreeMap<String, BTreeMap<String, i64>>);

impl Table {
    /// One value, e.g. `get("TcpExt", "ListenOverflows")`.
    pub fn get(&self, section: &str, name: &str) -> Option<i64> {
        self.0.get(section)?.get(name).copied()
    }

    pub fn merge(&mut self, other: Table) {
        for (section, values) in other.0 {
            self.0.entry(section).or_default().extend(values);
        }
    }
}

impl Facts {
    /// The ephemeral port capacity, from ip_local_port_range and
    /// ip_local_reserved_ports (none reserved if that file is absent).
    pub fn ephemeral_capacity(&self) -> Option<PortCapacity> {
        let range = self.sysctl.ip_local_port_range?;
        let reserved = self
            .sysctl
            .ip_local_reserved_ports
            .as_deref()
            .unwrap_or(&[]);
        Some(port_capacity(range, reserved))
    }

    /// Picks the typed counters out of the whole tables.
    pub fn from_tables(sysctl: Sysctls, conntrack: Conntrack, raw: Raw) -> Facts {
        let ss = |s, k| raw.sockstat.get(s, k);
        let ext = |k| raw.netstat.get("TcpExt", k);
        let tcp = |k| raw.snmp.get("Tcp", k);
        Facts {
            sysctl,
            conntrack,
            sockstat: Sockstat {
                tcp_inuse: ss("TCP", "inuse"),
                tcp_orphan: ss("TCP", "orphan"),
                tcp_tw: ss("TCP", "tw"),
                tcp_alloc: ss("TCP", "alloc"),
                tcp_mem: ss("TCP", "mem"),
                tcp6_inuse: ss("TCP6", "inuse"),
            },
            tcp_ext: TcpExt {
                tw: ext("TW"),
                tw_recycled: ext("TWRecycled"),
                tw_killed: ext("TWKilled"),
                time_wait_overflow: ext("TCPTimeWaitOverflow"),
                listen_overflows: ext("ListenOverflows"),
                listen_drops: ext("ListenDrops"),
            },
            tcp: TcpSnmp {
                active_opens: tcp("ActiveOpens"),
                passive_opens: tcp("PassiveOpens"),
                curr_estab: tcp("CurrEstab"),
            },
            raw,
        }
    }
}

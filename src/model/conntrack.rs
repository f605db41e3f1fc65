//! The conntrack model: one tracked flow ([`Entry`]), conntrack's own TCP
//! states ([`CtState`], not the socket's), and the table's statistics.
//! Readers in `source::conntrack` build these; nothing here knows a wire format.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use serde::Serialize;

use super::Family;

/// IPPROTO_* numbers that get a name; any other prints as its number.
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_ICMPV6: u8 = 58;

/// `enum ip_conntrack_status` bits (include/uapi/linux/netfilter/nf_conntrack_common.h).
pub const IPS_SEEN_REPLY: u32 = 1 << 1;
pub const IPS_ASSURED: u32 = 1 << 2;

/// The name of an IP protocol as conntrack -L prints it.
pub fn proto_name(p: u8) -> &'static str {
    match p {
        IPPROTO_ICMP => "icmp",
        IPPROTO_TCP => "tcp",
        IPPROTO_UDP => "udp",
        IPPROTO_ICMPV6 => "icmpv6",
        132 => "sctp",
        33 => "dccp",
        47 => "gre",
        136 => "udplite",
        _ => "unknown",
    }
}

/// A protocol from its name or number (`--proto tcp`, `--proto 6`).
pub fn parse_proto(s: &str) -> Result<u8, String> {
    let l = s.to_ascii_lowercase();
    if let Ok(n) = l.parse::<u8>() {
        return Ok(n);
    }
    (0..=255u8)
        .find(|p| proto_name(*p) == l && l != "unknown")
        .ok_or_else(|| {
            format!("'{s}' is not a protocol: tcp, udp, icmp, icmpv6, sctp, dccp, gre, or a number")
        })
}

/// conntrack's TCP states: `enum tcp_conntrack`
/// (include/uapi/linux/netfilter/nf_conntrack_tcp.h), spelled as
/// tcp_conntrack_names in net/netfilter/nf_conntrack_proto_tcp.c prints them.
/// They follow the packets both ways, not one socket: FIN_WAIT is one state
/// where the socket has FIN_WAIT1 and FIN_WAIT2, and CLOSE follows a reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(into = "&'static str")]
pub enum CtState {
    None,
    SynSent,
    SynRecv,
    Established,
    FinWait,
    CloseWait,
    LastAck,
    TimeWait,
    Close,
    /// TCP_CONNTRACK_SYN_SENT2 (9): a simultaneous open.
    SynSent2,
}

impl CtState {
    pub const ALL: [CtState; 10] = [
        CtState::None,
        CtState::SynSent,
        CtState::SynRecv,
        CtState::Established,
        CtState::FinWait,
        CtState::CloseWait,
        CtState::LastAck,
        CtState::TimeWait,
        CtState::Close,
        CtState::SynSent2,
    ];

    pub fn from_kernel(n: u8) -> Option<CtState> {
        CtState::ALL.get(usize::from(n)).copied()
    }

    pub fn name(self) -> &'static str {
        match self {
            CtState::None => "NONE",
            CtState::SynSent => "SYN_SENT",
            CtState::SynRecv => "SYN_RECV",
            CtState::Established => "ESTABLISHED",
            CtState::FinWait => "FIN_WAIT",
            CtState::CloseWait => "CLOSE_WAIT",
            CtState::LastAck => "LAST_ACK",
            CtState::TimeWait => "TIME_WAIT",
            CtState::Close => "CLOSE",
            CtState::SynSent2 => "SYN_SENT2",
        }
    }

    /// From conntrack's spelling (TIME_WAIT), ss's (time-wait) or any case.
    pub fn parse(s: &str) -> Option<CtState> {
        let norm = s.trim().to_ascii_uppercase().replace('-', "_");
        CtState::ALL.into_iter().find(|c| c.name() == norm)
    }

    /// The sysctl giving this state's timeout, under net.netfilter
    /// (tcp_timeouts[] in nf_conntrack_proto_tcp.c; SYN_SENT2 uses syn_sent's).
    pub fn timeout_sysctl(self) -> Option<&'static str> {
        Some(match self {
            CtState::None => return None,
            CtState::SynSent | CtState::SynSent2 => "nf_conntrack_tcp_timeout_syn_sent",
            CtState::SynRecv => "nf_conntrack_tcp_timeout_syn_recv",
            CtState::Established => "nf_conntrack_tcp_timeout_established",
            CtState::FinWait => "nf_conntrack_tcp_timeout_fin_wait",
            CtState::CloseWait => "nf_conntrack_tcp_timeout_close_wait",
            CtState::LastAck => "nf_conntrack_tcp_timeout_last_ack",
            CtState::TimeWait => "nf_conntrack_tcp_timeout_time_wait",
            CtState::Close => "nf_conntrack_tcp_timeout_close",
        })
    }
}

impl From<CtState> for &'static str {
    fn from(s: CtState) -> &'static str {
        s.name()
    }
}

impl fmt::Display for CtState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One direction of a flow: addresses and ports (0 for protocols without
/// ports; ICMP's id, type and code are not kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tuple {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
}

impl Default for Tuple {
    fn default() -> Tuple {
        let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        Tuple {
            src: any,
            dst: any,
            sport: 0,
            dport: 0,
        }
    }
}

/// One conntrack entry, as `conntrack -L` shows a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub family: Family,
    /// IPPROTO_* of the flow.
    pub proto: u8,
    /// conntrack's TCP state; `None` for other protocols.
    pub tcp_state: Option<CtState>,
    /// The direction of the first packet: src is who opened the flow.
    pub orig: Tuple,
    pub reply: Tuple,
    /// Seconds until the entry expires (CTA_TIMEOUT).
    pub timeout: u32,
    pub mark: u32,
    pub zone: u16,
    /// `enum ip_conntrack_status` bits.
    pub status: u32,
}

impl Entry {
    /// What the entry's state is called: the TCP state for TCP, and for
    /// protocols without states conntrack -L's flags: UNREPLIED (no reply
    /// seen), ASSURED (the entry early_drop spares) or REPLIED.
    pub fn state_label(&self) -> &'static str {
        match self.tcp_state {
            Some(s) => s.name(),
            None if self.status & IPS_SEEN_REPLY == 0 => "UNREPLIED",
            None if self.status & IPS_ASSURED != 0 => "ASSURED",
            None => "REPLIED",
        }
    }

    pub fn has_ports(&self) -> bool {
        matches!(self.proto, IPPROTO_TCP | IPPROTO_UDP | 132 | 33 | 136)
    }
}

/// The statistics counters tw shows: ctnetlink's `enum ctattr_stats_cpu`
/// (include/uapi/linux/netfilter/nfnetlink_conntrack.h), summed over CPUs,
/// the same values as the columns of /proc/net/stat/nf_conntrack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, schemars::JsonSchema)]
pub struct Stats {
    /// Lookups that found an entry.
    pub found: u64,
    /// Packets conntrack could not track (malformed, out of window).
    pub invalid: u64,
    /// Entries added to the table.
    pub insert: u64,
    /// Inserts that lost a race with an equal entry and were dropped.
    pub insert_failed: u64,
    /// Packets dropped because no entry could be made (table full).
    pub drop: u64,
    /// Unassured entries evicted to make room at nf_conntrack_max.
    pub early_drop: u64,
    /// ICMP errors conntrack could not match.
    pub error: u64,
    /// Lookups restarted because the hash was resized or an entry moved.
    pub search_restart: u64,
    /// Insert races resolved by reusing the entry already there.
    pub clash_resolve: u64,
    /// Inserts refused because the hash chain was too long.
    pub chaintoolong: u64,
}

impl Stats {
    /// Every counter with its name, in a fixed order (metrics, tables).
    pub fn fields(&self) -> [(&'static str, u64); 10] {
        [
            ("found", self.found),
            ("invalid", self.invalid),
            ("insert", self.insert),
            ("insert_failed", self.insert_failed),
            ("drop", self.drop),
            ("early_drop", self.early_drop),
            ("error", self.error),
            ("search_restart", self.search_restart),
            ("clash_resolve", self.clash_resolve),
            ("chaintoolong", self.chaintoolong),
        ]
    }

    pub fn add(&mut self, o: &Stats) {
        self.found += o.found;
        self.invalid += o.invalid;
        self.insert += o.insert;
        self.insert_failed += o.insert_failed;
        self.drop += o.drop;
        self.early_drop += o.early_drop;
        self.error += o.error;
        self.search_restart += o.search_restart;
        self.clash_resolve += o.clash_resolve;
        self.chaintoolong += o.chaintoolong;
    }
}

/// The conntrack sysctls that bound and age the table, `None` when absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Settings {
    /// nf_conntrack_count: entries in this namespace.
    pub count: Option<u64>,
    /// nf_conntrack_max: global, compared with each namespace's count
    /// (__nf_conntrack_alloc in net/netfilter/nf_conntrack_core.c).
    pub max: Option<u64>,
    /// nf_conntrack_buckets: the hash table, shared by every namespace.
    pub buckets: Option<u64>,
    /// Timeouts in seconds by sysctl name (nf_conntrack_tcp_timeout_time_wait ...).
    pub timeouts: std::collections::BTreeMap<String, u64>,
}

impl Settings {
    /// The timeout in force for an entry's state, in seconds.
    pub fn timeout_of(&self, proto: u8, state: Option<CtState>, status: u32) -> Option<u64> {
        let name = match (proto, state) {
            (IPPROTO_TCP, Some(s)) => s.timeout_sysctl()?,
            // nf_conntrack_proto_udp.c: udp_timeout until a reply, then
            // udp_timeout_stream once the flow is ASSURED (replies both ways).
            (IPPROTO_UDP, _) if status & IPS_ASSURED != 0 => "nf_conntrack_udp_timeout_stream",
            (IPPROTO_UDP, _) => "nf_conntrack_udp_timeout",
            (IPPROTO_ICMP, _) => "nf_conntrack_icmp_timeout",
            (IPPROTO_ICMPV6, _) => "nf_conntrack_icmpv6_timeout",
            _ => "nf_conntrack_generic_timeout",
        };
        self.timeouts.get(name).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_kernel_numbers_and_spellings() {
        for (n, s) in CtState::ALL.iter().enumerate() {
            assert_eq!(CtState::from_kernel(n as u8), Some(*s));
            assert_eq!(CtState::parse(s.name()), Some(*s));
        }
        assert_eq!(CtState::from_kernel(10), None);
        assert_eq!(CtState::parse("time-wait"), Some(CtState::TimeWait));
        assert_eq!(CtState::parse("fin_wait2"), None);
    }

    #[test]
    fn protocols_by_name_or_number() {
        assert_eq!(parse_proto("TCP"), Ok(6));
        assert_eq!(parse_proto("17"), Ok(17));
        assert_eq!(parse_proto("icmpv6"), Ok(58));
        assert!(parse_proto("unknown").is_err());
        assert!(parse_proto("bogus").unwrap_err().contains("tcp, udp"));
    }

    #[test]
    fn udp_timeouts_follow_assured() {
        let mut s = Settings::default();
        s.timeouts.insert("nf_conntrack_udp_timeout".into(), 30);
        s.timeouts
            .insert("nf_conntrack_udp_timeout_stream".into(), 120);
        s.timeouts
            .insert("nf_conntrack_tcp_timeout_syn_sent".into(), 120);
        assert_eq!(s.timeout_of(IPPROTO_UDP, None, 0), Some(30));
        assert_eq!(s.timeout_of(IPPROTO_UDP, None, IPS_ASSURED), Some(120));
        assert_eq!(
            s.timeout_of(IPPROTO_TCP, Some(CtState::SynSent2), 0),
            Some(120)
        );
        assert_eq!(s.timeout_of(IPPROTO_TCP, Some(CtState::None), 0), None);
    }
}

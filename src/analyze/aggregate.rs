//! Pure aggregation over sockets: a counter, groups by a key, the summary,
//! and a plain collector for listings. Each is a [`Consumer`], so the count
//! paths never hold the table in memory.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::net::IpAddr;

use crate::analyze::inflow::{Inflow, InflowScan};
use crate::analyze::local_ports::LocalPorts;
use crate::model::{Consumer, Flow};
use crate::model::{Direction, Endpoint, Family, PortRange, Socket, TcpState};

/// `tw count`: how many sockets matched.
#[derive(Debug, Default)]
pub struct Counter {
    pub total: u64,
}

impl Consumer for Counter {
    fn push(&mut self, _: &Socket) -> Flow {
        self.total += 1;
        Flow::Continue(())
    }

    fn restart(&mut self) {
        self.total = 0;
    }
}

/// An order for listings (`--sort`).
pub type Order = fn(&Socket, &Socket) -> Ordering;

/// `tw ls` when it holds its rows: every matching socket, or, given a
/// limit, only as many as can still be among the first `limit` in `order`.
/// `--sort K --limit N` over a million sockets then holds about 2N rows,
/// where sorting the whole table held it, its doubling and the sort's
/// buffer (118.9 MiB at 1M).
#[derive(Debug, Default)]
pub struct Collect {
    pub sockets: Vec<Socket>,
    order: Option<Order>,
    limit: Option<usize>,
}

/// Rows held at least before a sorted, limited listing is trimmed, so a
/// small limit does not sort every few rows.
const TRIM_BATCH: usize = 4096;

impl Collect {
    /// The first `limit` sockets (all without one) in `order` (the reader's
    /// without one).
    pub fn new(order: Option<Order>, limit: Option<usize>) -> Collect {
        Collect {
            sockets: Vec::new(),
            order,
            limit,
        }
    }

    /// The listing: sorted stably (ties keep the reader's order, as they
    /// would in one sort of the whole table) and cut to the limit.
    pub fn finish(mut self) -> Vec<Socket> {
        self.trim();
        self.sockets
    }

    fn trim(&mut self) {
        if let Some(order) = self.order {
            self.sockets.sort_by(order);
        }
        if let Some(n) = self.limit {
            self.sockets.truncate(n);
        }
    }
}

impl Consumer for Collect {
    fn push(&mut self, s: &Socket) -> Flow {
        match (self.order, self.limit) {
            // In the reader's order the first `n` are final: the read can end.
            (None, Some(n)) => {
                if self.sockets.len() < n {
                    self.sockets.push(*s);
                }
                if self.sockets.len() >= n {
                    return Flow::Break(());
                }
            }
            (Some(_), Some(n)) => {
                self.sockets.push(*s);
                // Stable sort, then cut: what goes can never be among the
                // first n, and what stays keeps its arrival order on ties.
                if self.sockets.len() >= (2 * n).max(TRIM_BATCH) {
                    self.trim();
                }
            }
            _ => self.sockets.push(*s),
        }
        Flow::Continue(())
    }

    fn restart(&mut self) {
        self.sockets.clear();
    }
}

/// What `--by` groups on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GroupBy {
    /// TCP state.
    State,
    /// Local port.
    Lport,
    /// Remote port.
    Rport,
    /// Local address.
    Laddr,
    /// Remote address.
    Raddr,
    /// Remote address and port.
    Peer,
    /// Local and remote address and port.
    Tuple,
    /// Inbound (local port listening) or outbound.
    Direction,
    /// Network namespace (with --all-netns).
    Netns,
}

impl GroupBy {
    pub fn name(self) -> &'static str {
        match self {
            GroupBy::State => "state",
            GroupBy::Lport => "lport",
            GroupBy::Rport => "rport",
            GroupBy::Laddr => "laddr",
            GroupBy::Raddr => "raddr",
            GroupBy::Peer => "peer",
            GroupBy::Tuple => "tuple",
            GroupBy::Direction => "direction",
            GroupBy::Netns => "netns",
        }
    }

    fn key(self, s: &Socket) -> Key {
        match self {
            GroupBy::State => Key::State(s.state),
            GroupBy::Lport => Key::Port(s.local.port),
            GroupBy::Rport => Key::Port(s.peer.port),
            GroupBy::Laddr => Key::Addr(s.local.addr),
            GroupBy::Raddr => Key::Addr(s.peer.addr),
            GroupBy::Peer => Key::Endpoint(s.peer),
            GroupBy::Tuple => Key::Tuple(s.local, s.peer),
            GroupBy::Direction => Key::Direction(s.direction),
            GroupBy::Netns => Key::Netns(s.netns),
        }
    }
}

/// A group key. `Copy`, so grouping allocates only when the map grows.
/// Ordered naturally (ports numerically, addresses by value, states in
/// kernel order), which is how ties in count are broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    State(TcpState),
    Port(u16),
    Addr(IpAddr),
    Endpoint(Endpoint),
    Tuple(Endpoint, Endpoint),
    Direction(Option<Direction>),
    /// Index into the read's namespace labels (`Key::label` names it).
    Netns(u16),
}

impl Key {
    /// The key as printed; namespaces by their label.
    pub fn label(&self, namespaces: &[String]) -> String {
        match self {
            Key::Netns(i) => namespaces
                .get(usize::from(*i))
                .cloned()
                .unwrap_or_else(|| "current".to_string()),
            k => k.to_string(),
        }
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::State(s) => f.pad(s.name()),
            Key::Port(p) => write!(f, "{p}"),
            Key::Addr(a) => write!(f, "{a}"),
            Key::Endpoint(e) => write!(f, "{e}"),
            Key::Tuple(l, p) => write!(f, "{l} {p}"),
            Key::Direction(d) => f.pad(d.map_or("-", Direction::name)),
            Key::Netns(i) => write!(f, "netns#{i}"),
        }
    }
}

/// `tw count --by KEY`: a count per key.
#[derive(Debug)]
pub struct Groups {
    pub by: GroupBy,
    pub total: u64,
    counts: HashMap<Key, u64>,
    /// `--by lport`: grouped by listener (see analyze::local_ports).
    lports: LocalPorts,
}

impl Groups {
    pub fn new(by: GroupBy) -> Groups {
        // Pre-sized for a busy proxy's peers; tuple keys grow as needed.
        Groups {
            by,
            total: 0,
            counts: HashMap::with_capacity(1024),
            lports: LocalPorts::default(),
        }
    }

    /// Groups largest first, ties by key; at most `top` of them.
    pub fn ranked(&self, top: Option<usize>) -> Vec<(Key, u64)> {
        if self.by == GroupBy::Lport {
            return rank(&self.lports.groups(), top);
        }
        rank(&self.counts, top)
    }
}

impl Consumer for Groups {
    fn push(&mut self, s: &Socket) -> Flow {
        self.total += 1;
        if self.by == GroupBy::Lport {
            self.lports.listener(s);
            self.lports.count(s);
        } else {
            *self.counts.entry(self.by.key(s)).or_insert(0) += 1;
        }
        Flow::Continue(())
    }

    fn restart(&mut self) {
        self.total = 0;
        self.counts.clear();
        self.lports.clear();
    }
}

/// Largest count first, ties by key.
pub fn rank<K: Ord + Copy>(counts: &HashMap<K, u64>, top: Option<usize>) -> Vec<(K, u64)> {
    let mut v: Vec<(K, u64)> = counts.iter().map(|(k, n)| (*k, *n)).collect();
    v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    if let Some(n) = top {
        v.truncate(n);
    }
    v
}

/// An outbound destination as connect() sees it: one local address talking
/// to one remote address and port. An ephemeral port is busy only for the
/// same (local IP, remote IP, remote port), so each group has the whole
/// ephemeral range to itself (__inet_hash_connect, check_established).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Destination {
    pub local: IpAddr,
    pub peer: Endpoint,
}

/// Ports one destination holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortUse {
    /// Sockets holding an ephemeral port, in every state that holds one.
    pub held: u64,
    /// Of those, ports of the parity connect() tries first: the same parity
    /// as the low end of ip_local_port_range.
    pub held_preferred: u64,
    /// Held sockets per kernel state number.
    by_state: [u64; 13],
    /// Inflow into TIME_WAIT of the sockets counted here, from timer ages.
    pub inflow: Inflow,
}

impl PortUse {
    /// (state, count) for each state present, largest first.
    pub fn states(&self) -> Vec<(TcpState, u64)> {
        let mut v: Vec<(TcpState, u64)> = TcpState::ALL
            .into_iter()
            .map(|s| (s, self.by_state[usize::from(s.kernel())]))
            .filter(|(_, n)| *n > 0)
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }

    /// Seconds until this destination holds all `usable` ports at its
    /// recent inflow; `Some(0.0)` when it already does, `None` never.
    pub fn exhaustion_in(&self, usable: u64) -> Option<f64> {
        let tw = self.by_state[usize::from(TcpState::TimeWait.kernel())];
        crate::analyze::inflow::exhaustion_in(usable, self.held, tw, &self.inflow)
    }
}

/// `tw ports`: ephemeral ports held per outbound destination.
#[derive(Debug)]
pub struct PortGroups {
    /// ip_local_port_range; ports outside it (an explicit bind()) do not use
    /// the range and are not counted.
    range: PortRange,
    /// ip_local_reserved_ports: connect() never hands these out, so a socket
    /// on one (an explicit bind(), or older than the reservation) uses none
    /// of the destination's usable ports, and counting it could push use
    /// past 100%.
    reserved: Vec<PortRange>,
    groups: HashMap<Destination, PortUse>,
}

impl PortGroups {
    /// Destinations seen, before any `--top` cut.
    pub fn destinations(&self) -> usize {
        self.groups.len()
    }

    pub fn new(range: PortRange) -> PortGroups {
        PortGroups {
            range,
            reserved: Vec::new(),
            groups: HashMap::with_capacity(256),
        }
    }

    /// Leaves sockets on `reserved` ports out, as connect() does.
    pub fn skipping(mut self, reserved: &[PortRange]) -> PortGroups {
        self.reserved = reserved.iter().filter(|r| r.lo <= r.hi).copied().collect();
        self
    }

    /// The reserved ports left out (see [`PortGroups::skipping`]).
    pub fn reserved(&self) -> &[PortRange] {
        &self.reserved
    }

    pub fn range(&self) -> PortRange {
        self.range
    }

    /// Destinations by ports held, largest first, ties by destination.
    pub fn ranked(&self, top: Option<usize>) -> Vec<(Destination, PortUse)> {
        let mut v: Vec<(Destination, PortUse)> =
            self.groups.iter().map(|(k, u)| (*k, u.clone())).collect();
        v.sort_by(|a, b| b.1.held.cmp(&a.1.held).then(a.0.cmp(&b.0)));
        if let Some(n) = top {
            v.truncate(n);
        }
        v
    }
}

impl Consumer for PortGroups {
    fn push(&mut self, s: &Socket) -> Flow {
        // LISTEN holds a port but for no destination; CLOSE sockets are not
        // in the connection hash.
        if s.direction != Some(Direction::Outbound)
            || matches!(s.state, TcpState::Listen | TcpState::Close)
            || !self.range.contains(s.local.port)
            || self.reserved.iter().any(|r| r.contains(s.local.port))
        {
            return Flow::Continue(());
        }
        let dest = Destination {
            local: s.local.addr,
            peer: s.peer,
        };
        let u = self.groups.entry(dest).or_default();
        u.held += 1;
        if (s.local.port - self.range.lo).is_multiple_of(2) {
            u.held_preferred += 1;
        }
        u.by_state[usize::from(s.state.kernel())] += 1;
        if s.state == TcpState::TimeWait {
            if let Some(ms) = s.timewait_ms() {
                u.inflow.add(ms);
            }
        }
        Flow::Continue(())
    }

    fn restart(&mut self) {
        self.groups.clear();
    }
}

/// The windows of the summary's "TIME_WAIT expiring within" line, in seconds.
pub const EXPIRY_WINDOWS: [u32; 3] = [10, 30, 60];
/// How many peers and ports the summary lists.
pub const SUMMARY_TOP: usize = 5;
/// Width of one slot of the TIME_WAIT time-left histogram, in seconds.
pub const TW_SLOT_SECS: u32 = 5;
/// Slots in that histogram: 0-5 s ... 55-60 s (TCP_TIMEWAIT_LEN = 60 s).
pub const TW_SLOTS: usize = 12;

/// The histogram slot of a TIME_WAIT timer: how many 5 s steps are left. A
/// timer at exactly 60 s (just scheduled) joins the last slot.
pub fn time_wait_slot(ms: u32) -> usize {
    ((ms / (TW_SLOT_SECS * 1000)) as usize).min(TW_SLOTS - 1)
}

/// TIME_WAIT sockets per slot of time left, for a listing.
pub fn time_wait_left<'a>(socks: impl IntoIterator<Item = &'a Socket>) -> [u64; TW_SLOTS] {
    let mut slots = [0; TW_SLOTS];
    for s in socks {
        if s.state == TcpState::TimeWait {
            if let Some(ms) = s.timewait_ms() {
                slots[time_wait_slot(ms)] += 1;
            }
        }
    }
    slots
}

/// `tw`: the whole picture in one pass.
#[derive(Debug, Default)]
pub struct Summary {
    pub total: u64,
    pub ipv4: u64,
    pub ipv6: u64,
    /// Indexed by kernel state number.
    by_state: [u64; 13],
    /// TIME_WAIT sockets whose timer ends within each of [`EXPIRY_WINDOWS`].
    pub time_wait_expiring: [u64; 3],
    /// TIME_WAIT sockets per 5 s slot of time left ([`time_wait_slot`]).
    pub time_wait_left: [u64; TW_SLOTS],
    /// TIME_WAIT on accepted connections: this box closed first as a server.
    pub time_wait_inbound: u64,
    /// TIME_WAIT on connect()ed connections: this box closed first as a client.
    pub time_wait_outbound: u64,
    tw_peers: HashMap<IpAddr, u64>,
    /// Inbound TIME_WAIT by listener: which service closes first.
    tw_lports: LocalPorts,
    /// Outbound TIME_WAIT by destination: where ephemeral ports go.
    tw_dests: HashMap<Endpoint, u64>,
    /// Inflow into TIME_WAIT from timer ages: overall, per destination and
    /// per listener.
    pub inflow: InflowScan,
    /// The reset counters, when the command read the system facts.
    pub resets: Vec<crate::analyze::resets::ResetCounter>,
}

impl Summary {
    pub fn count(&self, s: TcpState) -> u64 {
        self.by_state[usize::from(s.kernel())]
    }

    /// (state, count) for every state with at least one socket, largest first.
    pub fn states(&self) -> Vec<(TcpState, u64)> {
        let mut v: Vec<(TcpState, u64)> = TcpState::ALL
            .into_iter()
            .map(|s| (s, self.count(s)))
            .filter(|(_, n)| *n > 0)
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }

    pub fn top_peers(&self) -> Vec<(IpAddr, u64)> {
        rank(&self.tw_peers, Some(SUMMARY_TOP))
    }

    /// Inbound TIME_WAIT by listening port, or by address and port where
    /// listeners on different addresses share it (analyze::local_ports).
    pub fn top_local_ports(&self) -> Vec<(Key, u64)> {
        rank(&self.tw_lports.groups(), Some(SUMMARY_TOP))
    }

    pub fn top_destinations(&self) -> Vec<(Endpoint, u64)> {
        rank(&self.tw_dests, Some(SUMMARY_TOP))
    }
}

impl Consumer for Summary {
    fn push(&mut self, s: &Socket) -> Flow {
        self.total += 1;
        match s.family {
            Family::Inet => self.ipv4 += 1,
            Family::Inet6 => self.ipv6 += 1,
        }
        self.by_state[usize::from(s.state.kernel())] += 1;
        self.tw_lports.listener(s);
        if s.state == TcpState::TimeWait {
            if let Some(ms) = s.timewait_ms() {
                for (i, w) in EXPIRY_WINDOWS.iter().enumerate() {
                    if ms <= w * 1000 {
                        self.time_wait_expiring[i] += 1;
                    }
                }
                self.time_wait_left[time_wait_slot(ms)] += 1;
            }
            // A local port says something only on the inbound side; outbound
            // ones are ephemeral, one socket each.
            match s.direction {
                Some(Direction::Inbound) => {
                    self.time_wait_inbound += 1;
                    self.tw_lports.count(s);
                }
                Some(Direction::Outbound) => {
                    self.time_wait_outbound += 1;
                    *self.tw_dests.entry(s.peer).or_insert(0) += 1;
                }
                None => {}
            }
            *self.tw_peers.entry(s.peer.addr).or_insert(0) += 1;
            self.inflow.push(s);
        }
        Flow::Continue(())
    }

    fn restart(&mut self) {
        let resets = std::mem::take(&mut self.resets);
        *self = Summary::default();
        self.resets = resets;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Timer, TimerKind};

    fn sock(state: TcpState, local: &str, peer: &str, tw_ms: Option<u32>) -> Socket {
        let ep = |s: &str| {
            let sa: std::net::SocketAddr = s.parse().unwrap();
            Endpoint::new(sa.ip(), sa.port())
        };
        let mut s = Socket::new(
            if local.starts_with('[') {
                Family::Inet6
            } else {
                Family::Inet
            },
            state,
            ep(local),
            ep(peer),
        );
        s.timer = tw_ms.map(|ms| Timer {
            kind: TimerKind::TimeWait,
            ms,
        });
        // Ports below 1024 listen in these samples.
        s.direction = Some(if s.local.port < 1024 {
            Direction::Inbound
        } else {
            Direction::Outbound
        });
        s
    }

    fn sample() -> Vec<Socket> {
        use TcpState::*;
        vec![
            sock(Listen, "0.0.0.0:80", "0.0.0.0:0", None),
            sock(Established, "10.0.0.1:80", "10.0.0.9:5000", None),
            sock(TimeWait, "10.0.0.1:80", "10.0.0.9:5001", Some(5_000)),
            sock(TimeWait, "10.0.0.1:80", "10.0.0.8:5002", Some(25_000)),
            sock(TimeWait, "10.0.0.1:443", "10.0.0.9:5003", Some(59_900)),
            sock(TimeWait, "[::1]:8080", "[::1]:5004", Some(0)),
            sock(FinWait2, "10.0.0.1:41000", "10.0.0.7:80", Some(30_000)),
        ]
    }

    fn feed(c: &mut dyn Consumer, socks: &[Socket]) {
        for s in socks {
            let _ = c.push(s);
        }
    }

    #[test]
    fn groups_rank_largest_first_ties_by_key() {
        let mut g = Groups::new(GroupBy::Lport);
        feed(&mut g, &sample());
        let got: Vec<String> = g
            .ranked(None)
            .iter()
            .map(|(k, n)| format!("{k}\t{n}"))
            .collect();
        assert_eq!(got, ["80\t4", "443\t1", "8080\t1", "41000\t1"]);
        assert_eq!(g.ranked(Some(2)).len(), 2);
        assert_eq!(g.total, 7);
    }

    #[test]
    fn every_key_kind_prints_like_ss() {
        let s = &sample()[2];
        let cases = [
            (GroupBy::State, "TIME_WAIT"),
            (GroupBy::Lport, "80"),
            (GroupBy::Rport, "5001"),
            (GroupBy::Laddr, "10.0.0.1"),
            (GroupBy::Raddr, "10.0.0.9"),
            (GroupBy::Peer, "10.0.0.9:5001"),
            (GroupBy::Tuple, "10.0.0.1:80 10.0.0.9:5001"),
            (GroupBy::Direction, "in"),
        ];
        for (by, want) in cases {
            assert_eq!(by.key(s).to_string(), want, "{}", by.name());
        }
        let v6 = &sample()[5];
        assert_eq!(GroupBy::Peer.key(v6).to_string(), "[::1]:5004");
    }

    #[test]
    fn summary_counts_states_families_expiry_and_tops() {
        let mut sum = Summary::default();
        feed(&mut sum, &sample());
        assert_eq!((sum.total, sum.ipv4, sum.ipv6), (7, 6, 1));
        assert_eq!(sum.count(TcpState::TimeWait), 4);
        assert_eq!(sum.states()[0], (TcpState::TimeWait, 4));
        // 0 s and 5 s within 10 s; + 25 s within 30 s; all four within 60 s.
        // The FIN_WAIT2 minisocket has a timewait timer but is not TIME_WAIT.
        assert_eq!(sum.time_wait_expiring, [2, 3, 4]);
        // 0 and 5 s -> slots 0 and 1; 25 s -> 5; 59.9 s -> 11.
        let mut left = [0; TW_SLOTS];
        (left[0], left[1], left[5], left[11]) = (1, 1, 1, 1);
        assert_eq!(sum.time_wait_left, left);
        assert_eq!(time_wait_left(&sample()), left);
        assert_eq!((time_wait_slot(4_999), time_wait_slot(60_000)), (0, 11));
        assert_eq!((sum.time_wait_inbound, sum.time_wait_outbound), (3, 1));
        assert_eq!(sum.top_peers()[0], ("10.0.0.9".parse().unwrap(), 2));
        assert_eq!(
            sum.top_local_ports(),
            [(Key::Port(80), 2), (Key::Port(443), 1)]
        );
        let dest = sum.top_destinations();
        assert_eq!(dest.len(), 1);
        assert_eq!(dest[0].0.to_string(), "[::1]:5004");
    }

    #[test]
    fn ports_count_outbound_holders_per_destination_and_parity() {
        use TcpState::*;
        let socks = [
            sock(TimeWait, "10.0.0.1:40000", "10.0.0.7:80", Some(1)),
            sock(TimeWait, "10.0.0.1:40001", "10.0.0.7:80", Some(1)),
            sock(Established, "10.0.0.1:40002", "10.0.0.7:80", None),
            sock(TimeWait, "10.0.0.1:40003", "10.0.0.7:443", Some(1)),
            // Outside the range: an explicit bind(), not an ephemeral port.
            sock(TimeWait, "10.0.0.1:20000", "10.0.0.7:80", Some(1)),
            // Inbound (port < 1024 listens in these samples).
            sock(TimeWait, "10.0.0.1:80", "10.0.0.7:40000", Some(1)),
        ];
        let mut p = PortGroups::new(PortRange {
            lo: 32768,
            hi: 60999,
        });
        for s in &socks {
            let _ = p.push(s);
        }
        let r = p.ranked(None);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].0.peer.to_string(), "10.0.0.7:80");
        assert_eq!((r[0].1.held, r[0].1.held_preferred), (3, 2));
        assert_eq!(r[0].1.states(), [(TimeWait, 2), (Established, 1)]);
        assert_eq!((r[1].1.held, r[1].1.held_preferred), (1, 0));
        assert_eq!(p.ranked(Some(1)).len(), 1);
    }

    #[test]
    fn a_sorted_limited_listing_holds_little_and_equals_one_whole_sort() {
        // Many ties (few states, few ports), arriving in a scrambled order.
        let socks: Vec<Socket> = (0..30_000u32)
            .map(|i| {
                let j = i.wrapping_mul(2_654_435_761) % 30_000;
                let state = if j % 3 == 0 {
                    TcpState::TimeWait
                } else {
                    TcpState::Established
                };
                let local = format!("127.0.0.1:{}", j % 50);
                let mut s = sock(state, &local, &format!("127.0.0.2:{}", j % 7), None);
                s.inode = u64::from(i);
                s
            })
            .collect();
        let orders: [Order; 2] = [
            |a, b| (a.state, a.local).cmp(&(b.state, b.local)),
            |a, b| a.peer.cmp(&b.peer),
        ];
        for order in orders {
            let mut whole = socks.clone();
            whole.sort_by(order);
            for n in [0, 1, 10, 4_000, 29_999, 40_000] {
                let mut c = Collect::new(Some(order), Some(n));
                let mut most = 0;
                for s in &socks {
                    let _ = c.push(s);
                    most = most.max(c.sockets.len());
                }
                assert!(most <= (2 * n).max(TRIM_BATCH), "held {most} for {n}");
                let got = c.finish();
                assert_eq!(got, whole[..n.min(whole.len())], "limit {n}");
            }
        }
        // No order: the first n as they came.
        let mut c = Collect::new(None, Some(5));
        feed(&mut c, &socks);
        assert_eq!((c.sockets.len(), c.finish()), (5, socks[..5].to_vec()));
    }

    #[test]
    fn restart_forgets_a_half_read_dump() {
        let mut sum = Summary::default();
        let mut g = Groups::new(GroupBy::State);
        let mut c = Counter::default();
        let mut l = Collect::default();
        for x in [
            &mut sum as &mut dyn Consumer,
            &mut g as &mut dyn Consumer,
            &mut c,
            &mut l,
        ] {
            feed(x, &sample());
            x.restart();
            feed(x, &sample()[..2]);
        }
        assert_eq!(sum.total, 2);
        assert_eq!(sum.count(TcpState::TimeWait), 0);
        assert!(sum.top_peers().is_empty());
        assert_eq!((g.total, g.ranked(None).len()), (2, 2));
        assert_eq!(c.total, 2);
        assert_eq!(l.sockets.len(), 2);
    }
}

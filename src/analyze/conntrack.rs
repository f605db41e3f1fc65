//! The conntrack table aggregated in one pass: entries by protocol and state
//! with the time left on each state's timeout, by destination, source, zone
//! and mark; `--by` groups; the filter; and doctor's conntrack finding.
//! Pure: runs on entries from any reader, fixtures included.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Serialize;

use crate::analyze::doctor::{Finding, Severity};
use crate::model::abi::TIME_WAIT_SECS;
use crate::model::conntrack::{proto_name, CtState, Entry, Settings, Stats, IPPROTO_TCP};
use crate::model::{Cidr, Endpoint, Family, PortRange};
use crate::source::conntrack::EntrySink;

/// Index of an entry's state label: the ten TCP states, then the flags of
/// protocols without states.
const LABELS: usize = 13;

fn label_index(e: &Entry) -> usize {
    match (e.tcp_state, e.state_label()) {
        (Some(s), _) => s as usize,
        (None, "UNREPLIED") => 10,
        (None, "ASSURED") => 11,
        _ => 12,
    }
}

fn label_name(i: usize) -> &'static str {
    match i {
        0..=9 => CtState::ALL[i].name(),
        10 => "UNREPLIED",
        11 => "ASSURED",
        _ => "REPLIED",
    }
}

/// What `--src`, `--dst`, `--sport`, `--dport`, `-4`/`-6`, `--state` and
/// `--proto` keep. Addresses and ports are those of the original direction
/// (who opened the flow, and where to).
#[derive(Debug, Clone, Default)]
pub struct CtFilter {
    pub family: Option<Family>,
    pub protos: Vec<u8>,
    /// State labels (TIME_WAIT, UNREPLIED ...); empty keeps every state.
    pub states: Vec<&'static str>,
    pub src: Vec<Cidr>,
    pub dst: Vec<Cidr>,
    pub sport: Vec<PortRange>,
    pub dport: Vec<PortRange>,
}

/// A `--state` word: a conntrack TCP state in any spelling, or UNREPLIED,
/// REPLIED, ASSURED for protocols without states.
pub fn parse_state(word: &str) -> Result<&'static str, String> {
    if let Some(s) = CtState::parse(word) {
        return Ok(s.name());
    }
    let up = word.trim().to_ascii_uppercase();
    (10..LABELS)
        .map(label_name)
        .find(|l| *l == up)
        .ok_or_else(|| {
            format!(
                "'{word}' is not a conntrack state: {}, UNREPLIED, ASSURED, REPLIED",
                CtState::ALL.map(|s| s.name()).join(", ")
            )
        })
}

impl CtFilter {
    pub fn matches(&self, e: &Entry) -> bool {
        let t = &e.orig;
        self.family.is_none_or(|f| f == e.family)
            && (self.protos.is_empty() || self.protos.contains(&e.proto))
            && (self.states.is_empty() || self.states.contains(&e.state_label()))
            && (self.src.is_empty() || self.src.iter().any(|c| c.contains(t.src)))
            && (self.dst.is_empty() || self.dst.iter().any(|c| c.contains(t.dst)))
            && (self.sport.is_empty()
                || e.has_ports() && self.sport.iter().any(|r| r.contains(t.sport)))
            && (self.dport.is_empty()
                || e.has_ports() && self.dport.iter().any(|r| r.contains(t.dport)))
    }
}

/// `--by`: what to group entries by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CtBy {
    /// conntrack state (TIME_WAIT ...; UNREPLIED/ASSURED/REPLIED without TCP).
    State,
    /// Protocol (tcp, udp, icmp ...).
    Proto,
    /// Destination address and port of the original direction.
    Dst,
    /// Destination address only.
    Daddr,
    /// Destination port only.
    Dport,
    /// Source address of the original direction (who opened the flow).
    Src,
    /// conntrack zone.
    Zone,
    /// Packet mark (ct mark).
    Mark,
}

impl CtBy {
    pub fn name(self) -> &'static str {
        match self {
            CtBy::State => "state",
            CtBy::Proto => "proto",
            CtBy::Dst => "dst",
            CtBy::Daddr => "daddr",
            CtBy::Dport => "dport",
            CtBy::Src => "src",
            CtBy::Zone => "zone",
            CtBy::Mark => "mark",
        }
    }
}

/// A destination: where the original direction went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dest {
    pub proto: u8,
    pub addr: IpAddr,
    /// None for protocols without ports.
    pub port: Option<u16>,
}

impl std::fmt::Display for Dest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            Some(p) => write!(
                f,
                "{} {}",
                proto_name(self.proto),
                Endpoint::new(self.addr, p)
            ),
            None => write!(f, "{} {}", proto_name(self.proto), self.addr),
        }
    }
}

fn dest(e: &Entry) -> Dest {
    Dest {
        proto: e.proto,
        addr: e.orig.dst,
        port: e.has_ports().then_some(e.orig.dport),
    }
}

/// Entries of one (protocol, state) and the time left on them.
#[derive(Debug, Clone, Copy, Default)]
pub struct StateAgg {
    pub count: u64,
    pub min_left: u32,
    pub max_left: u32,
    pub sum_left: u64,
}

/// Entries toward one destination, by state label. u32 per label: one
/// destination holds at most nf_conntrack_max entries, and the table may hold
/// as many destinations as entries, so this is what the report's memory is.
#[derive(Debug, Clone, Copy, Default)]
pub struct DestAgg {
    pub count: u64,
    by_label: [u32; LABELS],
}

impl DestAgg {
    /// The state holding most of this destination's entries.
    pub fn main_state(&self) -> (&'static str, u64) {
        let (i, n) = self
            .by_label
            .iter()
            .enumerate()
            .max_by_key(|(i, n)| (**n, std::cmp::Reverse(*i)))
            .map(|(i, n)| (i, u64::from(*n)))
            .unwrap_or((0, 0));
        (label_name(i), n)
    }
}

/// The whole table in one pass: counts, never the entries themselves.
#[derive(Debug, Default)]
pub struct Table {
    pub filter: CtFilter,
    pub total: u64,
    pub families: [u64; 2],
    states: HashMap<(u8, usize), StateAgg>,
    dests: HashMap<Dest, DestAgg>,
    sources: HashMap<IpAddr, u64>,
    zones: HashMap<u16, u64>,
    marks: HashMap<u32, u64>,
}

impl Table {
    pub fn new(filter: CtFilter) -> Table {
        Table {
            filter,
            ..Table::default()
        }
    }

    /// (protocol, state label, aggregate), largest first.
    pub fn states(&self) -> Vec<(&'static str, &'static str, StateAgg)> {
        let mut v: Vec<_> = self
            .states
            .iter()
            .map(|((p, i), a)| (proto_name(*p), label_name(*i), *a))
            .collect();
        v.sort_by(|a, b| b.2.count.cmp(&a.2.count).then((a.0, a.1).cmp(&(b.0, b.1))));
        v
    }

    /// Entries in a TCP state.
    pub fn tcp(&self, s: CtState) -> u64 {
        self.states
            .get(&(IPPROTO_TCP, s as usize))
            .map_or(0, |a| a.count)
    }

    pub fn top_dests(&self, top: Option<usize>) -> Vec<(Dest, DestAgg)> {
        let mut v: Vec<_> = self.dests.iter().map(|(k, a)| (*k, *a)).collect();
        v.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(&b.0)));
        v.truncate(top.unwrap_or(usize::MAX));
        v
    }

    pub fn dest_count(&self) -> usize {
        self.dests.len()
    }

    pub fn top_sources(&self, top: Option<usize>) -> Vec<(IpAddr, u64)> {
        crate::analyze::aggregate::rank(&self.sources, top)
    }

    pub fn zones(&self) -> Vec<(u16, u64)> {
        crate::analyze::aggregate::rank(&self.zones, None)
    }

    pub fn marks(&self, top: Option<usize>) -> Vec<(u32, u64)> {
        crate::analyze::aggregate::rank(&self.marks, top)
    }
}

impl EntrySink for Table {
    fn push(&mut self, e: &Entry) {
        if !self.filter.matches(e) {
            return;
        }
        self.total += 1;
        self.families[usize::from(e.family == Family::Inet6)] += 1;
        let li = label_index(e);
        let s = self.states.entry((e.proto, li)).or_insert(StateAgg {
            min_left: u32::MAX,
            ..StateAgg::default()
        });
        s.count += 1;
        s.min_left = s.min_left.min(e.timeout);
        s.max_left = s.max_left.max(e.timeout);
        s.sum_left += u64::from(e.timeout);
        let d = self.dests.entry(dest(e)).or_default();
        d.count += 1;
        d.by_label[li] = d.by_label[li].saturating_add(1);
        *self.sources.entry(e.orig.src).or_insert(0) += 1;
        *self.zones.entry(e.zone).or_insert(0) += 1;
        *self.marks.entry(e.mark).or_insert(0) += 1;
    }

    fn restart(&mut self) {
        *self = Table::new(std::mem::take(&mut self.filter));
    }
}

/// What `tw metrics` adds about conntrack, read once per scrape.
#[derive(Debug)]
pub struct Metrics {
    pub table: Table,
    pub health: crate::source::conntrack::Health,
}

impl Metrics {
    /// The whole table of `source`'s system, for doctor and metrics; `None`
    /// when there is none to read (no conntrack, no permission, a --from
    /// capture), and the caller keeps the facts-only rule.
    pub fn read(source: &dyn crate::source::Source) -> Option<Metrics> {
        let mut table = Table::default();
        let (_, health) = source.conntrack(&mut table).ok()??;
        Some(Metrics { table, health })
    }

    /// Replaces doctor's facts-only conntrack finding with one from the
    /// table, in the rule's place so the order of the rules stays doctor's.
    /// `socket_time_wait`: the TIME_WAIT sockets of the same scan.
    pub fn replace_finding(&self, findings: &mut Vec<Finding>, socket_time_wait: u64) {
        let stats = self.health.stats.as_ref().map(|s| &s.0);
        let f = finding(
            &self.table,
            &self.health.settings,
            stats,
            Some(socket_time_wait),
        );
        match findings.iter_mut().find(|old| old.rule == "conntrack") {
            Some(old) => *old = f,
            None => findings.push(f),
        }
        findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    }
}

/// A group key of `--by`, kept small until it is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Key {
    Label(usize),
    Proto(u8),
    Dest(Dest),
    Addr(IpAddr),
    Port(Option<u16>),
    Zone(u16),
    Mark(u32),
}

/// Counts per `--by` key.
#[derive(Debug)]
pub struct Groups {
    by: CtBy,
    pub filter: CtFilter,
    pub total: u64,
    counts: HashMap<Key, u64>,
}

impl Groups {
    pub fn new(by: CtBy, filter: CtFilter) -> Groups {
        Groups {
            by,
            filter,
            total: 0,
            counts: HashMap::new(),
        }
    }

    /// `(label, count)`, largest first, ties by key; at most `top`.
    pub fn ranked(&self, top: Option<usize>) -> Vec<(String, u64)> {
        crate::analyze::aggregate::rank(&self.counts, top)
            .into_iter()
            .map(|(k, n)| {
                let label = match k {
                    Key::Label(i) => label_name(i).to_string(),
                    Key::Proto(p) => proto_name(p).to_string(),
                    Key::Dest(d) => match d.port {
                        Some(p) => Endpoint::new(d.addr, p).to_string(),
                        None => d.addr.to_string(),
                    },
                    Key::Addr(a) => a.to_string(),
                    Key::Port(p) => p.map_or("-".into(), |p| p.to_string()),
                    Key::Zone(z) => z.to_string(),
                    Key::Mark(m) => m.to_string(),
                };
                (label, n)
            })
            .collect()
    }
}

impl EntrySink for Groups {
    fn push(&mut self, e: &Entry) {
        if !self.filter.matches(e) {
            return;
        }
        self.total += 1;
        let key = match self.by {
            CtBy::State => Key::Label(label_index(e)),
            CtBy::Proto => Key::Proto(e.proto),
            CtBy::Dst => Key::Dest(Dest {
                proto: 0,
                ..dest(e)
            }),
            CtBy::Daddr => Key::Addr(e.orig.dst),
            CtBy::Dport => Key::Port(e.has_ports().then_some(e.orig.dport)),
            CtBy::Src => Key::Addr(e.orig.src),
            CtBy::Zone => Key::Zone(e.zone),
            CtBy::Mark => Key::Mark(e.mark),
        };
        *self.counts.entry(key).or_insert(0) += 1;
    }

    fn restart(&mut self) {
        self.total = 0;
        self.counts.clear();
    }
}

/// Counts only.
#[derive(Debug, Default)]
pub struct Count {
    pub filter: CtFilter,
    pub total: u64,
}

impl EntrySink for Count {
    fn push(&mut self, e: &Entry) {
        if self.filter.matches(e) {
            self.total += 1;
        }
    }

    fn restart(&mut self) {
        self.total = 0;
    }
}

// ---- doctor ----

const WARN_PCT: f64 = 75.0;
const CRIT_PCT: f64 = 90.0;
/// Drops since boot matter when the table is at least this full now.
const DROPS_WARN_PCT: f64 = 50.0;
/// Bytes of one entry: struct nf_conn is about 256-320 bytes of slab
/// (nf_conntrack slab cache, 320 with extensions on x86_64).
const ENTRY_BYTES: u64 = 320;

/// Doctor's conntrack finding from the table itself: how full it is, which
/// states and destinations fill it, conntrack's TIME_WAIT against the
/// sockets', the statistics, and the fixes in order with their costs.
/// `socket_time_wait` is the TIME_WAIT sockets of the same namespace.
pub fn finding(
    t: &Table,
    settings: &Settings,
    stats: Option<&Stats>,
    socket_time_wait: Option<u64>,
) -> Finding {
    let count = settings.count.unwrap_or(t.total);
    let fill = settings
        .max
        .filter(|m| *m > 0)
        .map(|m| count as f64 * 100.0 / m as f64);
    let drops = stats.map_or(0, |s| s.drop + s.early_drop + s.insert_failed);
    let p = fill.unwrap_or(0.0);
    let severity = if p >= CRIT_PCT {
        Severity::Crit
    } else if p >= WARN_PCT || (drops > 0 && p >= DROPS_WARN_PCT) {
        Severity::Warn
    } else {
        Severity::Ok
    };
    let states = t.states();
    let dests = t.top_dests(Some(5));
    let mut title = match (settings.max, fill) {
        (Some(max), Some(p)) => format!("conntrack table {count} of {max} entries ({p:.1}%)"),
        _ => format!("conntrack table {count} entries"),
    };
    if let Some((proto, state, a)) = states.first() {
        title.push_str(&format!(
            ": {} {proto} {state} ({:.0}%)",
            a.count,
            share(a.count, t.total)
        ));
    }
    if let Some((d, a)) = dests.first() {
        title.push_str(&format!(", {} toward {d}", a.count));
    }
    let mut evidence = Vec::new();
    for (proto, state, a) in states.iter().take(5) {
        let timeout = settings
            .timeouts
            .iter()
            .find(|(k, _)| {
                CtState::parse(state)
                    .and_then(|s| s.timeout_sysctl())
                    .is_some_and(|n| n == k.as_str())
                    && *proto == "tcp"
            })
            .map(|(_, v)| format!(", timeout {v} s"))
            .unwrap_or_default();
        evidence.push(format!(
            "{proto} {state}: {} entries ({:.1}%), {} s left on average{timeout}",
            a.count,
            share(a.count, t.total),
            a.sum_left / a.count.max(1)
        ));
    }
    for (d, a) in &dests {
        let (state, n) = a.main_state();
        evidence.push(format!(
            "toward {d}: {} entries ({:.1}%), {n} of them {state}",
            a.count,
            share(a.count, t.total)
        ));
    }
    let ct_tw = t.tcp(CtState::TimeWait);
    let tw_timeout = settings
        .timeouts
        .get("nf_conntrack_tcp_timeout_time_wait")
        .copied();
    if let Some(sock_tw) = socket_time_wait {
        evidence.push(format!(
            "TIME_WAIT: {ct_tw} conntrack entries against {sock_tw} TIME_WAIT sockets; conntrack \
             keeps them {} s, the socket {TIME_WAIT_SECS} s{}",
            tw_timeout.map_or("120".into(), |t| t.to_string()),
            if ct_tw > sock_tw.saturating_mul(2) {
                " (more entries than sockets: entries outlive sockets, and forwarded or NATed \
                 flows have no socket here)"
            } else {
                ""
            }
        ));
    }
    if let (Some(b), true) = (settings.buckets, count > 0) {
        evidence.push(format!(
            "nf_conntrack_buckets: {b} ({:.2} entries per bucket)",
            count as f64 / b.max(1) as f64
        ));
    }
    if let Some(s) = stats {
        evidence.push(format!(
            "since boot: drop {}, early_drop {}, insert_failed {}, search_restart {}",
            s.drop, s.early_drop, s.insert_failed, s.search_restart
        ));
    }
    let mut fixes = Vec::new();
    if severity > Severity::Ok {
        let top_port = dests
            .iter()
            .find(|(d, _)| d.port.is_some() && d.addr.is_loopback())
            .or(dests.first())
            .map(|(d, _)| (proto_name(d.proto), d.port.unwrap_or(0)));
        let (proto, port) = top_port.unwrap_or(("tcp", 0));
        fixes.push(format!(
            "NOTRACK the local high-rate service (e.g. nft add table inet raw; nft add chain \
             inet raw pre '{{ type filter hook prerouting priority raw; }}'; nft add rule inet \
             raw pre {proto} dport {port} notrack, and the same for output): its flows take no \
             entry at all. Cost: those flows lose ct state, NAT and conntrack-based firewall \
             rules; accept them explicitly both ways."
        ));
        fixes.push(format!(
            "Shorten net.netfilter.nf_conntrack_tcp_timeout_time_wait (now {} s; e.g. 30): \
             closed flows leave the table sooner. Cost: a segment of an old flow arriving after \
             that is seen as new or INVALID, which rules may drop; harmless for most traffic.",
            tw_timeout.map_or("120".into(), |t| t.to_string())
        ));
        let max = settings.max.unwrap_or(262_144);
        fixes.push(format!(
            "Raise net.netfilter.nf_conntrack_max (now {max}) and the hash with it \
             (/sys/module/nf_conntrack/parameters/hashsize, now {}; about max/4 or more). \
             Cost: up to {ENTRY_BYTES} bytes of kernel memory per entry ({} for twice the \
             table) plus 8 bytes per bucket; both are global, shared by every namespace.",
            settings.buckets.map_or("?".into(), |b| b.to_string()),
            bytes(2 * max * ENTRY_BYTES)
        ));
        fixes.push(
            "Keep connections alive (HTTP keep-alive, connection pools) toward the \
             destinations above: fewer flows are opened at all. Cost: a change in the clients \
             or the proxy, and idle connections held open."
                .into(),
        );
    }
    Finding {
        rule: "conntrack",
        severity,
        title,
        evidence,
        why: "When nf_conntrack_count reaches nf_conntrack_max, new flows are dropped \
              (\"nf_conntrack: table full, dropping packet\"), after early_drop has evicted what \
              unassured entries it can. conntrack tracks flows, not sockets: it keeps its own \
              TIME_WAIT for nf_conntrack_tcp_timeout_time_wait (120 s) after the socket's 60 s, \
              and forwarded or NATed flows have no socket here at all."
            .into(),
        fixes,
    }
}

/// 168 MiB, 13 KiB: a size as an operator reads it.
fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{} MiB", n >> 20),
        n => format!("{} KiB", n.div_ceil(1024)),
    }
}

fn share(n: u64, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        n as f64 * 100.0 / of as f64
    }
}

/// The JSON of `tw conntrack`: documented in README.md.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct StateRow {
    pub proto: &'static str,
    pub state: &'static str,
    pub count: u64,
    /// The timeout this state is set to (the sysctl), seconds.
    pub timeout: Option<u64>,
    pub min_left: u32,
    pub avg_left: u64,
    pub max_left: u32,
}

impl Table {
    /// Rows per (protocol, state) with the timeout in force.
    pub fn state_rows(&self, settings: &Settings) -> Vec<StateRow> {
        self.states()
            .into_iter()
            .map(|(proto, state, a)| {
                let p = crate::model::conntrack::parse_proto(proto).unwrap_or(0);
                let status = match state {
                    "ASSURED" => crate::model::conntrack::IPS_ASSURED,
                    _ => 0,
                };
                StateRow {
                    proto,
                    state,
                    count: a.count,
                    timeout: settings.timeout_of(p, CtState::parse(state), status),
                    min_left: a.min_left,
                    avg_left: a.sum_left / a.count.max(1),
                    max_left: a.max_left,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::conntrack::{Tuple, IPPROTO_UDP, IPS_ASSURED, IPS_SEEN_REPLY};

    fn entry(state: Option<CtState>, proto: u8, dst: &str, dport: u16, timeout: u32) -> Entry {
        Entry {
            family: Family::Inet,
            proto,
            tcp_state: state,
            orig: Tuple {
                src: "10.0.0.1".parse().unwrap(),
                dst: dst.parse().unwrap(),
                sport: 40000,
                dport,
            },
            reply: Tuple::default(),
            timeout,
            mark: 0,
            zone: 0,
            status: IPS_SEEN_REPLY | IPS_ASSURED,
        }
    }

    fn filled() -> Table {
        let mut t = Table::default();
        for i in 0..30 {
            t.push(&entry(
                Some(CtState::TimeWait),
                6,
                "127.0.0.2",
                8080,
                100 + i,
            ));
        }
        for _ in 0..5 {
            t.push(&entry(
                Some(CtState::Established),
                6,
                "10.0.0.9",
                443,
                400_000,
            ));
        }
        let mut u = entry(None, IPPROTO_UDP, "10.0.0.53", 53, 20);
        u.status = 0;
        t.push(&u);
        t
    }

    #[test]
    fn states_destinations_and_time_left() {
        let t = filled();
        assert_eq!(t.total, 36);
        let s = t.states();
        assert_eq!((s[0].0, s[0].1, s[0].2.count), ("tcp", "TIME_WAIT", 30));
        assert_eq!((s[0].2.min_left, s[0].2.max_left), (100, 129));
        assert_eq!(s[2].1, "UNREPLIED");
        let d = t.top_dests(Some(1));
        assert_eq!(d[0].0.to_string(), "tcp 127.0.0.2:8080");
        assert_eq!(d[0].1.main_state(), ("TIME_WAIT", 30));
        assert_eq!(t.tcp(CtState::TimeWait), 30);
    }

    #[test]
    fn filters_apply_to_the_original_direction() {
        let f = CtFilter {
            dport: vec!["8080".parse().unwrap()],
            ..CtFilter::default()
        };
        let mut t = Table::new(f);
        for e in [
            entry(Some(CtState::TimeWait), 6, "127.0.0.2", 8080, 1),
            entry(Some(CtState::TimeWait), 6, "127.0.0.2", 80, 1),
            entry(None, 1, "127.0.0.2", 8080, 1),
        ] {
            t.push(&e);
        }
        // The ICMP entry has no ports, so a port filter never keeps it.
        assert_eq!(t.total, 1);
        let f = CtFilter {
            states: vec![parse_state("time-wait").unwrap()],
            dst: vec!["127.0.0.0/8".parse().unwrap()],
            ..CtFilter::default()
        };
        assert!(f.matches(&entry(Some(CtState::TimeWait), 6, "127.0.0.9", 1, 1)));
        assert!(!f.matches(&entry(Some(CtState::TimeWait), 6, "10.0.0.9", 1, 1)));
        assert!(!f.matches(&entry(Some(CtState::Close), 6, "127.0.0.9", 1, 1)));
        assert!(parse_state("fin-wait2").unwrap_err().contains("FIN_WAIT"));
        assert_eq!(parse_state("unreplied"), Ok("UNREPLIED"));
    }

    fn rule(rule: &'static str, severity: Severity) -> Finding {
        Finding {
            rule,
            severity,
            title: String::new(),
            evidence: vec![],
            why: String::new(),
            fixes: vec![],
        }
    }

    /// Regression: the table's finding went to the end, so root (who reads the table) and an
    /// unprivileged user (who cannot) saw doctor's rules in different orders.
    #[test]
    fn the_table_finding_keeps_the_rules_place() {
        let mut f = vec![
            rule("a", Severity::Ok),
            rule("conntrack", Severity::Ok),
            rule("b", Severity::Ok),
        ];
        let m = Metrics {
            table: Table::default(),
            health: Default::default(),
        };
        m.replace_finding(&mut f, 0);
        let rules: Vec<&str> = f.iter().map(|f| f.rule).collect();
        assert_eq!(rules, ["a", "conntrack", "b"]);
        assert!(f[1]
            .evidence
            .iter()
            .any(|e| e.contains("TIME_WAIT sockets")));
    }

    #[test]
    fn groups_rank_largest_first() {
        let mut g = Groups::new(CtBy::Dst, CtFilter::default());
        for (d, n) in [("127.0.0.2", 3), ("127.0.0.3", 5)] {
            for _ in 0..n {
                g.push(&entry(Some(CtState::TimeWait), 6, d, 80, 1));
            }
        }
        assert_eq!(
            g.ranked(None),
            [
                ("127.0.0.3:80".to_string(), 5),
                ("127.0.0.2:80".to_string(), 3)
            ]
        );
        assert_eq!(g.ranked(Some(1)).len(), 1);
        g.restart();
        assert_eq!((g.total, g.ranked(None).len()), (0, 0));
    }

    #[test]
    fn doctor_names_what_fills_the_table_and_orders_the_fixes() {
        let t = filled();
        let mut s = Settings {
            count: Some(36),
            max: Some(40),
            buckets: Some(16),
            ..Settings::default()
        };
        s.timeouts
            .insert("nf_conntrack_tcp_timeout_time_wait".into(), 120);
        let f = finding(&t, &s, Some(&Stats::default()), Some(4));
        assert_eq!(f.severity, Severity::Crit);
        assert!(f.title.contains("36 of 40"), "{}", f.title);
        assert!(f.title.contains("30 tcp TIME_WAIT"), "{}", f.title);
        assert!(f.title.contains("127.0.0.2:8080"), "{}", f.title);
        assert!(
            f.evidence
                .iter()
                .any(|e| e.contains("30 conntrack entries against 4 TIME_WAIT sockets")),
            "{:?}",
            f.evidence
        );
        let order: Vec<&str> = ["NOTRACK", "time_wait", "nf_conntrack_max", "alive"].to_vec();
        assert_eq!(f.fixes.len(), 4);
        for (fix, word) in f.fixes.iter().zip(order) {
            assert!(fix.contains(word) && fix.contains("Cost"), "{fix}");
        }
        assert!(
            f.fixes[0].contains("tcp dport 8080 notrack"),
            "{}",
            f.fixes[0]
        );

        s.max = Some(1000);
        let ok = finding(&t, &s, None, None);
        assert_eq!(ok.severity, Severity::Ok);
        assert!(ok.fixes.is_empty());
        // Drops since boot with a half-full table warn.
        s.max = Some(60);
        let drops = Stats {
            drop: 3,
            ..Stats::default()
        };
        assert_eq!(finding(&t, &s, Some(&drops), None).severity, Severity::Warn);
    }
}

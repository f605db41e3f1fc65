//! `tw metrics` and each `tw serve` scrape: one read of the system facts and
//! one pass over the socket table, gathered into a [`Snapshot`] that
//! `render::prometheus` prints as Prometheus text.
//!
//! [`MetricScan`] is pure (a [`Consumer`]); [`Snapshot::collect`] is the I/O
//! half.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::analyze::doctor::{self, Finding, Scan};
use crate::model::event::{Event, EventKind};
use crate::model::facts::Facts;
use crate::model::ports::{port_capacity, PortCapacity};
use crate::model::{Consumer, Flow};
use crate::model::{Direction, Family, PortRange, Socket, TcpState};
use crate::query::Filter;
use crate::source::Source;

/// Upper bounds, in seconds, of the TIME_WAIT time-left buckets. Every
/// TIME_WAIT socket has at most TCP_TIMEWAIT_LEN (60 s) left; the timer wheel
/// can leave one at 0 for a few seconds, which lands in the first bucket.
pub const TIME_LEFT_BUCKETS: [u32; 8] = [1, 5, 10, 20, 30, 40, 50, 60];

/// What the metrics need from the socket table, in one pass: doctor's scan
/// (summary, ports per destination, queues), plus sockets per family and
/// state, and the TIME_WAIT time left in buckets.
#[derive(Debug)]
pub struct MetricScan {
    pub scan: Scan,
    /// Sockets per family (inet, inet6) and kernel state number.
    by_family_state: [[u64; 13]; 2],
    /// TIME_WAIT sockets per bucket of [`TIME_LEFT_BUCKETS`] (not cumulative);
    /// the last slot holds those above the last bound.
    time_left: [u64; TIME_LEFT_BUCKETS.len() + 1],
    time_left_sum_ms: u64,
}

impl MetricScan {
    pub fn new(range: PortRange) -> MetricScan {
        MetricScan {
            scan: Scan::new(range),
            by_family_state: [[0; 13]; 2],
            time_left: [0; TIME_LEFT_BUCKETS.len() + 1],
            time_left_sum_ms: 0,
        }
    }

    pub fn count(&self, family: Family, state: TcpState) -> u64 {
        self.by_family_state[family_index(family)][usize::from(state.kernel())]
    }

    /// Cumulative counts for each bound of [`TIME_LEFT_BUCKETS`] and for
    /// +Inf (the last): the `tw_time_wait_expiring_sockets` gauges, and the
    /// buckets of the OpenMetrics gaugehistogram.
    pub fn time_left_cumulative(&self) -> [u64; TIME_LEFT_BUCKETS.len() + 1] {
        let mut out = self.time_left;
        for i in 1..out.len() {
            out[i] += out[i - 1];
        }
        out
    }

    /// Sum of the time left on every TIME_WAIT socket, in seconds.
    pub fn time_left_sum_secs(&self) -> f64 {
        self.time_left_sum_ms as f64 / 1000.0
    }
}

fn family_index(f: Family) -> usize {
    match f {
        Family::Inet => 0,
        Family::Inet6 => 1,
    }
}

impl Consumer for MetricScan {
    fn push(&mut self, s: &Socket) -> Flow {
        self.scan.push(s)?;
        self.by_family_state[family_index(s.family)][usize::from(s.state.kernel())] += 1;
        // A FIN_WAIT2 minisocket also has a timewait timer; only TIME_WAIT
        // counts here, as in the summary.
        if s.state == TcpState::TimeWait {
            if let Some(ms) = s.timewait_ms() {
                let bucket = TIME_LEFT_BUCKETS
                    .iter()
                    .position(|b| ms <= b * 1000)
                    .unwrap_or(TIME_LEFT_BUCKETS.len());
                self.time_left[bucket] += 1;
                self.time_left_sum_ms += u64::from(ms);
            }
        }
        Flow::Continue(())
    }

    fn restart(&mut self) {
        self.scan.restart();
        self.by_family_state = [[0; 13]; 2];
        self.time_left = [0; TIME_LEFT_BUCKETS.len() + 1];
        self.time_left_sum_ms = 0;
    }
}

/// Everything one scrape shows.
#[derive(Debug)]
pub struct Snapshot {
    pub facts: Facts,
    pub scan: MetricScan,
    pub findings: Vec<Finding>,
    /// The ephemeral ports each outbound destination can use.
    pub capacity: PortCapacity,
    pub range: PortRange,
    /// The conntrack table, when there is one to read.
    pub conntrack: Option<super::conntrack::Metrics>,
    /// How long the reads and the rules took.
    pub elapsed: Duration,
}

impl Snapshot {
    /// Reads the facts and the socket table once and runs doctor's rules.
    /// Notes (a --from capture without facts, a fallback to /proc) go to
    /// `notes`.
    pub fn collect(
        source: &dyn Source,
        filter: &Filter,
        notes: &mut Vec<String>,
    ) -> Result<Snapshot> {
        let start = Instant::now();
        let facts = source.facts(notes)?;
        let range = doctor::port_range(&facts);
        let mut scan = MetricScan::new(range);
        scan.scan = doctor::scan_for(&facts);
        notes.extend(source.read(filter, &mut scan)?.notes);
        let mut findings = doctor::diagnose(&facts, &scan.scan);
        let conntrack = super::conntrack::Metrics::read(source);
        if let Some(ct) = &conntrack {
            ct.replace_finding(&mut findings, scan.scan.summary.count(TcpState::TimeWait));
        }
        // As doctor counts: without ip_local_port_range, the kernel's default
        // range less whatever is reserved.
        let reserved = facts.sysctl.ip_local_reserved_ports.as_deref();
        let capacity = port_capacity(range, reserved.unwrap_or(&[]));
        Ok(Snapshot {
            facts,
            scan,
            findings,
            capacity,
            range,
            conntrack,
            elapsed: start.elapsed(),
        })
    }
}

/// Event kinds counted per destination, listener and process: the ones that
/// say a destination or a process is in trouble (ports held, ports run out,
/// resets). The rest are counted per namespace only.
pub const KEYED_KINDS: [EventKind; 5] = [
    EventKind::TimeWait,
    EventKind::ConnectFail,
    EventKind::TwReuse,
    EventKind::RstSent,
    EventKind::RstRecv,
];

/// Counters per key with bounded cardinality that never breaks a counter:
/// the first `cap` keys seen get series of their own and keep them for the
/// life of the process (a series that vanished and came back at 0 would read
/// as a counter reset); later keys count into `other`. So every series only
/// ever grows, and there are at most `cap + 1` of them per kind.
#[derive(Debug, Clone)]
pub struct Capped<K: Ord> {
    cap: usize,
    pub series: BTreeMap<K, [u64; KEYED_KINDS.len()]>,
    pub other: [u64; KEYED_KINDS.len()],
}

impl<K: Ord> Capped<K> {
    pub fn new(cap: usize) -> Capped<K> {
        Capped {
            cap,
            series: BTreeMap::new(),
            other: [0; KEYED_KINDS.len()],
        }
    }

    fn add(&mut self, key: K, kind: usize) {
        if let Some(c) = self.series.get_mut(&key) {
            c[kind] += 1;
        } else if self.series.len() < self.cap {
            self.series.entry(key).or_insert([0; KEYED_KINDS.len()])[kind] += 1;
        } else {
            self.other[kind] += 1;
        }
    }
}

/// What `tw serve` counts from eBPF events between scrapes (pure: the serve
/// loop feeds it). Keys:
/// - destinations: the peer address and port of outbound connections, and of
///   those of unknown direction (the serve loop makes an old connection on a
///   listening port inbound first);
/// - listeners: the local port of inbound connections (the peer's port is
///   the client's ephemeral port, one per connection: no use as a label);
/// - processes: the command name (pids churn too fast to be labels); ""
///   when the kernel gave none.
#[derive(Debug, Clone)]
pub struct EventCounters {
    /// Per kind, in [`EventKind::ALL`] order.
    pub by_kind: [u64; EventKind::ALL.len()],
    pub destinations: Capped<(IpAddr, u16)>,
    pub listeners: Capped<u16>,
    pub processes: Capped<String>,
    /// Events the programs could not queue (the ring buffer was full).
    pub lost: u64,
    /// Records that did not decode (a program/decoder mismatch).
    pub undecodable: u64,
    /// Program runs the kernel skipped (the program was already running on
    /// that CPU): their events are missing.
    pub skipped: u64,
}

impl EventCounters {
    /// Counters with at most `cap` keys of their own per keyed family.
    pub fn new(cap: usize) -> EventCounters {
        EventCounters {
            by_kind: [0; EventKind::ALL.len()],
            destinations: Capped::new(cap),
            listeners: Capped::new(cap),
            processes: Capped::new(cap),
            lost: 0,
            undecodable: 0,
            skipped: 0,
        }
    }

    pub fn add(&mut self, e: &Event) {
        if let Some(i) = EventKind::ALL.iter().position(|k| *k == e.kind) {
            self.by_kind[i] += 1;
        }
        let Some(k) = KEYED_KINDS.iter().position(|k| *k == e.kind) else {
            return;
        };
        match e.direction {
            Some(Direction::Inbound) => self.listeners.add(e.local.port, k),
            _ => self.destinations.add((e.peer.addr, e.peer.port), k),
        }
        self.processes.add(e.process.comm.clone(), k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Endpoint, Timer, TimerKind};

    fn tw(family: Family, ms: Option<u32>) -> Socket {
        let ep = |s: &str| {
            let sa: std::net::SocketAddr = s.parse().unwrap();
            Endpoint::new(sa.ip(), sa.port())
        };
        let (l, p) = match family {
            Family::Inet => ("10.0.0.1:40000", "10.0.0.9:80"),
            Family::Inet6 => ("[::1]:40000", "[::1]:80"),
        };
        let mut s = Socket::new(family, TcpState::TimeWait, ep(l), ep(p));
        s.timer = ms.map(|ms| Timer {
            kind: TimerKind::TimeWait,
            ms,
        });
        s
    }

    #[test]
    fn histogram_buckets_are_upper_bounds_and_cumulative() {
        let mut m = MetricScan::new(crate::model::ports::DEFAULT_PORT_RANGE);
        // 0 and 1000 ms land in le=1; 1001 in le=5; 60000 in le=60; 61000
        // (not seen from a real kernel) only in +Inf.
        for ms in [0, 1000, 1001, 30_000, 60_000, 61_000] {
            let _ = m.push(&tw(Family::Inet, Some(ms)));
        }
        let _ = m.push(&tw(Family::Inet6, None));
        assert_eq!(m.time_left_cumulative(), [2, 3, 3, 3, 4, 4, 4, 5, 6]);
        assert_eq!(m.time_left_sum_secs(), 153.001);
        assert_eq!(m.count(Family::Inet, TcpState::TimeWait), 6);
        assert_eq!(m.count(Family::Inet6, TcpState::TimeWait), 1);
        assert_eq!(m.count(Family::Inet6, TcpState::Established), 0);
        m.restart();
        assert_eq!(m.time_left_cumulative(), [0; 9]);
        assert_eq!(m.count(Family::Inet, TcpState::TimeWait), 0);
        assert_eq!(m.scan.summary.total, 0);
    }
    fn event(kind: EventKind, dir: Option<Direction>, peer: &str, comm: &str) -> Event {
        let ep = |s: &str| {
            let sa: std::net::SocketAddr = s.parse().unwrap();
            Endpoint::new(sa.ip(), sa.port())
        };
        Event {
            ts_ns: 0,
            netns: 1,
            kind,
            process: crate::model::event::Process {
                pid: 7,
                comm: comm.into(),
            },
            family: Family::Inet,
            local: ep("10.0.0.1:8080"),
            peer: ep(peer),
            direction: dir,
            substate: None,
        }
    }

    #[test]
    fn keys_past_the_cap_count_as_other_and_admitted_keys_stay() {
        let mut c = EventCounters::new(2);
        let out = Some(Direction::Outbound);
        for peer in ["10.0.0.9:80", "10.0.0.9:443", "10.0.0.8:80", "10.0.0.9:80"] {
            c.add(&event(EventKind::TimeWait, out, peer, "curl"));
        }
        c.add(&event(EventKind::RstRecv, out, "10.0.0.7:80", "wget"));
        c.add(&event(EventKind::RstRecv, out, "10.0.0.9:443", "nc"));
        // Not keyed: counted per kind only.
        c.add(&event(EventKind::Connect, out, "10.0.0.6:80", "ssh"));
        let tw = 0;
        let rst_recv = 4;
        let d = &c.destinations;
        let k = |s: &str| {
            let sa: std::net::SocketAddr = s.parse().unwrap();
            (sa.ip(), sa.port())
        };
        assert_eq!(d.series.len(), 2);
        assert_eq!(d.series[&k("10.0.0.9:80")][tw], 2);
        assert_eq!(d.series[&k("10.0.0.9:443")][tw], 1);
        assert_eq!(d.series[&k("10.0.0.9:443")][rst_recv], 1);
        assert_eq!(d.other[tw], 1);
        assert_eq!(d.other[rst_recv], 1);
        assert_eq!(c.processes.series.len(), 2);
        assert_eq!(c.processes.series["curl"][tw], 4);
        assert_eq!(c.processes.series["wget"][rst_recv], 1);
        assert_eq!(c.processes.other[rst_recv], 1);
        assert_eq!(
            c.by_kind[EventKind::ALL
                .iter()
                .position(|k| *k == EventKind::Connect)
                .unwrap()],
            1
        );
        assert_eq!(c.by_kind.iter().sum::<u64>(), 7);
        assert!(c.listeners.series.is_empty());
    }

    #[test]
    fn inbound_events_are_keyed_by_the_listening_port() {
        let mut c = EventCounters::new(10);
        for client in ["10.0.0.5:40001", "10.0.0.5:40002", "10.0.0.6:40001"] {
            c.add(&event(
                EventKind::TimeWait,
                Some(Direction::Inbound),
                client,
                "nginx",
            ));
        }
        assert_eq!(c.listeners.series.len(), 1);
        assert_eq!(c.listeners.series[&8080][0], 3);
        assert!(c.destinations.series.is_empty());
    }
}

//! `tw metrics` and each `tw serve` scrape: one read of the system facts and
//! one pass over the socket table, gathered into a [`Snapshot`] that
//! `render::prometheus` prints as Prometheus text.
//!
//! [`MetricScan`] is pure (a [`Consumer`]); [`Snapshot::collect`] is the I/O
//! half.

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::analyze::doctor::{self, Finding, Scan};
use crate::model::facts::Facts;
use crate::model::ports::{port_capacity, PortCapacity};
use crate::model::{Consumer, Flow};
use crate::model::{Family, PortRange, Socket, TcpState};
use crate::query::Filter;
use crate::source::Source;

/// Upper bounds, in seconds, of the TIME_WAIT time-left histogram. Every
/// TIME_WAIT socket has at most TCP_TIMEWAIT_LEN (60 s) left; the timer wheel
/// can leave one at 0 for a few seconds, which lands in the first bucket.
pub const TIME_LEFT_BUCKETS: [u32; 8] = [1, 5, 10, 20, 30, 40, 50, 60];

/// What the metrics need from the socket table, in one pass: doctor's scan
/// (summary, ports per destination, queues), plus sockets per family and
/// state, and the TIME_WAIT time-left histogram.
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
    /// +Inf (the last), as a Prometheus histogram wants them.
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
        let findings = doctor::diagnose(&facts, &scan.scan);
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
            elapsed: start.elapsed(),
        })
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
}

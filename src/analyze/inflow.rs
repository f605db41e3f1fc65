//! Inflow from timer ages: how many connections entered TIME_WAIT in each
//! of the last 60 seconds, read off one snapshot, with no second sample.
//!
//! A TIME_WAIT socket's timer is set to TCP_TIMEWAIT_LEN = 60 s when it
//! enters TIME_WAIT (tcp_time_wait, net/ipv4/tcp_minisocks.c; a FIN_WAIT2
//! minisocket that gets the peer's FIN is rescheduled to 60 s in
//! tcp_timewait_state_process), and the length is fixed at compile time. So
//! a socket with t ms left entered TIME_WAIT 60 000 - t ms ago, and the
//! timers of one read are the per-second inflow of the last 60 s.
//!
//! Error bounds of the estimate, for a socket with t > 0 left:
//! - The timer reports the time asked for, not the wheel's slot: the kernel
//!   keeps `timer->expires` as requested and only the bucket is rounded up
//!   (kernel/time/timer.c, calc_wheel_index), and inet_diag reports
//!   `expires - jiffies` (inet_twsk_diag_fill) in ms, /proc in USER_HZ ticks
//!   truncated (get_timewait4_sock). The age is therefore exact to one tick:
//!   1-4 ms from netlink (HZ 1000..250), 10 ms from /proc, so a 10 s rate
//!   moves by at most the inflow of 2 ticks at its two edges (< 0.5%).
//! - The wheel fires late, never early: a 60 s timer sits in a level of
//!   4.096 s granularity at HZ=1000, so a socket may read 0 ms for up to
//!   about 4 s after its 60 s. Those (t = 0) are older than the window and
//!   are counted apart ([`Inflow::overdue`]), never in the histogram.
//! - A dump is not instantaneous (about 0.3 s at a million sockets): each
//!   timer is read at its own moment, which shifts ages by at most the dump's
//!   length, a relative error of at most dump/10 s on the 10 s rate.
//!
//! What it cannot see, so the inflow is a lower bound of connections closed
//! first by this box: entries that tcp_tw_reuse took over before the read
//! (TcpExt TWRecycled), sockets that skipped TIME_WAIT because
//! tcp_max_tw_buckets was full (TCPTimeWaitOverflow), and connections closed
//! with RST (SO_LINGER 0) or closed first by the peer.

use std::collections::HashMap;

use crate::analyze::aggregate::Destination;
use crate::model::abi::TIME_WAIT_SECS;
use crate::model::{Direction, Endpoint, Socket, TcpState};

/// Seconds of history one snapshot holds: TCP_TIMEWAIT_LEN.
pub const WINDOW_SECS: usize = TIME_WAIT_SECS as usize;
/// The rate's averaging window, in seconds: `recent` is the last 10 s,
/// `peak` the highest 10 s average in the 60 s.
pub const RATE_SECS: usize = 10;

/// Per-second inflow into TIME_WAIT over the last 60 s, from timer ages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inflow {
    /// `per_sec[a]`: sockets that entered TIME_WAIT a..a+1 s before the read.
    pub per_sec: [u32; WINDOW_SECS],
    /// TIME_WAIT sockets whose timer reads 0: older than 60 s, waiting for
    /// the timer wheel to reap them.
    pub overdue: u64,
}

impl Default for Inflow {
    fn default() -> Self {
        Inflow {
            per_sec: [0; WINDOW_SECS],
            overdue: 0,
        }
    }
}

impl Inflow {
    /// Counts one TIME_WAIT timer with `ms` left.
    pub fn add(&mut self, ms: u32) {
        if ms == 0 {
            self.overdue += 1;
            return;
        }
        let age_ms = (TIME_WAIT_SECS as u32 * 1000).saturating_sub(ms);
        let a = (age_ms / 1000) as usize;
        // A timer never reads more than 60 s; if one did, it just entered.
        self.per_sec[a.min(WINDOW_SECS - 1)] += 1;
    }

    /// Sockets in the histogram (those with time left).
    pub fn total(&self) -> u64 {
        self.per_sec.iter().map(|&n| u64::from(n)).sum()
    }

    /// Entries per second over the last [`RATE_SECS`] s.
    pub fn recent_per_s(&self) -> f64 {
        self.window_sum(0) as f64 / RATE_SECS as f64
    }

    /// The highest [`RATE_SECS`]-second average in the 60 s, in entries per
    /// second, and how many seconds ago that window began (its older edge).
    pub fn peak(&self) -> (f64, u32) {
        let mut best = (0u64, RATE_SECS as u32);
        for start in 0..=WINDOW_SECS - RATE_SECS {
            let n = self.window_sum(start);
            if n > best.0 {
                best = (n, (start + RATE_SECS) as u32);
            }
        }
        (best.0 as f64 / RATE_SECS as f64, best.1)
    }

    pub fn peak_per_s(&self) -> f64 {
        self.peak().0
    }

    /// The average over the whole 60 s, entries per second.
    pub fn mean_per_s(&self) -> f64 {
        self.total() as f64 / WINDOW_SECS as f64
    }

    /// Sockets by whole seconds of time left, 0..=60, as watch's
    /// [`exhaustion`](crate::analyze::watch::exhaustion) takes them: age
    /// a..a+1 s means 59-a..60-a s left, counted until 60-a s (the upper end,
    /// as the wheel fires late, never early); overdue ones at 0.
    pub fn time_left(&self) -> [u64; 61] {
        let mut left = [0u64; 61];
        for (a, &n) in self.per_sec.iter().enumerate() {
            left[WINDOW_SECS - 1 - a] += u64::from(n);
        }
        left[0] += self.overdue;
        left
    }

    pub fn merge(&mut self, other: &Inflow) {
        for (a, b) in self.per_sec.iter_mut().zip(other.per_sec) {
            *a += b;
        }
        self.overdue += other.overdue;
    }

    fn window_sum(&self, start: usize) -> u64 {
        self.per_sec[start..start + RATE_SECS]
            .iter()
            .map(|&n| u64::from(n))
            .sum()
    }
}

/// Seconds until a destination's ephemeral ports run out at its recent
/// inflow, `Some(0.0)` when they already have, `None` when the inflow never
/// gets there. `held`: ports it holds in every state; `held_tw`: how many of
/// those are the TIME_WAIT sockets of `inflow`; the rest are taken as
/// staying held.
pub fn exhaustion_in(usable: u64, held: u64, held_tw: u64, inflow: &Inflow) -> Option<f64> {
    if held >= usable {
        return Some(0.0);
    }
    let other = held.saturating_sub(held_tw);
    crate::analyze::watch::exhaustion(usable, other, &inflow.time_left(), inflow.recent_per_s())
}

/// Inflow for the whole read, per outbound destination and per inbound
/// listener (the local address and port the connections arrived at, so
/// 127.0.0.21:8080 and 127.0.0.22:8080 stay two).
#[derive(Debug, Default)]
pub struct InflowScan {
    pub all: Inflow,
    dests: HashMap<Destination, Inflow>,
    listeners: HashMap<Endpoint, Inflow>,
}

impl InflowScan {
    /// Counts `s` if it is a TIME_WAIT socket with a timer.
    pub fn push(&mut self, s: &Socket) {
        if s.state != TcpState::TimeWait {
            return;
        }
        let Some(ms) = s.timewait_ms() else { return };
        self.all.add(ms);
        match s.direction {
            Some(Direction::Outbound) => self
                .dests
                .entry(Destination {
                    local: s.local.addr,
                    peer: s.peer,
                })
                .or_default()
                .add(ms),
            Some(Direction::Inbound) => self.listeners.entry(s.local).or_default().add(ms),
            None => {}
        }
    }

    /// Destinations by recent inflow, highest first (ties: peak, then key).
    pub fn top_destinations(&self, top: usize) -> Vec<(Destination, Inflow)> {
        busiest(&self.dests, top)
    }

    /// Listeners by recent inflow, highest first.
    pub fn top_listeners(&self, top: usize) -> Vec<(Endpoint, Inflow)> {
        busiest(&self.listeners, top)
    }

    pub fn destination(&self, d: &Destination) -> Option<&Inflow> {
        self.dests.get(d)
    }

    /// Inflow toward one remote address and port, from every local address.
    pub fn to_peer(&self, peer: &Endpoint) -> Inflow {
        let mut sum = Inflow::default();
        for (_, f) in self.dests.iter().filter(|(d, _)| d.peer == *peer) {
            sum.merge(f);
        }
        sum
    }
}

fn busiest<K: Ord + Copy + std::hash::Hash>(
    m: &HashMap<K, Inflow>,
    top: usize,
) -> Vec<(K, Inflow)> {
    let mut v: Vec<(K, f64, f64)> = m
        .iter()
        .map(|(k, f)| (*k, f.recent_per_s(), f.peak_per_s()))
        .collect();
    v.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then(b.2.total_cmp(&a.2))
            .then(a.0.cmp(&b.0))
    });
    v.into_iter()
        .take(top)
        .map(|(k, _, _)| (k, m[&k].clone()))
        .collect()
}

/// A rate as printed: one decimal below 10/s, whole numbers above.
pub fn per_s(r: f64) -> String {
    if r < 10.0 {
        format!("{r:.1}/s")
    } else {
        format!("{r:.0}/s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Family, Timer, TimerKind};

    fn tw(local: &str, peer: &str, dir: Direction, ms: u32) -> Socket {
        let ep = |s: &str| {
            let sa: std::net::SocketAddr = s.parse().unwrap();
            Endpoint::new(sa.ip(), sa.port())
        };
        let mut s = Socket::new(Family::Inet, TcpState::TimeWait, ep(local), ep(peer));
        s.timer = Some(Timer {
            kind: TimerKind::TimeWait,
            ms,
        });
        s.direction = Some(dir);
        s
    }

    /// `rate` closes per second for `secs` seconds ending `ago` s before the
    /// read, spread evenly inside each second, as timers of one read.
    fn steady(rate: u32, secs: u32, ago: u32) -> Vec<u32> {
        let mut v = Vec::new();
        for sec in ago..ago + secs {
            for i in 0..rate {
                let age_ms = sec * 1000 + i * 1000 / rate;
                v.push(60_000 - age_ms);
            }
        }
        v
    }

    #[test]
    fn ages_fill_the_second_they_entered_in() {
        let mut f = Inflow::default();
        // Just entered; 0.5 s ago; 59.999 s ago; overdue (timer at 0).
        for ms in [60_000, 59_500, 1, 0] {
            f.add(ms);
        }
        assert_eq!((f.per_sec[0], f.per_sec[59], f.overdue), (2, 1, 1));
        assert_eq!(f.total(), 3);
        let left = f.time_left();
        assert_eq!((left[59], left[0]), (2, 2));
    }

    #[test]
    fn a_steady_load_reads_its_rate_recent_and_peak() {
        let mut f = Inflow::default();
        for ms in steady(200, 20, 0) {
            f.add(ms);
        }
        assert_eq!(f.recent_per_s(), 200.0);
        assert_eq!(f.peak(), (200.0, 10));
        // 4000 over 60 s: what TIME_WAIT/60 says, a third of the real rate.
        assert!((f.mean_per_s() - 66.7).abs() < 0.1);
    }

    #[test]
    fn a_burst_that_ended_shows_in_the_peak_not_the_recent_rate() {
        let mut f = Inflow::default();
        // 300 connections in 0.65 s, 30 s ago (the burst).
        for i in 0..300u32 {
            f.add(60_000 - (30_000 + i * 650 / 300));
        }
        assert_eq!(f.recent_per_s(), 0.0);
        let (peak, ago) = f.peak();
        assert_eq!(peak, 30.0);
        // The first window holding the whole burst: 30-40 s ago is not the
        // only one; the youngest such window is chosen.
        assert_eq!(ago, 31);
    }

    #[test]
    fn an_empty_window_has_no_rate() {
        let f = Inflow::default();
        assert_eq!((f.recent_per_s(), f.peak_per_s(), f.total()), (0.0, 0.0, 0));
    }

    #[test]
    fn scan_keeps_destinations_and_listeners_apart() {
        let mut s = InflowScan::default();
        let socks = [
            tw("10.0.0.1:40000", "10.0.0.7:80", Direction::Outbound, 59_000),
            tw("10.0.0.1:40001", "10.0.0.7:80", Direction::Outbound, 58_000),
            tw("10.0.0.1:40002", "10.0.0.8:80", Direction::Outbound, 10_000),
            tw(
                "127.0.0.21:8080",
                "127.0.0.1:50000",
                Direction::Inbound,
                59_000,
            ),
            tw(
                "127.0.0.22:8080",
                "127.0.0.1:50001",
                Direction::Inbound,
                59_000,
            ),
            tw(
                "127.0.0.22:8080",
                "127.0.0.1:50002",
                Direction::Inbound,
                59_000,
            ),
        ];
        for x in &socks {
            s.push(x);
        }
        assert_eq!(s.all.total(), 6);
        let d = s.top_destinations(5);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].0.peer.to_string(), "10.0.0.7:80");
        assert_eq!(d[0].1.recent_per_s(), 0.2);
        // 50 s ago: out of the recent window, in the peak.
        assert_eq!((d[1].1.recent_per_s(), d[1].1.peak_per_s()), (0.0, 0.1));
        let l = s.top_listeners(5);
        let names: Vec<String> = l.iter().map(|(e, _)| e.to_string()).collect();
        assert_eq!(names, ["127.0.0.22:8080", "127.0.0.21:8080"]);
    }

    #[test]
    fn exhaustion_at_the_recent_rate_or_already() {
        let mut f = Inflow::default();
        for ms in steady(100, 10, 0) {
            f.add(ms);
        }
        // 1000 TIME_WAIT held, 100 others, 2000 usable, 100/s: 900 more ports
        // in 9 s, before any of today's TIME_WAIT expires (50 s from now).
        let t = exhaustion_in(2000, 1100, 1000, &f).unwrap();
        assert!((t - 9.0).abs() < 1e-9, "{t}");
        assert_eq!(exhaustion_in(2000, 2000, 1000, &f), Some(0.0));
        // 100/s x 60 s = 6000 > 28 232? no: never.
        assert_eq!(exhaustion_in(28_232, 1000, 1000, &f), None);
        assert_eq!(exhaustion_in(2000, 0, 0, &Inflow::default()), None);
    }
}

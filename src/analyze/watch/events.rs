//! `tw watch` with eBPF events: what one interval's events count (exact
//! TIME_WAIT entries, connect() failures for want of a port, tcp_tw_reuse
//! takeovers, per destination and per process), and the projection that
//! carries TIME_WAIT per destination forward between full dumps.
//!
//! A TIME_WAIT socket's life is fixed (TCP_TIMEWAIT_LEN), so what a dump saw
//! (each socket's time left) plus what entered since (the events) says how
//! many are held at any later moment, without reading the table again; what
//! can end one early is a takeover by connect() (tcp_twsk_unique), which is
//! an event too. Pure: fed events and dumps, asked for counts.

use std::collections::{BTreeMap, HashMap};

use crate::analyze::aggregate::{Destination, TW_SLOTS, TW_SLOT_SECS};
use crate::model::event::{Event, EventKind, Process};
use crate::model::ports::PortRange;
use crate::model::{Direction, Endpoint};

/// A 60 s timer sits in the timer wheel's level of 4,096 ms granularity
/// (HZ=1000, kernel/time/timer.c calc_wheel_index): it fires up to that much
/// after the time a dump reads (`idiag_expires` is the time asked for), never
/// before. The projection spreads each expiry over that window.
pub const LATE_MS: i64 = 4096;

/// Entries are grouped by when they expire, in steps of this many ms.
const STEP_MS: i64 = 100;

/// Processes per interval past this many are summed into one `(other)` row.
pub const MAX_PROCESSES: usize = 10_000;

/// Counts of one interval, in total or for one destination.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventCounts {
    /// Sockets that entered TIME_WAIT (with the FIN_WAIT2 substate).
    pub time_wait: u64,
    /// connect() calls that failed with EADDRNOTAVAIL.
    pub connect_failed: u64,
    /// TIME_WAIT 4-tuples connect() took over (tcp_tw_reuse).
    pub reused: u64,
}

/// One interval's events.
#[derive(Debug, Default)]
pub struct Interval {
    pub total: EventCounts,
    /// Outbound destinations (local address, peer): as `tw ports` groups them.
    pub by_dest: HashMap<Destination, EventCounts>,
    /// TIME_WAIT made per process.
    pub by_process: HashMap<Process, u64>,
    /// Events the programs could not queue (a full ring buffer).
    pub lost: u64,
}

/// The outbound destination an event belongs to: connect() failures always
/// (the socket never got a port), TIME_WAIT and takeovers when the socket
/// is not known to be inbound and its local port is ephemeral (what
/// `tw ports` counts as held).
pub fn destination(e: &Event, range: PortRange) -> Option<Destination> {
    let outbound = match e.kind {
        EventKind::ConnectFail => true,
        EventKind::TimeWait | EventKind::TwReuse => {
            e.direction != Some(Direction::Inbound) && range.contains(e.local.port)
        }
        _ => false,
    };
    outbound.then_some(Destination {
        local: e.local.addr,
        peer: e.peer,
    })
}

impl Interval {
    /// Counts `e` (other kinds are not watch's), toward `dest` if outbound.
    pub fn add(&mut self, e: &Event, dest: Option<Destination>) {
        let bump = |c: &mut EventCounts| match e.kind {
            EventKind::TimeWait => c.time_wait += 1,
            EventKind::ConnectFail => c.connect_failed += 1,
            EventKind::TwReuse => c.reused += 1,
            _ => {}
        };
        if !matches!(
            e.kind,
            EventKind::TimeWait | EventKind::ConnectFail | EventKind::TwReuse
        ) {
            return;
        }
        bump(&mut self.total);
        if let Some(d) = dest {
            bump(self.by_dest.entry(d).or_default());
        }
        if e.kind == EventKind::TimeWait {
            let p = if self.by_process.len() >= MAX_PROCESSES
                && !self.by_process.contains_key(&e.process)
            {
                Process {
                    pid: 0,
                    comm: "(other)".into(),
                }
            } else {
                e.process.clone()
            };
            *self.by_process.entry(p).or_default() += 1;
        }
    }

    /// The `n` processes that made the most TIME_WAIT, most first, ties by pid.
    pub fn top_processes(&self, n: usize) -> Vec<(Process, u64)> {
        let mut v: Vec<(Process, u64)> = self
            .by_process
            .iter()
            .map(|(p, c)| (p.clone(), *c))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(n);
        v
    }
}

/// TIME_WAIT sockets of one group by when they expire: each entry is `n`
/// sockets whose expiry is spread evenly over `[from, to)` ms.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expiries(BTreeMap<(i64, i64), u64>);

impl Expiries {
    /// A dump at `at_ms` found `left[i]` sockets with i..i+1 s left.
    pub fn from_dump(at_ms: i64, left: &[u64; 61]) -> Expiries {
        let mut e = Expiries::default();
        for (i, &n) in left.iter().enumerate() {
            if n > 0 {
                let from = at_ms + i as i64 * 1000;
                *e.0.entry((from, from + 1000 + LATE_MS)).or_default() += n;
            }
        }
        e
    }

    /// One socket entered TIME_WAIT at `at_ms`: it expires 60 s later (and
    /// up to [`LATE_MS`] after that).
    pub fn entered(&mut self, at_ms: i64) {
        let from = (at_ms + super::TIME_WAIT_MS).div_euclid(STEP_MS) * STEP_MS;
        *self.0.entry((from, from + STEP_MS + LATE_MS)).or_default() += 1;
    }

    /// connect() took one over at `at_ms`: tcp_twsk_unique takes a TIME_WAIT
    /// older than 1 s; which one is not said, so the oldest goes.
    pub fn taken_over(&mut self, at_ms: i64) {
        let oldest = self
            .0
            .iter_mut()
            .find(|((_, to), n)| *to > at_ms && **n > 0)
            .map(|(k, n)| {
                *n -= 1;
                (*k, *n)
            });
        if let Some((k, 0)) = oldest {
            self.0.remove(&k);
        }
    }

    /// Drops what has surely expired by `now_ms`.
    pub fn prune(&mut self, now_ms: i64) {
        self.0.retain(|(_, to), _| *to > now_ms);
    }

    /// The part of each entry still held at `now_ms`, with the seconds it
    /// still has on average.
    fn held(&self, now_ms: i64) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.0.iter().filter_map(move |(&(from, to), &n)| {
            if to <= now_ms {
                return None;
            }
            let start = from.max(now_ms);
            let part = (to - start) as f64 / (to - from) as f64;
            let mid_left = ((start + to) as f64 / 2.0 - now_ms as f64) / 1000.0;
            Some((n as f64 * part, mid_left))
        })
    }

    /// Sockets held at `now_ms`, and per whole second left (0..=60), in one
    /// pass: [`Expiries::count`] and [`Expiries::seconds_left`] together.
    pub fn at(&self, now_ms: i64) -> (u64, [u64; 61]) {
        let mut f = [0.0f64; 61];
        let mut total = 0.0;
        for (n, left) in self.held(now_ms) {
            f[(left as usize).min(60)] += n;
            total += n;
        }
        (total.round() as u64, f.map(|v| v.round() as u64))
    }

    /// Sockets held at `now_ms`. Called for every destination every
    /// interval (thousands at a million sockets): whole entries are summed
    /// as integers.
    pub fn count(&self, now_ms: i64) -> u64 {
        let (mut whole, mut part) = (0u64, 0.0f64);
        for (&(from, to), &n) in &self.0 {
            if to <= now_ms {
                continue;
            }
            if from >= now_ms {
                whole += n;
            } else {
                part += n as f64 * (to - now_ms) as f64 / (to - from) as f64;
            }
        }
        whole + part.round() as u64
    }

    /// Sockets held at `now_ms` per 5 s slot of time left (as
    /// `left_5s_slots`), by the time they have on average.
    pub fn slots(&self, now_ms: i64) -> [u64; TW_SLOTS] {
        let mut f = [0.0f64; TW_SLOTS];
        for (n, left) in self.held(now_ms) {
            let i = ((left / f64::from(TW_SLOT_SECS)) as usize).min(TW_SLOTS - 1);
            f[i] += n;
        }
        f.map(|v| v.round() as u64)
    }

    /// Sockets held at `now_ms` per whole second left, 0..=60, for
    /// [`super::exhaustion`].
    pub fn seconds_left(&self, now_ms: i64) -> [u64; 61] {
        let mut f = [0.0f64; 61];
        for (n, left) in self.held(now_ms) {
            f[(left as usize).min(60)] += n;
        }
        f.map(|v| v.round() as u64)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// TIME_WAIT carried forward from the last dump: every socket, the outbound
/// ones in the ephemeral range, and those per destination.
#[derive(Debug, Default)]
pub struct Projection {
    pub all: Expiries,
    pub outbound: Expiries,
    pub dests: HashMap<Destination, DestProjection>,
}

/// One destination between dumps.
#[derive(Debug, Default)]
pub struct DestProjection {
    pub time_wait: Expiries,
    /// As the last dump saw them: ports held in other states, and held
    /// ports of the parity connect() tries first.
    pub other: u64,
    pub held_preferred: u64,
}

impl Projection {
    /// Counts an event seen at `at_ms`; `dest` as [`destination`] says.
    pub fn event(&mut self, kind: EventKind, at_ms: i64, dest: Option<Destination>) {
        match kind {
            EventKind::TimeWait => {
                self.all.entered(at_ms);
                if let Some(d) = dest {
                    self.outbound.entered(at_ms);
                    self.dests.entry(d).or_default().time_wait.entered(at_ms);
                }
            }
            EventKind::TwReuse => {
                self.all.taken_over(at_ms);
                if let Some(d) = dest {
                    self.outbound.taken_over(at_ms);
                    if let Some(e) = self.dests.get_mut(&d) {
                        e.time_wait.taken_over(at_ms);
                    }
                }
            }
            _ => {}
        }
    }

    /// Forgets what expired by `now_ms`, and destinations left holding
    /// nothing.
    pub fn prune(&mut self, now_ms: i64) {
        self.all.prune(now_ms);
        self.outbound.prune(now_ms);
        self.dests.retain(|_, e| {
            e.time_wait.prune(now_ms);
            !e.time_wait.is_empty() || e.other > 0
        });
    }
}

/// The hash a dump keeps of each TIME_WAIT 4-tuple, so an event can be told
/// apart from a socket the dump already counted.
pub fn tuple_key(local: &Endpoint, peer: &Endpoint) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (local, peer).hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Family;

    fn event(kind: EventKind, port: u16, dir: Option<Direction>, pid: u32) -> Event {
        Event {
            ts_ns: 0,
            netns: 1,
            kind,
            process: Process {
                pid,
                comm: format!("p{pid}"),
            },
            family: Family::Inet,
            local: Endpoint::new("127.0.0.1".parse().unwrap(), port),
            peer: Endpoint::new("127.0.0.2".parse().unwrap(), 80),
            direction: dir,
            substate: None,
        }
    }

    const RANGE: PortRange = PortRange {
        lo: 40000,
        hi: 40099,
    };

    #[test]
    fn an_interval_counts_kinds_per_destination_and_process() {
        let mut i = Interval::default();
        let out = Some(Direction::Outbound);
        for (kind, port, dir, pid) in [
            (EventKind::TimeWait, 40001, out, 7),
            (EventKind::TimeWait, 40002, None, 7),
            (EventKind::TimeWait, 40003, out, 8),
            // Inbound, and outside the range: no destination.
            (EventKind::TimeWait, 40004, Some(Direction::Inbound), 9),
            (EventKind::TimeWait, 5000, out, 9),
            (EventKind::ConnectFail, 0, out, 7),
            (EventKind::TwReuse, 40005, out, 7),
            (EventKind::Connect, 40006, out, 7),
        ] {
            let e = event(kind, port, dir, pid);
            i.add(&e, destination(&e, RANGE));
        }
        assert_eq!(
            i.total,
            EventCounts {
                time_wait: 5,
                connect_failed: 1,
                reused: 1
            }
        );
        assert_eq!(i.by_dest.len(), 1);
        let d = i.by_dest.values().next().unwrap();
        assert_eq!((d.time_wait, d.connect_failed, d.reused), (3, 1, 1));
        let top = i.top_processes(2);
        assert_eq!(
            top.iter().map(|(p, n)| (p.pid, *n)).collect::<Vec<_>>(),
            [(7, 2), (9, 2)]
        );
    }

    #[test]
    fn processes_past_the_bound_fold_into_one_row() {
        let mut i = Interval::default();
        for pid in 0..MAX_PROCESSES as u32 + 3 {
            i.add(&event(EventKind::TimeWait, 40001, None, pid + 1), None);
        }
        assert_eq!(i.by_process.len(), MAX_PROCESSES + 1);
        let other = i.by_process.iter().find(|(p, _)| p.comm == "(other)");
        assert_eq!(other.map(|(_, n)| *n), Some(3));
    }

    #[test]
    fn a_dump_projects_forward_as_its_timers_run_out() {
        let mut left = [0u64; 61];
        left[10] = 100; // 10-11 s left at t=0
        left[40] = 50; // 40-41 s left
        let e = Expiries::from_dump(0, &left);
        assert_eq!(e.count(0), 150);
        assert_eq!(e.count(9_000), 150, "nothing expires before 10 s");
        // The first 100 expire over 10..15.1 s (1 s of spread, 4.1 s late).
        let mid = e.count(12_548);
        assert!((99..=101).contains(&mid), "{mid}");
        assert_eq!(e.count(15_096), 50);
        assert_eq!(e.count(40_000), 50);
        assert_eq!(e.count(45_096), 0);
        // Slots at t=5 s: the 100 have 5-10 s left (slot 1), the 50 35-40 s
        // (slot 7).
        let s = e.slots(5_000);
        assert_eq!((s[1], s[7], s.iter().sum::<u64>()), (100, 50, 150));
        let secs = e.seconds_left(5_000);
        assert_eq!((secs[7], secs[37]), (100, 50));
        assert_eq!(e.at(5_000), (150, secs));
        assert_eq!(e.at(12_548).0, mid);
    }

    #[test]
    fn entries_since_the_dump_add_and_takeovers_remove() {
        let mut p = Projection::default();
        let d = Destination {
            local: "127.0.0.1".parse().unwrap(),
            peer: Endpoint::new("127.0.0.2".parse().unwrap(), 80),
        };
        let mut left = [0u64; 61];
        left[1] = 10;
        p.all = Expiries::from_dump(0, &left);
        p.dests.insert(
            d,
            DestProjection {
                time_wait: Expiries::from_dump(0, &left),
                ..DestProjection::default()
            },
        );
        // 300 enter over the next second, toward d.
        for k in 0..300 {
            p.event(EventKind::TimeWait, k * 1000 / 300, Some(d));
        }
        assert_eq!(p.dests[&d].time_wait.count(1_000), 310);
        // Two are taken over: the oldest ones go.
        p.event(EventKind::TwReuse, 1_000, Some(d));
        p.event(EventKind::TwReuse, 1_000, Some(d));
        assert_eq!(p.dests[&d].time_wait.count(1_000), 308);
        assert_eq!(p.all.count(1_000), 308);
        // At 10 s the dump's other 8 are gone (1-2 s left, at most 6.1 s
        // with the wheel); the 300 new ones stay until 60 s: 50-55 s left.
        assert_eq!(p.dests[&d].time_wait.count(10_000), 300);
        let s = p.dests[&d].time_wait.slots(10_000);
        assert_eq!((s[9], s[10]), (0, 300), "{s:?}");
        // Past 65.1 s everything is gone, and pruning drops the destination.
        p.prune(66_000);
        assert!(p.dests.is_empty() && p.all.is_empty());
    }

    #[test]
    fn a_takeover_of_nothing_known_changes_nothing() {
        let mut e = Expiries::default();
        e.taken_over(0);
        assert!(e.is_empty());
        e.entered(0);
        e.taken_over(70_000);
        assert_eq!(e.count(0), 1, "past its life: not the one taken over");
    }
}

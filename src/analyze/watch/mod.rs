//! `tw watch`'s rate model: consecutive samples of the socket table turned
//! into rates: how many connections enter TIME_WAIT per second, where the
//! TIME_WAIT count will settle, and how long each outbound destination has
//! until its ephemeral ports run out.
//!
//! [`Watcher`] is pure: it is fed sockets and the system facts of each
//! sample and returns a [`Record`], one per sample. The pacing loop and the
//! views are `app::watch`'s.

pub mod events;
mod record;

use std::collections::{HashMap, VecDeque};

use anyhow::Result;

pub use record::{
    CountFrom, DestinationRecord, InflowFrom, ProcessRecord, Record, StateCounts, TimeWaitRecord,
};

use crate::analyze::aggregate::{Destination, TW_SLOTS};
use crate::analyze::doctor::{self, Scan};
use crate::analyze::inflow::RATE_SECS;
use crate::model::abi::TIME_WAIT_SECS;
use crate::model::event::{Event, EventKind};
use crate::model::facts::Facts;
use crate::model::ports::{port_capacity, PortRange, DEFAULT_PORT_RANGE};
use crate::model::{Consumer, Direction, Flow, Socket, StateSet, TcpState};
use events::{EventCounts, Expiries, Interval, Projection};

/// TCP_TIMEWAIT_LEN in milliseconds.
const TIME_WAIT_MS: i64 = TIME_WAIT_SECS as i64 * 1000;

/// Rates are averaged over the intervals of the last 10 s (at least one),
/// so a forecast does not jump with every sample.
pub const RATE_WINDOW_MS: i64 = 10_000;

/// The same 4-tuple seen in TIME_WAIT twice counts as a new entry when its
/// timer says it entered TIME_WAIT this much later than the first time: with
/// tcp_tw_reuse, connect() takes over a TIME_WAIT 4-tuple (tcp_twsk_unique)
/// and the new connection may close into TIME_WAIT again before the next
/// sample. Larger than the jitter of the estimate (a timer is read at some
/// point of a dump that takes up to 0.4 s at a million sockets).
const REENTRY_SLACK_MS: i64 = 500;

/// A destination's TIME_WAIT in this sample.
#[derive(Debug, Clone)]
struct DestTimeWait {
    count: u64,
    new: u64,
    /// Sockets by whole seconds of time left, 0..=60.
    left: [u64; 61],
}

impl Default for DestTimeWait {
    fn default() -> Self {
        DestTimeWait {
            count: 0,
            new: 0,
            left: [0; 61],
        }
    }
}

/// The [`Consumer`] of one sample: everything [`Scan`] gathers, plus the
/// TIME_WAIT 4-tuples, each with the moment it entered TIME_WAIT, to compare
/// with the previous sample's.
struct Sampler {
    scan: Scan,
    now_ms: i64,
    /// Hash of each TIME_WAIT 4-tuple -> when it entered TIME_WAIT (ms since
    /// the watch began), for this sample and the previous one. A 64-bit hash
    /// instead of the tuple keeps a million entries at about 16 MB; a false
    /// match needs a collision (odds about n^2 / 2^65).
    cur: HashMap<u64, i64>,
    prev: HashMap<u64, i64>,
    new: u64,
    dests: HashMap<Destination, DestTimeWait>,
    /// Listening ports of earlier samples -> when last seen (ms). A socket
    /// on such a port whose listener is gone now (a restart between two
    /// samples) was accepted on it: inbound, for as long as its TIME_WAIT
    /// can last.
    listened: HashMap<u16, i64>,
    /// TIME_WAIT by whole seconds left, 0..=60: all of them, and the
    /// outbound ones in the ephemeral range (for the events' projection).
    all_left: [u64; 61],
    out_left: [u64; 61],
    /// With events: the tuple differences are not needed.
    events: bool,
}

/// With events, a dump keeps the tuples of TIME_WAIT sockets that entered
/// it this recently (ms before the dump began): only those can also be an
/// event polled after the dump.
const RECENT_MS: i64 = 2000;

impl Sampler {
    fn entered(&self, s: &Socket) -> i64 {
        // The timer was set to TCP_TIMEWAIT_LEN on entry (tcp_time_wait, and
        // tcp_timewait_state_process when a FIN_WAIT2 minisocket moves on).
        self.now_ms - (TIME_WAIT_MS - s.timewait_ms().map_or(0, i64::from))
    }
}

fn tuple_key(s: &Socket) -> u64 {
    events::tuple_key(&s.local, &s.peer)
}

impl Consumer for Sampler {
    fn push(&mut self, s: &Socket) -> Flow {
        let mut fixed;
        let mut s = s;
        if s.state == TcpState::Listen {
            self.listened.insert(s.local.port, self.now_ms);
        } else if s.direction == Some(Direction::Outbound)
            && self
                .listened
                .get(&s.local.port)
                .is_some_and(|&at| self.now_ms - at <= TIME_WAIT_MS)
        {
            fixed = *s;
            fixed.direction = Some(Direction::Inbound);
            s = &fixed;
        }
        self.scan.push(s)?;
        if s.state != TcpState::TimeWait {
            return Flow::Continue(());
        }
        let entered = self.entered(s);
        let new = if self.events {
            // The events count the inflow; the dump keeps only the tuples
            // an event polled after it could also be (see Watcher::event),
            // which saves a million hash inserts at a million sockets.
            if entered >= self.now_ms - RECENT_MS {
                self.cur.insert(tuple_key(s), entered);
            }
            false
        } else {
            let key = tuple_key(s);
            let new = self
                .prev
                .get(&key)
                .is_none_or(|&before| entered > before + REENTRY_SLACK_MS);
            self.cur.insert(key, entered);
            new
        };
        self.new += u64::from(new);
        let secs = s.timewait_ms().map_or(0, |ms| ms / 1000).min(60) as usize;
        self.all_left[secs] += 1;
        // The same sockets PortGroups counts as holding a destination's port.
        if s.direction == Some(Direction::Outbound)
            && self.scan.ports.range().contains(s.local.port)
        {
            let d = self.dests.entry(Destination {
                local: s.local.addr,
                peer: s.peer,
            });
            let d = d.or_default();
            d.count += 1;
            d.new += u64::from(new);
            d.left[secs] += 1;
            self.out_left[secs] += 1;
        }
        Flow::Continue(())
    }

    fn restart(&mut self) {
        self.scan.restart();
        self.cur.clear();
        self.new = 0;
        self.dests.clear();
        self.all_left = [0; 61];
        self.out_left = [0; 61];
    }
}

/// The previous sample, for differences.
#[derive(Debug, Clone, Copy)]
struct Mark {
    ms: i64,
    kernel_tw: Option<i64>,
    kernel_recycled: Option<i64>,
}

/// One interval's new TIME_WAIT, kept for the rate window.
#[derive(Debug)]
struct Step {
    ms: i64,
    new: u64,
    by_dest: HashMap<Destination, u64>,
}

/// What one record is made of, from a dump or projected between dumps.
struct Snapshot {
    total: u64,
    states: StateCounts,
    count: u64,
    inbound: u64,
    outbound: u64,
    left_5s: [u64; TW_SLOTS],
    /// Entries into TIME_WAIT this interval.
    new: u64,
    /// The inflow from timer ages, for the first sample.
    first_rate: f64,
    range: PortRange,
    dests: Vec<DestSnapshot>,
}

struct DestSnapshot {
    d: Destination,
    held: u64,
    held_preferred: u64,
    time_wait: u64,
    new: u64,
    /// TIME_WAIT by whole seconds left; `None` between dumps for a
    /// destination with no inflow in the rate window, where only their sum
    /// (`time_wait`) matters to the forecasts.
    left: Option<Box<[u64; 61]>>,
    first_rate: f64,
    events: Option<EventCounts>,
}

/// What the last full dump saw, kept between dumps (events).
#[derive(Debug, Clone)]
struct Dumped {
    at_ms: i64,
    total: u64,
    states: StateCounts,
    range: PortRange,
}

/// Watch with eBPF events: the interval's counts and the projection.
struct EventState {
    range: PortRange,
    interval: Interval,
    projection: Projection,
    dumped: Option<Dumped>,
    /// When the last dump's read began and ended (ms): an event up to then
    /// may be in it already.
    dump_start_ms: i64,
    dump_end_ms: i64,
    /// When the projection last dropped what expired.
    pruned_ms: i64,
}

/// Turns samples into [`Record`]s.
pub struct Watcher {
    sampler: Sampler,
    last: Option<Mark>,
    /// When the first sample was taken.
    start_ms: i64,
    window: VecDeque<Step>,
    top: usize,
    /// False when the filters leave TIME_WAIT out: there is no inflow to see.
    time_wait_watched: bool,
    /// Label of the namespace the samples come from, for the records.
    netns: Option<String>,
    events: Option<EventState>,
}

impl Watcher {
    /// `top`: how many destinations a record lists; `states`: the filter's.
    pub fn new(top: usize, states: StateSet) -> Watcher {
        Watcher {
            sampler: Sampler {
                scan: Scan::new(DEFAULT_PORT_RANGE),
                now_ms: 0,
                cur: HashMap::new(),
                prev: HashMap::new(),
                new: 0,
                dests: HashMap::new(),
                listened: HashMap::new(),
                all_left: [0; 61],
                out_left: [0; 61],
                events: false,
            },
            last: None,
            start_ms: 0,
            window: VecDeque::new(),
            top,
            time_wait_watched: states.contains(TcpState::TimeWait),
            netns: None,
            events: None,
        }
    }

    /// Labels every record with the namespace watched (`--netns`).
    pub fn in_netns(mut self, label: Option<String>) -> Watcher {
        self.netns = label;
        self
    }

    /// The inflow comes from events ([`Watcher::event`]), exact, and
    /// [`Watcher::project`] can stand in for a dump.
    pub fn with_events(mut self) -> Watcher {
        self.sampler.events = true;
        self.events = Some(EventState {
            range: DEFAULT_PORT_RANGE,
            interval: Interval::default(),
            projection: Projection::default(),
            dumped: None,
            dump_start_ms: i64::MIN,
            dump_end_ms: i64::MIN,
            pruned_ms: 0,
        });
        self
    }

    /// Whether the inflow comes from events.
    pub fn has_events(&self) -> bool {
        self.events.is_some()
    }

    /// One event (already filtered), which happened at `at_ms` on the
    /// watch's clock.
    pub fn event(&mut self, e: &Event, at_ms: i64) {
        let Some(ev) = self.events.as_mut() else {
            return;
        };
        let dest = events::destination(e, ev.range);
        ev.interval.add(e, dest);
        // Up to the end of the last dump, the dump may have seen the socket
        // already: a TIME_WAIT it listed is counted, a takeover of one it
        // did not list happened before it read that bucket.
        if at_ms <= ev.dump_end_ms && at_ms >= ev.dump_start_ms - RECENT_MS / 2 {
            let listed = self
                .sampler
                .prev
                .contains_key(&events::tuple_key(&e.local, &e.peer));
            match e.kind {
                EventKind::TimeWait if listed => return,
                EventKind::TwReuse if !listed => return,
                _ => {}
            }
        }
        ev.projection.event(e.kind, at_ms, dest);
    }

    /// Events the programs lost (a full ring buffer) since the last call.
    pub fn lost(&mut self, n: u64) {
        if let Some(ev) = self.events.as_mut() {
            ev.interval.lost += n;
        }
    }

    /// The dump of the last [`Watcher::sample`] ended at `end_ms`.
    pub fn dump_ended(&mut self, end_ms: i64) {
        if let Some(ev) = self.events.as_mut() {
            ev.dump_end_ms = end_ms;
        }
    }

    /// Takes one sample: `read` pushes the socket table into the consumer it
    /// is given. `now_ms` is the monotonic time of the read's start, `unix_s`
    /// the same moment as wall-clock time, `facts` the system facts read just
    /// before it (port range, TcpExt counters).
    pub fn sample(
        &mut self,
        now_ms: i64,
        unix_s: f64,
        facts: &Facts,
        read: impl FnOnce(&mut dyn Consumer) -> Result<()>,
    ) -> Result<Record> {
        let s = &mut self.sampler;
        s.scan = doctor::scan_for(facts);
        s.now_ms = now_ms;
        s.cur.clear();
        s.new = 0;
        s.dests.clear();
        s.all_left = [0; 61];
        s.out_left = [0; 61];
        read(s)?;
        let s = &self.sampler;
        let sum = &s.scan.summary;
        let empty = DestTimeWait::default();
        let mut snap = Snapshot {
            total: sum.total,
            states: StateCounts::from_fn(|st| sum.count(st)),
            count: sum.count(TcpState::TimeWait),
            inbound: sum.time_wait_inbound,
            outbound: sum.time_wait_outbound,
            left_5s: sum.time_wait_left,
            new: s.new,
            first_rate: sum.inflow.all.recent_per_s(),
            range: s.scan.ports.range(),
            dests: s
                .scan
                .ports
                .ranked(None)
                .into_iter()
                .map(|(d, u)| {
                    let tw = s.dests.get(&d).unwrap_or(&empty);
                    DestSnapshot {
                        d,
                        held: u.held,
                        held_preferred: u.held_preferred,
                        time_wait: tw.count,
                        new: tw.new,
                        left: Some(Box::new(tw.left)),
                        first_rate: u.inflow.recent_per_s(),
                        events: None,
                    }
                })
                .collect(),
        };
        let interval = self.events.as_mut().map(|ev| {
            // The projection starts again from what the dump saw.
            let mut p = Projection {
                all: Expiries::from_dump(now_ms, &s.all_left),
                outbound: Expiries::from_dump(now_ms, &s.out_left),
                dests: HashMap::new(),
            };
            for (d, tw) in &s.dests {
                p.dests.entry(*d).or_default().time_wait = Expiries::from_dump(now_ms, &tw.left);
            }
            for d in &snap.dests {
                let e = p.dests.entry(d.d).or_default();
                e.other = d.held.saturating_sub(d.time_wait);
                e.held_preferred = d.held_preferred;
            }
            ev.projection = p;
            ev.range = snap.range;
            ev.dump_start_ms = now_ms;
            ev.dump_end_ms = now_ms;
            ev.dumped = Some(Dumped {
                at_ms: now_ms,
                total: snap.total,
                states: snap.states,
                range: snap.range,
            });
            std::mem::take(&mut ev.interval)
        });
        if let Some(i) = &interval {
            with_events(&mut snap, i);
        }
        let mut record = self.finish(now_ms, unix_s, facts, snap);
        if let Some(i) = &interval {
            self.add_event_fields(&mut record, i, 0.0, CountFrom::Dump);
        }
        let s = &mut self.sampler;
        std::mem::swap(&mut s.prev, &mut s.cur);
        s.listened.retain(|_, at| now_ms - *at <= TIME_WAIT_MS);
        Ok(record)
    }

    /// A record without a dump (events only): TIME_WAIT's count from the
    /// namespace's sockstat (`facts`), per destination from the last dump
    /// projected forward with the events since; the states and the ports
    /// held in other states as the last dump saw them. `None` before the
    /// first dump.
    pub fn project(&mut self, now_ms: i64, unix_s: f64, facts: &Facts) -> Option<Record> {
        let ev = self.events.as_mut()?;
        let dumped = ev.dumped.clone()?;
        let p = &mut ev.projection;
        // Pruning only frees memory (counts skip what expired): every 10 s.
        if now_ms - ev.pruned_ms >= 10_000 {
            p.prune(now_ms);
            ev.pruned_ms = now_ms;
        }
        let projected = p.all.count(now_ms);
        let (count, count_from) = match facts.sockstat.tcp_tw {
            Some(n) => (n.max(0) as u64, CountFrom::Sockstat),
            None => (projected, CountFrom::Projection),
        };
        let outbound = p.outbound.count(now_ms).min(count);
        let interval = std::mem::take(&mut ev.interval);
        // The histogram of time left only where there is inflow to forecast
        // from; elsewhere the count is all the forecast needs.
        let flowing: std::collections::HashSet<Destination> = interval
            .by_dest
            .iter()
            .filter(|(_, e)| e.time_wait > 0)
            .map(|(d, _)| *d)
            .chain(self.window.iter().flat_map(|w| w.by_dest.keys().copied()))
            .collect();
        let flowing = |d: &Destination| !flowing.is_empty() && flowing.contains(d);
        let mut dests: Vec<DestSnapshot> = p
            .dests
            .iter()
            .map(|(d, e)| {
                let (time_wait, left) = if flowing(d) {
                    let (n, left) = e.time_wait.at(now_ms);
                    (n, Some(Box::new(left)))
                } else {
                    (e.time_wait.count(now_ms), None)
                };
                DestSnapshot {
                    d: *d,
                    held: e.other + time_wait,
                    held_preferred: e.held_preferred,
                    time_wait,
                    new: 0,
                    left,
                    first_rate: 0.0,
                    events: None,
                }
            })
            .filter(|d| d.held > 0)
            .collect();
        dests.sort_by(|a, b| b.held.cmp(&a.held).then(a.d.cmp(&b.d)));
        let mut states = dumped.states;
        states.time_wait = count;
        let mut snap = Snapshot {
            total: (dumped.total + count).saturating_sub(dumped.states.time_wait),
            states,
            count,
            inbound: count - outbound,
            outbound,
            left_5s: p.all.slots(now_ms),
            new: 0,
            first_rate: 0.0,
            range: dumped.range,
            dests,
        };
        with_events(&mut snap, &interval);
        let age = (now_ms - dumped.at_ms) as f64 / 1000.0;
        let mut record = self.finish(now_ms, unix_s, facts, snap);
        self.add_event_fields(&mut record, &interval, age, count_from);
        Some(record)
    }

    fn add_event_fields(&self, r: &mut Record, i: &Interval, age: f64, from: CountFrom) {
        r.inflow_from = Some(InflowFrom::Events);
        r.dump_age_s = Some(age);
        r.events_lost = Some(i.lost);
        r.time_wait.count_from = Some(from);
        r.time_wait.connect_failed = Some(i.total.connect_failed);
        r.time_wait.tw_reused = Some(i.total.reused);
        let secs = r.interval_s.unwrap_or(0.0);
        r.processes = Some(
            i.top_processes(self.top)
                .into_iter()
                .map(|(p, n)| ProcessRecord {
                    pid: p.pid,
                    comm: p.comm,
                    time_wait: n,
                    rate_per_s: if secs > 0.0 { n as f64 / secs } else { 0.0 },
                })
                .collect(),
        );
    }

    fn finish(&mut self, now_ms: i64, unix_s: f64, facts: &Facts, snap: Snapshot) -> Record {
        let mark = Mark {
            ms: now_ms,
            kernel_tw: facts.tcp_ext.tw,
            kernel_recycled: facts.tcp_ext.tw_recycled,
        };
        let last = self.last.replace(mark);
        if last.is_none() {
            self.start_ms = now_ms;
        }
        let interval_ms = last.map(|l| (now_ms - l.ms).max(1));
        if let Some(ms) = interval_ms {
            self.window.push_back(Step {
                ms,
                new: snap.new,
                by_dest: snap
                    .dests
                    .iter()
                    .filter(|d| d.new > 0)
                    .map(|d| (d.d, d.new))
                    .collect(),
            });
            // Keep the newest steps that fit the window, at least one.
            while self.window.len() > 1
                && self.window.iter().skip(1).map(|w| w.ms).sum::<i64>() >= RATE_WINDOW_MS
            {
                self.window.pop_front();
            }
        }
        let window_ms: i64 = self.window.iter().map(|w| w.ms).sum();
        let watched = self.time_wait_watched && interval_ms.is_some();
        let per_s = |n: u64, ms: i64| n as f64 * 1000.0 / ms as f64;
        let rate = watched.then(|| per_s(self.window.iter().map(|w| w.new).sum(), window_ms));
        // The first sample has no interval yet, but its timers' ages already
        // give the last 10 s of inflow (analyze::inflow).
        let first = self.time_wait_watched && interval_ms.is_none();
        let rate = rate.or(first.then_some(snap.first_rate));
        let window_ms = if first {
            RATE_SECS as i64 * 1000
        } else {
            window_ms
        };
        let delta = |now: Option<i64>, before: Option<i64>| Some(now? - before?);

        let time_wait = TimeWaitRecord {
            count: snap.count,
            inbound: snap.inbound,
            outbound: snap.outbound,
            new: watched.then_some(snap.new),
            inflow_per_s: interval_ms
                .filter(|_| watched)
                .map(|ms| per_s(snap.new, ms)),
            rate_per_s: rate,
            rate_window_s: rate.map(|_| window_ms as f64 / 1000.0),
            forecast: rate.map(|r| (r * TIME_WAIT_SECS as f64).round() as u64),
            kernel_tw: last.and_then(|l| delta(mark.kernel_tw, l.kernel_tw)),
            kernel_recycled: last.and_then(|l| delta(mark.kernel_recycled, l.kernel_recycled)),
            left_5s_slots: snap.left_5s,
            count_from: None,
            connect_failed: None,
            tw_reused: None,
        };

        let cap = facts
            .ephemeral_capacity()
            .unwrap_or_else(|| port_capacity(snap.range, &[]));
        let usable = u64::from(cap.preferred_parity + cap.other_parity);
        let first_half = u64::from(cap.preferred_parity);
        let recycled_now = last
            .and_then(|l| delta(mark.kernel_recycled, l.kernel_recycled))
            .is_some_and(|n| n > 0);
        // New TIME_WAIT per destination over the window, once (the
        // destinations with none are most of them at a million sockets).
        let mut in_window: HashMap<Destination, u64> = HashMap::new();
        for w in &self.window {
            for (d, n) in &w.by_dest {
                *in_window.entry(*d).or_default() += n;
            }
        }
        let empty_last = HashMap::new();
        let last_step = self.window.back().map_or(&empty_last, |w| &w.by_dest);
        // TIME_WAIT the naive forecast counts but tcp_tw_reuse takes over.
        let mut reused_away = 0.0;
        let mut destinations: Vec<DestinationRecord> = snap
            .dests
            .iter()
            .map(|u| {
                let d = u.d;
                let lookup = |m: &HashMap<Destination, u64>| {
                    if m.is_empty() {
                        0
                    } else {
                        m.get(&d).copied().unwrap_or(0)
                    }
                };
                let rate = watched
                    .then(|| per_s(lookup(&in_window), window_ms))
                    .or(first.then_some(u.first_rate));
                let other = u.held.saturating_sub(u.time_wait);
                let r = rate.unwrap_or(0.0);
                let left = u.left.as_deref().copied().unwrap_or_else(|| {
                    // No inflow: only the sum counts (exhaustion's `full now`).
                    let mut l = [0; 61];
                    l[60] = u.time_wait;
                    l
                });
                // The inflow stopped: nothing more to forecast; what is held
                // drains as the timers run out.
                let stopped = watched && lookup(last_step) == 0;
                let naive = (r * TIME_WAIT_SECS as f64).round() as u64;
                let (settles_at, exhausted_in_s) = if stopped {
                    (other, None)
                } else if reuses(facts, &d, recycled_now) {
                    // connect() walks the first-choice half and takes over
                    // any TIME_WAIT port there older than about 1 s
                    // (__inet_hash_connect -> __inet_check_established ->
                    // tcp_twsk_unique) before it tries the other half, so
                    // held TIME_WAIT settle at the smaller of rate x 60 s and
                    // that half. Only an inflow that holds every port within
                    // the 1 s a TIME_WAIT must age can still fill the range.
                    let cap_tw = first_half.saturating_sub(other);
                    reused_away += naive.saturating_sub(cap_tw) as f64;
                    let fills = other as f64 + r >= usable as f64;
                    (
                        other + naive.min(cap_tw),
                        fills.then(|| exhaustion(usable, other, &left, r)).flatten(),
                    )
                } else {
                    (other + naive, exhaustion(usable, other, &left, r))
                };
                DestinationRecord {
                    local: d.local.to_string(),
                    peer: d.peer.to_string(),
                    held: u.held,
                    time_wait: u.time_wait,
                    usable,
                    usable_first_choice: Some(u64::from(cap.preferred_parity)),
                    held_first_choice: Some(u.held_preferred),
                    free: usable.saturating_sub(u.held),
                    new: watched.then_some(u.new),
                    rate_per_s: rate,
                    settles_at,
                    exhausted_in_s,
                    connect_failed: u.events.map(|e| e.connect_failed),
                    tw_reused: u.events.map(|e| e.reused),
                }
            })
            .collect();
        // The count's forecast: none once the inflow stopped, and less what
        // tcp_tw_reuse takes over.
        let stopped_all = watched && self.window.back().is_some_and(|w| w.new == 0);
        let mut time_wait = time_wait;
        time_wait.forecast = if stopped_all {
            None
        } else {
            time_wait
                .forecast
                .map(|f| (f as f64 - reused_away).max(0.0).round() as u64)
        };
        destinations.sort_by(|a, b| {
            let soon = |d: &DestinationRecord| d.exhausted_in_s.unwrap_or(f64::INFINITY);
            let failing = |d: &DestinationRecord| d.connect_failed.unwrap_or(0);
            soon(a)
                .total_cmp(&soon(b))
                .then(failing(b).cmp(&failing(a)))
                .then(b.held.cmp(&a.held))
        });
        destinations.truncate(self.top);

        Record {
            schema_version: crate::model::schema::SchemaVersion,
            time: unix_s,
            elapsed_s: (now_ms - self.start_ms) as f64 / 1000.0,
            interval_s: interval_ms.map(|ms| ms as f64 / 1000.0),
            total: snap.total,
            states: snap.states,
            time_wait,
            destinations,
            netns: self.netns.clone(),
            inflow_from: Some(if self.events.is_some() {
                InflowFrom::Events
            } else {
                InflowFrom::Timers
            }),
            dump_age_s: None,
            processes: None,
            events_lost: None,
        }
    }
}

/// The interval's events stand in for the 4-tuple differences: the total
/// and each destination's entries, failures and takeovers.
fn with_events(snap: &mut Snapshot, i: &Interval) {
    snap.new = i.total.time_wait;
    for d in &mut snap.dests {
        let e = i.by_dest.get(&d.d).copied().unwrap_or_default();
        d.new = e.time_wait;
        d.events = Some(e);
    }
}

/// Whether connect() to `d` takes over TIME_WAIT ports: tcp_tw_reuse 1, or
/// 2 (the default) when either end is loopback (tcp_twsk_unique), and TCP
/// timestamps on (the takeover needs a timestamp to compare). With the
/// sysctl unknown, whether TcpExt TWRecycled grew this interval.
fn reuses(facts: &Facts, d: &Destination, recycled_now: bool) -> bool {
    if facts.sysctl.tcp_timestamps == Some(0) {
        return false;
    }
    let loopback = |ip: std::net::IpAddr| match ip {
        std::net::IpAddr::V4(a) => a.is_loopback(),
        std::net::IpAddr::V6(a) => {
            a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    };
    match facts.sysctl.tcp_tw_reuse {
        Some(1) => true,
        Some(2) => loopback(d.local) || loopback(d.peer.addr),
        Some(_) => false,
        None => recycled_now,
    }
}

/// Seconds until a destination holds all `usable` ports, or `None` if it
/// never does at `rate` new connections per second.
///
/// Ports held at time t from now: the `other` holders (ESTABLISHED and the
/// like, taken as constant), plus today's TIME_WAIT sockets not yet expired
/// (`left[i]` sockets have i..i+1 s left; each is counted until i+1 s, as
/// the timer wheel fires late, never early), plus rate x t new ones. For
/// t <= 60 s no new socket has expired yet; after 60 s the count is flat at
/// other + rate x 60, so if it has not crossed by then it never does.
pub fn exhaustion(usable: u64, other: u64, left: &[u64; 61], rate: f64) -> Option<f64> {
    let mut remaining: u64 = left.iter().sum();
    if other + remaining >= usable {
        return Some(0.0);
    }
    if rate <= 0.0 {
        return None;
    }
    for (i, n) in left.iter().enumerate() {
        // On [i, i+1) s held = other + remaining + rate * t.
        let t = (usable - other - remaining) as f64 / rate;
        if t < (i + 1) as f64 {
            return Some(t);
        }
        remaining -= n;
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{Endpoint, Family, PortRange, Timer, TimerKind};

    /// An outbound TIME_WAIT socket 127.0.0.1:port -> 127.0.0.2:80 with
    /// `left_ms` on its timer.
    pub(crate) fn tw(port: u16, left_ms: u32) -> Socket {
        let mut s = Socket::new(
            Family::Inet,
            TcpState::TimeWait,
            Endpoint::new("127.0.0.1".parse().unwrap(), port),
            Endpoint::new("127.0.0.2".parse().unwrap(), 80),
        );
        s.timer = Some(Timer {
            kind: TimerKind::TimeWait,
            ms: left_ms,
        });
        s.direction = Some(Direction::Outbound);
        s
    }

    pub(crate) fn facts(tw_counter: i64) -> Facts {
        let mut f = Facts::default();
        f.sysctl.ip_local_port_range = Some(PortRange {
            lo: 40000,
            hi: 40099,
        });
        f.tcp_ext.tw = Some(tw_counter);
        f.tcp_ext.tw_recycled = Some(0);
        f
    }

    pub(crate) fn sample(w: &mut Watcher, now_ms: i64, counter: i64, socks: &[Socket]) -> Record {
        w.sample(now_ms, 1e9 + now_ms as f64 / 1000.0, &facts(counter), |c| {
            for s in socks {
                let _ = c.push(s);
            }
            Ok(())
        })
        .unwrap()
    }

    #[test]
    fn inflow_counts_tuples_new_since_the_last_sample() {
        let mut w = Watcher::new(5, StateSet::ALL);
        // Baseline at t=0: two sockets, 30 s and 59 s left. No interval
        // yet; the rate is the timers' ages: one entered in the last 10 s.
        let base = [tw(40000, 30_000), tw(40001, 59_000)];
        let r = sample(&mut w, 0, 100, &base);
        assert_eq!(r.interval_s, None);
        assert_eq!(r.time_wait.count, 2);
        assert_eq!(r.time_wait.new, None);
        assert_eq!(
            (r.time_wait.rate_per_s, r.time_wait.forecast),
            (Some(0.1), Some(6))
        );
        assert_eq!(r.time_wait.rate_window_s, Some(10.0));
        assert_eq!(r.time_wait.kernel_tw, None);

        // t=2 s: both still there (2 s less on the clock), three new ones.
        let now = [
            tw(40000, 28_000),
            tw(40001, 57_000),
            tw(40002, 59_500),
            tw(40003, 59_000),
            tw(40004, 58_100),
        ];
        let r = sample(&mut w, 2_000, 103, &now);
        assert_eq!(r.interval_s, Some(2.0));
        assert_eq!(r.elapsed_s, 2.0);
        let t = &r.time_wait;
        assert_eq!(t.new, Some(3));
        assert_eq!(t.inflow_per_s, Some(1.5));
        assert_eq!((t.rate_per_s, t.rate_window_s), (Some(1.5), Some(2.0)));
        assert_eq!(t.forecast, Some(90));
        assert_eq!(t.kernel_tw, Some(3));
        assert_eq!(t.kernel_recycled, Some(0));
        // 28 s -> slot 5, 57-59.5 s -> slot 11.
        assert_eq!((t.left_5s_slots[5], t.left_5s_slots[11]), (1, 4));

        let d = &r.destinations[0];
        assert_eq!(
            (d.local.as_str(), d.peer.as_str()),
            ("127.0.0.1", "127.0.0.2:80")
        );
        assert_eq!((d.held, d.time_wait, d.usable, d.free), (5, 5, 100, 95));
        assert_eq!((d.new, d.rate_per_s), (Some(3), Some(1.5)));
        assert_eq!(d.settles_at, 90);
        // Nothing expires within 28 s; 95 free ports at 1.5/s take 63 s, so
        // by then the first sockets have expired: it never fills.
        assert_eq!(d.exhausted_in_s, None);
    }

    #[test]
    fn a_tuple_that_entered_time_wait_again_is_new() {
        let mut w = Watcher::new(5, StateSet::ALL);
        sample(&mut w, 0, 0, &[tw(40000, 10_000), tw(40001, 50_000)]);
        // 40000 was taken over (tcp_tw_reuse) and closed again: 59 s left
        // instead of 9. 40001 just aged by 1 s (and 0.3 s of jitter).
        let r = sample(&mut w, 1_000, 1, &[tw(40000, 59_000), tw(40001, 49_300)]);
        assert_eq!(r.time_wait.new, Some(1));
    }

    #[test]
    fn rates_average_over_the_last_ten_seconds() {
        let mut w = Watcher::new(5, StateSet::ALL);
        // (port, when it entered TIME_WAIT)
        let mut made: Vec<(u16, i64)> = Vec::new();
        sample(&mut w, 0, 0, &[]);
        // 4 s at 10/s, then 8 s at 20/s, one sample a second.
        let mut last = None;
        for t in 1..=12i64 {
            let n = if t <= 4 { 10 } else { 20 };
            for _ in 0..n {
                made.push((40000 + made.len() as u16, t * 1000 - 100));
            }
            let socks: Vec<Socket> = made
                .iter()
                .map(|(port, at)| tw(*port, (TIME_WAIT_MS - (t * 1000 - at)) as u32))
                .collect();
            last = Some(sample(&mut w, t * 1000, 0, &socks));
        }
        let t = last.unwrap().time_wait;
        assert_eq!(t.inflow_per_s, Some(20.0));
        // The window holds seconds 3..=12: 2 x 10 + 8 x 20 over 10 s.
        assert_eq!(t.rate_window_s, Some(10.0));
        assert_eq!(t.rate_per_s, Some(18.0));
        assert_eq!(t.forecast, Some(1080));
    }

    #[test]
    fn no_inflow_when_the_filter_leaves_time_wait_out() {
        let mut w = Watcher::new(5, StateSet::of(&[TcpState::Established]));
        sample(&mut w, 0, 0, &[]);
        let r = sample(&mut w, 1000, 5, &[]);
        assert_eq!(r.time_wait.new, None);
        assert_eq!(r.time_wait.rate_per_s, None);
        // The kernel's counter is still the namespace's.
        assert_eq!(r.time_wait.kernel_tw, Some(5));
    }

    #[test]
    fn destinations_soonest_full_first() {
        let mut w = Watcher::new(1, StateSet::ALL);
        let other = |port: u16| {
            let mut s = tw(port, 59_000);
            s.peer.port = 443;
            s
        };
        // :443 holds 20 ports from the start and gains 1/s; :80 gains 10/s.
        let old: Vec<Socket> = (0..20).map(|i| other(40050 + i)).collect();
        sample(&mut w, 0, 0, &old);
        let mut socks: Vec<Socket> = (0..10).map(|i| tw(40000 + i, 59_000)).collect();
        socks.extend(old.iter().map(|s| {
            let mut s = *s;
            s.timer.as_mut().unwrap().ms -= 1000;
            s
        }));
        socks.push(other(40090));
        let r = sample(&mut w, 1000, 0, &socks);
        assert_eq!(r.destinations.len(), 1, "--top 1");
        let d = &r.destinations[0];
        assert_eq!(d.peer, "127.0.0.2:80");
        // 90 free at 10/s, nothing expiring before then.
        assert_eq!(d.exhausted_in_s, Some(9.0));
    }

    /// Samples at 1 s steps with `facts`, the inflow of each step given as
    /// how many new TIME_WAIT toward 127.0.0.2:80, on ports walking up from
    /// 40000 (the older ones one second older each step).
    fn run_with(facts: &Facts, steps: &[u16]) -> Vec<Record> {
        let mut w = Watcher::new(5, StateSet::ALL);
        let mut held: Vec<Socket> = Vec::new();
        let mut next = 40000u16;
        let mut out = Vec::new();
        for (i, &n) in steps.iter().enumerate() {
            for s in &mut held {
                s.timer.as_mut().unwrap().ms -= 1000;
            }
            for _ in 0..n {
                held.push(tw(next, 59_900));
                next += 1;
            }
            let r = w
                .sample(i as i64 * 1000, 1e9 + i as f64, facts, |c| {
                    for s in &held {
                        let _ = c.push(s);
                    }
                    Ok(())
                })
                .unwrap();
            out.push(r);
        }
        out
    }

    #[test]
    fn under_tcp_tw_reuse_ports_settle_at_the_first_choice_half_and_never_fill() {
        // 100 ports, 50 of the first-choice parity; 10/s would need 600.
        let mut f = facts(0);
        f.sysctl.tcp_tw_reuse = Some(2);
        let r = run_with(&f, &[0, 10, 10, 10]);
        let d = &r[3].destinations[0];
        assert_eq!(d.rate_per_s, Some(10.0));
        assert_eq!((d.settles_at, d.exhausted_in_s), (50, None));
        assert_eq!(r[3].time_wait.forecast, Some(50));
        // Without reuse the same inflow fills the range in 7 s.
        f.sysctl.tcp_tw_reuse = Some(0);
        let r = run_with(&f, &[0, 10, 10, 10]);
        let d = &r[3].destinations[0];
        assert_eq!(d.settles_at, 600);
        assert_eq!(d.exhausted_in_s, Some(7.0));
        // reuse 2 is loopback only: a remote destination gets no takeover.
        f.sysctl.tcp_tw_reuse = Some(2);
        let not_loopback = Destination {
            local: "10.0.0.1".parse().unwrap(),
            peer: Endpoint::new("10.0.0.2".parse().unwrap(), 80),
        };
        assert!(!reuses(&f, &not_loopback, false));
        f.sysctl.tcp_timestamps = Some(0);
        assert!(!reuses(
            &f,
            &Destination {
                local: "127.0.0.1".parse().unwrap(),
                ..not_loopback
            },
            false
        ));
    }

    #[test]
    fn the_forecast_is_dropped_as_soon_as_the_inflow_stops() {
        let f = facts(0);
        let r = run_with(&f, &[0, 10, 10, 10, 0]);
        assert!(r[3].destinations[0].exhausted_in_s.is_some());
        assert!(r[3].time_wait.forecast.is_some());
        let d = &r[4].destinations[0];
        // The 10 s average still says 7.5/s, but nothing came in this step.
        assert_eq!(d.rate_per_s, Some(7.5));
        assert_eq!((d.exhausted_in_s, d.settles_at), (None, 0));
        assert_eq!(r[4].time_wait.forecast, None);
    }

    #[test]
    fn a_listener_seen_in_an_earlier_sample_keeps_its_sockets_inbound() {
        let mut w = Watcher::new(5, StateSet::ALL);
        // A service on 40050, inside the port range: the range cannot tell.
        let mut listen = tw(40050, 0);
        (listen.state, listen.timer, listen.peer.port) = (TcpState::Listen, None, 0);
        listen.direction = Some(Direction::Inbound);
        let mut accepted = tw(40050, 59_000);
        accepted.peer.port = 50000;
        accepted.direction = Some(Direction::Inbound);
        let r = sample(&mut w, 0, 0, &[listen, accepted]);
        assert_eq!((r.time_wait.inbound, r.destinations.len()), (1, 0));
        // It restarted: gone from this sample, so the reader said outbound.
        let mut later = accepted;
        later.timer.as_mut().unwrap().ms -= 1000;
        later.direction = Some(Direction::Outbound);
        let r = sample(&mut w, 1000, 0, &[later]);
        assert_eq!((r.time_wait.inbound, r.time_wait.outbound), (1, 0));
        assert!(r.destinations.is_empty(), "{:?}", r.destinations);
        // Past a TIME_WAIT's life the memory is dropped.
        let r = sample(&mut w, 62_000, 0, &[later]);
        assert_eq!(r.time_wait.outbound, 1);
    }

    #[test]
    fn exhaustion_counts_ports_freed_by_expiry() {
        let mut left = [0u64; 61];
        // Full now.
        assert_eq!(exhaustion(100, 40, &[60; 61].map(|_| 1), 0.0), Some(0.0));
        // Nothing held, 10/s into 100 ports: 10 s.
        assert_eq!(exhaustion(100, 0, &left, 10.0), Some(10.0));
        // No new connections, not full: never.
        assert_eq!(exhaustion(100, 50, &left, 0.0), None);
        // 80 sockets expire within the first second: at 10/s, 20 + 10 t
        // reaches 100 only at 8 s (the 80 are gone by 1 s, then 10 t = 100).
        left[0] = 80;
        assert_eq!(exhaustion(100, 0, &left, 10.0), Some(10.0));
        // Steady state: 1/s for 60 s, one expiring each second. At 1/s it
        // stays at 60 + other.
        let steady = [1u64; 61];
        assert_eq!(exhaustion(100, 0, &steady, 1.0), None);
        assert_eq!(exhaustion(100, 40, &steady, 1.0), Some(0.0));
        // 30 held expiring in 20..21 s, 60 other, 2/s into 100: 10 free,
        // full at 5 s, before any expiry.
        let mut late = [0u64; 61];
        late[20] = 30;
        assert_eq!(exhaustion(100, 60, &late, 2.0), Some(5.0));
        // At 0.4/s those 10 ports take 25 s, but 30 free up at 21 s: then
        // 40 free at 0.4/s, past 60 s: never.
        assert_eq!(exhaustion(100, 60, &late, 0.4), None);
    }

    /// An event toward 127.0.0.2:80 from 127.0.0.1:port by pid 42.
    fn event(kind: EventKind, port: u16) -> Event {
        Event {
            ts_ns: 0,
            netns: 1,
            kind,
            process: crate::model::event::Process {
                pid: 42,
                comm: "driver".into(),
            },
            family: Family::Inet,
            local: Endpoint::new("127.0.0.1".parse().unwrap(), port),
            peer: Endpoint::new("127.0.0.2".parse().unwrap(), 80),
            direction: Some(Direction::Outbound),
            substate: None,
        }
    }

    #[test]
    fn with_events_the_inflow_is_counted_and_projected_between_dumps() {
        let mut w = Watcher::new(5, StateSet::ALL).with_events();
        // The dump at 0 (read until 5 ms): 9 TIME_WAIT with 30 s left, and
        // one that entered it as the dump began.
        let mut base: Vec<Socket> = (1..10).map(|i| tw(40000 + i, 30_000)).collect();
        base.push(tw(40000, 60_000));
        let r = sample(&mut w, 0, 0, &base);
        assert_eq!(r.dump_age_s, Some(0.0));
        w.dump_ended(5);
        // One entry the dump listed already (during its read), 20 after it,
        // a connect() that found no port and one takeover.
        w.event(&event(EventKind::TimeWait, 40000), 3);
        for i in 0..20 {
            w.event(
                &event(EventKind::TimeWait, 40010 + i),
                100 + i64::from(i) * 40,
            );
        }
        w.event(&event(EventKind::ConnectFail, 0), 500);
        w.event(&event(EventKind::TwReuse, 40003), 600);
        let mut f = facts(0);
        f.sockstat.tcp_tw = Some(29);
        let r = w.project(1000, 1e9 + 1.0, &f).unwrap();
        assert_eq!(r.inflow_from, Some(InflowFrom::Events));
        assert_eq!(r.dump_age_s, Some(1.0));
        let t = &r.time_wait;
        assert_eq!((t.new, t.inflow_per_s), (Some(21), Some(21.0)));
        assert_eq!((t.connect_failed, t.tw_reused), (Some(1), Some(1)));
        assert_eq!((t.count, t.count_from), (29, Some(CountFrom::Sockstat)));
        // 10 + 20 - 1 taken over, all outbound.
        assert_eq!((t.outbound, t.inbound), (29, 0));
        assert_eq!(t.left_5s_slots.iter().sum::<u64>(), 29);
        let d = &r.destinations[0];
        assert_eq!((d.time_wait, d.held, d.new), (29, 29, Some(21)));
        assert_eq!((d.connect_failed, d.tw_reused), (Some(1), Some(1)));
        assert_eq!(d.rate_per_s, Some(21.0));
        let p = &r.processes.as_ref().unwrap()[0];
        assert_eq!((p.pid, p.comm.as_str(), p.time_wait), (42, "driver", 21));
        assert_eq!(r.states.time_wait, 29);
        assert_eq!(r.total, 29);

        // 40 s on, nothing new: the dump's 8 older ones left expired (30 s,
        // up to 5.1 s late); the one that entered at 0 and the 20 since stay.
        f.sockstat.tcp_tw = Some(21);
        let r = w.project(41_000, 1e9 + 41.0, &f).unwrap();
        assert_eq!(r.time_wait.new, Some(0));
        assert_eq!(r.destinations[0].time_wait, 21);
        assert_eq!(r.dump_age_s, Some(41.0));
        assert_eq!(r.time_wait.forecast, None, "the inflow stopped");
        // Without sockstat the count is the projection's.
        let r = w.project(42_000, 1e9 + 42.0, &facts(0)).unwrap();
        assert_eq!(
            (r.time_wait.count, r.time_wait.count_from),
            (21, Some(CountFrom::Projection))
        );
    }

    #[test]
    fn without_events_records_say_the_inflow_is_from_timers_and_nothing_more() {
        let mut w = Watcher::new(5, StateSet::ALL);
        sample(&mut w, 0, 0, &[]);
        assert!(w.project(1000, 1e9, &facts(0)).is_none());
        let r = sample(&mut w, 1000, 0, &[tw(40000, 59_000)]);
        assert_eq!(r.inflow_from, Some(InflowFrom::Timers));
        assert_eq!(r.time_wait.new, Some(1));
        assert_eq!((r.dump_age_s, r.processes.as_ref()), (None, None));
        assert_eq!(r.time_wait.connect_failed, None);
        let line = serde_json::to_string(&r).unwrap();
        for absent in ["dump_age_s", "processes", "connect_failed", "count_from"] {
            assert!(!line.contains(absent), "{line}");
        }
    }

    #[test]
    fn records_name_the_namespace_only_when_one_was_given() {
        let mut w = Watcher::new(5, StateSet::ALL).in_netns(Some("blue".into()));
        let r = sample(&mut w, 0, 0, &[]);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["netns"], "blue");
        let mut w = Watcher::new(5, StateSet::ALL);
        let r = sample(&mut w, 0, 0, &[]);
        let line = serde_json::to_vec(&r).unwrap();
        assert!(!String::from_utf8_lossy(&line).contains("netns"));
        // Records written without the field (older files) still read.
        let back: Record = serde_json::from_slice(&line).unwrap();
        assert_eq!(back.netns, None);
    }
}

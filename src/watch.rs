//! `tw watch`: samples the socket table at a fixed interval and turns
//! consecutive samples into rates: how many connections enter TIME_WAIT per
//! second, where the TIME_WAIT count will settle, and how long each outbound
//! destination has until its ephemeral ports run out.
//!
//! [`Watcher`] is the pure half: it is fed sockets and the system facts of
//! each sample and returns a [`Record`], one per sample. [`run`] is the I/O
//! half: the pacing loop, the live view ([`crate::tui`]) on a terminal, JSON
//! Lines otherwise, and `--record FILE`. With `--netns`, every sample is
//! taken by one thread that stays inside the namespace ([`Sampling`]).

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::cli::{Format, WatchArgs};
use crate::doctor::{self, Scan, TIME_WAIT_SECS};
use crate::filter::Filter;
use crate::group::{Destination, TW_SLOTS};
use crate::model::{Direction, Socket, StateSet, TcpState};
use crate::netns;
use crate::source::{self, Consumer, NetnsChoice, SourceSpec};
use crate::system::{self, Facts};

/// TCP_TIMEWAIT_LEN in milliseconds (include/net/tcp.h).
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

/// Shortest and longest `--interval`. A TIME_WAIT socket lives 60 s, so any
/// interval below that sees each one at least once; 30 s leaves a margin for
/// slow dumps.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
pub const MAX_INTERVAL: Duration = Duration::from_secs(30);

/// Parses `--interval`: `1s`, `500ms`, `1.5s`, `2m`... or bare seconds.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit_ms) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        (t, 1000.0)
    };
    let value: f64 = num
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| format!("expected a duration such as 1s, 500ms or 2.5s, got {text:?}"))?;
    let d = Duration::from_secs_f64(value * unit_ms / 1000.0);
    if d < MIN_INTERVAL || d > MAX_INTERVAL {
        return Err(format!(
            "must be between 100ms and 30s (TIME_WAIT lasts 60 s: a longer interval would \
             miss sockets that come and go between samples), got {text}"
        ));
    }
    Ok(d)
}

/// One sample, as a line of `tw watch` JSON Lines output and of a
/// `--record` file. The schema is in README.md; `tw plot` reads it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// When the sample was taken (the start of its read), in Unix seconds.
    pub time: f64,
    /// Seconds since the first sample.
    pub elapsed_s: f64,
    /// Seconds since the previous sample; `None` for the first, which only
    /// sets the baseline and is not written out.
    pub interval_s: Option<f64>,
    /// Sockets that matched the filters.
    pub total: u64,
    /// Every state, zeros included, so the keys are stable.
    pub states: BTreeMap<String, u64>,
    pub time_wait: TimeWaitRecord,
    /// Outbound destinations, soonest to run out of ports first, then by
    /// ports held; at most `--top` of them.
    pub destinations: Vec<DestinationRecord>,
    /// The namespace watched, as `--netns` named it; absent for the one tw
    /// runs in (and in records written before the option existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeWaitRecord {
    pub count: u64,
    pub inbound: u64,
    pub outbound: u64,
    /// 4-tuples in TIME_WAIT now that were not at the previous sample (or
    /// entered it again since). `None` on the first sample, and when the
    /// filters leave TIME_WAIT out.
    pub new: Option<u64>,
    /// `new / interval_s`.
    pub inflow_per_s: Option<f64>,
    /// The inflow over the last `rate_window_s`: the rate forecasts use.
    pub rate_per_s: Option<f64>,
    pub rate_window_s: Option<f64>,
    /// Where the count settles at `rate_per_s`: each socket stays 60 s.
    pub forecast: Option<u64>,
    /// Growth of the kernel's TcpExt `TW` counter over the interval: every
    /// TIME_WAIT (and orphaned FIN_WAIT2) minisocket of the namespace,
    /// whatever the filters, for cross-checking `new`.
    pub kernel_tw: Option<i64>,
    /// Growth of TcpExt `TWRecycled`: TIME_WAIT entries connect() took over
    /// (tcp_tw_reuse).
    pub kernel_recycled: Option<i64>,
    /// How many expire in each 5 s slot of time left: [0-5 s, ..., 55-60 s].
    pub left_5s_slots: [u64; TW_SLOTS],
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DestinationRecord {
    /// Local address: each (local IP, remote IP, remote port) has the whole
    /// ephemeral range to itself.
    pub local: String,
    pub peer: String,
    /// Ephemeral ports held, in every state.
    pub held: u64,
    /// Of those, in TIME_WAIT.
    pub time_wait: u64,
    /// Ports connect() can choose from (the range less reserved ports).
    pub usable: u64,
    pub free: u64,
    /// New TIME_WAIT toward it this interval.
    pub new: Option<u64>,
    /// New TIME_WAIT per second over the rate window.
    pub rate_per_s: Option<f64>,
    /// Ports it will hold at that rate once TIME_WAIT has turned over: the
    /// sockets in other states plus rate x 60 s.
    pub settles_at: u64,
    /// Seconds until every usable port is held at this rate, counting the
    /// TIME_WAIT sockets that expire meanwhile: 0 when full now, `None` when
    /// it never fills at this rate.
    pub exhausted_in_s: Option<f64>,
}

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
}

impl Sampler {
    fn entered(&self, s: &Socket) -> i64 {
        // The timer was set to TCP_TIMEWAIT_LEN on entry (tcp_time_wait, and
        // tcp_timewait_state_process when a FIN_WAIT2 minisocket moves on).
        self.now_ms - (TIME_WAIT_MS - s.timewait_ms().map_or(0, i64::from))
    }
}

fn tuple_key(s: &Socket) -> u64 {
    let mut h = DefaultHasher::new();
    (s.local, s.peer).hash(&mut h);
    h.finish()
}

impl Consumer for Sampler {
    fn push(&mut self, s: &Socket) {
        self.scan.push(s);
        if s.state != TcpState::TimeWait {
            return;
        }
        let key = tuple_key(s);
        let entered = self.entered(s);
        let new = self
            .prev
            .get(&key)
            .is_none_or(|&before| entered > before + REENTRY_SLACK_MS);
        self.cur.insert(key, entered);
        self.new += u64::from(new);
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
            let secs = s.timewait_ms().map_or(0, |ms| ms / 1000).min(60);
            d.left[secs as usize] += 1;
        }
    }

    fn restart(&mut self) {
        self.scan.restart();
        self.cur.clear();
        self.new = 0;
        self.dests.clear();
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
}

impl Watcher {
    /// `top`: how many destinations a record lists; `states`: the filter's.
    pub fn new(top: usize, states: StateSet) -> Watcher {
        Watcher {
            sampler: Sampler {
                scan: Scan::new(doctor::DEFAULT_PORT_RANGE),
                now_ms: 0,
                cur: HashMap::new(),
                prev: HashMap::new(),
                new: 0,
                dests: HashMap::new(),
            },
            last: None,
            start_ms: 0,
            window: VecDeque::new(),
            top,
            time_wait_watched: states.contains(TcpState::TimeWait),
            netns: None,
        }
    }

    /// Labels every record with the namespace watched (`--netns`).
    pub fn in_netns(mut self, label: Option<String>) -> Watcher {
        self.netns = label;
        self
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
        s.scan = Scan::new(doctor::port_range(facts));
        s.now_ms = now_ms;
        s.cur.clear();
        s.new = 0;
        s.dests.clear();
        read(s)?;
        let record = self.finish(now_ms, unix_s, facts);
        let s = &mut self.sampler;
        std::mem::swap(&mut s.prev, &mut s.cur);
        Ok(record)
    }

    fn finish(&mut self, now_ms: i64, unix_s: f64, facts: &Facts) -> Record {
        let s = &self.sampler;
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
                new: s.new,
                by_dest: s.dests.iter().map(|(d, t)| (*d, t.new)).collect(),
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
        let delta = |now: Option<i64>, before: Option<i64>| Some(now? - before?);

        let sum = &s.scan.summary;
        let time_wait = TimeWaitRecord {
            count: sum.count(TcpState::TimeWait),
            inbound: sum.time_wait_inbound,
            outbound: sum.time_wait_outbound,
            new: watched.then_some(s.new),
            inflow_per_s: interval_ms.filter(|_| watched).map(|ms| per_s(s.new, ms)),
            rate_per_s: rate,
            rate_window_s: rate.map(|_| window_ms as f64 / 1000.0),
            forecast: rate.map(|r| (r * TIME_WAIT_SECS as f64).round() as u64),
            kernel_tw: last.and_then(|l| delta(mark.kernel_tw, l.kernel_tw)),
            kernel_recycled: last.and_then(|l| delta(mark.kernel_recycled, l.kernel_recycled)),
            left_5s_slots: sum.time_wait_left,
        };

        let cap = facts
            .ephemeral_capacity()
            .unwrap_or_else(|| system::port_capacity(s.scan.ports.range(), &[]));
        let usable = u64::from(cap.preferred_parity + cap.other_parity);
        let empty = DestTimeWait::default();
        let mut destinations: Vec<DestinationRecord> = s
            .scan
            .ports
            .ranked(None)
            .into_iter()
            .map(|(d, u)| {
                let tw = s.dests.get(&d).unwrap_or(&empty);
                let rate = watched.then(|| {
                    let n = self
                        .window
                        .iter()
                        .filter_map(|w| w.by_dest.get(&d))
                        .sum::<u64>();
                    per_s(n, window_ms)
                });
                let other = u.held.saturating_sub(tw.count);
                let r = rate.unwrap_or(0.0);
                DestinationRecord {
                    local: d.local.to_string(),
                    peer: d.peer.to_string(),
                    held: u.held,
                    time_wait: tw.count,
                    usable,
                    free: usable.saturating_sub(u.held),
                    new: watched.then_some(tw.new),
                    rate_per_s: rate,
                    settles_at: other + (r * TIME_WAIT_SECS as f64).round() as u64,
                    exhausted_in_s: exhaustion(usable, other, &tw.left, r),
                }
            })
            .collect();
        destinations.sort_by(|a, b| {
            let soon = |d: &DestinationRecord| d.exhausted_in_s.unwrap_or(f64::INFINITY);
            soon(a).total_cmp(&soon(b)).then(b.held.cmp(&a.held))
        });
        destinations.truncate(self.top);

        Record {
            time: unix_s,
            elapsed_s: (now_ms - self.start_ms) as f64 / 1000.0,
            interval_s: interval_ms.map(|ms| ms as f64 / 1000.0),
            total: sum.total,
            states: StateSet::ALL
                .iter()
                .map(|st| (st.name().to_string(), sum.count(st)))
                .collect(),
            time_wait,
            destinations,
            netns: self.netns.clone(),
        }
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

/// How `tw watch` shows its samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The full-screen live view (a terminal).
    Live,
    /// One JSON object per interval (not a terminal, or `--format json`).
    JsonLines,
    /// One line of text per interval (`--format plain`).
    Plain,
}

/// The view: the live one on a terminal, JSON Lines when piped, unless
/// `--format` says otherwise.
pub fn mode(format: Option<Format>, tty: bool) -> Result<Mode> {
    Ok(match format {
        None if tty => Mode::Live,
        None | Some(Format::Json) => Mode::JsonLines,
        Some(Format::Plain) => Mode::Plain,
        Some(Format::Table) if tty => Mode::Live,
        Some(Format::Table) => bail!(
            "watch --format table: the live view needs a terminal; use --format json or plain \
             when piping"
        ),
    })
}

/// What `tw watch` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub interval: Duration,
    /// Stop after this many intervals.
    pub count: Option<u64>,
    /// Also write the JSON Lines here.
    pub record: Option<PathBuf>,
    /// Destinations per record.
    pub top: usize,
}

/// Takes paced samples: the first at once, then one per interval on a fixed
/// schedule (start + k x interval), skipping a beat rather than bunching up
/// when a read overruns.
///
/// With `--netns`, the thread that makes a `Sampling` enters the namespace
/// and stays in it until the `Sampling` is dropped. It cannot move to
/// another thread (the guard it holds is not `Send`), so every sample's
/// socket dump and system facts come from that one namespace by
/// construction: the netlink socket is opened by this thread, /proc/sys/net
/// resolves against the opener's namespace (net_ctl_header_lookup in
/// net/sysctl_net.c), and the counters are read through
/// /proc/thread-self/net ([`system::fact_path`]), not /proc/net, which
/// follows the thread-group leader.
pub struct Sampling {
    watcher: Watcher,
    /// In the `--netns` namespace until dropped.
    _inside: Option<netns::Entered>,
    spec: SourceSpec,
    filter: Filter,
    start: Instant,
    beat: u64,
    interval: Duration,
    /// Intervals still to take after the baseline; `None` for no limit.
    left: Option<u64>,
    record: Option<(PathBuf, BufWriter<File>)>,
    /// Said once, when the first choice of reader is not available.
    pub note: Option<String>,
}

impl Sampling {
    pub fn new(opts: &Options, spec: &SourceSpec, filter: &Filter) -> Result<Sampling> {
        if spec.from.is_some() || spec.proc_root.is_some() {
            bail!(
                "watch samples the live system; --from and --proc-root hold one moment \
                 (run `tw` or `tw doctor` on them)"
            );
        }
        let (inside, label) = match &spec.netns {
            NetnsChoice::Current => (None, None),
            NetnsChoice::One(ns) => (Some(netns::enter(ns)?), Some(ns.label.clone())),
            NetnsChoice::All => bail!(
                "watch --all-netns: each namespace has its own counters and port range, so \
                 their rates and forecasts do not add up; watch one with --netns NAME"
            ),
        };
        // This thread is inside now: the reads must not enter it again (and
        // leave it) on every sample.
        let spec = SourceSpec {
            netns: NetnsChoice::Current,
            ..spec.clone()
        };
        let record = match &opts.record {
            Some(path) => {
                let f = File::create(path)
                    .with_context(|| format!("--record {}: cannot create it", path.display()))?;
                Some((path.clone(), BufWriter::new(f)))
            }
            None => None,
        };
        Ok(Sampling {
            watcher: Watcher::new(opts.top, filter.states).in_netns(label),
            _inside: inside,
            spec,
            filter: filter.clone(),
            start: Instant::now(),
            beat: 0,
            interval: opts.interval,
            left: opts.count,
            record,
            note: None,
        })
    }

    /// The baseline sample, taken at once (not recorded: it has no rates).
    pub fn first(&mut self) -> Result<Record> {
        self.start = Instant::now();
        self.take()
    }

    /// Waits for the next beat with `wait` (which returns false to stop
    /// early), then samples and records. `None` when done or stopped.
    pub fn next(&mut self, wait: &mut dyn FnMut(Duration) -> bool) -> Option<Result<Record>> {
        if self.left == Some(0) {
            return None;
        }
        self.beat += 1;
        let elapsed = self.start.elapsed();
        let due = self.interval * u32::try_from(self.beat).unwrap_or(u32::MAX);
        if elapsed > due {
            // Overran: the next beat still ahead.
            self.beat = (elapsed.as_nanos() / self.interval.as_nanos()) as u64 + 1;
        }
        let due = self.interval * u32::try_from(self.beat).unwrap_or(u32::MAX);
        if !wait(due.saturating_sub(self.start.elapsed())) {
            return None;
        }
        if let Some(n) = &mut self.left {
            *n -= 1;
        }
        Some(self.take().and_then(|r| {
            if let Some((path, f)) = &mut self.record {
                write_line(f, &r).with_context(|| format!("--record {}", path.display()))?;
            }
            Ok(r)
        }))
    }

    fn take(&mut self) -> Result<Record> {
        // This thread's namespace: see the type's comment.
        let facts = system::read(Path::new("/proc"))?;
        let now_ms = i64::try_from(self.start.elapsed().as_millis()).unwrap_or(i64::MAX);
        let unix_s = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let (spec, filter, note) = (&self.spec, &self.filter, &mut self.note);
        self.watcher.sample(now_ms, unix_s, &facts, |c| {
            let info = source::read(spec, filter, c)?;
            if note.is_none() && !info.notes.is_empty() {
                *note = Some(info.notes.join("; "));
            }
            Ok(())
        })
    }
}

/// One record as a JSON line, flushed so a reader sees it at once.
pub fn write_line(out: &mut dyn Write, r: &Record) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, r)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// `tw watch`: `format` as given (`None`: decide by `tty`).
pub fn run(
    args: &WatchArgs,
    format: Option<Format>,
    tty: bool,
    spec: &SourceSpec,
    filter: &Filter,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<()> {
    let mode = mode(format, tty)?;
    let opts = Options {
        interval: args.interval,
        count: args.count,
        record: args.record.clone(),
        top: args.top,
    };
    if mode == Mode::Live {
        // The live view samples on a thread of its own, which must be the
        // one that enters the namespace: it makes the Sampling.
        let (interval, spec, filter) = (opts.interval, spec.clone(), filter.clone());
        return crate::tui::run(move || Sampling::new(&opts, &spec, &filter), interval);
    }
    let mut sampling = Sampling::new(&opts, spec, filter)?;
    sampling.first()?;
    if let Some(note) = sampling.note.take() {
        writeln!(err, "tw: {note}")?;
    }
    if mode == Mode::Plain {
        // The live view and JSON records name the namespace; so does this.
        if let NetnsChoice::One(ns) = &spec.netns {
            writeln!(out, "netns {}", ns.label)?;
        }
        writeln!(out, "{}", plain_header())?;
    }
    let mut sleep = |d: Duration| {
        std::thread::sleep(d);
        true
    };
    while let Some(r) = sampling.next(&mut sleep) {
        let r = r?;
        match mode {
            Mode::Plain => {
                writeln!(out, "{}", plain_line(&r))?;
                out.flush()?;
            }
            _ => write_line(out, &r)?,
        }
    }
    Ok(())
}

const PLAIN_COLUMNS: [&str; 9] = [
    "TIME",
    "TIME_WAIT",
    "NEW/S",
    "RATE/S",
    "FORECAST",
    "KERNEL/S",
    "ESTABLISHED",
    "CLOSE_WAIT",
    "FIRST FULL",
];

/// `--format plain`'s header line.
pub fn plain_header() -> String {
    plain_row(PLAIN_COLUMNS.map(String::from))
}

/// Columns two spaces apart, the numbers right-aligned under their names.
fn plain_row(c: [String; 9]) -> String {
    format!(
        "{:<8}  {:>9}  {:>6}  {:>7}  {:>8}  {:>8}  {:>11}  {:>10}  {}",
        c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8]
    )
}

/// `--format plain`: one aligned line per interval, like vmstat.
pub fn plain_line(r: &Record) -> String {
    let tw = &r.time_wait;
    let opt = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"));
    let kernel = tw.kernel_tw.zip(r.interval_s).map(|(n, s)| n as f64 / s);
    let full = r
        .destinations
        .first()
        .filter(|d| d.exhausted_in_s.is_some())
        .map_or_else(
            || "-".to_string(),
            |d| format!("{} -> {} in {}", d.local, d.peer, seconds(d.exhausted_in_s)),
        );
    let state = |name: &str| r.states.get(name).copied().unwrap_or(0).to_string();
    plain_row([
        clock(r.time),
        tw.count.to_string(),
        opt(tw.inflow_per_s),
        opt(tw.rate_per_s),
        tw.forecast
            .map_or_else(|| "-".to_string(), |f| f.to_string()),
        opt(kernel),
        state("ESTABLISHED"),
        state("CLOSE_WAIT"),
        full,
    ])
}

/// A time to exhaustion: `now`, `6s`, `never`.
pub fn seconds(t: Option<f64>) -> String {
    match t {
        None => "never".to_string(),
        Some(t) if t < 0.5 => "now".to_string(),
        Some(t) => format!("{t:.0}s"),
    }
}

/// Local wall-clock time of a Unix timestamp, `HH:MM:SS`.
pub fn clock(unix_s: f64) -> String {
    date_time(unix_s).split_off(11)
}

/// Local date and time of a Unix timestamp, `YYYY-MM-DD HH:MM:SS`.
pub fn date_time(unix_s: f64) -> String {
    let t = unix_s as libc::time_t;
    // SAFETY: localtime_r writes only into `tm`, which we own; an all-zero
    // tm is a valid value to start from.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return "????-??-?? ??:??:??".to_string();
    }
    format!(
        "{}-{:02}-{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// `12034` as `12,034`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Endpoint, Family, PortRange, Timer, TimerKind};

    /// An outbound TIME_WAIT socket 127.0.0.1:port -> 127.0.0.2:80 with
    /// `left_ms` on its timer.
    fn tw(port: u16, left_ms: u32) -> Socket {
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

    fn facts(tw_counter: i64) -> Facts {
        let mut f = Facts::default();
        f.sysctl.ip_local_port_range = Some(PortRange {
            lo: 40000,
            hi: 40099,
        });
        f.tcp_ext.tw = Some(tw_counter);
        f.tcp_ext.tw_recycled = Some(0);
        f
    }

    fn sample(w: &mut Watcher, now_ms: i64, counter: i64, socks: &[Socket]) -> Record {
        w.sample(now_ms, 1e9 + now_ms as f64 / 1000.0, &facts(counter), |c| {
            socks.iter().for_each(|s| c.push(s));
            Ok(())
        })
        .unwrap()
    }

    #[test]
    fn inflow_counts_tuples_new_since_the_last_sample() {
        let mut w = Watcher::new(5, StateSet::ALL);
        // Baseline at t=0: two sockets, 30 s and 59 s left. No rates yet.
        let base = [tw(40000, 30_000), tw(40001, 59_000)];
        let r = sample(&mut w, 0, 100, &base);
        assert_eq!(r.interval_s, None);
        assert_eq!(r.time_wait.count, 2);
        assert_eq!((r.time_wait.new, r.time_wait.forecast), (None, None));
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

    #[test]
    fn intervals_parse_with_units_and_limits() {
        let ok = [
            ("1s", 1000),
            ("500ms", 500),
            ("2.5s", 2500),
            ("2", 2000),
            ("0.5m", 30_000),
            (" 100ms ", 100),
        ];
        for (text, ms) in ok {
            assert_eq!(
                parse_interval(text),
                Ok(Duration::from_millis(ms)),
                "{text}"
            );
        }
        for bad in ["0s", "50ms", "31s", "1h", "fast", "-1s", "NaNs", ""] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
        assert!(parse_interval("90s").unwrap_err().contains("60 s"));
    }

    #[test]
    fn modes_follow_the_terminal_unless_told() {
        assert_eq!(mode(None, true).unwrap(), Mode::Live);
        assert_eq!(mode(None, false).unwrap(), Mode::JsonLines);
        assert_eq!(mode(Some(Format::Json), true).unwrap(), Mode::JsonLines);
        assert_eq!(mode(Some(Format::Plain), true).unwrap(), Mode::Plain);
        assert!(mode(Some(Format::Table), false).is_err());
    }

    #[test]
    fn records_round_trip_through_json() {
        let mut w = Watcher::new(5, StateSet::ALL);
        sample(&mut w, 0, 0, &[tw(40000, 30_000)]);
        let r = sample(&mut w, 1000, 1, &[tw(40000, 29_000), tw(40001, 59_000)]);
        let mut line = Vec::new();
        write_line(&mut line, &r).unwrap();
        assert!(line.ends_with(b"}\n") && !line[..line.len() - 1].contains(&b'\n'));
        let back: Record = serde_json::from_slice(&line).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.states.len(), 11);
    }

    #[test]
    fn records_name_the_namespace_only_when_one_was_given() {
        let mut w = Watcher::new(5, StateSet::ALL).in_netns(Some("blue".into()));
        let r = sample(&mut w, 0, 0, &[]);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["netns"], "blue");
        let mut w = Watcher::new(5, StateSet::ALL);
        let r = sample(&mut w, 0, 0, &[]);
        let mut line = Vec::new();
        write_line(&mut line, &r).unwrap();
        assert!(!String::from_utf8_lossy(&line).contains("netns"));
        // Records written without the field (older files) still read.
        let back: Record = serde_json::from_slice(&line).unwrap();
        assert_eq!(back.netns, None);
    }

    #[test]
    fn all_netns_is_refused_in_one_line_with_the_reason() {
        let opts = Options {
            interval: Duration::from_secs(1),
            count: Some(1),
            record: None,
            top: 5,
        };
        let spec = SourceSpec {
            netns: NetnsChoice::All,
            ..SourceSpec::default()
        };
        let Err(e) = Sampling::new(&opts, &spec, &Filter::default()) else {
            panic!("--all-netns accepted");
        };
        let msg = format!("{e:#}");
        assert!(msg.contains("its own counters and port range"), "{msg}");
        assert!(msg.contains("--netns NAME") && !msg.contains('\n'), "{msg}");
    }

    #[test]
    fn plain_lines_line_up_with_the_header() {
        let mut w = Watcher::new(5, StateSet::ALL);
        sample(&mut w, 0, 0, &[]);
        let socks: Vec<Socket> = (0..100).map(|i| tw(40000 + i, 59_000)).collect();
        let r = sample(&mut w, 1000, 100, &socks);
        let line = plain_line(&r);
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            &cols[1..8],
            ["100", "100.0", "100.0", "6000", "100.0", "0", "0"]
        );
        // The destination is full: 100 of 100 ports.
        assert!(line.ends_with("127.0.0.1 -> 127.0.0.2:80 in now"), "{line}");
        // Right-aligned numbers end under their header.
        let end = |s: &str, word: &str| s.find(word).unwrap() + word.len();
        let header = plain_header();
        assert_eq!(end(&header, "TIME_WAIT"), end(&line, " 100 ") - 1);
        assert_eq!(end(&header, "FORECAST"), end(&line, "6000"));
    }

    #[test]
    fn numbers_for_people() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(12_034), "12,034");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(seconds(None), "never");
        assert_eq!(seconds(Some(0.0)), "now");
        assert_eq!(seconds(Some(6.4)), "6s");
        assert_eq!(clock(0.0).len(), 8);
        assert_eq!(date_time(0.0).len(), 19);
    }
}

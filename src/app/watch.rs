//! `tw watch`: paced samples through the source seam into the rate model
//! (`analyze::watch`), shown in the live view ([`crate::tui`]) on a
//! terminal, as JSON Lines otherwise, and written to `--record FILE`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};

use crate::analyze::watch::{Record, Watcher};
use crate::cli::{EventsChoice, WatchArgs};
use crate::model::{StateSet, TcpState};
use crate::query::Filter;
use crate::render::watch::{plain_header, plain_line, write_line};
use crate::render::Format;
use crate::source::events::{Scope, Tracer};
use crate::source::{NetnsChoice, Source, SourceSpec};

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
        // Built without the live view: a terminal gets the plain lines.
        None if tty && cfg!(feature = "tui") => Mode::Live,
        None if tty => Mode::Plain,
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
    /// With events: a full dump at most this often; `None` for auto.
    pub dump_every: Option<Duration>,
}

/// Auto `--dump-every`: a dump's wall time x this is the time to the next,
/// so dumps take about 1% of a core (a dump is CPU in the kernel and in tw).
const AUTO_DUMP_FACTOR: u32 = 100;
/// ... but at most this long apart: a TIME_WAIT's life, after which every
/// TIME_WAIT the last dump saw has expired and what the projection holds is
/// all events; the states and the ports held in other states are never
/// older than that.
const AUTO_DUMP_MAX: Duration = Duration::from_secs(60);
/// The ring buffer (4 MiB) is drained at least this often while waiting for
/// a beat, as `tw trace` does: 200 ms of 5,000 connections/s is about
/// 360 KB.
const DRAIN_EVERY: Duration = Duration::from_millis(200);

/// The eBPF side of a watch with events.
pub struct Events {
    tracer: Tracer,
    filter: Filter,
    /// CLOCK_MONOTONIC at the watch's start, in ns: the clock of both
    /// `Instant` and the events' bpf_ktime_get_ns.
    base_ns: i128,
    lost_seen: u64,
    /// The filters select what /proc/net/sockstat cannot count: every
    /// sample is a full dump.
    always_dump: bool,
    last_dump: Option<Instant>,
    last_cost: Duration,
}

/// CLOCK_MONOTONIC in ns.
fn monotonic_ns() -> i128 {
    // SAFETY: clock_gettime writes only into `ts`, which we own.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

/// Whether /proc/net/sockstat's `tw` (every TIME_WAIT of the namespace)
/// answers for `filter`: not when it selects families, directions,
/// addresses or ports, or leaves TIME_WAIT out.
pub fn sockstat_answers(filter: &Filter) -> bool {
    filter.family.is_none()
        && filter.direction.is_none()
        && filter.expr.is_none()
        && filter.states.contains(TcpState::TimeWait)
}

/// `--events`: a tracer for the watched namespace, or why not. `on` fails
/// with the reason; `auto` returns the reason as the one line to say.
pub fn start_events(
    choice: EventsChoice,
    spec: &SourceSpec,
    filter: &Filter,
) -> Result<(Option<Events>, Option<String>)> {
    if choice == EventsChoice::Off {
        return Ok((None, None));
    }
    let scope = match &spec.netns {
        NetnsChoice::One(ns) => {
            Scope::of(&ns.path).map_err(|e| anyhow!("--netns {}: {e}", ns.label))
        }
        _ => Scope::of("/proc/self/ns/net".as_ref()).map_err(|e| anyhow!("watch: {e}")),
    }?;
    let mut tracer = match Tracer::start(scope) {
        Ok(t) => t,
        Err(why) if choice == EventsChoice::On => bail!(
            "watch --events on: eBPF is unavailable: {why}; run tw as root on a kernel with \
             BTF, or use --events auto or off to watch from samples"
        ),
        Err(why) => {
            return Ok((
                None,
                Some(format!(
                    "watch: no eBPF events ({why}); the inflow comes from timer ages and samples \
                     (--events off to not try)"
                )),
            ))
        }
    };
    // Listeners made before tracing began get their process, so TIME_WAIT
    // of connections they accepted is credited; failing that only costs
    // attribution, said once.
    let mut said = Vec::new();
    super::trace::seed_listeners(&mut tracer, spec, &mut said)?;
    let note = String::from_utf8_lossy(&said)
        .lines()
        .next()
        .map(|l| l.trim_start_matches("tw: ").replace("trace:", "watch:"));
    Ok((
        Some(Events {
            tracer,
            filter: filter.clone(),
            base_ns: 0,
            lost_seen: 0,
            always_dump: !sockstat_answers(filter),
            last_dump: None,
            last_cost: Duration::ZERO,
        }),
        note,
    ))
}

/// Takes paced samples: the first at once, then one per interval on a fixed
/// schedule (start + k x interval), skipping a beat rather than bunching up
/// when a read overruns.
///
/// Each sample's facts and sockets come from the one source; for `--netns`
/// the live source enters the namespace for each read (the netlink socket
/// is opened, and /proc/sys/net resolved, by the thread inside it, see
/// net_ctl_header_lookup in net/sysctl_net.c), so they describe that
/// namespace whichever thread samples.
pub struct Sampling {
    watcher: Watcher,
    source: Arc<dyn Source>,
    filter: Filter,
    start: Instant,
    beat: u64,
    interval: Duration,
    /// Intervals still to take after the baseline; `None` for no limit.
    left: Option<u64>,
    record: Option<(PathBuf, BufWriter<File>)>,
    /// Said once: the first choice of reader is not available, or the
    /// source is a capture that holds one moment.
    pub note: Option<String>,
    events: Option<Events>,
    dump_every: Option<Duration>,
}

/// `--all-netns` is refused: rates and forecasts of several namespaces do
/// not add up.
pub fn check_netns(netns: &NetnsChoice) -> Result<()> {
    if let NetnsChoice::All = netns {
        bail!(
            "watch --all-netns: each namespace has its own counters and port range, so \
             their rates and forecasts do not add up; watch one with --netns NAME"
        );
    }
    Ok(())
}

impl Sampling {
    pub fn new(opts: &Options, source: Arc<dyn Source>, filter: &Filter) -> Result<Sampling> {
        let record = match &opts.record {
            Some(path) => {
                let f = File::create(path)
                    .with_context(|| format!("--record {}: cannot create it", path.display()))?;
                Some((path.clone(), BufWriter::new(f)))
            }
            None => None,
        };
        let note = (!source.is_live()).then(|| {
            "watching a capture: it holds one moment, so every later sample repeats the first"
                .to_string()
        });
        Ok(Sampling {
            watcher: Watcher::new(opts.top, filter.states).in_netns(source.label()),
            source,
            filter: filter.clone(),
            start: Instant::now(),
            beat: 0,
            interval: opts.interval,
            left: opts.count,
            record,
            note,
            events: None,
            dump_every: opts.dump_every,
        })
    }

    /// The inflow comes from `events`: exact, and full dumps only every
    /// `--dump-every` (auto: see [`AUTO_DUMP_FACTOR`]) unless the filters
    /// need them.
    pub fn with_events(mut self, events: Option<Events>) -> Sampling {
        if events.is_some() {
            self.watcher =
                std::mem::replace(&mut self.watcher, Watcher::new(0, StateSet::ALL)).with_events();
        }
        self.events = events;
        self
    }

    /// Hands the queued events to the watcher.
    fn drain(&mut self) {
        let Some(ev) = &mut self.events else {
            return;
        };
        let (w, filter, base) = (&mut self.watcher, &ev.filter, ev.base_ns);
        ev.tracer.poll(Duration::ZERO, &mut |e| {
            if super::trace::wanted(filter, &e) {
                let ms = (i128::from(e.ts_ns) - base) / 1_000_000;
                w.event(&e, i64::try_from(ms).unwrap_or(i64::MIN));
            }
        });
        // Events the ring buffer had no room for, and program runs the kernel
        // skipped (each already running on that CPU): either way the counts
        // are low by at most that much.
        let lost = ev.tracer.lost() + ev.tracer.skipped();
        if lost > ev.lost_seen {
            w.lost(lost - ev.lost_seen);
            ev.lost_seen = lost;
        }
    }

    /// Whether this sample reads the whole table.
    fn dump_due(&self, now: Instant) -> bool {
        let Some(ev) = &self.events else {
            return true;
        };
        let Some(last) = ev.last_dump else {
            return true;
        };
        if ev.always_dump {
            return true;
        }
        let every = self.dump_every.unwrap_or_else(|| {
            (ev.last_cost * AUTO_DUMP_FACTOR).clamp(self.interval, AUTO_DUMP_MAX)
        });
        // A beat early by a few ms is on time.
        now.duration_since(last) + Duration::from_millis(20) >= every
    }

    /// The baseline sample, taken at once (not recorded: it has no rates).
    pub fn first(&mut self) -> Result<Record> {
        self.start = Instant::now();
        if let Some(ev) = &mut self.events {
            ev.base_ns = monotonic_ns();
            // What queued before the watch began is not its inflow.
            ev.tracer.poll(Duration::ZERO, &mut |_| {});
            ev.lost_seen = ev.tracer.lost() + ev.tracer.skipped();
        }
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
        if self.events.is_some() {
            // Drain the ring buffer as the beat comes, so it never fills.
            loop {
                let left = due.saturating_sub(self.start.elapsed());
                if left.is_zero() {
                    break;
                }
                if !wait(left.min(DRAIN_EVERY)) {
                    return None;
                }
                self.drain();
            }
        } else if !wait(due.saturating_sub(self.start.elapsed())) {
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
        let mut notes = Vec::new();
        let facts = self.source.facts(&mut notes)?;
        let now_ms = i64::try_from(self.start.elapsed().as_millis()).unwrap_or(i64::MAX);
        let unix_s = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.drain();
        let now = Instant::now();
        let projected = if self.dump_due(now) {
            None
        } else {
            self.watcher.project(now_ms, unix_s, &facts)
        };
        let record = match projected {
            Some(r) => r,
            None => {
                let (source, filter) = (&self.source, &self.filter);
                let r = self.watcher.sample(now_ms, unix_s, &facts, |c| {
                    notes.extend(source.read(filter, c)?.notes);
                    Ok(())
                })?;
                if let Some(ev) = &mut self.events {
                    ev.last_dump = Some(now);
                    ev.last_cost = now.elapsed();
                    let end = i64::try_from(self.start.elapsed().as_millis()).unwrap_or(i64::MAX);
                    self.watcher.dump_ended(end);
                }
                r
            }
        };
        if self.note.is_none() && !notes.is_empty() {
            self.note = Some(notes.join("; "));
        }
        Ok(record)
    }
}

#[cfg(feature = "tui")]
impl crate::tui::Feed for Sampling {
    fn first(&mut self) -> Result<Record> {
        Sampling::first(self)
    }

    fn next(&mut self, wait: &mut dyn FnMut(Duration) -> bool) -> Option<Result<Record>> {
        Sampling::next(self, wait)
    }

    fn take_note(&mut self) -> Option<String> {
        self.note.take()
    }
}

/// `tw watch`: `format` as given (`None`: decide by whether stdout is a
/// terminal, `tty`).
pub fn run(
    args: &WatchArgs,
    (format, tty): (Option<Format>, bool),
    spec: &SourceSpec,
    source: Arc<dyn Source>,
    filter: &Filter,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<()> {
    if !source.is_live() {
        bail!(
            "watch samples the live system; --from and --proc-root hold one moment \
             (run `tw` or `tw doctor` on them)"
        );
    }
    let mode = mode(format, tty)?;
    let opts = Options {
        interval: args.interval,
        count: args.count,
        record: args.record.clone(),
        top: args.top,
        dump_every: args.dump_every,
    };
    if mode == Mode::Live {
        // The live view samples on a thread of its own, which makes the
        // Sampling (and loads the programs).
        #[cfg(feature = "tui")]
        {
            let (interval, filter, spec) = (opts.interval, filter.clone(), spec.clone());
            let choice = args.events;
            return crate::tui::run(
                move || {
                    let (events, why) = start_events(choice, &spec, &filter)?;
                    let mut s = Sampling::new(&opts, source, &filter)?.with_events(events);
                    s.note = s.note.take().or(why);
                    Ok(s)
                },
                interval,
            );
        }
        #[cfg(not(feature = "tui"))]
        bail!(
            "watch: this tw was built without the live view (cargo feature `tui`); \
             use --format plain or --format json"
        );
    }
    let label = source.label();
    let (events, why) = start_events(args.events, spec, filter)?;
    if let Some(why) = why {
        writeln!(err, "tw: {why}")?;
    }
    let mut sampling = Sampling::new(&opts, source, filter)?.with_events(events);
    sampling.first()?;
    if let Some(note) = sampling.note.take() {
        writeln!(err, "tw: {note}")?;
    }
    if mode == Mode::Plain {
        // The live view and JSON records name the namespace; so does this.
        if let Some(label) = label {
            writeln!(out, "netns {label}")?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::aggregate::Summary;
    use crate::model::TcpState;
    use crate::source::replay::Replay;

    /// Watch's sampling through the seam, on a capture: no root, no kernel.
    #[test]
    fn samples_come_through_the_seam_from_a_capture() {
        let tree = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/procroot/live");
        let source: Arc<dyn Source> = Arc::new(Replay {
            from: None,
            proc_root: Some(tree.into()),
        });
        let mut want = Summary::default();
        source.read(&Filter::default(), &mut want).unwrap();
        let opts = Options {
            interval: Duration::from_millis(100),
            count: Some(1),
            record: None,
            top: 5,
            dump_every: None,
        };
        let mut s = Sampling::new(&opts, source, &Filter::default()).unwrap();
        assert!(s.note.as_deref().is_some_and(|n| n.contains("one moment")));
        let first = s.first().unwrap();
        for st in [TcpState::TimeWait, TcpState::Established, TcpState::Listen] {
            assert_eq!(first.states.get(st), want.count(st), "{st}");
        }
        assert_eq!(first.total, want.total);
        assert_eq!(first.time_wait.new, None, "the baseline has no rates");
        // The same capture again, at once: nothing entered TIME_WAIT.
        let second = s.next(&mut |_| true).unwrap().unwrap();
        assert_eq!(second.time_wait.new, Some(0));
        assert_eq!(second.time_wait.count, first.time_wait.count);
        assert!(
            s.next(&mut |_| true).is_none(),
            "--count 1 takes one interval"
        );
    }

    #[test]
    fn sockstat_answers_only_for_the_whole_namespace() {
        use crate::model::Family;
        assert!(sockstat_answers(&Filter::default()));
        let only_tw = Filter {
            states: StateSet::of(&[TcpState::TimeWait]),
            ..Filter::default()
        };
        assert!(sockstat_answers(&only_tw));
        for f in [
            Filter {
                family: Some(Family::Inet6),
                ..Filter::default()
            },
            Filter {
                direction: Some(crate::model::Direction::Outbound),
                ..Filter::default()
            },
            Filter {
                states: StateSet::of(&[TcpState::Established]),
                ..Filter::default()
            },
        ] {
            assert!(!sockstat_answers(&f), "{f:?}");
        }
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
    fn all_netns_is_refused_in_one_line_with_the_reason() {
        let Err(e) = check_netns(&NetnsChoice::All) else {
            panic!("--all-netns accepted");
        };
        let msg = format!("{e:#}");
        assert!(msg.contains("its own counters and port range"), "{msg}");
        assert!(msg.contains("--netns NAME") && !msg.contains('\n'), "{msg}");
    }
}

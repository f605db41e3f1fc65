//! `tw watch`: paced samples through the source seam into the rate model
//! (`analyze::watch`), shown in the live view ([`crate::tui`]) on a
//! terminal, as JSON Lines otherwise, and written to `--record FILE`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

use crate::analyze::watch::{Record, Watcher};
use crate::cli::WatchArgs;
use crate::query::Filter;
use crate::render::watch::{plain_header, plain_line, write_line};
use crate::render::Format;
use crate::source::{NetnsChoice, Source};

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
        let mut notes = Vec::new();
        let facts = self.source.facts(&mut notes)?;
        let now_ms = i64::try_from(self.start.elapsed().as_millis()).unwrap_or(i64::MAX);
        let unix_s = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let (source, filter) = (&self.source, &self.filter);
        let record = self.watcher.sample(now_ms, unix_s, &facts, |c| {
            notes.extend(source.read(filter, c)?.notes);
            Ok(())
        })?;
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

/// `tw watch`: `format` as given (`None`: decide by `tty`).
pub fn run(
    args: &WatchArgs,
    format: Option<Format>,
    tty: bool,
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
    };
    if mode == Mode::Live {
        // The live view samples on a thread of its own, which makes the
        // Sampling.
        #[cfg(feature = "tui")]
        {
            let (interval, filter) = (opts.interval, filter.clone());
            return crate::tui::run(move || Sampling::new(&opts, source, &filter), interval);
        }
        #[cfg(not(feature = "tui"))]
        bail!(
            "watch: this tw was built without the live view (cargo feature `tui`); \
             use --format plain or --format json"
        );
    }
    let label = source.label();
    let mut sampling = Sampling::new(&opts, source, filter)?;
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

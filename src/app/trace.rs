//! `tw trace`: TCP events from eBPF, counted per interval per process and
//! destination (or `--by`), as JSON Lines when piped and a live table on a
//! terminal.

use std::io::{self, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Result};
#[cfg(feature = "tui")]
use crossterm::event::{self, Event as TermEvent, KeyCode, KeyEventKind, KeyModifiers};
#[cfg(feature = "tui")]
use ratatui::{
    backend::CrosstermBackend,
    layout::{Constraint, Layout},
    style::{Modifier, Style},
    text::Line,
    widgets::{Paragraph, Row, Table},
    Terminal,
};

use crate::analyze::trace::{Counts, Key, Tally};
use crate::cli::TraceArgs;
use crate::model::event::{Event, EventKind};
use crate::model::schema::SchemaVersion;
use crate::model::{Socket, StateSet, TcpState};
use crate::query::Filter;
use crate::render::Format;
use crate::source::events::{Scope, Tracer};
use crate::source::{NetnsChoice, SourceSpec};

/// What still works without eBPF, for the one line that says why not.
const STILL_WORKS: &str =
    "every other command (ls, count, ports, watch, doctor, metrics) works without it";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Live,
    JsonLines,
}

/// Runs `tw trace` until `--duration` is up, Ctrl-C, or `q` on a terminal.
pub fn run(
    args: &TraceArgs,
    format: Option<Format>,
    tty: bool,
    spec: &SourceSpec,
    filter: &Filter,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<()> {
    if spec.from.is_some() || spec.proc_root.is_some() {
        bail!("trace: events come from the live kernel; --from and --proc-root do not apply");
    }
    if filter.states != StateSet::ALL {
        bail!(
            "trace: --state and `state` select sockets by state; events have none to match \
             (leave them out)"
        );
    }
    let mode = match format {
        None if tty => Mode::Live,
        Some(Format::Table) if tty => Mode::Live,
        None | Some(Format::Json) => Mode::JsonLines,
        Some(Format::Table) => bail!(
            "trace --format table: the live table needs a terminal; use --format json when piping"
        ),
        Some(Format::Plain) => bail!("trace --format plain: not available; use --format json"),
    };
    let (scope, label) = match &spec.netns {
        NetnsChoice::Current => (
            Scope::of("/proc/self/ns/net".as_ref()).map_err(|e| anyhow!("trace: {e}"))?,
            None,
        ),
        NetnsChoice::One(ns) => (
            Scope::of(&ns.path).map_err(|e| anyhow!("--netns {}: {e}", ns.label))?,
            Some(ns.label.clone()),
        ),
        NetnsChoice::All => (Scope::All, Some("all".to_string())),
    };
    let mut tracer = Tracer::start(scope)
        .map_err(|why| anyhow!("trace: eBPF is unavailable: {why}; {STILL_WORKS}"))?;
    seed_listeners(&mut tracer, spec, err)?;
    let ns_text = match (scope, &label) {
        (Scope::All, _) => "every network namespace".to_string(),
        (Scope::Netns(n), Some(l)) => format!("network namespace {l} (inode {n})"),
        (Scope::Netns(n), None) => format!("this network namespace (inode {n})"),
    };
    let keep = |e: &Event| wanted(filter, e);
    let mut run = Run {
        tally: Tally::new(args.by.unwrap_or_default()),
        interval: args.interval,
        duration: args.duration.map(Duration::from_secs),
        lost_seen: 0,
    };
    match mode {
        Mode::JsonLines => {
            catch_signals();
            writeln!(err, "tw: trace: tracing {ns_text}; Ctrl-C stops")?;
            run.json(&mut tracer, &keep, out, err)
        }
        #[cfg(feature = "tui")]
        Mode::Live => {
            let screen = crate::tui::Screen::enter()?;
            let r = run.live(&mut tracer, &keep, &ns_text);
            drop(screen);
            r
        }
        #[cfg(not(feature = "tui"))]
        Mode::Live => bail!(
            "trace: this tw was built without the live table (cargo feature `tui`); use \
             --format json"
        ),
    }
}

/// Listening sockets and who holds them.
struct ListenerScan(Vec<(u16, u64)>);

impl crate::model::Consumer for ListenerScan {
    fn push(&mut self, s: &Socket) -> crate::model::Flow {
        self.0.push((s.local.port, s.inode));
        crate::model::Flow::Continue(())
    }

    fn restart(&mut self) {
        self.0.clear();
    }
}

/// Tells the programs who owns the listeners that exist already (one dump
/// of LISTEN sockets per namespace and one walk of /proc/*/fd, as `-p`
/// does), so connections they accept are credited to their process.
pub(crate) fn seed_listeners(
    tracer: &mut Tracer,
    spec: &SourceSpec,
    err: &mut dyn Write,
) -> Result<()> {
    let mut places: Vec<(NetnsChoice, std::path::PathBuf)> = match &spec.netns {
        NetnsChoice::Current => vec![(NetnsChoice::Current, "/proc/self/ns/net".into())],
        NetnsChoice::One(ns) => vec![(NetnsChoice::One(ns.clone()), ns.path.clone())],
        NetnsChoice::All => crate::source::netns::all()?
            .namespaces
            .into_iter()
            .map(|ns| {
                let path = ns.path.clone();
                (NetnsChoice::One(ns), path)
            })
            .collect(),
    };
    let procs = crate::source::owners::Procs::scan()?;
    let listening = Filter {
        states: StateSet::of(&[TcpState::Listen]),
        ..Filter::default()
    };
    for (netns, path) in places.drain(..) {
        let Ok(Scope::Netns(inode)) = Scope::of(&path) else {
            continue;
        };
        let one = SourceSpec {
            kind: spec.kind,
            netns,
            ..SourceSpec::default()
        };
        let mut scan = ListenerScan(Vec::new());
        if let Err(e) = crate::source::read(&one, &listening, &mut scan) {
            // Only attribution suffers: accepted connections show pid 0.
            writeln!(err, "tw: trace: listeners of {}: {e:#}", path.display())?;
            continue;
        }
        for (port, sock_inode) in scan.0 {
            if let Some(o) = procs.owners(sock_inode).iter().min_by_key(|o| o.pid) {
                tracer.seed_listener(inode, port, o.pid as u32, &o.command);
            }
        }
    }
    Ok(())
}

/// The flags and expression tw's other commands take, applied to the
/// event's socket (its state aside).
pub(crate) fn wanted(filter: &Filter, e: &Event) -> bool {
    let mut s = Socket::new(e.family, TcpState::Established, e.local, e.peer);
    s.direction = e.direction;
    filter.family.is_none_or(|f| f == e.family)
        && (filter.direction.is_none() || filter.direction == e.direction)
        && filter.expr.as_ref().is_none_or(|x| x.matches(&s))
}

struct Run {
    tally: Tally,
    interval: Duration,
    duration: Option<Duration>,
    lost_seen: u64,
}

/// When an interval ended: now, unless it is the scheduled end.
enum Tick {
    Continue,
    Interval(Duration),
    Last(Duration),
}

impl Run {
    /// Polls once (up to `max_wait`) and says whether an interval ended.
    fn step(
        &mut self,
        tracer: &mut Tracer,
        keep: &dyn Fn(&Event) -> bool,
        start: Instant,
        last: &mut Instant,
        max_wait: Duration,
    ) -> Tick {
        let end = self.duration.map(|d| start + d);
        let next = *last + self.interval;
        let wake = end.map_or(next, |e| e.min(next));
        let wait = wake.saturating_duration_since(Instant::now()).min(max_wait);
        let tally = &mut self.tally;
        tracer.poll(wait, &mut |e| {
            if keep(&e) {
                tally.add(&e)
            }
        });
        let now = Instant::now();
        if end.is_some_and(|e| now >= e) || terminated() {
            let d = now - *last;
            *last = now;
            return Tick::Last(d);
        }
        if now >= next {
            // Skip whole beats missed (a stopped process), never bunch up.
            let behind = (now - next).as_nanos() / self.interval.as_nanos().max(1);
            let d = now - *last;
            *last = next + self.interval * behind as u32;
            return Tick::Interval(d);
        }
        Tick::Continue
    }

    fn json(
        &mut self,
        tracer: &mut Tracer,
        keep: &dyn Fn(&Event) -> bool,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> Result<()> {
        let start = Instant::now();
        let mut last = start;
        loop {
            let tick = self.step(tracer, keep, start, &mut last, Duration::from_millis(200));
            let (d, done) = match tick {
                Tick::Continue => continue,
                Tick::Interval(d) => (d, false),
                Tick::Last(d) => (d, true),
            };
            let ts = unix_now();
            for (key, counts) in self.tally.take() {
                serde_json::to_writer(&mut *out, &record(ts, d, &key, &counts))?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
            self.note_lost(tracer, err)?;
            if done {
                return Ok(());
            }
        }
    }

    fn note_lost(&mut self, tracer: &Tracer, err: &mut dyn Write) -> io::Result<()> {
        let lost = tracer.lost();
        if lost > self.lost_seen {
            writeln!(
                err,
                "tw: trace: {} events lost (the ring buffer was full; counts are low)",
                lost - self.lost_seen
            )?;
            self.lost_seen = lost;
        }
        Ok(())
    }

    #[cfg(feature = "tui")]
    fn live(
        &mut self,
        tracer: &mut Tracer,
        keep: &dyn Fn(&Event) -> bool,
        ns_text: &str,
    ) -> Result<()> {
        let mut terminal = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
        let start = Instant::now();
        let mut last = start;
        let mut shown: Vec<(Key, Counts)> = Vec::new();
        let mut shown_secs = self.interval.as_secs_f64();
        loop {
            let title = format!(
                "tw trace: {ns_text}, per {:?}; events lost {}; q quits",
                self.interval,
                tracer.lost()
            );
            terminal.draw(|f| {
                let [head, body] =
                    Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(f.area());
                f.render_widget(Paragraph::new(Line::from(title.clone())), head);
                f.render_widget(table(&shown, shown_secs), body);
            })?;
            let tick = self.step(tracer, keep, start, &mut last, Duration::from_millis(100));
            // A zero timeout never reads the tty (crossterm use-dev-tty); 5 ms does.
            if event::poll(Duration::from_millis(5))? {
                if let TermEvent::Key(k) = event::read()? {
                    let ctrl_c =
                        k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL);
                    if k.kind == KeyEventKind::Press
                        && (ctrl_c || matches!(k.code, KeyCode::Char('q' | 'Q') | KeyCode::Esc))
                    {
                        return Ok(());
                    }
                }
            }
            if crate::tui::terminal_gone() {
                return Ok(());
            }
            match tick {
                Tick::Continue => {}
                Tick::Interval(d) => {
                    shown = self.tally.take();
                    shown_secs = d.as_secs_f64();
                }
                Tick::Last(_) => return Ok(()),
            }
        }
    }
}

#[cfg(feature = "tui")]
const COLUMNS: [(&str, EventKind); 8] = [
    ("CONN/S", EventKind::Connect),
    ("ACCEPT/S", EventKind::Accept),
    ("CLOSE1ST/S", EventKind::CloseFirst),
    ("TW/S", EventKind::TimeWait),
    ("FAILED", EventKind::ConnectFail),
    ("RST OUT", EventKind::RstSent),
    ("RST IN", EventKind::RstRecv),
    ("RETRANS", EventKind::Retransmit),
];

#[cfg(feature = "tui")]
fn table(rows: &[(Key, Counts)], secs: f64) -> Table<'static> {
    let mut header = vec!["PROCESS".to_string(), "DESTINATION".to_string()];
    header.extend(COLUMNS.iter().map(|c| c.0.to_string()));
    let body = rows.iter().map(|(k, c)| {
        let mut cells = vec![
            k.process
                .as_ref()
                .map_or(String::new(), |p| format!("{} {}", p.pid, p.comm)),
            match (&k.destination, &k.listener) {
                (Some((a, Some(p))), _) => {
                    crate::model::Endpoint { addr: *a, port: *p }.to_string()
                }
                (Some((a, None)), _) => format!("{a} (in)"),
                (None, Some(l)) => format!("{l} (listener)"),
                _ => String::new(),
            },
        ];
        for (name, kind) in COLUMNS {
            let n = c.get(kind);
            cells.push(if name.ends_with("/S") {
                format!("{:.1}", n as f64 / secs.max(1e-3))
            } else {
                n.to_string()
            });
        }
        Row::new(cells)
    });
    let mut widths = vec![Constraint::Length(22), Constraint::Length(28)];
    widths.extend(
        COLUMNS
            .iter()
            .map(|c| Constraint::Length(c.0.len().max(7) as u16 + 1)),
    );
    Table::new(body, widths)
        .header(Row::new(header).style(Style::default().add_modifier(Modifier::BOLD)))
}

/// Ctrl-C and SIGTERM end the last interval cleanly (with the `tui`
/// feature, which brings the signal handling).
#[cfg(feature = "tui")]
fn catch_signals() {
    crate::tui::catch_signals()
}

#[cfg(not(feature = "tui"))]
fn catch_signals() {}

#[cfg(feature = "tui")]
fn terminated() -> bool {
    crate::tui::terminated()
}

#[cfg(not(feature = "tui"))]
fn terminated() -> bool {
    false
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// One JSON Lines record (`tw schema trace`). Fields in name order, as
/// the records were written before they had a type; every field is always
/// written, null when `--by` does not use it.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Record {
    /// The process's command; null unless `--by` keys on the process.
    #[schemars(required, extend("type" = ["string", "null"]))]
    pub comm: Option<String>,
    /// Events of each kind in the interval.
    pub counts: RecordCounts,
    #[schemars(required, extend("type" = ["string", "null"]))]
    pub daddr: Option<String>,
    /// null for an inbound destination (the peer's port is ephemeral).
    #[schemars(required, extend("type" = ["integer", "null"]))]
    pub dport: Option<u16>,
    pub interval_s: f64,
    #[schemars(required, extend("type" = ["string", "null"]))]
    pub laddr: Option<String>,
    #[schemars(required, extend("type" = ["integer", "null"]))]
    pub lport: Option<u16>,
    /// The network namespace's inode.
    pub netns: u32,
    #[schemars(required, extend("type" = ["integer", "null"]))]
    pub pid: Option<u32>,
    pub schema_version: SchemaVersion,
    /// End of the interval, Unix seconds.
    pub ts: f64,
}

/// A record's counts, one field per `EventKind` (its `name()`).
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RecordCounts {
    pub accept: u64,
    pub close_first: u64,
    pub connect: u64,
    pub connect_fail: u64,
    /// The time_wait minisockets made in the FIN_WAIT2 substate.
    pub fin_wait2: u64,
    pub retransmit: u64,
    pub rst_recv: u64,
    pub rst_sent: u64,
    pub time_wait: u64,
    pub tw_reuse: u64,
}

pub fn record(ts: f64, interval: Duration, key: &Key, c: &Counts) -> Record {
    let (daddr, dport) = match &key.destination {
        Some((a, p)) => (Some(a.to_string()), *p),
        None => (None, None),
    };
    Record {
        comm: key.process.as_ref().map(|p| p.comm.clone()),
        counts: RecordCounts {
            accept: c.get(EventKind::Accept),
            close_first: c.get(EventKind::CloseFirst),
            connect: c.get(EventKind::Connect),
            connect_fail: c.get(EventKind::ConnectFail),
            fin_wait2: c.fin_wait2(),
            retransmit: c.get(EventKind::Retransmit),
            rst_recv: c.get(EventKind::RstRecv),
            rst_sent: c.get(EventKind::RstSent),
            time_wait: c.get(EventKind::TimeWait),
            tw_reuse: c.get(EventKind::TwReuse),
        },
        daddr,
        dport,
        interval_s: (interval.as_secs_f64() * 1000.0).round() / 1000.0,
        laddr: key.listener.map(|l| l.addr.to_string()),
        lport: key.listener.map(|l| l.port),
        netns: key.netns,
        pid: key.process.as_ref().map(|p| p.pid),
        schema_version: SchemaVersion,
        ts: (ts * 1000.0).round() / 1000.0,
    }
}

/// `tw doctor --trace SECONDS`: traces the namespace for that long first and
/// turns what it saw into one finding: which process fills which
/// destination with TIME_WAIT (it closed first), and the connect() calls
/// that failed for want of a port. `Err` when eBPF is unavailable (the
/// caller says so and goes on without it).
pub fn doctor_finding(
    seconds: u64,
    spec: &SourceSpec,
    filter: &Filter,
    err: &mut dyn Write,
) -> Result<crate::analyze::doctor::Finding> {
    let scope = match &spec.netns {
        NetnsChoice::Current => Scope::of("/proc/self/ns/net".as_ref()),
        NetnsChoice::One(ns) => Scope::of(&ns.path),
        NetnsChoice::All => Ok(Scope::All),
    }
    .map_err(|e| anyhow!("doctor --trace: {e}"))?;
    let mut tracer = Tracer::start(scope)
        .map_err(|why| anyhow!("doctor --trace: eBPF is unavailable: {why}"))?;
    seed_listeners(&mut tracer, spec, err)?;
    writeln!(err, "tw: doctor: tracing for {seconds} s")?;
    let mut tally = Tally::new(crate::analyze::trace::By::ProcessDestination);
    let end = Instant::now() + Duration::from_secs(seconds);
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        tracer.poll(left.min(Duration::from_millis(200)), &mut |e| {
            if wanted(filter, &e) {
                tally.add(&e)
            }
        });
    }
    let lost = tracer.lost();
    Ok(finding_from(&tally.take(), seconds as f64, lost))
}

/// The finding for `rows` counted over `secs` seconds.
pub fn finding_from(
    rows: &[(Key, Counts)],
    secs: f64,
    lost: u64,
) -> crate::analyze::doctor::Finding {
    use crate::analyze::doctor::{Finding, Severity};
    let who = |k: &Key| {
        let p = k.process.as_ref().map_or("?".to_string(), |p| {
            if p.pid == 0 {
                "(unknown process)".to_string()
            } else {
                format!("{}/{}", p.comm, p.pid)
            }
        });
        let d = match &k.destination {
            Some((a, Some(port))) => crate::model::Endpoint {
                addr: *a,
                port: *port,
            }
            .to_string(),
            Some((a, None)) => format!("{a} (inbound)"),
            None => "?".to_string(),
        };
        (p, d)
    };
    let failed: u64 = rows.iter().map(|r| r.1.get(EventKind::ConnectFail)).sum();
    let mut by_tw: Vec<&(Key, Counts)> = rows
        .iter()
        .filter(|r| r.1.get(EventKind::TimeWait) > 0 || r.1.get(EventKind::ConnectFail) > 0)
        .collect();
    by_tw.sort_by_key(|r| {
        std::cmp::Reverse((
            r.1.get(EventKind::ConnectFail),
            r.1.get(EventKind::TimeWait),
        ))
    });
    let mut evidence: Vec<String> = by_tw
        .iter()
        .take(5)
        .map(|(k, c)| {
            let (p, d) = who(k);
            format!(
                "{p} -> {d}: closed first {:.1}/s, TIME_WAIT {:.1}/s, taken over {}, \
                 connect() failed with EADDRNOTAVAIL {}",
                c.get(EventKind::CloseFirst) as f64 / secs,
                c.get(EventKind::TimeWait) as f64 / secs,
                c.get(EventKind::TwReuse),
                c.get(EventKind::ConnectFail)
            )
        })
        .collect();
    if lost > 0 {
        evidence.push(format!(
            "{lost} events lost (ring buffer full): counts are low"
        ));
    }
    let top = by_tw.first().map(|(k, c)| (who(k), c));
    let (severity, title) = match top {
        Some(((p, d), c)) if failed > 0 => (
            Severity::Crit,
            format!(
                "{failed} connect() calls failed for want of a port in {secs:.0} s; {p} \
                 toward {d} the most ({})",
                c.get(EventKind::ConnectFail)
            ),
        ),
        Some(((p, d), c)) if c.get(EventKind::TimeWait) > 0 => (
            Severity::Ok,
            format!(
                "{p} makes the most TIME_WAIT: {:.1}/s toward {d}, closing first",
                c.get(EventKind::TimeWait) as f64 / secs
            ),
        ),
        _ => (
            Severity::Ok,
            format!("no TIME_WAIT made and no connect() failed in {secs:.0} s of tracing"),
        ),
    };
    Finding {
        rule: "trace",
        severity,
        title,
        evidence,
        why: "The side that closes first keeps the TIME_WAIT, and with it the local port \
              toward that destination for 60 s; connect() fails with EADDRNOTAVAIL once every \
              port of the range is held toward it."
            .to_string(),
        fixes: vec![
            "Reuse connections in the process named (HTTP keep-alive, a connection pool), so \
             it stops opening and closing one per request"
                .to_string(),
            "Let the server close first where the protocol allows, so TIME_WAIT lands there \
             (it holds no ephemeral port)"
                .to_string(),
            "net.ipv4.tcp_tw_reuse = 1 lets connect() take over a TIME_WAIT older than 1 s \
             (outbound only, needs timestamps)"
                .to_string(),
            "Widen net.ipv4.ip_local_port_range, or spread over more destination addresses"
                .to_string(),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::event::Process;
    use crate::model::Endpoint;

    #[test]
    fn a_record_carries_namespace_process_destination_and_every_count() {
        let key = Key {
            netns: 4026531840,
            process: Some(Process {
                pid: 42,
                comm: "driver".into(),
            }),
            destination: Some(("10.1.0.2".parse().unwrap(), Some(8080))),
            listener: None,
        };
        let mut c = Counts::default();
        c.0[EventKind::TimeWait as usize] = 300;
        c.0[crate::analyze::trace::FIN_WAIT2] = 12;
        let r = serde_json::to_value(record(
            1_700_000_000.123_4,
            Duration::from_millis(1000),
            &key,
            &c,
        ))
        .unwrap();
        assert_eq!(r["schema_version"], 1);
        assert_eq!(r["netns"], 4026531840u64);
        assert_eq!(r["pid"], 42);
        assert_eq!(r["comm"], "driver");
        assert_eq!(r["daddr"], "10.1.0.2");
        assert_eq!(r["dport"], 8080);
        assert_eq!(r["laddr"], serde_json::Value::Null);
        assert_eq!(r["interval_s"], 1.0);
        assert_eq!(r["ts"], 1_700_000_000.123);
        assert_eq!(r["counts"]["time_wait"], 300);
        assert_eq!(r["counts"]["fin_wait2"], 12);
        assert_eq!(r["counts"].as_object().unwrap().len(), 10);
        for k in EventKind::ALL {
            assert!(r["counts"][k.name()].is_u64(), "{}", k.name());
        }
    }

    #[test]
    fn a_record_has_exactly_the_fields_of_tw_schema_trace() {
        let key = Key {
            netns: 1,
            process: None,
            destination: None,
            listener: Some(Endpoint {
                addr: "127.0.0.1".parse().unwrap(),
                port: 80,
            }),
        };
        let r = serde_json::to_value(record(
            1.0,
            Duration::from_secs(1),
            &key,
            &Counts::default(),
        ))
        .unwrap();
        let s = serde_json::to_value(super::super::schema::schema(
            crate::cli::SchemaCommand::Trace,
        ))
        .unwrap();
        let keys = |v: &serde_json::Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(keys(&r), keys(&s["properties"]));
        let mut required: Vec<String> = serde_json::from_value(s["required"].clone()).unwrap();
        required.sort();
        assert_eq!(required, keys(&r), "every field is always written");
        let counts = &s["$defs"]["RecordCounts"]["properties"];
        assert_eq!(keys(&r["counts"]), keys(counts));
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(r["laddr"], "127.0.0.1");
        assert_eq!(r["lport"], 80);
        assert_eq!(r["pid"], serde_json::Value::Null);
    }

    #[test]
    fn failed_connects_make_the_trace_finding_critical_and_name_the_process() {
        let key = |pid: u32, port: u16| Key {
            netns: 1,
            process: Some(Process {
                pid,
                comm: format!("p{pid}"),
            }),
            destination: Some(("10.0.0.2".parse().unwrap(), Some(port))),
            listener: None,
        };
        let mut busy = Counts::default();
        busy.0[EventKind::TimeWait as usize] = 500;
        busy.0[EventKind::CloseFirst as usize] = 500;
        let mut failing = Counts::default();
        failing.0[EventKind::TimeWait as usize] = 50;
        failing.0[EventKind::ConnectFail as usize] = 7;
        let f = finding_from(&[(key(1, 80), busy), (key(2, 443), failing)], 5.0, 0);
        assert_eq!(f.severity, crate::analyze::doctor::Severity::Crit);
        assert!(
            f.title.starts_with("7 connect() calls failed"),
            "{}",
            f.title
        );
        assert!(f.title.contains("p2/2 toward 10.0.0.2:443"), "{}", f.title);
        assert!(
            f.evidence[1].contains("TIME_WAIT 100.0/s"),
            "{:?}",
            f.evidence
        );

        let f = finding_from(&[(key(1, 80), busy)], 5.0, 3);
        assert_eq!(f.severity, crate::analyze::doctor::Severity::Ok);
        assert!(
            f.title.contains("p1/1 makes the most TIME_WAIT: 100.0/s"),
            "{}",
            f.title
        );
        assert!(f.evidence.last().unwrap().contains("3 events lost"));

        let f = finding_from(&[], 5.0, 0);
        assert!(f.title.starts_with("no TIME_WAIT made"), "{}", f.title);
    }
}

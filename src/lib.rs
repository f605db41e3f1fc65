//! tw: shows and explains TCP socket states on Linux.
//!
//! Readers ([`source`]) feed one model ([`model::Socket`]) through a filter
//! ([`filter`]) into aggregation ([`group`]) and renderers ([`render`]).

pub mod analyze;
pub mod app;
pub mod capture;
pub mod classify;
pub mod cli;
pub mod doctor;
pub mod explain;
pub mod expr;
pub mod filter;
pub mod generate;
pub mod group;
pub mod metrics;
pub mod model;
pub mod netns;
pub mod plot;
pub mod procs;
pub mod render;
pub mod serve;
pub mod source;
pub mod system;
pub mod tui;
pub mod watch;

use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::{anyhow, bail, Result};

use cli::{
    CaptureArgs, Cli, Command, CountArgs, DoctorArgs, ExplainArgs, Format, Global, LsArgs,
    PortsArgs, SortKey,
};
use filter::Filter;
use group::{Collect, Counter, Groups, PortGroups, Summary};
use model::{Family, Socket};
use render::{Report, Style};
use source::{Consumer, NetnsChoice, SourceSpec};

/// How a successful run ended, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// A check such as `--fail-above` tripped, or doctor warned (exit 1).
    CheckTripped,
    /// Doctor found something critical (exit 2).
    Critical,
}

impl Outcome {
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Ok => 0,
            Outcome::CheckTripped => 1,
            Outcome::Critical => 2,
        }
    }
}

/// Exit status when the command itself fails: 2, except for doctor, where
/// 2 means critical and a failure is Nagios's UNKNOWN, 3.
pub fn error_exit_code(cli: &Cli) -> u8 {
    match cli.command {
        Some(Command::Doctor(_)) => 3,
        _ => 2,
    }
}

/// Runs one command line. Nothing is written to `out` unless the whole read
/// succeeded, so an error never leaves a partial answer on stdout; the one
/// exception is a streamed `tw ls` longer than the rows it holds first
/// (`render::listing::HOLD`), whose written rows stay.
pub fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> Result<Outcome> {
    let filter = build_filter(&cli.global, expression_words(&cli.command))?;
    let spec = SourceSpec {
        kind: cli.global.source,
        from: cli.global.from.clone(),
        proc_root: cli.global.proc_root.clone(),
        netns: match (&cli.global.netns, cli.global.all_netns) {
            (Some(n), _) => NetnsChoice::One(netns::named(n)?),
            (None, true) => NetnsChoice::All,
            (None, false) => NetnsChoice::Current,
        },
    };
    spec.check()?;
    let tty = std::io::stdout().is_terminal();
    let format = cli
        .global
        .format
        .unwrap_or(if tty { Format::Table } else { Format::Plain });
    let style = Style {
        color: tty
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            && std::env::var_os("TERM").is_none_or(|t| t != "dumb"),
        width: None,
    };
    let read = |c: &mut dyn Consumer, err: &mut dyn Write| -> Result<source::ReadInfo> {
        let info = source::read(&spec, &filter, c)?;
        for note in &info.notes {
            writeln!(err, "tw: {note}")?;
        }
        Ok(info)
    };

    let mut outcome = Outcome::Ok;
    match cli.command {
        None | Some(Command::Summary(_)) => {
            let mut sum = Summary::default();
            read(&mut sum, err)?;
            render::render(format, &Report::Summary(&sum), out, &style)?;
        }
        Some(Command::Ls(LsArgs { sort, limit, .. })) => {
            // One walk of /proc/*/fd, before the read, so that rows can be
            // written with their owners as they arrive.
            let procs = cli.global.processes.then(procs::Procs::scan).transpose()?;
            let note_hidden = |err: &mut dyn Write| match &procs {
                Some(p) if p.hidden > 0 => writeln!(
                    err,
                    "tw: -p: the sockets of {} unreadable process(es) show no owner; root sees all",
                    p.hidden
                ),
                _ => Ok(()),
            };
            match render::listing_rows(format).filter(|_| sort.is_none()) {
                // Nothing to sort: rows go out as the reader delivers them.
                Some(rows) => {
                    let mut stream = render::Stream::new(rows, out, procs.as_ref(), limit);
                    let read = read(&mut stream, err);
                    stream.check()?;
                    read?;
                    note_hidden(err)?;
                    stream.finish()?;
                }
                // Sorted, or a table (sized on every row, and followed by the
                // histogram of the whole set): every row is held.
                None => {
                    let mut c = Collect::new(sort.map(order), limit);
                    let info = read(&mut c, err)?;
                    note_hidden(err)?;
                    let socks = c.finish();
                    let notes = render::Annotation {
                        namespaces: &info.namespaces,
                        procs: procs.as_ref(),
                    };
                    let report = if notes.is_bare() {
                        Report::Sockets(&socks)
                    } else {
                        Report::Annotated {
                            socks: &socks,
                            notes,
                        }
                    };
                    render::render(format, &report, out, &style)?;
                }
            }
        }
        Some(Command::Count(CountArgs {
            by,
            top,
            fail_above,
            ..
        })) => {
            let total = match by {
                None => {
                    let mut c = Counter::default();
                    read(&mut c, err)?;
                    render::render(format, &Report::Count(c.total), out, &style)?;
                    c.total
                }
                Some(by) => {
                    let mut g = Groups::new(by);
                    let info = read(&mut g, err)?;
                    let groups: Vec<(String, u64)> = g
                        .ranked(top)
                        .into_iter()
                        .map(|(k, n)| (k.label(&info.namespaces), n))
                        .collect();
                    let report = Report::Groups {
                        by: by.name(),
                        total: g.total,
                        groups: &groups,
                    };
                    render::render(format, &report, out, &style)?;
                    g.total
                }
            };
            if fail_above.is_some_and(|n| total > n) {
                outcome = Outcome::CheckTripped;
            }
        }
        Some(Command::Ports(PortsArgs { top, .. })) => {
            let facts = load_facts(&spec, err)?;
            let range = doctor::port_range(&facts);
            let mut ports = PortGroups::new(range);
            read(&mut ports, err)?;
            let rows = ports.ranked(top);
            let capacity = facts
                .ephemeral_capacity()
                .unwrap_or_else(|| system::port_capacity(range, &[]));
            let report = Report::Ports {
                rows: &rows,
                capacity,
                low: range.lo,
            };
            render::render(format, &report, out, &style)?;
        }
        Some(Command::Doctor(DoctorArgs { verbose, trace, .. })) => {
            // Events first: the scan after them sees what they left behind.
            let traced = trace.map(|s| app::trace::doctor_finding(s, &spec, &filter, err));
            let facts = load_facts(&spec, err)?;
            let mut scan = doctor::Scan::new(doctor::port_range(&facts));
            read(&mut scan, err)?;
            let mut findings = doctor::diagnose(&facts, &scan);
            match traced {
                Some(Ok(f)) => {
                    findings.push(f);
                    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
                }
                // The rest of doctor does not need events.
                Some(Err(e)) => writeln!(err, "tw: {e:#}; the other checks follow")?,
                None => {}
            }
            outcome = match doctor::worst(&findings) {
                doctor::Severity::Ok => Outcome::Ok,
                doctor::Severity::Warn => Outcome::CheckTripped,
                doctor::Severity::Crit => Outcome::Critical,
            };
            let report = Report::Doctor {
                findings: &findings,
                verbose,
            };
            render::render(format, &report, out, &style)?;
        }
        Some(Command::Explain(ExplainArgs { topic })) => match topic {
            None => explain::render_list(out)?,
            Some(q) => {
                let topic = explain::find(&q).map_err(|e| anyhow!("explain: {e}"))?;
                explain::render(topic, out)?;
            }
        },
        Some(Command::Capture(CaptureArgs { dir })) => {
            capture::capture(&dir, &spec, &filter, out)?;
        }
        Some(Command::Metrics(cli::MetricsArgs { top })) => {
            metrics::no_format(cli.global.format, "metrics")?;
            let snap = metrics::Snapshot::collect(&spec, &filter, err)?;
            render::metrics::render(&snap, top, out)?;
        }
        Some(Command::Serve(args)) => {
            metrics::no_format(cli.global.format, "serve")?;
            serve::serve(serve::Config::new(&args, &spec, &filter))?;
        }
        Some(Command::Generate(cli::GenerateArgs { dir })) => generate::generate(&dir, out)?,
        Some(Command::Watch(args)) => {
            watch::run(&args, cli.global.format, tty, &spec, &filter, out, err)?;
        }
        Some(Command::Plot(cli::PlotArgs { file, output })) => plot::plot(&file, &output)?,
        Some(Command::Trace(args)) => {
            app::trace::run(&args, cli.global.format, tty, &spec, &filter, out, err)?;
        }
    }
    out.flush()?;
    Ok(outcome)
}

/// System facts for ports and doctor: from the live /proc or --proc-root. A
/// --from capture holds none, so defaults are assumed, and said.
pub(crate) fn load_facts(spec: &SourceSpec, err: &mut dyn Write) -> Result<system::Facts> {
    if spec.from.is_some() {
        writeln!(
            err,
            "tw: --from holds no sysctls or counters; assuming ip_local_port_range {}-{} \
             (use --proc-root with a `tw capture` folder for the real ones)",
            doctor::DEFAULT_PORT_RANGE.lo,
            doctor::DEFAULT_PORT_RANGE.hi
        )?;
        return Ok(system::Facts::default());
    }
    let root = spec.proc_root.as_deref().unwrap_or(Path::new("/proc"));
    // Sysctls and counters are per namespace: read them from inside it.
    let _inside = enter_one(spec)?;
    system::read(root)
}

/// Enters the namespace of `--netns` for reads outside `source::read`
/// (facts, capture); refuses `--all-netns`, whose namespaces each have
/// their own sysctls and counters.
pub(crate) fn enter_one(spec: &SourceSpec) -> Result<Option<netns::Entered>> {
    match &spec.netns {
        NetnsChoice::Current => Ok(None),
        NetnsChoice::One(ns) => Ok(Some(netns::enter(ns)?)),
        NetnsChoice::All => bail!(
            "--all-netns: each namespace has its own port range and counters; \
             use one at a time with --netns NAME"
        ),
    }
}

/// The filter expression words after the command, if it takes them.
fn expression_words(cmd: &Option<Command>) -> &[String] {
    match cmd {
        Some(Command::Summary(a)) => &a.expr.words,
        Some(Command::Ls(a)) => &a.expr.words,
        Some(Command::Count(a)) => &a.expr.words,
        Some(Command::Ports(a)) => &a.expr.words,
        Some(Command::Doctor(a)) => &a.expr.words,
        Some(Command::Watch(a)) => &a.expr.words,
        Some(Command::Trace(a)) => &a.expr.words,
        _ => &[],
    }
}

/// The flags and the expression as one filter: the flags are sugar for
/// the same expression language.
fn build_filter(g: &Global, words: &[String]) -> Result<Filter> {
    let parsed = expr::parse(words, &service_port).map_err(|e| anyhow!("{e}"))?;
    let states = match (parsed.states, g.state.is_empty()) {
        (Some(_), false) => {
            bail!("--state and `state`/`exclude` words both give states: use one or the other")
        }
        (Some(s), true) => s,
        (None, _) => filter::parse_states(&g.state).map_err(|e| anyhow!("--state: {e}"))?,
    };
    let flags = filter::flags_expr(&g.sport, &g.dport, &g.src, &g.dst);
    let expr = match (flags, parsed.expr) {
        (Some(a), Some(b)) => Some(a.and(b)),
        (a, b) => a.or(b),
    };
    Ok(Filter {
        states,
        family: match (g.ipv4, g.ipv6) {
            (true, false) => Some(Family::Inet),
            (false, true) => Some(Family::Inet6),
            _ => None,
        },
        direction: g.direction,
        expr,
    })
}

/// A TCP service name from /etc/services (`ssh`, `https`), as ss resolves
/// `dport = :https`.
fn service_port(name: &str) -> Option<u16> {
    let text = std::fs::read_to_string("/etc/services").ok()?;
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default())
        .find_map(|l| {
            let mut f = l.split_whitespace();
            let (service, port) = (f.next()?, f.next()?);
            let (port, proto) = port.split_once('/')?;
            let named = service == name || f.any(|alias| alias == name);
            (named && proto == "tcp").then(|| port.parse().ok())?
        })
}

/// The order of `--sort` (applied stably, so ties keep the kernel's order).
fn order(key: SortKey) -> group::Order {
    match key {
        SortKey::State => |a, b| (a.state, a.local, a.peer).cmp(&(b.state, b.local, b.peer)),
        SortKey::Local => |a, b| (a.local, a.peer).cmp(&(b.local, b.peer)),
        SortKey::Peer => |a, b| (a.peer, a.local).cmp(&(b.peer, b.local)),
        // Soonest first; sockets without a timer last.
        SortKey::Timer => |a, b| {
            let left = |s: &Socket| (s.timer.map_or(u64::MAX, |t| u64::from(t.ms)), s.local);
            left(a).cmp(&left(b))
        },
    }
}

/// True when `e` comes from writing to a closed pipe (`tw ls | head`).
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

//! tw: shows and explains TCP socket states on Linux.
//!
//! Readers ([`source`]) feed one model ([`model::Socket`]) through a filter
//! ([`filter`]) into aggregation ([`group`]) and renderers ([`render`]).

pub mod capture;
pub mod classify;
pub mod cli;
pub mod doctor;
pub mod explain;
pub mod filter;
pub mod group;
pub mod model;
pub mod render;
pub mod source;
pub mod system;

use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::{anyhow, Result};

use cli::{
    CaptureArgs, Cli, Command, CountArgs, DoctorArgs, ExplainArgs, Format, Global, LsArgs,
    PortsArgs, SortKey,
};
use filter::Filter;
use group::{Collect, Counter, Groups, PortGroups, Summary};
use model::{Family, Socket};
use render::{Report, Style};
use source::{Consumer, SourceSpec};

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
/// succeeded, so an error never leaves a partial answer on stdout.
pub fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> Result<Outcome> {
    let filter = build_filter(&cli.global)?;
    let spec = SourceSpec {
        kind: cli.global.source,
        from: cli.global.from.clone(),
        proc_root: cli.global.proc_root.clone(),
    };
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
    let read = |c: &mut dyn Consumer, err: &mut dyn Write| -> Result<()> {
        let info = source::read(&spec, &filter, c)?;
        if let Some(note) = info.fallback_note {
            writeln!(err, "tw: {note}")?;
        }
        Ok(())
    };

    let mut outcome = Outcome::Ok;
    match cli.command {
        None => {
            let mut sum = Summary::default();
            read(&mut sum, err)?;
            render::render(format, &Report::Summary(&sum), out, &style)?;
        }
        Some(Command::Ls(LsArgs { sort, limit })) => {
            let mut c = Collect::default();
            read(&mut c, err)?;
            let socks = arrange(c.sockets, sort, limit);
            render::render(format, &Report::Sockets(&socks), out, &style)?;
        }
        Some(Command::Count(CountArgs {
            by,
            top,
            fail_above,
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
                    read(&mut g, err)?;
                    let groups = g.ranked(top);
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
        Some(Command::Ports(PortsArgs { top })) => {
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
        Some(Command::Doctor(DoctorArgs { verbose })) => {
            let facts = load_facts(&spec, err)?;
            let mut scan = doctor::Scan::new(doctor::port_range(&facts));
            read(&mut scan, err)?;
            let findings = doctor::diagnose(&facts, &scan);
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
    }
    out.flush()?;
    Ok(outcome)
}

/// System facts for ports and doctor: from the live /proc or --proc-root. A
/// --from capture holds none, so defaults are assumed, and said.
fn load_facts(spec: &SourceSpec, err: &mut dyn Write) -> Result<system::Facts> {
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
    system::read(root)
}

fn build_filter(g: &Global) -> Result<Filter> {
    Ok(Filter {
        states: filter::parse_states(&g.state).map_err(|e| anyhow!("--state: {e}"))?,
        family: match (g.ipv4, g.ipv6) {
            (true, false) => Some(Family::Inet),
            (false, true) => Some(Family::Inet6),
            _ => None,
        },
        sport: g.sport.clone(),
        dport: g.dport.clone(),
        src: g.src.clone(),
        dst: g.dst.clone(),
        direction: g.direction,
    })
}

/// Sorts (stable, so ties keep the kernel's order) and truncates a listing.
fn arrange(mut socks: Vec<Socket>, sort: Option<SortKey>, limit: Option<usize>) -> Vec<Socket> {
    match sort {
        None => {}
        Some(SortKey::State) => socks.sort_by_key(|s| (s.state, s.local, s.peer)),
        Some(SortKey::Local) => socks.sort_by_key(|s| (s.local, s.peer)),
        Some(SortKey::Peer) => socks.sort_by_key(|s| (s.peer, s.local)),
        // Soonest first; sockets without a timer last.
        Some(SortKey::Timer) => {
            socks.sort_by_key(|s| (s.timer.map_or(u64::MAX, |t| u64::from(t.ms)), s.local))
        }
    }
    if let Some(n) = limit {
        socks.truncate(n);
    }
    socks
}

/// True when `e` comes from writing to a closed pipe (`tw ls | head`).
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

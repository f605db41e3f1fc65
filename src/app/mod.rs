//! The commands. Each reads through the source seam, analyzes, renders,
//! and decides the exit code; `run` only dispatches.

pub mod capture;
mod conntrack;
mod count;
mod doctor;
pub mod generate;
mod ls;
mod metrics;
pub mod outdir;
mod ports;
mod schema;
pub mod ss;
mod summary;
pub mod terminal;
pub mod trace;
mod unix;
pub mod watch;

use std::io::{IsTerminal, Write};

use anyhow::{anyhow, bail, Result};

use crate::cli::{Cli, Command, Global};
use crate::model::{Consumer, Family};
use crate::query::{self, expr, Filter};
use crate::render::{Format, Style};
use crate::source::{self, netns, NetnsChoice, ReadInfo, Source, SourceSpec};

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

/// Exit status when a command fails, usage errors included: 2, except for
/// doctor, where 2 means critical and a failure is Nagios's UNKNOWN, 3.
pub fn error_exit_code(command: Option<&str>) -> u8 {
    match command {
        Some("doctor") => 3,
        _ => 2,
    }
}

/// What every command gets: where to read, what to keep, how to write.
pub struct Ctx<'a> {
    pub source: Box<dyn Source>,
    pub spec: SourceSpec,
    pub filter: Filter,
    /// `--format` as given.
    pub format: Option<Format>,
    pub tty: bool,
    pub style: Style,
    pub err: &'a mut dyn Write,
}

impl Ctx<'_> {
    /// The format to write in: as given, else a table on a terminal.
    pub fn format(&self) -> Format {
        self.format.unwrap_or(if self.tty {
            Format::Table
        } else {
            Format::Plain
        })
    }

    /// One read into `consumer`, its notes said on stderr.
    pub fn read(&mut self, consumer: &mut dyn Consumer) -> Result<ReadInfo> {
        let info = self.source.read(&self.filter, consumer)?;
        self.notes(&info.notes)?;
        Ok(info)
    }

    /// The system facts of the source, with what had to be assumed.
    pub fn facts(&mut self) -> Result<crate::model::facts::Facts> {
        let mut notes = Vec::new();
        let facts = self.source.facts(&mut notes)?;
        self.notes(&notes)?;
        Ok(facts)
    }

    fn notes(&mut self, notes: &[String]) -> Result<()> {
        for note in notes {
            writeln!(self.err, "tw: {note}")?;
        }
        Ok(())
    }
}

/// Runs one command line. Nothing is written to `out` unless the whole read
/// succeeded, so an error never leaves a partial answer on stdout; the one
/// exception is a streamed `tw ls` longer than the rows it holds first
/// (`render::listing::HOLD`), whose written rows stay.
pub fn run(mut cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> Result<Outcome> {
    let ss_mode = ss::resolve(&mut cli)?;
    let filter = match cli.command {
        // conntrack has its own states and filter (src/app/conntrack.rs).
        Some(Command::Conntrack(_)) => Filter::default(),
        _ => build_filter(&cli.global, expression_words(&cli.command), &ss_mode)?,
    };
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
    let tty = std::io::stdout().is_terminal();
    let width = tty.then(terminal::width).flatten();
    let mut cx = Ctx {
        source: source::open(&spec)?,
        spec,
        filter,
        // -H: rows without a header, which a bordered table cannot be; a
        // terminal of unknown width (0x0) gets plain rows, never a table
        // wrapped one character per line.
        format: cli
            .global
            .format
            .or(((ss_mode.no_header || width.is_none()) && tty).then_some(Format::Plain)),
        tty,
        style: Style {
            color: terminal::color(cli.global.color, tty),
            width,
        },
        err,
    };
    if cx.filter.protocols.udp && !cx.source.is_live() {
        bail!("-u: captures hold TCP tables only; read UDP sockets live (leave out --from/--proc-root)");
    }
    let processes = cli.global.processes;
    if ss_mode.unix {
        let run = if ss_mode.inet { unix::mixed } else { unix::run };
        let outcome = if ss_mode.no_header {
            run(
                &mut cx,
                &cli.command,
                processes,
                &mut crate::render::NoHeader::new(out),
            )?
        } else {
            run(&mut cx, &cli.command, processes, out)?
        };
        out.flush()?;
        return Ok(outcome);
    }
    let outcome = match cli.command {
        None | Some(Command::Summary(_)) => summary::run(&mut cx, out)?,
        Some(Command::Ls(args)) if ss_mode.no_header => {
            let mut out = crate::render::NoHeader::new(out);
            ls::run(&mut cx, &args, processes, &mut out)?
        }
        Some(Command::Ls(args)) => ls::run(&mut cx, &args, processes, out)?,
        Some(Command::Count(args)) if ss_mode.no_header && args.stats => {
            let mut out = crate::render::NoHeader::new(out);
            count::run(&mut cx, &args, &mut out)?
        }
        Some(Command::Count(args)) => count::run(&mut cx, &args, out)?,
        Some(Command::Ports(args)) => ports::run(&mut cx, &args, out)?,
        Some(Command::Doctor(args)) => doctor::run(&mut cx, &args, out)?,
        Some(Command::Explain(args)) => {
            let topic = match &args.topic {
                None => None,
                Some(q) => Some(crate::explain::find(q).map_err(|e| anyhow!("explain: {e}"))?),
            };
            match (cx.format, topic) {
                (Some(Format::Json), t) => crate::explain::render_json(t, out)?,
                (_, None) => crate::explain::render_list(out)?,
                (_, Some(t)) => crate::explain::render(t, out)?,
            }
            Outcome::Ok
        }
        Some(Command::Schema(args)) => schema::run(args.command, out)?,
        Some(Command::Completions(args)) => {
            generate::completions(args.shell, out)?;
            Outcome::Ok
        }
        Some(Command::Man(args)) => {
            generate::man(args.command.as_deref(), out)?;
            Outcome::Ok
        }
        Some(Command::Capture(args)) => {
            capture::capture(&args.dir, &cx.spec, &cx.filter, out)?;
            Outcome::Ok
        }
        Some(Command::Metrics(args)) => metrics::metrics(&mut cx, &args, out)?,
        Some(Command::Serve(args)) => metrics::serve(cx, &args)?,
        Some(Command::Generate(args)) => {
            generate::generate(&args.dir, out)?;
            Outcome::Ok
        }
        Some(Command::Watch(args)) => {
            watch::check_netns(&cx.spec.netns)?;
            watch::run(
                &args,
                (cx.format, cx.tty),
                &cx.spec,
                cx.source.into(),
                &cx.filter,
                out,
                cx.err,
            )?;
            Outcome::Ok
        }
        Some(Command::Conntrack(args)) => conntrack::run(&mut cx, &cli.global, &args, out)?,
        Some(Command::Plot(args)) => {
            plot(&args, cx.err)?;
            Outcome::Ok
        }
        Some(Command::Trace(args)) => {
            trace::run(&args, cx.format, cx.tty, &cx.spec, &cx.filter, out, cx.err)?;
            Outcome::Ok
        }
    };
    out.flush()?;
    Ok(outcome)
}

#[cfg(feature = "plot")]
fn plot(args: &crate::cli::PlotArgs, err: &mut dyn Write) -> Result<()> {
    crate::plot::plot(&args.file, &args.output, err)
}

#[cfg(not(feature = "plot"))]
fn plot(_: &crate::cli::PlotArgs, _: &mut dyn Write) -> Result<()> {
    bail!("plot: this tw was built without it (cargo feature `plot`)")
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
fn build_filter(g: &Global, words: &[String], ss: &ss::SsMode) -> Result<Filter> {
    let ss_states = ss.states;
    // UNIX sockets alone: src and dst are paths (ss's parse_hostcond does
    // the same when the only family asked is AF_UNIX).
    let parsed = if ss.unix && !ss.inet {
        expr::parse_unix(words)
    } else {
        expr::parse(words, &service_port)
    }
    .map_err(|e| anyhow!("{e}"))?;
    let states = match (parsed.states, g.state.is_empty()) {
        (Some(_), false) => {
            bail!("--state and `state`/`exclude` words both give states: use one or the other")
        }
        (Some(s), true) => s,
        (None, true) if ss_states.is_some() => ss_states.unwrap_or_default(),
        (None, _) => {
            crate::model::state::parse_states(&g.state).map_err(|e| anyhow!("--state: {e}"))?
        }
    };
    let flags = query::flags_expr(&g.sport, &g.dport, &g.src, &g.dst);
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
        protocols: ss.protocols,
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

/// True when `e` comes from writing to a closed pipe (`tw ls | head`).
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

//! `tw conntrack`: read the conntrack table through the source (ctnetlink,
//! /proc, or a capture under --proc-root), aggregate it, render it, decide
//! the exit code.

use std::io::Write;

use anyhow::{anyhow, bail, Result};

use super::{Ctx, Outcome};
use crate::analyze::aggregate::Counter;
use crate::analyze::conntrack::{self as analyze, Count, CtFilter, Groups, Table};
use crate::cli::{ConntrackArgs, Global};
use crate::model::{Family, StateSet, TcpState};
use crate::query::Filter;
use crate::render::conntrack::{self as render, View};
use crate::render::{Format, Report};
use crate::source::conntrack::{EntrySink, Health, Origin};

/// The filter of `tw conntrack` from the global flags and its own.
fn filter(g: &Global, args: &ConntrackArgs) -> Result<CtFilter> {
    if g.direction.is_some() {
        bail!("--direction: conntrack entries have no listening side; use --src/--dst instead");
    }
    let mut states = Vec::new();
    for word in g.state.iter().flat_map(|s| s.split(',')) {
        states.push(analyze::parse_state(word).map_err(|e| anyhow!("--state: {e}"))?);
    }
    Ok(CtFilter {
        family: match (g.ipv4, g.ipv6) {
            (true, false) => Some(Family::Inet),
            (false, true) => Some(Family::Inet6),
            _ => None,
        },
        protos: args.proto.clone(),
        states,
        src: g.src.clone(),
        dst: g.dst.clone(),
        sport: g.sport.clone(),
        dport: g.dport.clone(),
    })
}

/// Reads the table of the source's system into `sink`; its notes go to stderr.
fn read(cx: &mut Ctx, sink: &mut dyn EntrySink) -> Result<(Origin, Health)> {
    let Some((origin, health)) = cx.source.conntrack(sink)? else {
        bail!(
            "--from: conntrack reads a `tw capture` folder with --proc-root DIR, not a single \
             socket capture"
        );
    };
    for n in &health.notes {
        writeln!(cx.err, "tw: {n}")?;
    }
    Ok((origin, health))
}

pub fn run(cx: &mut Ctx, g: &Global, args: &ConntrackArgs, out: &mut dyn Write) -> Result<Outcome> {
    let f = filter(g, args)?;
    let format = cx.format();
    let shown = match (args.by, args.count) {
        (None, true) => {
            let mut c = Count {
                filter: f,
                total: 0,
            };
            read(cx, &mut c)?;
            crate::render::render(format, &Report::Count(c.total), out, &cx.style)?;
            c.total
        }
        (Some(by), _) => {
            let mut gr = Groups::new(by, f);
            read(cx, &mut gr)?;
            let groups = gr.ranked(args.top);
            match format {
                Format::Table if !args.count => {
                    render::groups_table(by.name(), gr.total, &groups, out, &cx.style)?
                }
                _ => {
                    let report = Report::Groups {
                        by: by.name(),
                        total: gr.total,
                        groups: &groups,
                    };
                    crate::render::render(format, &report, out, &cx.style)?
                }
            }
            gr.total
        }
        (None, false) => {
            let mut t = Table::new(f);
            let (origin, h) = read(cx, &mut t)?;
            // The TIME_WAIT sockets of the same system, for the comparison.
            let filter = Filter {
                states: StateSet::of(&[TcpState::TimeWait]),
                ..Filter::default()
            };
            let mut c = Counter::default();
            let sockets = cx.source.read(&filter, &mut c).ok().map(|_| c.total);
            let stats = h.stats.as_ref().map(|s| &s.0);
            let finding = analyze::finding(&t, &h.settings, stats, sockets);
            let view = View {
                origin,
                table: &t,
                health: &h,
                top: args.top.unwrap_or(10),
                finding: &finding,
            };
            render::render(format, &view, out, &cx.style)?;
            t.total
        }
    };
    Ok(if args.fail_above.is_some_and(|n| shown > n) {
        Outcome::CheckTripped
    } else {
        Outcome::Ok
    })
}

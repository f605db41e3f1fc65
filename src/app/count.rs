//! `tw count`: one number, or KEY<TAB>COUNT lines with `--by`, and
//! `--fail-above` for scripts.

use std::io::Write;

use anyhow::Result;

use super::{Ctx, Outcome};
use crate::analyze::aggregate::{Counter, Groups};
use crate::cli::CountArgs;
use crate::render::{self, Report};

pub fn run(cx: &mut Ctx, args: &CountArgs, out: &mut dyn Write) -> Result<Outcome> {
    let format = cx.format();
    let total = match args.by {
        Some(by) if args.stats => stats(cx, by, args.top, out)?,
        None => {
            let mut c = Counter::default();
            cx.read(&mut c)?;
            render::render(format, &Report::Count(c.total), out, &cx.style)?;
            c.total
        }
        Some(by) => {
            let mut g = Groups::new(by);
            let info = cx.read(&mut g)?;
            let groups: Vec<(String, u64)> = g
                .ranked(args.top)
                .into_iter()
                .map(|(k, n)| (k.label(&info.namespaces), n))
                .map(|(k, n)| (unconn(k, by, cx.filter.protocols.udp), n))
                .collect();
            let report = Report::Groups {
                by: by.name(),
                total: g.total,
                groups: &groups,
            };
            render::render(format, &report, out, &cx.style)?;
            g.total
        }
    };
    Ok(if args.fail_above.is_some_and(|n| total > n) {
        Outcome::CheckTripped
    } else {
        Outcome::Ok
    })
}

/// `--by KEY --stats`: per-group health over tcp_info; the total is the
/// connections that had it.
fn stats(
    cx: &mut Ctx,
    by: crate::analyze::aggregate::GroupBy,
    top: Option<usize>,
    out: &mut dyn Write,
) -> Result<u64> {
    let mut g = crate::analyze::internals::GroupStats::new(by);
    let info = cx.read(&mut g)?;
    if g.without_info > 0 {
        writeln!(
            cx.err,
            "tw: --stats: {} connection(s) came without tcp_info (/proc/net/tcp and captures \
             have none) and are not counted; the sock_diag source has it",
            g.without_info
        )?;
    }
    let groups: Vec<(String, crate::analyze::internals::Stats)> = g
        .ranked(top)
        .into_iter()
        .map(|(k, s)| (k.label(&info.namespaces), s))
        .collect();
    let total = groups.iter().map(|(_, s)| s.connections).sum();
    render::internals::render_stats(cx.format(), by.name(), &groups, out, &cx.style)?;
    Ok(total)
}

/// A UDP socket with no peer is in TCP_CLOSE, which ss calls UNCONN; no TCP
/// socket in CLOSE is in any dump (it is in no hash table), so with `-u`
/// every CLOSE is one of these.
fn unconn(label: String, by: crate::analyze::aggregate::GroupBy, udp: bool) -> String {
    if udp && by == crate::analyze::aggregate::GroupBy::State && label == "CLOSE" {
        "UNCONN".to_string()
    } else {
        label
    }
}

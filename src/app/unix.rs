//! `-x`: UNIX sockets, listed (`tw -xa`, `tw ls -x`) or counted
//! (`tw count -x [--by state]`), in this namespace or `--netns`.

use std::io::Write;

use anyhow::{bail, Result};

use super::{Ctx, Outcome};
use crate::analyze::aggregate::GroupBy;
use crate::cli::Command;
use crate::model::unix::UnixSocket;
use crate::render::{self, Report};
use crate::source::owners::Procs;
use crate::source::{netns, unix, NetnsChoice, SourceKind};

pub fn run(
    cx: &mut Ctx,
    command: &Option<Command>,
    processes: bool,
    out: &mut dyn Write,
) -> Result<Outcome> {
    if !cx.source.is_live() {
        bail!("-x: captures hold TCP tables only; read UNIX sockets live (leave out --from/--proc-root)");
    }
    if cx.filter.expr.is_some() {
        bail!(
            "-x: the address and port filters (src, dst, sport, dport) are TCP's and UDP's; \
             UNIX sockets take states only (-a, -l, state NAME)"
        );
    }
    if cx.filter.family.is_some() {
        bail!("-x with -4/-6: UNIX sockets have no IP family; leave -4/-6 out");
    }
    if cx.filter.direction.is_some() {
        bail!("-x with --direction: UNIX sockets have no direction; leave --direction out");
    }
    let socks = {
        let _inside = match &cx.spec.netns {
            NetnsChoice::Current => None,
            NetnsChoice::One(ns) => Some(netns::enter(ns)?),
            NetnsChoice::All => {
                bail!("-x with --all-netns: read one namespace at a time (--netns NAME)")
            }
        };
        let (socks, from) = unix::read(
            cx.filter.states,
            cx.spec.kind == SourceKind::Proc,
            cx.spec.kind == SourceKind::Netlink,
        )?;
        if from == unix::UnixSource::Proc {
            writeln!(
                cx.err,
                "tw: -x: read from /proc/net/unix, which has no peers or queues (shown as -); \
                 unix_diag (sock_diag) has them"
            )?;
        }
        socks
    };
    match command {
        Some(Command::Count(a)) => count(cx, &socks, a.by, a.fail_above, out),
        Some(Command::Ls(a)) => {
            if a.show.info || a.show.memory {
                bail!("-x with -i or -m: tcp_info and socket memory are TCP's; leave them out");
            }
            if a.sort.is_some() {
                bail!("-x with --sort: UNIX sockets are listed in the kernel's order; leave --sort out");
            }
            let procs = processes.then(Procs::scan).transpose()?;
            let shown = &socks[..a.limit.unwrap_or(usize::MAX).min(socks.len())];
            render::unix::render(cx.format(), shown, procs.as_ref(), out, &cx.style)?;
            Ok(Outcome::Ok)
        }
        None => {
            render::unix::render(cx.format(), &socks, None, out, &cx.style)?;
            Ok(Outcome::Ok)
        }
        Some(_) => bail!("-x goes with a listing or a count: `tw -xa`, `tw ls -x`, `tw count -x`"),
    }
}

fn count(
    cx: &mut Ctx,
    socks: &[UnixSocket],
    by: Option<GroupBy>,
    fail_above: Option<u64>,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let total = socks.len() as u64;
    match by {
        None => render::render(cx.format(), &Report::Count(total), out, &cx.style)?,
        Some(GroupBy::State) => {
            let mut groups: Vec<(String, u64)> = Vec::new();
            for s in socks {
                match groups.iter_mut().find(|(k, _)| k == s.state_name()) {
                    Some((_, n)) => *n += 1,
                    None => groups.push((s.state_name().to_string(), 1)),
                }
            }
            groups.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let report = Report::Groups {
                by: "state",
                total,
                groups: &groups,
            };
            render::render(cx.format(), &report, out, &cx.style)?;
        }
        Some(other) => bail!(
            "-x with --by {}: UNIX sockets group by state only (--by state)",
            other.name()
        ),
    }
    Ok(if fail_above.is_some_and(|n| total > n) {
        Outcome::CheckTripped
    } else {
        Outcome::Ok
    })
}

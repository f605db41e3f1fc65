//! `-x`: UNIX sockets, listed (`tw -xa`, `tw ls -x`) or counted
//! (`tw count -x [--by state]`), in this namespace or `--netns`.

use std::collections::HashMap;
use std::io::Write;

use anyhow::{bail, Result};

use super::{Ctx, Outcome};
use crate::analyze::aggregate::{Collect, GroupBy};
use crate::cli::Command;
use crate::model::unix::UnixSocket;
use crate::model::{Flow, StateSet};
use crate::query::expr::{Expr, Side};
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
    if cx.filter.expr.as_ref().is_some_and(Expr::has_inet) {
        bail!(
            "-x: --src, --dst, --sport and --dport are addresses and ports, which UNIX sockets \
             have not; filter on paths: tw -xa src '/run/*.sock', dst PATH"
        );
    }
    if cx.filter.family.is_some() {
        bail!("-x with -4/-6: UNIX sockets have no IP family; leave -4/-6 out");
    }
    if cx.filter.direction.is_some() {
        bail!("-x with --direction: UNIX sockets have no direction; leave --direction out");
    }
    match command {
        Some(Command::Count(a)) => count(cx, a.by, a.fail_above, out),
        Some(Command::Ls(a)) => {
            if a.show.info || a.show.memory {
                bail!("-x with -i or -m: tcp_info and socket memory are TCP's; leave them out");
            }
            if a.sort.is_some() {
                bail!("-x with --sort: UNIX sockets are listed in the kernel's order; leave --sort out");
            }
            let procs = processes.then(Procs::scan).transpose()?;
            list(cx, a.limit, procs.as_ref(), out)
        }
        None => list(cx, None, None, out),
        Some(_) => bail!("-x goes with a listing or a count: `tw -xa`, `tw ls -x`, `tw count -x`"),
    }
}

/// The listing, written as the sockets are read (a table: once all are).
fn list(
    cx: &mut Ctx,
    limit: Option<usize>,
    procs: Option<&Procs>,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let mut l = render::unix::UnixListing::new(cx.format(), out, procs, limit, cx.style);
    let read = each(cx, &mut |s| l.push(s));
    l.check()?;
    read?;
    l.finish()?;
    Ok(Outcome::Ok)
}

/// Every socket that passes the filter, to `sink` as it is read, in the
/// kernel's order; none is held unless a `dst` pattern needs the peers'
/// paths (see [`filtered`]).
fn each(cx: &mut Ctx, sink: &mut dyn FnMut(&UnixSocket) -> Flow) -> Result<()> {
    match cx.filter.expr.clone() {
        Some(e) if e.has_path(Some(Side::Dst)) => {
            for s in filtered(cx)? {
                if sink(&s).is_break() {
                    break;
                }
            }
            Ok(())
        }
        e => {
            let states = cx.filter.states;
            read_each(cx, states, &mut |s| {
                if e.as_ref()
                    .is_none_or(|e| e.matches_unix(s.path.as_deref(), None))
                {
                    sink(s)
                } else {
                    Flow::Continue(())
                }
            })
        }
    }
}

/// The UNIX sockets that pass the filter: the states asked and the `src` /
/// `dst` path patterns. A `dst` pattern looks at the peer's path, found by
/// its inode among every socket of the namespace (so every state is read),
/// as ss's unix_list_print does; ss's unix_diag reader (6.x) never fills in
/// the peer's name, so there `dst PATH` matches no socket.
fn filtered(cx: &mut Ctx) -> Result<Vec<UnixSocket>> {
    let Some(e) = cx.filter.expr.clone() else {
        return read(cx, cx.filter.states);
    };
    let states = cx.filter.states;
    let all = if e.has_path(Some(Side::Dst)) {
        read(cx, StateSet::ALL)?
    } else {
        read(cx, states)?
    };
    let paths: HashMap<u64, &str> = if e.has_path(Some(Side::Dst)) {
        all.iter()
            .filter_map(|s| Some((s.inode, s.path.as_deref()?)))
            .collect()
    } else {
        HashMap::new()
    };
    let keep: Vec<bool> = all
        .iter()
        .map(|s| {
            let peer = paths.get(&s.peer).copied();
            states.contains(s.state) && e.matches_unix(s.path.as_deref(), peer)
        })
        .collect();
    Ok(all
        .into_iter()
        .zip(keep)
        .filter_map(|(s, k)| k.then_some(s))
        .collect())
}

/// The UNIX sockets in `states`, in this namespace or `--netns`'s.
fn read(cx: &mut Ctx, states: StateSet) -> Result<Vec<UnixSocket>> {
    let mut v = Vec::new();
    read_each(cx, states, &mut |s| {
        v.push(s.clone());
        Flow::Continue(())
    })?;
    Ok(v)
}

/// The same, each socket to `sink` as it is decoded.
fn read_each(
    cx: &mut Ctx,
    states: StateSet,
    sink: &mut dyn FnMut(&UnixSocket) -> Flow,
) -> Result<()> {
    let from = {
        let _inside = match &cx.spec.netns {
            NetnsChoice::Current => None,
            NetnsChoice::One(ns) => Some(netns::enter(ns)?),
            NetnsChoice::All => {
                bail!("-x with --all-netns: read one namespace at a time (--netns NAME)")
            }
        };
        unix::read_each(
            states,
            cx.spec.kind == SourceKind::Proc,
            cx.spec.kind == SourceKind::Netlink,
            sink,
        )?
    };
    if from == unix::UnixSource::Proc {
        writeln!(
            cx.err,
            "tw: -x: read from /proc/net/unix, which has no peers or queues (shown as -); \
             unix_diag (sock_diag) has them"
        )?;
    }
    Ok(())
}

/// `-x` with `-t` and/or `-u` (`tw -tuxan`): one listing with ss's Netid
/// column, the UNIX sockets first as ss lists them (misc/ss.c, main: unix,
/// then udp, then tcp), read whole and then written.
pub fn mixed(
    cx: &mut Ctx,
    command: &Option<Command>,
    processes: bool,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let Some(Command::Ls(a)) = command else {
        bail!(
            "-x with -t or -u goes with a listing (tw -tuxan, tw ls -tux); count one kind at \
             a time: tw count -x, tw count -tu"
        );
    };
    if !cx.source.is_live() {
        bail!("-x: captures hold TCP tables only; read UNIX sockets live (leave out --from/--proc-root)");
    }
    if cx.filter.expr.is_some() {
        bail!(
            "-x with -t or -u: a filter means addresses and ports for TCP and UDP but paths \
             for UNIX sockets; filter one kind at a time (tw -xa src PATH, tw -tua dport = :53)"
        );
    }
    if cx.filter.family.is_some() || cx.filter.direction.is_some() {
        bail!("-x with -4, -6 or --direction: UNIX sockets have neither; list them apart (tw -xa)");
    }
    if a.show.info || a.show.memory {
        bail!("-x with -i or -m: tcp_info and socket memory are TCP's; use tw ls -ti");
    }
    if a.sort.is_some() {
        bail!("-x with --sort: UNIX sockets are listed in the kernel's order; leave --sort out");
    }
    let unix_socks = read(cx, cx.filter.states)?;
    let procs = processes.then(Procs::scan).transpose()?;
    let mut c = Collect::new(None, None);
    cx.read(&mut c)?;
    let inet = c.finish();
    let limit = a.limit.unwrap_or(usize::MAX);
    let shown_unix = &unix_socks[..limit.min(unix_socks.len())];
    let left = limit - shown_unix.len();
    let shown_inet = &inet[..left.min(inet.len())];
    render::unix::render_mixed(
        cx.format(),
        shown_unix,
        shown_inet,
        procs.as_ref(),
        out,
        &cx.style,
    )?;
    Ok(Outcome::Ok)
}

/// `count -x [--by state]`, counted as the sockets are read.
fn count(
    cx: &mut Ctx,
    by: Option<GroupBy>,
    fail_above: Option<u64>,
    out: &mut dyn Write,
) -> Result<Outcome> {
    if let Some(other) = by.filter(|b| *b != GroupBy::State) {
        bail!(
            "-x with --by {}: UNIX sockets group by state only (--by state)",
            other.name()
        );
    }
    let mut total = 0u64;
    let mut groups: Vec<(String, u64)> = Vec::new();
    each(cx, &mut |s| {
        total += 1;
        match groups.iter_mut().find(|(k, _)| k == s.state_name()) {
            Some((_, n)) => *n += 1,
            None => groups.push((s.state_name().to_string(), 1)),
        }
        Flow::Continue(())
    })?;
    if by.is_none() {
        render::render(cx.format(), &Report::Count(total), out, &cx.style)?;
    } else {
        groups.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let report = Report::Groups {
            by: "state",
            total,
            groups: &groups,
        };
        render::render(cx.format(), &report, out, &cx.style)?;
    }
    Ok(if fail_above.is_some_and(|n| total > n) {
        Outcome::CheckTripped
    } else {
        Outcome::Ok
    })
}

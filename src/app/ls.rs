//! `tw ls`: one row per socket, streamed as the reader delivers them unless
//! they must be held (sorted, or a table sized on every row).

use std::io::Write;

use anyhow::{bail, Result};

use super::{Ctx, Outcome};
use crate::analyze::aggregate::{self, Collect};
use crate::analyze::internals::{self, CollectExtras};
use crate::cli::{LsArgs, SortKey};
use crate::model::internals::Wants;
use crate::model::Socket;
use crate::render::internals::ExtrasStream;
use crate::render::{self, Format, Report};
use crate::source::owners::Procs;

pub fn run(cx: &mut Ctx, args: &LsArgs, processes: bool, out: &mut dyn Write) -> Result<Outcome> {
    let p = cx.filter.protocols;
    // Several protocols: a NETID column, as ss prints it (JSON rows name
    // their protocol in every case).
    let netid = p.tcp && p.udp;
    if p.udp && (args.show.info || args.show.memory) {
        bail!("-u with -i or -m: tcp_info and socket memory are read for TCP sockets only; use -t");
    }
    let wants = Wants {
        info: args.show.info,
        memory: args.show.memory,
    };
    if processes && !cx.source.is_live() {
        bail!(
            "-p: owners come from the live /proc/*/fd, which a capture does not hold; \
             leave -p out with --from or --proc-root"
        );
    }
    // One walk of /proc/*/fd, before the read, so that rows can be written
    // with their owners as they arrive.
    let procs = processes.then(Procs::scan).transpose()?;
    let note_hidden = |err: &mut dyn Write| match &procs {
        Some(p) if p.hidden > 0 => writeln!(
            err,
            "tw: -p: the sockets of {} unreadable process(es) show no owner; root sees all",
            p.hidden
        ),
        _ => Ok(()),
    };
    let format = cx.format();
    if wants.any() {
        return with_extras(cx, args, wants, procs.as_ref(), out);
    }
    match render::listing_rows(format).filter(|_| args.sort.is_none()) {
        // Nothing to sort: rows go out as the reader delivers them.
        Some(rows) => {
            let mut stream =
                render::Stream::new(rows, out, procs.as_ref(), args.limit).with_netid(netid);
            let read = cx.read(&mut stream);
            stream.check()?;
            read?;
            note_hidden(cx.err)?;
            stream.finish()?;
        }
        // Sorted, or a table (sized on every row, and followed by the
        // histogram of the whole set): every row is held.
        None => {
            let mut c = Collect::new(args.sort.map(order), args.limit);
            let info = cx.read(&mut c)?;
            note_hidden(cx.err)?;
            let socks = c.finish();
            let notes = render::Annotation {
                namespaces: &info.namespaces,
                procs: procs.as_ref(),
                netid,
            };
            let report = if notes.is_bare() {
                Report::Sockets(&socks)
            } else {
                Report::Annotated {
                    socks: &socks,
                    notes,
                }
            };
            render::render(format, &report, out, &cx.style)?;
        }
    }
    Ok(Outcome::Ok)
}

/// `tw ls -i` / `-m`: the rows with their tcp_info and socket memory (asked
/// of the kernel only here), streamed unless sorted or a table.
fn with_extras(
    cx: &mut Ctx,
    args: &LsArgs,
    wants: Wants,
    procs: Option<&Procs>,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let note_none = |err: &mut dyn Write| {
        let flag = if wants.info { "-i" } else { "-m" };
        writeln!(
            err,
            "tw: {flag}: this source (/proc/net/tcp or a capture) has no tcp_info or socket \
             memory: rtt, cwnd, ssthresh, retransmits, bytes, rates, lost, unacked, limited \
             times, congestion control and skmem show as -; the sock_diag source has them"
        )
    };
    let format = cx.format();
    if args.sort.is_none() && format != Format::Table {
        // Nothing to sort: rows go out as the reader delivers them.
        let mut stream = ExtrasStream::new(format, wants, out, procs, args.limit);
        let read = cx.read(&mut stream);
        stream.check()?;
        read?;
        if stream.none_given() {
            note_none(cx.err)?;
        }
        stream.finish()?;
        return Ok(Outcome::Ok);
    }
    // Sorted, or a table (sized on every row): every row is held.
    let mut c = CollectExtras::new(wants, args.sort.map(order), args.limit);
    let info = cx.read(&mut c)?;
    let rows = c.finish();
    if internals::none_given(&rows) {
        note_none(cx.err)?;
    }
    let notes = render::Annotation {
        namespaces: &info.namespaces,
        procs,
        ..render::Annotation::NONE
    };
    render::internals::render(cx.format(), &rows, wants, &notes, out, &cx.style)?;
    Ok(Outcome::Ok)
}

/// The order of `--sort` (applied stably, so ties keep the kernel's order).
fn order(key: SortKey) -> aggregate::Order {
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

//! `tw ls`: one row per socket, streamed as the reader delivers them unless
//! they must be held (sorted, or a table sized on every row).

use std::io::Write;

use anyhow::{bail, Result};

use super::{Ctx, Outcome};
use crate::analyze::aggregate::{self, Collect};
use crate::cli::{LsArgs, SortKey};
use crate::model::Socket;
use crate::render::{self, Report};
use crate::source::owners::Procs;

pub fn run(cx: &mut Ctx, args: &LsArgs, processes: bool, out: &mut dyn Write) -> Result<Outcome> {
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
    match render::listing_rows(format).filter(|_| args.sort.is_none()) {
        // Nothing to sort: rows go out as the reader delivers them.
        Some(rows) => {
            let mut stream = render::Stream::new(rows, out, procs.as_ref(), args.limit);
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

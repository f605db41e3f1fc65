//! The live kernel: sock_diag netlink (or /proc/net/tcp as the fallback),
//! in tw's own network namespace, one other, or all of them.

use std::path::Path;

use anyhow::{anyhow, bail, Result};

use super::netlink::{self, DumpEnd, KernelFilter};
use super::netns::{self, Namespace};
use super::{facts, proc, read_states, Filtered, NetnsChoice, ReadInfo, Source, SourceKind};
use crate::model::facts::Facts;
use crate::model::{Consumer, StateSet, TcpState};
use crate::query::Filter;

/// The live system, read through `kind` in `netns`.
#[derive(Debug, Clone, Default)]
pub struct Live {
    pub kind: SourceKind,
    pub netns: NetnsChoice,
}

impl Source for Live {
    fn read(&self, filter: &Filter, consumer: &mut dyn Consumer) -> Result<ReadInfo> {
        let mut info = ReadInfo::default();
        let namespaces: Vec<Option<Namespace>> = match &self.netns {
            NetnsChoice::Current => vec![None],
            NetnsChoice::One(ns) => vec![Some(ns.clone())],
            NetnsChoice::All => {
                let listing = netns::all()?;
                if listing.hidden > 0 {
                    info.notes.push(format!(
                        "--all-netns: the namespace of {} could not be read (permission denied); \
                         root sees them all",
                        plural(listing.hidden, "process", "processes")
                    ));
                }
                listing.namespaces.into_iter().map(Some).collect()
            }
        };
        if namespaces.len() > u16::MAX as usize {
            bail!(
                "--all-netns: {} namespaces is more than tw can label",
                namespaces.len()
            );
        }
        if !matches!(self.netns, NetnsChoice::Current) {
            info.namespaces = namespaces
                .iter()
                .flatten()
                .map(|n| n.label.clone())
                .collect();
            consumer.namespaces(&info.namespaces);
        }
        let all = matches!(self.netns, NetnsChoice::All);
        let mut kind = self.kind;
        let mut failed = None;
        // An interrupted dump anywhere restarts the whole read: the consumer
        // cannot forget one namespace's part alone.
        'attempt: for attempt in 1..=netlink::MAX_DUMP_ATTEMPTS {
            if attempt > 1 {
                consumer.restart();
            }
            info.bytes_received = 0;
            for (i, ns) in namespaces.iter().enumerate() {
                let _inside = match ns.as_ref().map(netns::enter).transpose() {
                    Ok(inside) => inside,
                    // --all-netns: a namespace that went away since it was listed
                    // (its last process exited) has no sockets left to read.
                    Err(_) if all && ns.as_ref().is_some_and(|n| !n.path.exists()) => {
                        let label = ns.as_ref().map_or("", |n| n.label.as_str());
                        info.notes
                            .push(format!("--all-netns: {label} went away while being read"));
                        continue;
                    }
                    // Without privilege (setns needs CAP_SYS_ADMIN) a named namespace
                    // cannot be entered: the others are still worth reading.
                    Err(e) if all && e.is::<netns::Denied>() => {
                        let label = ns.as_ref().map_or("", |n| n.label.as_str());
                        let note = format!(
                            "--all-netns: {label} skipped: permission denied; root sees it"
                        );
                        if !info.notes.contains(&note) {
                            info.notes.push(note);
                        }
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                // Read inside the namespace: /proc/sys/net is the reading
                // thread's.
                let range = facts::port_range_at(Path::new("/proc"));
                let mut f = Filtered::new(filter, consumer, i as u16).with_range(range);
                match read_live(kind, filter, &mut f) {
                    Ok(Read::Whole(bytes)) => info.bytes_received += bytes,
                    Ok(Read::Again(errno)) => {
                        failed = errno;
                        continue 'attempt;
                    }
                    Err(LiveError::Unavailable(e)) if kind == SourceKind::Auto => {
                        info.notes
                            .push(format!("{e}; reading /proc/net/tcp instead"));
                        kind = SourceKind::Proc;
                        drop(f);
                        consumer.restart();
                        continue 'attempt;
                    }
                    Err(LiveError::Unavailable(e)) => {
                        return Err(anyhow!(
                            "{e}; use --source proc to read /proc/net/tcp instead"
                        ))
                    }
                    Err(LiveError::Other(e)) => return Err(e),
                }
                if let Some(note) = f.guess_note().filter(|_| !f.stopped()) {
                    info.notes.push(note);
                }
                if f.stopped() {
                    break;
                }
            }
            return Ok(info);
        }
        Err(match failed {
            Some(errno) => anyhow!(
                "the kernel ended each of {} sock_diag dumps with an error ({}); \
                 the table could not be read whole; try again",
                netlink::MAX_DUMP_ATTEMPTS,
                std::io::Error::from_raw_os_error(errno)
            ),
            None => netlink::DumpError::Interrupted(netlink::MAX_DUMP_ATTEMPTS).into(),
        })
    }

    fn facts(&self, _notes: &mut Vec<String>) -> Result<Facts> {
        // Sysctls and counters are per namespace: read them from inside it.
        let _inside = self.enter_one()?;
        facts::read(Path::new("/proc"))
    }

    fn label(&self) -> Option<String> {
        match &self.netns {
            NetnsChoice::One(ns) => Some(ns.label.clone()),
            _ => None,
        }
    }

    fn is_live(&self) -> bool {
        true
    }
}

impl Live {
    /// Enters the namespace of `--netns` for reads outside [`Source::read`]
    /// (facts, capture); refuses `--all-netns`, whose namespaces each have
    /// their own sysctls and counters.
    pub fn enter_one(&self) -> Result<Option<netns::Entered>> {
        match &self.netns {
            NetnsChoice::Current => Ok(None),
            NetnsChoice::One(ns) => Ok(Some(netns::enter(ns)?)),
            NetnsChoice::All => bail!(
                "--all-netns: each namespace has its own port range and counters; \
                 use one at a time with --netns NAME"
            ),
        }
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// How one namespace's read ended.
enum Read {
    /// Read whole (or as far as the consumer wanted), with the bytes received.
    Whole(u64),
    /// Interrupted, or ended by an errno (`Some`): read again.
    Again(Option<i32>),
}

enum LiveError {
    /// sock_diag cannot be used here: /proc may stand in.
    Unavailable(netlink::DumpError),
    Other(anyhow::Error),
}

impl From<netlink::DumpError> for LiveError {
    fn from(e: netlink::DumpError) -> Self {
        match e {
            e @ netlink::DumpError::Unavailable(_) => LiveError::Unavailable(e),
            e => LiveError::Other(e.into()),
        }
    }
}

/// One namespace's read.
fn read_live(kind: SourceKind, filter: &Filter, f: &mut Filtered) -> Result<Read, LiveError> {
    if kind == SourceKind::Proc {
        // thread-self, not self: /proc/self/net follows the process's first
        // thread, and only this thread entered the namespace.
        proc::read_tables(Path::new("/proc/thread-self/net"), filter, f, true)
            .map_err(LiveError::Other)?;
        return Ok(Read::Whole(0));
    }
    let again = |end| match end {
        DumpEnd::Complete | DumpEnd::Stopped => None,
        DumpEnd::Interrupted => Some(Read::Again(None)),
        DumpEnd::Failed(errno) => Some(Read::Again(Some(errno))),
    };
    let mut d = netlink::Dumper::open()?;
    let kf = KernelFilter::of(filter);
    let families = filter.families();
    let states = if kf.is_active() {
        // The kernel will drop listeners the expression does not match (and
        // all of them with an exact dport), so learn them first: the
        // listening hash is small and the LISTEN-only dump skips the rest.
        let listen = StateSet::of(&[TcpState::Listen]);
        let none = KernelFilter::default();
        if let Some(r) = again(d.dump(families, listen, &none, &mut |s| f.learn(s))?) {
            return Ok(r);
        }
        filter.states
    } else {
        read_states(filter)
    };
    if let Some(r) = again(d.dump(families, states, &kf, &mut |s| f.push(s))?) {
        return Ok(r);
    }
    Ok(Read::Whole(d.bytes_received))
}

//! The seam between where sockets come from and everything after: a
//! [`Source`] is the live kernel ([`live::Live`]: sock_diag netlink, or /proc
//! as the fallback, in one namespace or all) or captured files
//! ([`replay::Replay`]: `--from`, `--proc-root`). Every reader ends in the
//! same [`Consumer`], and facts (sysctls, counters) come from the same
//! source as the sockets, so what follows does not know which one ran.

pub mod conntrack;
pub mod events;
pub mod facts;
pub mod input;
pub mod live;
pub mod netlink;
pub mod netns;
pub mod owners;
pub mod proc;
pub mod replay;
pub mod unix;

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::model::facts::Facts;
use crate::model::{Consumer, Flow, PortRange, Socket, StateSet, TcpState};
use crate::query::direction::Listeners;
use crate::query::Filter;
use netns::Namespace;

/// Where sockets and the facts about their system come from.
pub trait Source: Send + Sync {
    /// Reads the sockets that `filter` selects into `consumer`.
    fn read(&self, filter: &Filter, consumer: &mut dyn Consumer) -> Result<ReadInfo>;
    /// The system facts (sysctls, sockstat, counters, conntrack) of the
    /// system the sockets come from. `notes` gets what had to be assumed.
    fn facts(&self, notes: &mut Vec<String>) -> Result<Facts>;
    /// The namespace the source reads, when it is not tw's own, for titles.
    fn label(&self) -> Option<String> {
        None
    }
    /// True for the live kernel: its answers change from one read to the next.
    fn is_live(&self) -> bool;
    /// The conntrack table of the same system into `sink`, with its settings
    /// and statistics (src/source/conntrack.rs); `Ok(None)` when the source
    /// holds none (a --from capture).
    fn conntrack(
        &self,
        _sink: &mut dyn conntrack::EntrySink,
    ) -> Result<Option<(conntrack::Origin, conntrack::Health)>> {
        Ok(None)
    }
}

/// `--source`: which live reader to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SourceKind {
    /// sock_diag netlink, falling back to /proc when it is unavailable.
    #[default]
    Auto,
    /// sock_diag netlink only.
    Netlink,
    /// /proc/net/tcp and /proc/net/tcp6 only.
    Proc,
}

/// Which network namespaces a live read covers.
#[derive(Debug, Clone, Default)]
pub enum NetnsChoice {
    /// The one tw runs in.
    #[default]
    Current,
    One(Namespace),
    /// `--all-netns`.
    All,
}

/// Where to read from: the live system through `kind` (in `netns`), a
/// captured /proc tree (`proc_root`), or a single capture (`from`).
#[derive(Debug, Clone, Default)]
pub struct SourceSpec {
    pub kind: SourceKind,
    pub from: Option<PathBuf>,
    pub proc_root: Option<PathBuf>,
    pub netns: NetnsChoice,
}

impl SourceSpec {
    /// Refuses combinations that name two different systems, before anything
    /// is read or entered (doctor enters `--netns` for its facts first).
    pub fn check(&self) -> Result<()> {
        let captured = self.from.is_some() || self.proc_root.is_some();
        if captured && !matches!(self.netns, NetnsChoice::Current) {
            bail!(
                "--netns and --all-netns read live namespaces; they do not go with --from or \
                 --proc-root"
            );
        }
        if self.proc_root.is_some() && self.from.is_none() && self.kind == SourceKind::Netlink {
            bail!(
                "--proc-root reads a copy of /proc, --source netlink the live kernel: choose one"
            );
        }
        Ok(())
    }
}

/// The source a spec names: captured files when `--from` or `--proc-root` is
/// given, else the live kernel.
pub fn open(spec: &SourceSpec) -> Result<Box<dyn Source>> {
    spec.check()?;
    Ok(if spec.from.is_some() || spec.proc_root.is_some() {
        Box::new(replay::Replay {
            from: spec.from.clone(),
            proc_root: spec.proc_root.clone(),
        })
    } else {
        Box::new(live::Live {
            kind: spec.kind,
            netns: spec.netns.clone(),
        })
    })
}

/// Reads once from the source `spec` names.
pub fn read(spec: &SourceSpec, filter: &Filter, consumer: &mut dyn Consumer) -> Result<ReadInfo> {
    open(spec)?.read(filter, consumer)
}

/// The result of a read: notes for stderr, and the namespaces read (a
/// socket's `netns` indexes `namespaces`).
#[derive(Debug, Default)]
pub struct ReadInfo {
    pub notes: Vec<String>,
    /// Labels of the namespaces read; empty when only the current one.
    pub namespaces: Vec<String>,
    /// Bytes of sock_diag replies received (0 for other readers).
    pub bytes_received: u64,
}

/// The states to ask a reader for: the filter's, plus LISTEN so direction
/// can be classified (listening sockets are few; the filter drops them again).
pub fn read_states(filter: &Filter) -> StateSet {
    filter.states.union(StateSet::of(&[TcpState::Listen]))
}

/// Classifies each socket's direction, tags its namespace, then applies
/// the filter; remembers whether the consumer has had enough.
pub(crate) struct Filtered<'a> {
    filter: &'a Filter,
    inner: &'a mut dyn Consumer,
    listeners: Listeners,
    netns: u16,
    /// Stamped on every socket: the protocol of the table being read.
    pub(crate) proto: crate::model::Proto,
    /// The consumer answered `Break` (`tw ls --limit N` has its rows, or its
    /// output closed): no more namespaces or tables are read.
    stopped: bool,
    /// Sockets passed on whose direction was guessed from the port range.
    guessed: u64,
}

impl<'a> Filtered<'a> {
    pub(crate) fn new(filter: &'a Filter, inner: &'a mut dyn Consumer, netns: u16) -> Self {
        Filtered {
            filter,
            inner,
            listeners: Listeners::default(),
            netns,
            proto: crate::model::Proto::Tcp,
            stopped: false,
            guessed: 0,
        }
    }

    /// A listener seen only to classify the sockets that follow.
    fn learn(&mut self, s: &Socket) -> Flow {
        self.listeners.classify(s);
        Flow::Continue(())
    }

    pub(crate) fn stopped(&self) -> bool {
        self.stopped
    }

    /// Classifies with `range` (ip_local_port_range of the namespace read)
    /// where a socket's listener is gone; the default range when `None`.
    pub(crate) fn with_range(mut self, range: Option<PortRange>) -> Self {
        if let Some(r) = range {
            self.listeners.set_range(r);
        }
        self
    }

    /// A note when some directions were guessed from the port range.
    pub(crate) fn guess_note(&self) -> Option<String> {
        let n = self.guessed;
        (n > 0).then(|| {
            format!(
                "{n} socket{} taken as inbound from the port range alone (a guess): no listener \
                 on their local port, which is outside ip_local_port_range while the peer's is \
                 inside (a service closed or restarted since it accepted them)",
                if n == 1 { "" } else { "s" }
            )
        })
    }
}

impl Consumer for Filtered<'_> {
    fn push(&mut self, s: &Socket) -> Flow {
        let mut s = *s;
        s.proto = self.proto;
        let before = self.listeners.guessed;
        // Direction is TCP's (a listener's port): UDP has none.
        s.direction = match s.proto {
            crate::model::Proto::Tcp => Some(self.listeners.classify(&s)),
            crate::model::Proto::Udp => None,
        };
        s.netns = self.netns;
        if !self.filter.matches(&s) {
            return Flow::Continue(());
        }
        self.guessed += u64::from(self.listeners.guessed > before);
        let flow = self.inner.push(&s);
        self.stopped |= flow.is_break();
        flow
    }

    fn restart(&mut self) {
        self.listeners.clear();
        self.inner.restart();
        self.stopped = false;
        self.guessed = 0;
    }

    fn wants(&self) -> crate::model::internals::Wants {
        self.inner.wants()
    }

    fn push_extras(&mut self, s: &Socket, extras: &crate::model::internals::Extras) -> Flow {
        let mut s = *s;
        s.proto = self.proto;
        // Direction is TCP's (a listener's port): UDP has none.
        s.direction = match s.proto {
            crate::model::Proto::Tcp => Some(self.listeners.classify(&s)),
            crate::model::Proto::Udp => None,
        };
        s.netns = self.netns;
        if !self.filter.matches(&s) {
            return Flow::Continue(());
        }
        let flow = self.inner.push_extras(&s, extras);
        self.stopped |= flow.is_break();
        flow
    }
}

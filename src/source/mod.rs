//! Where sockets come from: the live kernel (sock_diag netlink, or /proc as
//! the fallback), or a captured file or folder. Every reader ends in the same
//! [`Consumer`], so what follows does not know which one ran.

pub mod events;
pub mod netlink;
pub mod proc;

use std::cell::Cell;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::{anyhow, bail, Context, Result};

use crate::classify::Listeners;
use crate::filter::Filter;
use crate::model::{Family, Socket, StateSet, TcpState};
use crate::netns::{self, Namespace};

/// Receives sockets as a reader produces them.
pub trait Consumer {
    fn push(&mut self, s: &Socket);
    /// Forget everything pushed so far: an interrupted netlink dump is about
    /// to be read again from the start, and must not be counted twice.
    fn restart(&mut self);
    /// Labels of the namespaces read (a socket's `netns` indexes them),
    /// before the first socket; not called when only the current one is.
    fn namespaces(&mut self, _labels: &[String]) {}
    /// False once the consumer takes no more sockets (a `--limit` reached,
    /// its output closed, a restart it cannot honour): the read then ends at
    /// the next point where a dump can stop, between namespaces or attempts.
    fn wants_more(&self) -> bool {
        true
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

/// Which reader produced the sockets, for notes and JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Used {
    Netlink,
    Proc,
    File,
}

/// The result of a read: which reader ran, notes for stderr, and the
/// namespaces read (a socket's `netns` indexes `namespaces`).
#[derive(Debug)]
pub struct ReadInfo {
    pub used: Used,
    pub notes: Vec<String>,
    /// Labels of the namespaces read; empty when only the current one.
    pub namespaces: Vec<String>,
    /// Bytes of sock_diag replies received (0 for other readers).
    pub bytes_received: u64,
}

impl ReadInfo {
    fn file() -> ReadInfo {
        ReadInfo {
            used: Used::File,
            notes: Vec::new(),
            namespaces: Vec::new(),
            bytes_received: 0,
        }
    }
}

/// Reads the sockets that `filter` selects into `consumer`.
pub fn read(spec: &SourceSpec, filter: &Filter, consumer: &mut dyn Consumer) -> Result<ReadInfo> {
    spec.check()?;
    if let Some(path) = &spec.from {
        read_from(path, filter, consumer)?;
        return Ok(ReadInfo::file());
    }
    if let Some(root) = &spec.proc_root {
        read_proc(&root.join("net"), filter, consumer, false)?;
        return Ok(ReadInfo::file());
    }
    let mut info = ReadInfo {
        used: Used::Netlink,
        notes: Vec::new(),
        namespaces: Vec::new(),
        bytes_received: 0,
    };
    let namespaces: Vec<Option<Namespace>> = match &spec.netns {
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
    if !matches!(spec.netns, NetnsChoice::Current) {
        info.namespaces = namespaces
            .iter()
            .flatten()
            .map(|n| n.label.clone())
            .collect();
        consumer.namespaces(&info.namespaces);
    }
    let all = matches!(spec.netns, NetnsChoice::All);
    let mut kind = spec.kind;
    // An interrupted dump anywhere restarts the whole read: the consumer
    // cannot forget one namespace's part alone.
    'attempt: for attempt in 1..=netlink::MAX_DUMP_ATTEMPTS {
        if attempt > 1 {
            consumer.restart();
        }
        info.bytes_received = 0;
        for (i, ns) in namespaces.iter().enumerate() {
            if (attempt > 1 || i > 0) && !consumer.wants_more() {
                break;
            }
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
                Err(e) => return Err(e),
            };
            let mut f = Filtered::new(filter, consumer, i as u16);
            match read_live(kind, filter, &mut f) {
                Ok(Some(bytes)) => info.bytes_received += bytes,
                Ok(None) => continue 'attempt,
                Err(LiveError::Unavailable(e)) if kind == SourceKind::Auto => {
                    info.notes
                        .push(format!("{e}; reading /proc/net/tcp instead"));
                    kind = SourceKind::Proc;
                    info.used = Used::Proc;
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
        }
        if kind == SourceKind::Proc {
            info.used = Used::Proc;
        }
        return Ok(info);
    }
    Err(netlink::DumpError::Interrupted(netlink::MAX_DUMP_ATTEMPTS).into())
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
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

/// One namespace's read. `Ok(None)`: interrupted, read again.
fn read_live(
    kind: SourceKind,
    filter: &Filter,
    f: &mut Filtered,
) -> Result<Option<u64>, LiveError> {
    if kind == SourceKind::Proc {
        // thread-self, not self: /proc/self/net follows the process's first
        // thread, and only this thread entered the namespace.
        read_proc_into(Path::new("/proc/thread-self/net"), filter, f, true)
            .map_err(LiveError::Other)?;
        return Ok(Some(0));
    }
    let mut d = netlink::Dumper::open()?;
    let kf = filter.kernel_filter();
    let families = filter.families();
    let states = if kf.is_active() {
        // The kernel will drop listeners the expression does not match (and
        // all of them with an exact dport), so learn them first: the
        // listening hash is small and the LISTEN-only dump skips the rest.
        let listen = StateSet::of(&[TcpState::Listen]);
        let none = netlink::KernelFilter::default();
        let never = Cell::new(false);
        if !d.dump(families, listen, &none, &mut |s| f.learn(s), &never)? {
            return Ok(None);
        }
        filter.states
    } else {
        read_states(filter)
    };
    let enough = f.enough();
    if !d.dump(families, states, &kf, &mut |s| f.push(s), &enough)? {
        return Ok(None);
    }
    Ok(Some(d.bytes_received))
}

/// The states to ask a reader for: the filter's, plus LISTEN so direction
/// can be classified (listening sockets are few; the filter drops them again).
pub fn read_states(filter: &Filter) -> StateSet {
    filter.states.union(StateSet::of(&[TcpState::Listen]))
}

/// Sockets between two questions to the consumer whether it wants more:
/// often enough to end a dump within a receive buffer or two, rarely
/// enough to cost the count paths nothing.
const ASK_EVERY: u32 = 256;

/// Classifies each socket's direction, tags its namespace, then applies
/// the filter.
struct Filtered<'a> {
    filter: &'a Filter,
    inner: &'a mut dyn Consumer,
    listeners: Listeners,
    netns: u16,
    /// Set once the consumer wants no more sockets (`tw ls --limit N` has
    /// its rows, or its output closed): the readers end the table there
    /// rather than read the rest of a million sockets for nothing.
    enough: Rc<Cell<bool>>,
    since_asked: u32,
}

impl<'a> Filtered<'a> {
    fn new(filter: &'a Filter, inner: &'a mut dyn Consumer, netns: u16) -> Self {
        Filtered {
            filter,
            inner,
            listeners: Listeners::default(),
            netns,
            enough: Rc::default(),
            since_asked: 0,
        }
    }

    /// The flag the readers watch, shared: they hold it while `push` is
    /// borrowed by their visit closure.
    fn enough(&self) -> Rc<Cell<bool>> {
        self.enough.clone()
    }

    /// A listener seen only to classify the sockets that follow.
    fn learn(&mut self, s: &Socket) {
        self.listeners.classify(s);
    }
}

impl Consumer for Filtered<'_> {
    fn push(&mut self, s: &Socket) {
        let mut s = *s;
        s.direction = Some(self.listeners.classify(&s));
        s.netns = self.netns;
        if self.filter.matches(&s) {
            self.inner.push(&s);
        }
        self.since_asked += 1;
        if self.since_asked == ASK_EVERY {
            self.since_asked = 0;
            if !self.inner.wants_more() {
                self.enough.set(true);
            }
        }
    }

    fn restart(&mut self) {
        self.listeners.clear();
        self.inner.restart();
        self.enough.set(false);
        self.since_asked = 0;
    }

    fn wants_more(&self) -> bool {
        self.inner.wants_more()
    }
}

/// A table read up to the end of the line where the consumer had enough,
/// then seen as ended: the parser gets whole lines only, and no error for a
/// table it did not read to its end.
struct UntilEnough<R> {
    inner: R,
    enough: Rc<Cell<bool>>,
    /// Bytes still to hand out before the end, once it is in sight.
    left: Option<usize>,
}

impl<R: BufRead> Read for UntilEnough<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for UntilEnough<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.left == Some(0) {
            return Ok(&[]);
        }
        let buf = self.inner.fill_buf()?;
        if self.left.is_none() && self.enough.get() {
            // Up to the end of the line under way (what a parser holds of
            // it came in earlier buffers); a buffer without one belongs to
            // that line whole.
            if let Some(i) = buf.iter().position(|b| *b == b'\n') {
                self.left = Some(i + 1);
            }
        }
        Ok(match self.left {
            Some(n) => &buf[..n.min(buf.len())],
            None => buf,
        })
    }

    fn consume(&mut self, n: usize) {
        self.inner.consume(n);
        if let Some(left) = &mut self.left {
            *left = left.saturating_sub(n);
        }
    }
}

/// Reads `dir`/tcp and `dir`/tcp6 of a capture.
fn read_proc(dir: &Path, filter: &Filter, consumer: &mut dyn Consumer, live: bool) -> Result<()> {
    read_proc_into(dir, filter, &mut Filtered::new(filter, consumer, 0), live)
}

/// Reads `dir`/tcp and `dir`/tcp6. On the live system (`live`), a missing
/// tcp6 means IPv6 is disabled: no IPv6 sockets, not an error.
fn read_proc_into(dir: &Path, filter: &Filter, f: &mut Filtered, live: bool) -> Result<()> {
    let mut files = Vec::new();
    let mut no_tcp = false;
    for &family in filter.families() {
        let path = dir.join(match family {
            Family::Inet => "tcp",
            Family::Inet6 => "tcp6",
        });
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && (family == Family::Inet6 || !live) =>
            {
                no_tcp |= family == Family::Inet;
                continue;
            }
            Err(e) => return Err(open_error(&path, e)),
        };
        files.push((path, file));
    }
    if files.is_empty() && !live && !dir.join("tcp").exists() && !dir.join("tcp6").exists() {
        bail!(
            "{}: holds neither tcp nor tcp6 (expected copies of /proc/net/tcp and /proc/net/tcp6)",
            dir.display()
        );
    }
    // Without IPv6 there is no tcp6, but every kernel has tcp: a copy without
    // it would be read as a box with no IPv4 sockets.
    if no_tcp && !live {
        bail!(
            "{}: has tcp6 but no tcp; copy /proc/net/tcp too (or pass -6 to read IPv6 alone)",
            dir.display()
        );
    }
    // Live tables are read on threads of their own, all started before the
    // first is parsed (see proc::Prefetch); copies are plain files.
    let mut tables: Vec<(PathBuf, Box<dyn BufRead>)> = Vec::new();
    let mut copies = Vec::new();
    for (path, file) in files {
        let r: Box<dyn BufRead> = if live {
            let p = proc::Prefetch::spawn(file)
                .with_context(|| format!("reading {}", path.display()))?;
            Box::new(p)
        } else {
            copies.push((path.clone(), Unchanged::before(&file, &path)?));
            Box::new(BufReader::with_capacity(128 * 1024, file))
        };
        tables.push((path, r));
    }
    let enough = f.enough();
    for (path, r) in tables {
        if enough.get() {
            break;
        }
        let r = UntilEnough {
            inner: r,
            enough: enough.clone(),
            left: None,
        };
        parse_proc_file(&path, r, filter, f)?;
    }
    for (path, u) in copies {
        u.check(&path)?;
    }
    Ok(())
}

/// A copy that is written to while tw reads it gives an answer that was
/// never true (a cut table, a mix of two), so the size and modification time
/// of a regular file are compared before and after the read. A pipe (`--from
/// <(ss -D /dev/stdout)`) is read as it comes.
struct Unchanged {
    file: Option<File>,
    before: Option<(u64, Option<std::time::SystemTime>)>,
}

impl Unchanged {
    fn before(file: &File, path: &Path) -> Result<Unchanged> {
        let meta = file
            .metadata()
            .with_context(|| format!("reading {}", path.display()))?;
        if !meta.is_file() {
            return Ok(Unchanged {
                file: None,
                before: None,
            });
        }
        Ok(Unchanged {
            file: Some(
                file.try_clone()
                    .with_context(|| format!("reading {}", path.display()))?,
            ),
            before: Some((meta.len(), meta.modified().ok())),
        })
    }

    fn check(&self, path: &Path) -> Result<()> {
        let (Some(file), Some(before)) = (&self.file, self.before) else {
            return Ok(());
        };
        let meta = file
            .metadata()
            .with_context(|| format!("reading {}", path.display()))?;
        if (meta.len(), meta.modified().ok()) != before {
            bail!(
                "{}: changed while tw read it; read it again once it is complete",
                path.display()
            );
        }
        Ok(())
    }
}

fn open_error(path: &Path, e: std::io::Error) -> anyhow::Error {
    let fix = match e.kind() {
        std::io::ErrorKind::PermissionDenied => "; run as root or with read access",
        std::io::ErrorKind::NotFound => "; is /proc mounted?",
        _ => "",
    };
    anyhow!("cannot open {}: {e}{fix}", path.display())
}

fn parse_proc_file(path: &Path, r: impl BufRead, filter: &Filter, f: &mut Filtered) -> Result<()> {
    proc::parse(r, read_states(filter), &mut |s| f.push(s))
        .map_err(|e| anyhow!("{}:{}: {}", path.display(), e.line, e.what))
}

/// `--from PATH`: a folder holding tcp/tcp6 (or net/tcp, net/tcp6 as in a
/// copied /proc), a single /proc table, or a raw sock_diag dump (`ss -D`).
fn read_from(path: &Path, filter: &Filter, consumer: &mut dyn Consumer) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| anyhow!("--from {}: {e}", path.display()))?;
    if meta.is_dir() {
        let net = path.join("net");
        let dir = if !path.join("tcp").exists() && !path.join("tcp6").exists() && net.is_dir() {
            net
        } else {
            path.to_path_buf()
        };
        return read_proc(&dir, filter, consumer, false);
    }
    let file = File::open(path).map_err(|e| open_error(path, e))?;
    let unchanged = Unchanged::before(&file, path)?;
    let mut r = BufReader::with_capacity(128 * 1024, file);
    let head = r
        .fill_buf()
        .with_context(|| format!("reading {}", path.display()))?;
    if head.is_empty() {
        bail!(
            "{}: file is empty (expected a copy of /proc/net/tcp or an `ss -D` dump)",
            path.display()
        );
    }
    if netlink::looks_like_dump(head) {
        let mut f = Filtered::new(filter, consumer, 0);
        netlink::read_capture(r, &mut |s| f.push(s))
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
        return unchanged.check(path);
    }
    parse_proc_file(path, r, filter, &mut Filtered::new(filter, consumer, 0))?;
    unchanged.check(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = include_str!("../../fixtures/proc/tcp");

    /// Parses `TABLE` through `UntilEnough` in buffers of `cap` bytes, calling it enough after
    /// `after` sockets; returns the result and what was visited.
    fn until(cap: usize, after: usize) -> (Result<(), proc::ParseError>, Vec<Socket>) {
        let enough: Rc<Cell<bool>> = Rc::default();
        let r = UntilEnough {
            inner: BufReader::with_capacity(cap, TABLE.as_bytes()),
            enough: enough.clone(),
            left: None,
        };
        let mut seen = Vec::new();
        let res = proc::parse(r, StateSet::ALL, &mut |s| {
            seen.push(*s);
            if seen.len() == after {
                enough.set(true);
            }
        });
        (res, seen)
    }

    #[test]
    fn a_table_ends_cleanly_at_the_line_where_enough_came() {
        let (whole, all) = until(1 << 16, usize::MAX);
        whole.unwrap();
        assert!(all.len() > 10);
        let line = TABLE.lines().nth(1).unwrap().len() + 1;
        for cap in [1, 7, 64, line - 1, line, line + 1, 4096] {
            for after in [1, 2, 5] {
                let (res, seen) = until(cap, after);
                // Whole lines only, so no error for the cut; the parser finishes the buffer
                // it holds, so a few more than asked may come, never a line past that.
                assert!(res.is_ok(), "cap {cap}, after {after}: {res:?}");
                assert_eq!(seen[..], all[..seen.len()], "cap {cap}, after {after}");
                assert!(seen.len() >= after, "cap {cap}, after {after}");
                assert!(
                    seen.len() <= after + cap / line + 1,
                    "cap {cap}, after {after}: {} read",
                    seen.len()
                );
            }
        }
    }
}

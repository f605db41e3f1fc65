//! Where sockets come from: the live kernel (sock_diag netlink, or /proc as
//! the fallback), or a captured file or folder. Every reader ends in the same
//! [`Consumer`], so what follows does not know which one ran.

pub mod netlink;
pub mod proc;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::classify::Listeners;
use crate::filter::Filter;
use crate::model::{Family, Socket, StateSet, TcpState};

/// Receives sockets as a reader produces them.
pub trait Consumer {
    fn push(&mut self, s: &Socket);
    /// Forget everything pushed so far: an interrupted netlink dump is about
    /// to be read again from the start, and must not be counted twice.
    fn restart(&mut self);
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

/// Where to read from: the live system through `kind`, a captured /proc
/// tree (`proc_root`), or a single capture (`from`).
#[derive(Debug, Clone, Default)]
pub struct SourceSpec {
    pub kind: SourceKind,
    pub from: Option<PathBuf>,
    pub proc_root: Option<PathBuf>,
}

/// Which reader produced the sockets, for notes and JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Used {
    Netlink,
    Proc,
    File,
}

/// The result of a read: which reader ran, and a note for stderr when the
/// first choice was not available.
#[derive(Debug)]
pub struct ReadInfo {
    pub used: Used,
    pub fallback_note: Option<String>,
}

/// Reads the sockets that `filter` selects into `consumer`.
pub fn read(spec: &SourceSpec, filter: &Filter, consumer: &mut dyn Consumer) -> Result<ReadInfo> {
    if let Some(path) = &spec.from {
        read_from(path, filter, consumer)?;
        return Ok(ReadInfo {
            used: Used::File,
            fallback_note: None,
        });
    }
    if let Some(root) = &spec.proc_root {
        if spec.kind == SourceKind::Netlink {
            bail!(
                "--proc-root reads a copy of /proc, --source netlink the live kernel: choose one"
            );
        }
        read_proc(&root.join("net"), filter, consumer, false)?;
        return Ok(ReadInfo {
            used: Used::File,
            fallback_note: None,
        });
    }
    match spec.kind {
        SourceKind::Proc => {
            read_proc(Path::new("/proc/net"), filter, consumer, true)?;
            Ok(ReadInfo {
                used: Used::Proc,
                fallback_note: None,
            })
        }
        SourceKind::Netlink => match read_netlink(filter, consumer) {
            Ok(()) => Ok(ReadInfo {
                used: Used::Netlink,
                fallback_note: None,
            }),
            Err(e @ netlink::DumpError::Unavailable(_)) => Err(anyhow!(
                "{e}; use --source proc to read /proc/net/tcp instead"
            )),
            Err(e) => Err(e.into()),
        },
        SourceKind::Auto => match read_netlink(filter, consumer) {
            Ok(()) => Ok(ReadInfo {
                used: Used::Netlink,
                fallback_note: None,
            }),
            Err(e @ netlink::DumpError::Unavailable(_)) => {
                consumer.restart();
                read_proc(Path::new("/proc/net"), filter, consumer, true)?;
                Ok(ReadInfo {
                    used: Used::Proc,
                    fallback_note: Some(format!("{e}; reading /proc/net/tcp instead")),
                })
            }
            Err(e) => Err(e.into()),
        },
    }
}

fn read_netlink(filter: &Filter, consumer: &mut dyn Consumer) -> Result<(), netlink::DumpError> {
    let mut f = Filtered::new(filter, consumer);
    netlink::dump(filter.families(), read_states(filter), &mut f)
}

/// The states to ask a reader for: the filter's, plus LISTEN so direction
/// can be classified (listening sockets are few; the filter drops them again).
fn read_states(filter: &Filter) -> StateSet {
    filter.states.union(StateSet::of(&[TcpState::Listen]))
}

/// Classifies each socket's direction, then applies the filter.
struct Filtered<'a> {
    filter: &'a Filter,
    inner: &'a mut dyn Consumer,
    listeners: Listeners,
}

impl<'a> Filtered<'a> {
    fn new(filter: &'a Filter, inner: &'a mut dyn Consumer) -> Self {
        Filtered {
            filter,
            inner,
            listeners: Listeners::default(),
        }
    }
}

impl Consumer for Filtered<'_> {
    fn push(&mut self, s: &Socket) {
        let mut s = *s;
        s.direction = Some(self.listeners.classify(&s));
        if self.filter.matches(&s) {
            self.inner.push(&s);
        }
    }

    fn restart(&mut self) {
        self.listeners.clear();
        self.inner.restart();
    }
}

/// Reads `dir`/tcp and `dir`/tcp6. On the live system (`live`), a missing
/// tcp6 means IPv6 is disabled: no IPv6 sockets, not an error.
fn read_proc(dir: &Path, filter: &Filter, consumer: &mut dyn Consumer, live: bool) -> Result<()> {
    let mut found = false;
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
                continue
            }
            Err(e) => return Err(open_error(&path, e)),
        };
        found = true;
        parse_proc_file(
            &path,
            BufReader::with_capacity(128 * 1024, file),
            filter,
            consumer,
        )?;
    }
    if !found && !live {
        bail!(
            "--from {}: holds neither tcp nor tcp6 (expected copies of /proc/net/tcp and /proc/net/tcp6)",
            dir.display()
        );
    }
    Ok(())
}

fn open_error(path: &Path, e: std::io::Error) -> anyhow::Error {
    let fix = match e.kind() {
        std::io::ErrorKind::PermissionDenied => "; run as root or with read access",
        std::io::ErrorKind::NotFound => "; is /proc mounted?",
        _ => "",
    };
    anyhow!("cannot open {}: {e}{fix}", path.display())
}

fn parse_proc_file(
    path: &Path,
    r: impl BufRead,
    filter: &Filter,
    consumer: &mut dyn Consumer,
) -> Result<()> {
    let mut f = Filtered::new(filter, consumer);
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
        let mut bytes = Vec::new();
        r.read_to_end(&mut bytes)
            .with_context(|| format!("reading {}", path.display()))?;
        let mut f = Filtered::new(filter, consumer);
        return netlink::decode_capture(&bytes, &mut |s| f.push(s))
            .map_err(|e| anyhow!("{}: {e}", path.display()));
    }
    parse_proc_file(path, r, filter, consumer)
}

//! /proc/net/tcp and tcp6, the fallback reader: the tables of a live system
//! or of a copy, through the line parser in [`parse`].

mod parse;

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};

use anyhow::{anyhow, bail, Context, Result};

use super::{input, read_states, Filtered};
use crate::model::{Consumer, Family};
use crate::query::Filter;

pub use parse::{parse, parse_line, ParseError, MAX_LINE};

/// Reads `dir`/tcp and `dir`/tcp6. On the live system (`live`), a missing
/// tcp6 means IPv6 is disabled: no IPv6 sockets, not an error.
pub(crate) fn read_tables(dir: &Path, filter: &Filter, f: &mut Filtered, live: bool) -> Result<()> {
    let mut files = Vec::new();
    let mut no_tcp = false;
    for &family in filter.families() {
        let path = dir.join(match family {
            Family::Inet => "tcp",
            Family::Inet6 => "tcp6",
        });
        let file = match input::open(&path) {
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
    // first is parsed (see Prefetch); copies are plain files.
    let mut tables: Vec<(PathBuf, Box<dyn BufRead>)> = Vec::new();
    let mut copies = Vec::new();
    for (path, file) in files {
        let r: Box<dyn BufRead> = if live && !file.is_pipe() {
            let p = Prefetch::spawn(file.into_file())
                .with_context(|| format!("reading {}", path.display()))?;
            Box::new(p)
        } else {
            copies.push((path.clone(), Unchanged::before(file.file(), &path)?));
            Box::new(BufReader::with_capacity(128 * 1024, file))
        };
        tables.push((path, r));
    }
    for (path, r) in tables {
        if f.stopped() {
            break;
        }
        read_table(&path, r, filter, f)?;
    }
    for (path, u) in copies {
        u.check(&path)?;
    }
    Ok(())
}

/// Parses one table into `f`, errors naming the file and line.
pub(crate) fn read_table(
    path: &Path,
    r: impl BufRead,
    filter: &Filter,
    f: &mut Filtered,
) -> Result<()> {
    parse(r, read_states(filter), &mut |s| f.push(s))
        .map_err(|e| anyhow!("{}:{}: {}", path.display(), e.line, e.what))
}
/// A copy that is written to while tw reads it gives an answer that was
/// never true (a cut table, a mix of two), so the size and modification time
/// of a regular file are compared before and after the read. A pipe (`--from
/// <(ss -D /dev/stdout)`) is read as it comes.
pub(crate) struct Unchanged {
    file: Option<File>,
    before: Option<(u64, Option<std::time::SystemTime>)>,
}

impl Unchanged {
    pub(crate) fn before(file: &File, path: &Path) -> Result<Unchanged> {
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

    pub(crate) fn check(&self, path: &Path) -> Result<()> {
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

pub(crate) fn open_error(path: &Path, e: std::io::Error) -> anyhow::Error {
    let fix = match e.kind() {
        std::io::ErrorKind::PermissionDenied => "; run as root or with read access",
        std::io::ErrorKind::NotFound => "; is /proc mounted?",
        _ => "",
    };
    anyhow!("cannot open {}: {e}{fix}", path.display())
}

/// Reads a live table on a thread of its own, a few chunks ahead of the
/// parser. The kernel formats /proc/net/tcp inside read() (tcp4_seq_show,
/// about 1.5 µs a line), so one chunk is parsed while the next is formatted,
/// and tcp6's walk of the connection hash (every bucket, IPv4 sockets
/// included) runs beside tcp's instead of after it. Memory stays bounded: at
/// most [`AHEAD`] chunks wait.
pub struct Prefetch {
    chunks: Receiver<io::Result<Vec<u8>>>,
    spare: Sender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

/// Bytes per read(), as `cat` asks.
const CHUNK: usize = 128 * 1024;
/// Chunks read ahead of the parser.
const AHEAD: usize = 4;

impl Prefetch {
    /// Starts reading `file` (opened by the caller, so in the caller's
    /// network namespace: a /proc/net file keeps the namespace it was opened
    /// in, whichever thread reads it).
    pub fn spawn(mut file: File) -> io::Result<Prefetch> {
        let (ahead, chunks) = mpsc::sync_channel(AHEAD);
        let (spare, spares) = mpsc::channel::<Vec<u8>>();
        std::thread::Builder::new()
            .name("tw-read".into())
            .spawn(move || loop {
                let mut buf = spares.try_recv().unwrap_or_default();
                buf.resize(CHUNK, 0);
                // A seq_file read() returns one page at most (seq_read_iter),
                // so fill the chunk with many: one hand-over per chunk, not
                // a thread wake-up per 4 KiB.
                let mut filled = 0;
                let mut failed = None;
                while filled < CHUNK {
                    match file.read(&mut buf[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                buf.truncate(filled);
                let end = filled < CHUNK;
                // A parser that stopped early has dropped the receiver.
                if filled > 0 && ahead.send(Ok(buf)).is_err() {
                    return;
                }
                if let Some(e) = failed {
                    let _ = ahead.send(Err(e));
                    return;
                }
                if end {
                    return;
                }
            })?;
        Ok(Prefetch {
            chunks,
            spare,
            cur: Vec::new(),
            pos: 0,
        })
    }
}

impl Read for Prefetch {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Prefetch {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.cur.len() {
            // A closed channel: the reader is done, at the end of the file.
            if let Ok(chunk) = self.chunks.recv() {
                let used = std::mem::replace(&mut self.cur, chunk?);
                let _ = self.spare.send(used);
                self.pos = 0;
            }
        }
        Ok(&self.cur[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.cur.len());
    }
}

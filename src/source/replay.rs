//! Captured files, read back as the live kernel would be: `--from` (a copy
//! of /proc/net/tcp, a folder of them, or an `ss -D` dump) for sockets, and
//! `--proc-root` (a copy of /proc, as `tw capture` writes) for sockets and
//! facts.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use super::{facts, input, netlink, proc, Filtered, ReadInfo, Source};
use crate::model::facts::Facts;
use crate::model::ports::DEFAULT_PORT_RANGE;
use crate::model::Consumer;
use crate::query::Filter;

/// Sockets from `from` (else from `proc_root`'s net/ folder), facts from
/// `proc_root`.
#[derive(Debug, Clone, Default)]
pub struct Replay {
    pub from: Option<PathBuf>,
    pub proc_root: Option<PathBuf>,
}

impl Source for Replay {
    fn read(&self, filter: &Filter, consumer: &mut dyn Consumer) -> Result<ReadInfo> {
        // Directions of sockets whose listener is gone come from the
        // capture's port range (the default without --proc-root).
        let range = self.proc_root.as_deref().and_then(facts::port_range_at);
        let mut f = Filtered::new(filter, consumer, 0).with_range(range);
        match (&self.from, &self.proc_root) {
            (Some(path), _) => read_from(path, filter, &mut f)?,
            (None, Some(root)) => proc::read_tables(&root.join("net"), filter, &mut f, false)?,
            (None, None) => bail!("nothing to replay: give --from or --proc-root"),
        }
        // A read the consumer cut short (`ls | head`) has only part of the
        // count, and nobody reading it.
        let note = if f.stopped() { None } else { f.guess_note() };
        Ok(ReadInfo {
            notes: note.into_iter().collect(),
            ..ReadInfo::default()
        })
    }

    fn facts(&self, notes: &mut Vec<String>) -> Result<Facts> {
        match &self.proc_root {
            Some(root) => facts::read(root),
            None => {
                notes.push(format!(
                    "--from holds no sysctls or counters; assuming ip_local_port_range {}-{} \
                     (add --proc-root with a `tw capture` folder for the real ones)",
                    DEFAULT_PORT_RANGE.lo, DEFAULT_PORT_RANGE.hi
                ));
                Ok(Facts::default())
            }
        }
    }

    fn is_live(&self) -> bool {
        false
    }
}

/// `--from PATH`: a folder holding tcp/tcp6 (or net/tcp, net/tcp6 as in a
/// copied /proc), a single /proc table, or a raw sock_diag dump (`ss -D`).
fn read_from(path: &Path, filter: &Filter, f: &mut Filtered) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| anyhow!("--from {}: {e}", path.display()))?;
    if meta.is_dir() {
        let net = path.join("net");
        let dir = if !path.join("tcp").exists() && !path.join("tcp6").exists() && net.is_dir() {
            net
        } else {
            path.to_path_buf()
        };
        return proc::read_tables(&dir, filter, f, false);
    }
    let file = input::open(path).map_err(|e| proc::open_error(path, e))?;
    let unchanged = proc::Unchanged::before(file.file(), path)?;
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
        netlink::read_capture(r, &mut |s| f.push(s))
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
        return unchanged.check(path);
    }
    proc::read_table(path, r, filter, f)?;
    unchanged.check(path)
}

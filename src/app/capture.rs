//! `tw capture DIR`: copies exactly what tw reads, laid out like /proc, so
//! `--proc-root DIR` (or `--from DIR`) elsewhere sees what tw saw here.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::{anyhow, Result};

use super::outdir::OutDir;

use crate::model::StateSet;
use crate::query::Filter;
use crate::source::facts::{fact_path, CAPTURE_FILES};
use crate::source::input;
use crate::source::live::Live;
use crate::source::{netlink, SourceSpec};

/// Largest table copied: /proc/net/tcp6 of 4M sockets is about 1 GiB; more
/// is /dev/zero or the like in a --proc-root tree.
const MAX_TABLE: u64 = 4 << 30;

/// Name of the raw sock_diag dump in a capture folder (`ss -D` layout).
pub const DUMP_FILE: &str = "sock_diag.dump";

pub fn capture(dir: &Path, spec: &SourceSpec, filter: &Filter, out: &mut dyn Write) -> Result<()> {
    if spec.from.is_some() {
        return Err(anyhow!(
            "--from: capture copies a /proc tree (live, or --proc-root), not a single capture"
        ));
    }
    let root = spec.proc_root.as_deref().unwrap_or(Path::new("/proc"));
    // Made and checked before the namespace is entered or anything is read.
    let out_dir = OutDir::fresh(dir)?;
    // The files of the --netns namespace, if one was given.
    let live = Live {
        kind: spec.kind,
        netns: spec.netns.clone(),
    };
    let _inside = live.enter_one()?;
    let mut written = 0;
    let mut absent = Vec::new();
    for rel in CAPTURE_FILES {
        let src = fact_path(root, rel);
        // Read, not fs::copy: /proc files report size 0, and a
        // copy_file_range of them can come back empty. Through source::input,
        // as tw reads them: a FIFO or /dev/zero in a --proc-root tree must
        // not hang or fill memory.
        // The tables are streamed, up to MAX_TABLE; the rest held (1 MiB at most).
        let opened = if rel.starts_with("net/tcp") {
            input::open(&src).map(|f| Box::new(f) as Box<dyn Read>)
        } else {
            input::read_small(&src).map(|b| Box::new(std::io::Cursor::new(b)) as Box<dyn Read>)
        };
        let mut from = match opened {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                absent.push(rel.to_string());
                continue;
            }
            Err(e) => return Err(anyhow!("reading {}: {e}", src.display())),
        };
        out_dir
            .copy(rel, &mut from, MAX_TABLE)
            .map_err(|e| anyhow!("copying {}: {e:#}", src.display()))?;
        written += 1;
    }
    // The live kernel's own view too, as sock_diag replies.
    if spec.proc_root.is_none() {
        let raw = live_dump(filter).map_err(|e| anyhow!("{e}; the /proc copies were written"))?;
        out_dir.write(DUMP_FILE, &raw)?;
        written += 1;
    }
    // The conntrack table and its settings (src/source/conntrack.rs).
    if spec.proc_root.is_none() {
        // Its sysctls include some of CAPTURE_FILES, copied above already:
        // a file is written once (O_EXCL would refuse a second).
        let (n, absent_note) = crate::source::conntrack::capture(&mut |rel, bytes| {
            if CAPTURE_FILES.contains(&rel) {
                return Ok(());
            }
            out_dir.write(rel, bytes).map(drop)
        })?;
        written += n;
        if let Some(note) = absent_note {
            absent.push(format!("the conntrack table ({note})"));
        }
    }
    write!(out, "wrote {written} files to {}", dir.display())?;
    if !absent.is_empty() {
        write!(out, " (absent here: {})", absent.join(", "))?;
    }
    writeln!(out)?;
    Ok(())
}

/// A complete sock_diag dump of every state, retried when interrupted.
fn live_dump(filter: &Filter) -> Result<Vec<u8>, netlink::DumpError> {
    let mut d = netlink::Dumper::open()?;
    for _ in 0..netlink::MAX_DUMP_ATTEMPTS {
        if let Some(raw) = d.capture(filter.families(), StateSet::ALL)? {
            return Ok(raw);
        }
    }
    Err(netlink::DumpError::Interrupted(netlink::MAX_DUMP_ATTEMPTS))
}

//! `tw capture DIR`: copies exactly what tw reads, laid out like /proc, so
//! `--proc-root DIR` (or `--from DIR`) elsewhere sees what tw saw here.

use std::io::Write;
use std::path::Path;

use anyhow::{anyhow, Result};

use super::outdir::OutDir;

use crate::model::StateSet;
use crate::query::Filter;
use crate::source::facts::{fact_path, CAPTURE_FILES};
use crate::source::live::Live;
use crate::source::{netlink, SourceSpec};

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
        // fs::read, not fs::copy: /proc files report size 0, and a
        // copy_file_range of them can come back empty.
        let bytes = match std::fs::read(&src) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                absent.push(*rel);
                continue;
            }
            Err(e) => return Err(anyhow!("reading {}: {e}", src.display())),
        };
        out_dir.write(rel, &bytes)?;
        written += 1;
    }
    // The live kernel's own view too, as sock_diag replies.
    if spec.proc_root.is_none() {
        let raw = live_dump(filter).map_err(|e| anyhow!("{e}; the /proc copies were written"))?;
        out_dir.write(DUMP_FILE, &raw)?;
        written += 1;
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

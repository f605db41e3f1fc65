//! `tw metrics` (Prometheus text once) and `tw serve` (the same over HTTP,
//! a fresh snapshot per scrape).

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};

use super::{Ctx, Outcome};
use crate::analyze::scrape::Snapshot;
use crate::cli::{MetricsArgs, ServeArgs};
use crate::render::{self, Format};
use crate::serve;

pub fn metrics(cx: &mut Ctx, args: &MetricsArgs, out: &mut dyn Write) -> Result<Outcome> {
    no_format(cx.format, "metrics")?;
    let mut notes = Vec::new();
    let snap = Snapshot::collect(&*cx.source, &cx.filter, &mut notes);
    cx.notes(&notes)?;
    render::prometheus::render(&snap?, args.top, out)?;
    Ok(Outcome::Ok)
}

/// Serves until the process is stopped; returns only on error.
pub fn serve(cx: Ctx, args: &ServeArgs) -> Result<Outcome> {
    no_format(cx.format, "serve")?;
    serve::serve(serve::Config {
        listen: args.listen,
        timeout: Duration::from_secs(args.timeout),
        top: args.metrics.top,
        source: Arc::from(cx.source),
        filter: cx.filter,
    })?;
    Ok(Outcome::Ok)
}

/// `tw metrics` and `tw serve` speak Prometheus text only.
fn no_format(format: Option<Format>, command: &str) -> Result<()> {
    match format {
        Some(_) => {
            bail!("--format: `tw {command}` prints Prometheus text only; leave --format out")
        }
        None => Ok(()),
    }
}

//! `tw metrics` (Prometheus text once) and `tw serve` (the same over HTTP,
//! a fresh snapshot per scrape or, with --refresh, the latest background
//! one; plus eBPF event counters when they can be had).

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};

use super::{trace, Ctx, Outcome};
use crate::analyze::scrape::Snapshot;
use crate::cli::{EventsWhen, MetricsArgs, ServeArgs};
use crate::query::Filter;
use crate::render::{self, Format};
use crate::serve;
use crate::serve::{Events, EventsStart};
use crate::source::events::Tracer;
use crate::source::SourceSpec;

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
    let (when, max_series) = (args.events, args.max_series as usize);
    let (spec, filter) = (cx.spec.clone(), cx.filter.clone());
    serve::serve(serve::Config {
        listen: args.listen.clone(),
        timeout: Duration::from_secs(args.timeout),
        top: args.metrics.top,
        source: Arc::from(cx.source),
        filter: cx.filter,
        refresh: (args.refresh > 0).then(|| Duration::from_secs(args.refresh)),
        events: Some(Box::new(move || {
            start_events(when, max_series, &spec, filter)
        })),
    })?;
    Ok(Outcome::Ok)
}

/// What the event counters need and why they are off: said once, with what
/// still works.
const GAUGES_STILL_WORK: &str =
    "the gauges (sockets, ports, doctor) are served without the event counters";

/// `--events`: loads the eBPF programs for the namespace served, or says
/// why not (auto) or fails (on).
fn start_events(
    when: EventsWhen,
    max_series: usize,
    spec: &SourceSpec,
    filter: Filter,
) -> Result<EventsStart> {
    if when == EventsWhen::Off {
        return Ok(EventsStart::Off(None));
    }
    // A capture has no events: nothing to count and nothing to say.
    if spec.from.is_some() || spec.proc_root.is_some() {
        return match when {
            EventsWhen::On => bail!(
                "--events on: events come from the live kernel, and --from and --proc-root read \
                 a capture; use --events auto or off"
            ),
            _ => Ok(EventsStart::Off(None)),
        };
    }
    let (scope, scope_text) = trace::scope(spec, "serve")?;
    let mut tracer = match Tracer::start(scope) {
        Ok(t) => t,
        Err(why) if when == EventsWhen::On => bail!(
            "--events on: eBPF is unavailable: {why}; --events auto serves the gauges without \
             the event counters"
        ),
        Err(why) => {
            return Ok(EventsStart::Off(Some(format!(
                "event counters off: eBPF is unavailable: {why}; {GAUGES_STILL_WORK}"
            ))))
        }
    };
    // Credits connections accepted on listeners older than tw serve to their
    // process. Its complaints, if any, are about serve here.
    let mut said = Vec::new();
    let listening = match trace::seed_listeners(&mut tracer, spec, &mut said) {
        Ok(l) => l,
        Err(e) if when == EventsWhen::On => return Err(e.context("--events on: listeners")),
        // Only attribution and direction of connections older than tw serve
        // suffer: count the rest.
        Err(e) => {
            writeln!(
                said,
                "tw: serve: listeners: {e:#}; events of connections accepted before tw serve \
                 started count under their peer, with no process"
            )?;
            Vec::new()
        }
    };
    let said = String::from_utf8_lossy(&said).replace("tw: trace: ", "tw: serve: ");
    eprint!("{said}");
    Ok(EventsStart::On(Box::new(Events {
        tracer,
        keep: Box::new(move |e| trace::wanted(&filter, e)),
        max_series,
        listening: listening.into_iter().collect(),
        scope: scope_text,
    })))
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

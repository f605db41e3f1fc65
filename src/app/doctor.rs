//! `tw doctor`: findings with evidence and fixes; the exit code is the
//! worst severity (0 ok, 1 warning, 2 critical).

use std::io::Write;

use anyhow::Result;

use super::{Ctx, Outcome};
use crate::analyze::doctor::{self, Severity};
use crate::cli::DoctorArgs;
use crate::render::{self, Report};

pub fn run(cx: &mut Ctx, args: &DoctorArgs, out: &mut dyn Write) -> Result<Outcome> {
    // `--trace SECONDS`: events first, so the scan after them sees what they left behind.
    let traced = args
        .trace
        .map(|s| super::trace::doctor_finding(s, &cx.spec, &cx.filter, cx.err));
    let facts = cx.facts()?;
    let mut scan = doctor::scan_for(&facts);
    cx.read(&mut scan)?;
    let mut findings = doctor::diagnose(&facts, &scan);
    // The conntrack table itself, when it can be read (src/analyze/conntrack.rs).
    if let Some(ct) = crate::analyze::conntrack::Metrics::read(&*cx.source) {
        let time_wait = scan.summary.count(crate::model::TcpState::TimeWait);
        ct.replace_finding(&mut findings, time_wait);
    }
    match traced {
        Some(Ok(f)) => {
            findings.push(f);
            findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        }
        // The other checks do not need events.
        Some(Err(e)) => writeln!(cx.err, "tw: {e:#}; the other checks follow")?,
        None => {}
    }
    let report = Report::Doctor {
        findings: &findings,
        verbose: args.verbose,
    };
    render::render(cx.format(), &report, out, &cx.style)?;
    Ok(match doctor::worst(&findings) {
        Severity::Ok => Outcome::Ok,
        Severity::Warn => Outcome::CheckTripped,
        Severity::Crit => Outcome::Critical,
    })
}

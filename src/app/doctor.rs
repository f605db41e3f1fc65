//! `tw doctor`: findings with evidence and fixes; the exit code is the
//! worst severity (0 ok, 1 warning, 2 critical).

use std::io::Write;

use anyhow::Result;

use super::{Ctx, Outcome};
use crate::analyze::doctor::{self, Severity};
use crate::cli::DoctorArgs;
use crate::render::{self, Report};

pub fn run(cx: &mut Ctx, args: &DoctorArgs, out: &mut dyn Write) -> Result<Outcome> {
    let facts = cx.facts()?;
    let mut scan = doctor::scan_for(&facts);
    cx.read(&mut scan)?;
    let mut findings = doctor::diagnose(&facts, &scan);
    // The conntrack table itself, when it can be read (src/analyze/conntrack.rs).
    if let Some(ct) = crate::analyze::conntrack::Metrics::read(&*cx.source) {
        let time_wait = scan.summary.count(crate::model::TcpState::TimeWait);
        ct.replace_finding(&mut findings, time_wait);
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

//! `tw` and `tw summary`: counts per state, TIME_WAIT by direction and time
//! left, top peers and ports.

use std::io::Write;

use anyhow::Result;

use super::{Ctx, Outcome};
use crate::analyze::aggregate::Summary;
use crate::render::{self, Report};

pub fn run(cx: &mut Ctx, out: &mut dyn Write) -> Result<Outcome> {
    let mut sum = Summary::default();
    cx.read(&mut sum)?;
    // The reset counters, where the facts can be read; the notes about a
    // capture without facts concern the port range, which the summary
    // does not use.
    if let Ok(facts) = cx.source.facts(&mut Vec::new()) {
        sum.resets = crate::analyze::resets::counters(&facts);
    }
    render::render(cx.format(), &Report::Summary(&sum), out, &cx.style)?;
    Ok(Outcome::Ok)
}

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
    render::render(cx.format(), &Report::Summary(&sum), out, &cx.style)?;
    Ok(Outcome::Ok)
}

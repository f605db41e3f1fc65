//! `tw ports`: ephemeral ports held per outbound destination, against what
//! the port range can give.

use std::io::Write;

use anyhow::Result;

use super::{Ctx, Outcome};
use crate::analyze::aggregate::PortGroups;
use crate::analyze::doctor;
use crate::cli::PortsArgs;
use crate::model::ports::port_capacity;
use crate::render::{self, Report};

pub fn run(cx: &mut Ctx, args: &PortsArgs, out: &mut dyn Write) -> Result<Outcome> {
    let facts = cx.facts()?;
    let range = doctor::port_range(&facts);
    let mut ports = PortGroups::new(range).skipping(doctor::reserved(&facts));
    cx.read(&mut ports)?;
    let rows = ports.ranked(args.top);
    let capacity = facts
        .ephemeral_capacity()
        .unwrap_or_else(|| port_capacity(range, &[]));
    let report = Report::Ports {
        rows: &rows,
        destinations: ports.destinations(),
        capacity,
        low: range.lo,
    };
    render::render(cx.format(), &report, out, &cx.style)?;
    Ok(Outcome::Ok)
}

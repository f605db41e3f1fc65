//! `tw count`: one number, or KEY<TAB>COUNT lines with `--by`, and
//! `--fail-above` for scripts.

use std::io::Write;

use anyhow::Result;

use super::{Ctx, Outcome};
use crate::analyze::aggregate::{Counter, Groups};
use crate::cli::CountArgs;
use crate::render::{self, Report};

pub fn run(cx: &mut Ctx, args: &CountArgs, out: &mut dyn Write) -> Result<Outcome> {
    let format = cx.format();
    let total = match args.by {
        None => {
            let mut c = Counter::default();
            cx.read(&mut c)?;
            render::render(format, &Report::Count(c.total), out, &cx.style)?;
            c.total
        }
        Some(by) => {
            let mut g = Groups::new(by);
            let info = cx.read(&mut g)?;
            let groups: Vec<(String, u64)> = g
                .ranked(args.top)
                .into_iter()
                .map(|(k, n)| (k.label(&info.namespaces), n))
                .collect();
            let report = Report::Groups {
                by: by.name(),
                total: g.total,
                groups: &groups,
            };
            render::render(format, &report, out, &cx.style)?;
            g.total
        }
    };
    Ok(if args.fail_above.is_some_and(|n| total > n) {
        Outcome::CheckTripped
    } else {
        Outcome::Ok
    })
}

//! `tw conntrack`: read the conntrack table (ctnetlink, /proc, or a capture
//! under --proc-root), aggregate it, render it, decide the exit code. Also
//! the table's part in `tw doctor` and `tw metrics`.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Result};

use crate::analyze::conntrack::{self as analyze, Count, CtFilter, Groups, Table};
use crate::cli::{ConntrackArgs, Format, Global};
use crate::doctor::Finding;
use crate::filter::Filter;
use crate::group::Counter;
use crate::model::{Family, StateSet, TcpState};
use crate::render::conntrack::{self as render, Metrics, View};
use crate::render::{Report, Style};
use crate::source::conntrack::{self as source, EntrySink, Health, Origin, Want};
use crate::source::{NetnsChoice, SourceKind, SourceSpec};
use crate::Outcome;

/// The filter of `tw conntrack` from the global flags and its own.
fn filter(g: &Global, args: &ConntrackArgs) -> Result<CtFilter> {
    if g.direction.is_some() {
        bail!("--direction: conntrack entries have no listening side; use --src/--dst instead");
    }
    let mut states = Vec::new();
    for word in g.state.iter().flat_map(|s| s.split(',')) {
        states.push(analyze::parse_state(word).map_err(|e| anyhow::anyhow!("--state: {e}"))?);
    }
    Ok(CtFilter {
        family: match (g.ipv4, g.ipv6) {
            (true, false) => Some(Family::Inet),
            (false, true) => Some(Family::Inet6),
            _ => None,
        },
        protos: args.proto.clone(),
        states,
        src: g.src.clone(),
        dst: g.dst.clone(),
        sport: g.sport.clone(),
        dport: g.dport.clone(),
    })
}

fn want(kind: SourceKind) -> Want {
    match kind {
        SourceKind::Auto => Want::Auto,
        SourceKind::Netlink => Want::Netlink,
        SourceKind::Proc => Want::Proc,
    }
}

/// Reads the table the global options name into `sink`.
fn read(g: &Global, sink: &mut dyn EntrySink) -> Result<(Origin, Health)> {
    if g.from.is_some() {
        bail!(
            "--from: conntrack reads a `tw capture` folder with --proc-root DIR, not a single \
             socket capture"
        );
    }
    if g.all_netns {
        bail!("--all-netns: each namespace has its own conntrack table; use --netns NAME");
    }
    if let Some(root) = &g.proc_root {
        if g.netns.is_some() {
            bail!("--netns reads a live namespace; it does not go with --proc-root");
        }
        return Ok((Origin::Capture, source::read_captured(root, sink)?));
    }
    let _inside = match &g.netns {
        Some(n) => Some(crate::netns::enter(&crate::netns::named(n)?)?),
        None => None,
    };
    source::read_live(want(g.source), sink)
}

/// TIME_WAIT sockets beside the table, for doctor's comparison: the same
/// namespace (the caller has entered it) or the capture's net/tcp files.
fn socket_time_wait(proc_root: Option<&Path>) -> Option<u64> {
    let spec = SourceSpec {
        proc_root: proc_root.map(Path::to_path_buf),
        ..SourceSpec::default()
    };
    let filter = Filter {
        states: StateSet::of(&[TcpState::TimeWait]),
        ..Filter::default()
    };
    let mut c = Counter::default();
    crate::source::read(&spec, &filter, &mut c).ok()?;
    Some(c.total)
}

pub fn run(
    g: &Global,
    args: &ConntrackArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
    format: Format,
    style: &Style,
) -> Result<Outcome> {
    let f = filter(g, args)?;
    let note = |h: &Health, err: &mut dyn Write| -> Result<()> {
        for n in &h.notes {
            writeln!(err, "tw: {n}")?;
        }
        Ok(())
    };
    let shown = match (args.by, args.count) {
        (None, true) => {
            let mut c = Count {
                filter: f,
                total: 0,
            };
            let (_, h) = read(g, &mut c)?;
            note(&h, err)?;
            crate::render::render(format, &Report::Count(c.total), out, style)?;
            c.total
        }
        (Some(by), _) => {
            let mut gr = Groups::new(by, f);
            let (_, h) = read(g, &mut gr)?;
            note(&h, err)?;
            let groups = gr.ranked(args.top);
            match format {
                Format::Table if !args.count => {
                    render::groups_table(by.name(), gr.total, &groups, out, style)?
                }
                _ => {
                    let report = Report::Groups {
                        by: by.name(),
                        total: gr.total,
                        groups: &groups,
                    };
                    crate::render::render(format, &report, out, style)?
                }
            }
            gr.total
        }
        (None, false) => {
            let mut t = Table::new(f);
            let (origin, h) = read(g, &mut t)?;
            note(&h, err)?;
            // The sockets of the same namespace, for the TIME_WAIT comparison.
            let sockets = {
                let _inside = match (&g.netns, &g.proc_root) {
                    (Some(n), None) => Some(crate::netns::enter(&crate::netns::named(n)?)?),
                    _ => None,
                };
                socket_time_wait(g.proc_root.as_deref())
            };
            let finding =
                analyze::finding(&t, &h.settings, h.stats.as_ref().map(|s| &s.0), sockets);
            let view = View {
                origin,
                table: &t,
                health: &h,
                top: args.top.unwrap_or(10),
                finding: &finding,
            };
            render::render(format, &view, out, style)?;
            t.total
        }
    };
    out.flush()?;
    Ok(if args.fail_above.is_some_and(|n| shown > n) {
        Outcome::CheckTripped
    } else {
        Outcome::Ok
    })
}

/// Reads the whole table for doctor and metrics, in `spec`'s namespace or
/// capture; `None` when there is none to read (no conntrack, no
/// permission, a --from capture), so the caller keeps the facts-only rule.
fn read_for(spec: &SourceSpec) -> Option<(Table, Health)> {
    if spec.from.is_some() || matches!(spec.netns, NetnsChoice::All) {
        return None;
    }
    let mut t = Table::default();
    let h = match &spec.proc_root {
        Some(root) => source::read_captured(root, &mut t).ok()?,
        None => {
            let _inside = crate::enter_one(spec).ok()?;
            // Only when the facts say conntrack is there: reading the table
            // must not load the module (ctnetlink requests it on demand).
            let proc = Path::new("/proc");
            if !proc.join("sys/net/netfilter/nf_conntrack_count").exists() {
                return None;
            }
            source::read_live(want(spec.kind), &mut t).ok()?.1
        }
    };
    Some((t, h))
}

/// Replaces doctor's facts-only conntrack finding with one from the table
/// itself, when the table can be read. `socket_time_wait` comes from the
/// scan doctor already made.
pub fn enrich_doctor(spec: &SourceSpec, socket_time_wait: u64, findings: &mut Vec<Finding>) {
    if let Some((t, h)) = read_for(spec) {
        replace(findings, &t, &h, socket_time_wait);
    }
}

fn replace(findings: &mut Vec<Finding>, t: &Table, h: &Health, socket_time_wait: u64) {
    let f = analyze::finding(
        t,
        &h.settings,
        h.stats.as_ref().map(|s| &s.0),
        Some(socket_time_wait),
    );
    // In the rule's place, so the order of the rules stays doctor's.
    match findings.iter_mut().find(|old| old.rule == "conntrack") {
        Some(old) => *old = f,
        None => findings.push(f),
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
}

/// The table for `tw metrics`, with doctor's finding replaced as in
/// [`enrich_doctor`].
pub fn metrics(
    spec: &SourceSpec,
    socket_time_wait: u64,
    findings: &mut Vec<Finding>,
) -> Option<Metrics> {
    let (table, health) = read_for(spec)?;
    replace(findings, &table, &health, socket_time_wait);
    Some(Metrics { table, health })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Severity;

    fn rule(rule: &'static str, severity: Severity) -> Finding {
        Finding {
            rule,
            severity,
            title: String::new(),
            evidence: vec![],
            why: String::new(),
            fixes: vec![],
        }
    }

    /// Regression: the table's finding went to the end, so root (who reads the table) and an
    /// unprivileged user (who cannot) saw doctor's rules in different orders.
    #[test]
    fn the_table_finding_keeps_the_rules_place() {
        let mut f = vec![
            rule("a", Severity::Ok),
            rule("conntrack", Severity::Ok),
            rule("b", Severity::Ok),
        ];
        replace(&mut f, &Table::default(), &Health::default(), 0);
        let rules: Vec<&str> = f.iter().map(|f| f.rule).collect();
        assert_eq!(rules, ["a", "conntrack", "b"]);
        assert!(f[1]
            .evidence
            .iter()
            .any(|e| e.contains("TIME_WAIT sockets")));
    }
}

//! `tw doctor`'s findings as text, shared by the table and plain renderers.

use std::io::{self, Write};

use crate::analyze::doctor::{Finding, Severity};

use super::text::wrap;

/// `tw doctor` as text. Problems in full; checks that passed as one line
/// each with `verbose`, else as a list of names. `label` styles a severity.
pub fn write_doctor(
    out: &mut dyn Write,
    findings: &[Finding],
    verbose: bool,
    label: &dyn Fn(Severity) -> String,
) -> io::Result<()> {
    let worst = crate::analyze::doctor::worst(findings);
    let count = |s| findings.iter().filter(|f| f.severity == s).count();
    writeln!(
        out,
        "{}: {} critical, {} warning, {} ok",
        label(worst),
        count(Severity::Crit),
        count(Severity::Warn),
        count(Severity::Ok)
    )?;
    let mut passed = Vec::new();
    for f in findings {
        if f.severity == Severity::Ok && !verbose {
            passed.push(f.rule);
            continue;
        }
        writeln!(out)?;
        writeln!(out, "{} {}  [{}]", label(f.severity), f.title, f.rule)?;
        for e in &f.evidence {
            write_wrapped(out, "  - ", e)?;
        }
        if !f.why.is_empty() {
            write_wrapped(out, "  why: ", &f.why)?;
        }
        for (i, fix) in f.fixes.iter().enumerate() {
            write_wrapped(out, &format!("  fix {}: ", i + 1), fix)?;
        }
    }
    if !passed.is_empty() {
        passed.dedup();
        writeln!(out)?;
        writeln!(out, "passed: {} (--verbose for details)", passed.join(", "))?;
    }
    Ok(())
}

/// Prose width for doctor's text.
const WRAP: usize = 100;

/// Writes `text` after `lead`, wrapped at [`WRAP`] columns, continuation
/// lines indented to the text.
fn write_wrapped(out: &mut dyn Write, lead: &str, text: &str) -> io::Result<()> {
    let indent = " ".repeat(lead.len());
    for line in wrap(lead, &indent, text.split_whitespace(), WRAP) {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_wraps_with_a_hanging_indent() {
        let mut out = Vec::new();
        let text = "word ".repeat(60);
        write_wrapped(&mut out, "  fix 1: ", &text).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.len() > 2);
        assert!(lines.iter().all(|l| l.len() <= WRAP));
        assert!(lines[0].starts_with("  fix 1: word"));
        assert!(lines[1].starts_with("         word"));
        assert_eq!(text.split_whitespace().filter(|w| *w == "word").count(), 60);
    }
}

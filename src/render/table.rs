//! Bordered tables for a terminal, with states in colour when allowed.

use std::io::{self, Write};

use comfy_table::{presets, Cell, CellAlignment, Color, ContentArrangement, Table};

use super::cells::{socket_row, SOCKET_HEADERS, SOCKET_NUMERIC};
use super::doctor::write_doctor;
use super::report::Report;
use super::sections::{
    self, annotated_section, groups_section, ports_section, summary_sections,
    time_wait_left_section, Section,
};
use super::Style;
use crate::analyze::doctor::Severity;
use crate::model::TcpState;

pub fn render(report: &Report, out: &mut dyn Write, style: &Style) -> io::Result<()> {
    match report {
        // A count stays one integer even on a terminal, so `$(tw count)` works.
        Report::Count(n) => writeln!(out, "{n}"),
        Report::Groups { by, total, groups } => {
            write_sections(out, &[groups_section(by, *total, groups)], style)
        }
        Report::Sockets(socks) => {
            let mut t = new_table(&SOCKET_HEADERS, style);
            for s in socks.iter() {
                let row = socket_row(s);
                let mut cells: Vec<Cell> = Vec::with_capacity(row.len());
                for (i, text) in row.into_iter().enumerate() {
                    let mut c = Cell::new(text);
                    if SOCKET_NUMERIC[i] {
                        c = c.set_alignment(CellAlignment::Right);
                    }
                    if i == 0 && style.color {
                        if let Some(color) = state_color(s.state) {
                            c = c.fg(color);
                        }
                    }
                    cells.push(c);
                }
                t.add_row(cells);
            }
            writeln!(out, "{t}")?;
            // On a terminal only: piped listings stay one row per socket.
            let left = crate::analyze::aggregate::time_wait_left(socks.iter());
            if left.iter().any(|n| *n > 0) {
                writeln!(out)?;
                write_sections(out, &[time_wait_left_section(&left)], style)?;
            }
            Ok(())
        }
        Report::Annotated { socks, notes } => {
            write_sections(out, &[annotated_section(socks, notes)], style)
        }
        Report::Summary(sum) => write_sections(out, &summary_sections(sum), style),
        Report::Ports {
            rows,
            destinations,
            capacity,
            low,
        } => write_sections(
            out,
            &[ports_section(rows, *destinations, capacity, *low)],
            style,
        ),
        // Prose, not a table: the same text as plain, with coloured labels.
        Report::Doctor { findings, verbose } => {
            write_doctor(out, findings, *verbose, &|s| severity_label(s, style.color))
        }
    }
}

fn severity_label(s: Severity, color: bool) -> String {
    let text = s.name().to_uppercase();
    if !color {
        return text;
    }
    // ANSI SGR: bold green, yellow, red.
    let code = match s {
        Severity::Ok => "1;32",
        Severity::Warn => "1;33",
        Severity::Crit => "1;31",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// States an operator should notice at a glance.
fn state_color(s: TcpState) -> Option<Color> {
    match s {
        TcpState::TimeWait => Some(Color::Yellow),
        TcpState::CloseWait => Some(Color::Red),
        TcpState::Established => Some(Color::Green),
        TcpState::Listen => Some(Color::Cyan),
        _ => None,
    }
}

fn new_table(headers: &[&str], style: &Style) -> Table {
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(headers.iter().map(Cell::new));
    if !style.color {
        t.force_no_tty();
    } else {
        t.enforce_styling();
    }
    t
}

fn write_sections(out: &mut dyn Write, sections: &[Section], style: &Style) -> io::Result<()> {
    sections::write_sections(out, sections, |out, sec| {
        let mut t = new_table(&sec.headers, style);
        for row in &sec.rows {
            t.add_row(row.iter().zip(&sec.numeric).map(|(text, num)| {
                let c = Cell::new(text);
                if *num {
                    c.set_alignment(CellAlignment::Right)
                } else {
                    c
                }
            }));
        }
        writeln!(out, "{t}")
    })
}

//! Plain text: aligned columns, no borders, no colour; stable for scripts.
//! `count --by` prints `KEY<TAB>COUNT` lines and nothing else.

use std::io::{self, Write};

use super::{annotated_section, ports_section, summary_sections, write_doctor};
use super::{Report, Section, SocketCells};
use super::{SOCKET_HEADERS, SOCKET_NUMERIC};

pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    match report {
        Report::Count(n) => writeln!(out, "{n}"),
        Report::Groups { groups, .. } => {
            for (k, n) in groups.iter() {
                writeln!(out, "{k}\t{n}")?;
            }
            Ok(())
        }
        Report::Sockets(socks) => {
            // Two passes (widths, then rows) so nothing but one row is held,
            // in buffers reused from row to row.
            let mut cells = SocketCells::default();
            let mut widths = SOCKET_HEADERS.map(str::len);
            for s in socks.iter() {
                cells.fill(s);
                for (i, w) in widths.iter_mut().enumerate() {
                    *w = (*w).max(cells.cell(i).len());
                }
            }
            write_row(out, &SOCKET_HEADERS, &widths, &SOCKET_NUMERIC)?;
            let mut line = Vec::with_capacity(256);
            for s in socks.iter() {
                cells.fill(s);
                line.clear();
                let row = (0..SOCKET_HEADERS.len()).map(|i| cells.cell(i));
                push_row(&mut line, row, &widths, &SOCKET_NUMERIC);
                out.write_all(&line)?;
            }
            Ok(())
        }
        Report::Annotated { socks, notes } => {
            write_sections(out, &[annotated_section(socks, notes)])
        }
        Report::Summary(sum) => write_sections(out, &summary_sections(sum)),
        Report::Ports {
            rows,
            capacity,
            low,
        } => write_sections(out, &[ports_section(rows, capacity, *low)]),
        Report::Doctor { findings, verbose } => {
            write_doctor(out, findings, *verbose, &|s| s.name().to_uppercase())
        }
    }
}

/// Sections as titled, aligned blocks separated by blank lines.
pub fn write_sections(out: &mut dyn Write, sections: &[Section]) -> io::Result<()> {
    for (i, sec) in sections.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        if !sec.title.is_empty() {
            writeln!(out, "{}", sec.title)?;
        }
        if sec.rows.is_empty() {
            continue;
        }
        let mut widths: Vec<usize> = sec.headers.iter().map(|h| h.len()).collect();
        for row in &sec.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.len());
            }
        }
        write_row(out, &sec.headers, &widths, &sec.numeric)?;
        for row in &sec.rows {
            write_row(out, row, &widths, &sec.numeric)?;
        }
    }
    Ok(())
}

fn write_row<S: AsRef<str>>(
    out: &mut dyn Write,
    cells: &[S],
    widths: &[usize],
    numeric: &[bool],
) -> io::Result<()> {
    let mut line = Vec::new();
    let row = cells.iter().map(|c| c.as_ref().as_bytes());
    push_row(&mut line, row, widths, numeric);
    out.write_all(&line)
}

/// Appends one line: columns two spaces apart, numbers right-aligned, no
/// trailing spaces. Widths count characters, as `{:<w$}` does.
fn push_row<'a>(
    line: &mut Vec<u8>,
    cells: impl ExactSizeIterator<Item = &'a [u8]>,
    widths: &[usize],
    numeric: &[bool],
) {
    let last = cells.len().saturating_sub(1);
    for (i, cell) in cells.enumerate() {
        if i > 0 {
            line.extend_from_slice(b"  ");
        }
        // UTF-8: count the bytes that start a character.
        let chars = if cell.is_ascii() {
            cell.len()
        } else {
            cell.iter().filter(|b| **b & 0xC0 != 0x80).count()
        };
        let pad = widths[i].saturating_sub(chars);
        if numeric[i] {
            line.resize(line.len() + pad, b' ');
            line.extend_from_slice(cell);
        } else {
            line.extend_from_slice(cell);
            if i != last {
                line.resize(line.len() + pad, b' ');
            }
        }
    }
    line.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::{GroupBy, Groups};
    use crate::model::{Endpoint, Family, Socket, TcpState, Timer, TimerKind};
    use crate::source::Consumer;

    fn tw_socket(local_port: u16, ms: u32) -> Socket {
        let mut s = Socket::new(
            Family::Inet,
            TcpState::TimeWait,
            Endpoint::new("127.0.0.1".parse().unwrap(), local_port),
            Endpoint::new("127.0.0.2".parse().unwrap(), 80),
        );
        s.timer = Some(Timer {
            kind: TimerKind::TimeWait,
            ms,
        });
        s
    }

    fn text(r: &Report) -> String {
        let mut out = Vec::new();
        render(r, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn listing_is_aligned_with_a_header() {
        let socks = [tw_socket(40000, 41_300), tw_socket(5, 2_000)];
        assert_eq!(
            text(&Report::Sockets(&socks)),
            "\
STATE      LOCAL            PEER          TIMER  RECV-Q  SEND-Q  UID  INODE
TIME_WAIT  127.0.0.1:40000  127.0.0.2:80  41.3s       0       0    0      0
TIME_WAIT  127.0.0.1:5      127.0.0.2:80  2.0s        0       0    0      0
"
        );
    }

    #[test]
    fn count_is_one_integer_and_groups_are_tab_separated() {
        assert_eq!(text(&Report::Count(42)), "42\n");
        let mut g = Groups::new(GroupBy::Peer);
        for s in [tw_socket(1, 0), tw_socket(2, 0)] {
            g.push(&s);
        }
        let groups: Vec<(String, u64)> = g
            .ranked(None)
            .into_iter()
            .map(|(k, n)| (k.label(&[]), n))
            .collect();
        let r = Report::Groups {
            by: "peer",
            total: 2,
            groups: &groups,
        };
        assert_eq!(text(&r), "127.0.0.2:80\t2\n");
    }
}

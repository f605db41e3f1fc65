//! Tables that fit the terminal without breaking a token: columns are
//! dropped, least useful first, until the rows fit, and a cell is never
//! wrapped (an address or inode split over two lines reads as two values).

/// Columns dropped first, in this order, when a table is too wide: the
/// ones ss itself leaves out by default. Addresses are never dropped.
const DROP_FIRST: [&str; 17] = [
    "INODE",
    "UID",
    "SNDBUF-LTD",
    "RWND-LTD",
    "BUSY",
    "PACING",
    "SEGS",
    "SEND-Q",
    "RECV-Q",
    "UNACKED",
    "LOST",
    "SSTHRESH",
    "DELIVERY",
    "RECEIVED",
    "ACKED",
    "SENT",
    "TIMER",
];

/// Never dropped: what says which socket a row is.
const KEEP: [&str; 5] = ["STATE", "LOCAL", "PEER", "DESTINATION", "KEY"];

/// The width of a bordered table (UTF8_FULL_CONDENSED: a border, then
/// ` cell ` and a separator per column) of columns this wide.
pub fn table_width(widths: &[usize]) -> usize {
    widths.iter().sum::<usize>() + 3 * widths.len() + 1
}

/// Which columns to show so that the table fits `width` (all of them when
/// the width is unknown or they fit). Past the columns named in
/// [`DROP_FIRST`], others go from the right, never the first column nor an
/// address. If even that is too wide, what is left is shown whole.
pub fn keep<R: AsRef<[String]>>(headers: &[&str], rows: &[R], width: Option<u16>) -> Vec<bool> {
    let mut shown = vec![true; headers.len()];
    let Some(width) = width.map(usize::from) else {
        return shown;
    };
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r.as_ref()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let order = DROP_FIRST
        .iter()
        .filter_map(|name| headers.iter().position(|h| h == name))
        .chain(
            (1..headers.len())
                .rev()
                .filter(|i| !KEEP.contains(&headers[*i]) && !DROP_FIRST.contains(&headers[*i])),
        );
    for i in order {
        let now: Vec<usize> = widths
            .iter()
            .zip(&shown)
            .filter(|(_, s)| **s)
            .map(|(w, _)| *w)
            .collect();
        if table_width(&now) <= width {
            break;
        }
        shown[i] = false;
    }
    shown
}

/// `v` without the columns not `shown`.
pub fn pick<T: Clone>(v: &[T], shown: &[bool]) -> Vec<T> {
    v.iter()
        .zip(shown)
        .filter(|(_, s)| **s)
        .map(|(x, _)| x.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|c| c.to_string()).collect()
    }

    const H: [&str; 8] = [
        "STATE", "LOCAL", "PEER", "TIMER", "RECV-Q", "SEND-Q", "UID", "INODE",
    ];

    #[test]
    fn columns_go_least_useful_first_and_addresses_stay() {
        let rows = [row(&[
            "ESTABLISHED",
            "[2001:db8::1]:443",
            "[2001:db8::2]:50000",
            "keepalive:1h59m",
            "0",
            "0",
            "1000",
            "123456",
        ])];
        let full = table_width(&[11, 17, 19, 15, 6, 6, 4, 6]);
        assert_eq!(keep(&H, &rows, None), [true; 8]);
        assert_eq!(keep(&H, &rows, Some(full as u16)), [true; 8]);
        let k = keep(&H, &rows, Some(full as u16 - 1));
        assert_eq!(k, [true, true, true, true, true, true, true, false]);
        let k = keep(&H, &rows, Some(80));
        assert_eq!(pick(&H, &k), ["STATE", "LOCAL", "PEER", "TIMER"]);
        // Narrower than the addresses themselves: they stay, whole.
        let k = keep(&H, &rows, Some(20));
        assert_eq!(pick(&H, &k), ["STATE", "LOCAL", "PEER"]);
    }
}

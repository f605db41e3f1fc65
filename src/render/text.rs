//! Greedy word wrapping, for doctor's prose and explain's lists.

/// Lays `pieces` out in lines of at most `width` columns (a piece longer
/// than that gets a line of its own), one space apart, the first line
/// starting with `first`, the others with `indent`.
pub fn wrap<'a>(
    first: &str,
    indent: &str,
    pieces: impl IntoIterator<Item = &'a str>,
    width: usize,
) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = first.to_string();
    let mut empty = true;
    for piece in pieces {
        if !empty && line.len() + 1 + piece.len() > width {
            lines.push(std::mem::replace(&mut line, indent.to_string()));
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(piece);
        empty = false;
    }
    lines.push(line);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_fill_lines_up_to_the_width() {
        let lines = wrap("> ", "  ", ["aa", "bb", "cc", "dd"], 8);
        assert_eq!(lines, ["> aa bb", "  cc dd"]);
        // A piece wider than the line still gets one, alone.
        let lines = wrap("", "", ["a", "0123456789", "b"], 4);
        assert_eq!(lines, ["a", "0123456789", "b"]);
        assert_eq!(wrap("x: ", "   ", [], 10), ["x: "]);
    }
}

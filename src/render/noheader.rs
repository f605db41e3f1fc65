//! `-H` (ss's `--no-header`): a listing's rows without its header line.

use std::io::{self, Write};

/// Passes everything on but the first line. Every listing renderer writes
/// its header as the first line whenever it writes anything, so dropping it
/// here keeps the renderers themselves one shape.
pub struct NoHeader<'a> {
    inner: &'a mut dyn Write,
    in_header: bool,
}

impl<'a> NoHeader<'a> {
    pub fn new(inner: &'a mut dyn Write) -> NoHeader<'a> {
        NoHeader {
            inner,
            in_header: true,
        }
    }
}

impl Write for NoHeader<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.in_header {
            return self.inner.write(buf);
        }
        match buf.iter().position(|b| *b == b'\n') {
            // The whole buffer is header: taken, dropped.
            None => Ok(buf.len()),
            Some(end) => {
                self.in_header = false;
                self.inner.write_all(&buf[end + 1..])?;
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_line_is_dropped_however_it_is_split() {
        for split in 0..=12 {
            let text = b"STATE  LOCAL\nA  1\nB  2\n";
            let mut out = Vec::new();
            let mut w = NoHeader::new(&mut out);
            w.write_all(&text[..split]).unwrap();
            w.write_all(&text[split..]).unwrap();
            assert_eq!(out, b"A  1\nB  2\n", "split at {split}");
        }
        let mut out = Vec::new();
        NoHeader::new(&mut out).write_all(b"").unwrap();
        assert!(out.is_empty());
    }
}

//! Netlink framing, shared by every netlink reader tw has (sock_diag for
//! TCP, UDP and UNIX sockets; ctnetlink for conntrack): the walk over the
//! `struct nlmsghdr`s of one received buffer or capture, with the dump's
//! end, the kernel's errors and interruptions read the same way everywhere
//! (include/uapi/linux/netlink.h). Each reader decodes only its own
//! message types.

use crate::model::abi::{NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLMSG_NOOP, NLM_F_DUMP_INTR};
use crate::model::Flow;

/// What went wrong decoding replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The kernel answered the request with an error (NLMSG_ERROR carrying
    /// a negative errno).
    Kernel(i32),
    /// The dump's NLMSG_DONE carried an error: it stopped part way.
    DumpFailed(i32),
    /// The bytes are not a well-formed reply; `offset` is where it breaks.
    Malformed { offset: usize, what: String },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Kernel(errno) => write!(
                f,
                "the kernel refused the request: {}",
                std::io::Error::from_raw_os_error(*errno)
            ),
            DecodeError::DumpFailed(errno) => write!(
                f,
                "the kernel ended the dump with an error, so it is incomplete: {}",
                std::io::Error::from_raw_os_error(*errno)
            ),
            DecodeError::Malformed { offset, what } => write!(f, "byte {offset}: {what}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// How far a buffer took the dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// An NLMSG_DONE was seen: this dump is complete.
    pub done: bool,
    /// A message carried NLM_F_DUMP_INTR: the tables changed under the dump,
    /// so it may hold entries twice or miss some, and must be retried.
    pub interrupted: bool,
    /// Bytes consumed; for a capture file, the next dump starts here.
    pub consumed: usize,
    /// The consumer answered `Break`: the rest of the buffer was not decoded.
    pub stopped: bool,
}

pub(crate) fn malformed(offset: usize, what: impl Into<String>) -> DecodeError {
    DecodeError::Malformed {
        offset,
        what: what.into(),
    }
}

pub(crate) fn u16_ne(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

pub(crate) fn u32_ne(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// What a reader does with one message of a type that is not netlink's own
/// (not DONE, ERROR or NOOP): go on, stop there, or say what is wrong with it.
pub type OnMessage<'a> = dyn FnMut(u16, &[u8]) -> Result<Flow, String> + 'a;

/// Walks the messages in `buf` up to and including the first NLMSG_DONE,
/// handing each of the reader's own to `each` with its type and body. A
/// buffer may end between messages (the next recv continues the dump),
/// never inside one.
pub fn frames(buf: &[u8], each: &mut OnMessage) -> Result<Progress, DecodeError> {
    let mut p = Progress::default();
    let mut off = 0;
    while off < buf.len() {
        let rest = &buf[off..];
        if rest.len() < NLMSG_HDRLEN {
            return Err(malformed(
                off,
                format!("truncated netlink header ({} bytes left)", rest.len()),
            ));
        }
        let len = u32_ne(rest, 0) as usize;
        let kind = u16_ne(rest, 4);
        let flags = u16_ne(rest, 6);
        if len < NLMSG_HDRLEN || len > rest.len() {
            return Err(malformed(
                off,
                format!(
                    "netlink message length {len} does not fit ({} bytes left)",
                    rest.len()
                ),
            ));
        }
        if flags & NLM_F_DUMP_INTR != 0 {
            p.interrupted = true;
        }
        let body = &rest[NLMSG_HDRLEN..len];
        let at = off;
        // Messages are padded to 4 bytes (NLMSG_ALIGN); the last may not be.
        off += (len + 3) & !3;
        match kind {
            NLMSG_DONE => {
                // The dump's end carries its status (netlink_dump_done): 0, or
                // a negative errno when the dump failed part way (-ENOMEM from
                // a dump callback, say). The table is then incomplete, as ss
                // reports it. A body too short to hold one is an old kernel's.
                if body.len() >= 4 {
                    let status = u32_ne(body, 0) as i32;
                    if (-4095..=-1).contains(&status) {
                        return Err(DecodeError::DumpFailed(-status));
                    }
                }
                p.done = true;
                break;
            }
            NLMSG_NOOP => {}
            NLMSG_ERROR => {
                if body.len() < 4 {
                    return Err(malformed(at, "truncated NLMSG_ERROR"));
                }
                // struct nlmsgerr's error: 0 for an ack, else a negative errno
                // (netlink_ack); MAX_ERRNO is 4095. Negating any other value
                // could overflow, and would not be an errno anyway.
                match u32_ne(body, 0) as i32 {
                    0 => {}
                    e @ -4095..=-1 => return Err(DecodeError::Kernel(-e)),
                    e => {
                        return Err(malformed(
                            at,
                            format!("NLMSG_ERROR carries {e}, not a negative errno"),
                        ))
                    }
                }
            }
            _ => {
                if each(kind, body)
                    .map_err(|what| malformed(at, what))?
                    .is_break()
                {
                    p.stopped = true;
                    break;
                }
            }
        }
    }
    p.consumed = off.min(buf.len());
    Ok(p)
}

/// Reads a capture of replies (as `ss -D` or `tw capture` write them) one
/// message at a time, in constant memory, handing each to `each` (which
/// decodes it, typically through [`frames`]). A capture holds one or more
/// dumps, each ended by its NLMSG_DONE; a dump that was interrupted when it
/// was captured, or a capture cut before a DONE, is an error. `max_len` is
/// the longest message the reader's replies can be, so that a corrupt length
/// never asks for gigabytes; `what` names them in that error. Returns how
/// many messages were read (an empty input holds none).
pub fn read_capture(
    mut r: impl std::io::Read,
    max_len: usize,
    what: &str,
    each: &mut dyn FnMut(&[u8]) -> Result<Progress, DecodeError>,
) -> Result<usize, DecodeError> {
    let mut msg = Vec::with_capacity(4096);
    let (mut offset, mut open, mut read) = (0usize, false, 0usize);
    loop {
        msg.resize(NLMSG_HDRLEN, 0);
        let got = read_full(&mut r, &mut msg, offset)?;
        if got == 0 {
            break;
        }
        let len = u32_ne(&msg, 0) as usize;
        if got == NLMSG_HDRLEN && len > max_len {
            return Err(malformed(
                offset,
                format!("netlink message length {len} is beyond any {what} reply"),
            ));
        }
        if got == NLMSG_HDRLEN && len > NLMSG_HDRLEN {
            // The message and its padding to 4 bytes (NLMSG_ALIGN), which the
            // file's last message may lack.
            msg.resize((len + 3) & !3, 0);
            let body = read_full(&mut r, &mut msg[NLMSG_HDRLEN..], offset)?;
            msg.truncate(NLMSG_HDRLEN + body);
        } else {
            msg.truncate(got);
        }
        read += 1;
        // A short message makes the decoder say what is cut.
        let p = each(&msg).map_err(|e| match e {
            DecodeError::Malformed { offset: at, what } => malformed(offset + at, what),
            k => k,
        })?;
        if p.interrupted {
            return Err(malformed(
                offset,
                "this dump was interrupted (NLM_F_DUMP_INTR) when captured; capture it again",
            ));
        }
        // The consumer has what it wants (`--limit`): the rest is not read.
        if p.stopped {
            return Ok(read);
        }
        open = !p.done;
        offset += msg.len();
    }
    if open {
        return Err(malformed(
            offset,
            "capture ends before the dump's NLMSG_DONE (truncated?)",
        ));
    }
    Ok(read)
}

/// Fills `buf` from `r` unless the input ends first; returns the bytes read.
pub(crate) fn read_full(
    r: &mut impl std::io::Read,
    buf: &mut [u8],
    offset: usize,
) -> Result<usize, DecodeError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(malformed(offset + got, format!("read failed: {e}"))),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: u16, flags: u16, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(body);
        m.resize((m.len() + 3) & !3, 0);
        m
    }

    #[test]
    fn every_reader_gets_the_same_ends_errors_and_interruptions() {
        let mut seen = Vec::new();
        let mut buf = msg(20, NLM_F_DUMP_INTR, b"abcd");
        buf.extend(msg(NLMSG_NOOP, 0, &[]));
        buf.extend(msg(21, 0, b"ef"));
        buf.extend(msg(NLMSG_DONE, 0, &0i32.to_ne_bytes()));
        buf.extend(msg(22, 0, b"after the end"));
        let p = frames(&buf, &mut |k, b| {
            seen.push((k, b.to_vec()));
            Ok(Flow::Continue(()))
        })
        .unwrap();
        assert!(p.done && p.interrupted && !p.stopped);
        assert_eq!(seen, [(20, b"abcd".to_vec()), (21, b"ef".to_vec())]);
        // A consumer's Break stops at once; its error is malformed at the message.
        let p = frames(&buf, &mut |_, _| Ok(Flow::Break(()))).unwrap();
        assert!(p.stopped && !p.done && p.consumed == 20);
        let e = frames(&buf, &mut |_, _| Err("bad body".into())).unwrap_err();
        assert_eq!(e, malformed(0, "bad body"));
        // The kernel's errors, and a DONE that carries one.
        let err = msg(NLMSG_ERROR, 0, &(-libc::EPERM).to_ne_bytes());
        assert_eq!(
            frames(&err, &mut |_, _| unreachable!()),
            Err(DecodeError::Kernel(libc::EPERM))
        );
        let done = msg(NLMSG_DONE, 0, &(-libc::ENOMEM).to_ne_bytes());
        assert_eq!(
            frames(&done, &mut |_, _| unreachable!()),
            Err(DecodeError::DumpFailed(libc::ENOMEM))
        );
        // An error value no errno has (i32::MIN would overflow when negated).
        let odd = msg(NLMSG_ERROR, 0, &i32::MIN.to_ne_bytes());
        assert!(matches!(
            frames(&odd, &mut |_, _| unreachable!()),
            Err(DecodeError::Malformed { .. })
        ));
    }
}

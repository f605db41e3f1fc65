//! Structure-aware: real captures (fixtures/) split into netlink messages,
//! then edited the ways a broken or hostile buffer differs from a good one:
//! lengths that overlap the next message or run past the end, flags
//! (NLM_F_DUMP_INTR among them), types, cut or duplicated messages, poked
//! bytes, and receive buffers that split the stream anywhere. Checks: no
//! panic, errors are one printable line, an untouched capture decodes to
//! what it holds, and reading it in receive buffers gives the same sockets
//! as reading it whole.
#![no_main]

mod common;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use tw::model::Flow;
use tw::model::Socket;
use tw::source::netlink::{decode, decode_capture, DecodeError};

const CAPTURES: [&[u8]; 2] = [
    include_bytes!("../../fixtures/netlink/tcp.dump"),
    include_bytes!("../../fixtures/iproute2/ss1.dump"),
];

#[derive(Arbitrary, Debug)]
enum Edit {
    /// Write nlmsg_len of message `msg` (can overlap the next or overrun).
    Len { msg: u8, len: u32 },
    /// Write nlmsg_flags.
    Flags { msg: u8, flags: u16 },
    /// Write nlmsg_type.
    Kind { msg: u8, kind: u16 },
    /// Keep only the first `keep` bytes of a message, its length unchanged.
    Cut { msg: u8, keep: u8 },
    /// Repeat a message right after itself.
    Repeat { msg: u8 },
    /// Drop a message.
    Drop { msg: u8 },
    /// Overwrite one byte of a message.
    Poke { msg: u8, at: u8, value: u8 },
}

#[derive(Arbitrary, Debug)]
struct Input {
    capture: bool,
    edits: Vec<Edit>,
    /// Where receive buffers end (picks among message ends), for the
    /// chunked read.
    splits: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let base = CAPTURES[usize::from(input.capture)];
    let mut msgs = split(base);
    let untouched = input.edits.is_empty();
    for e in &input.edits {
        apply(&mut msgs, e);
    }
    let bytes = msgs.concat();

    let mut whole = Vec::new();
    match decode_capture(&bytes, &mut |s| {
        whole.push(*s);
        Flow::Continue(())
    }) {
        Ok(()) => {
            let chunked = chunked(&bytes, &input.splits);
            assert_eq!(chunked.as_ref(), Ok(&whole), "read in receive buffers");
        }
        Err(e) => {
            assert!(!untouched, "a real capture failed to decode: {e}");
            common::check_error(&e, bytes.len());
        }
    }
    if untouched {
        // Each message but the NLMSG_DONEs is one socket.
        assert_eq!(whole.len(), msgs.len() - 2);
    }
});

/// A well-formed capture into its messages, padding included.
fn split(mut b: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let len = u32::from_ne_bytes(b[..4].try_into().unwrap()) as usize;
        let take = ((len + 3) & !3).min(b.len());
        out.push(b[..take].to_vec());
        b = &b[take..];
    }
    out
}

fn apply(msgs: &mut Vec<Vec<u8>>, e: &Edit) {
    if msgs.is_empty() {
        return;
    }
    let pick = |m: u8| usize::from(m) % msgs.len();
    let put = |m: &mut Vec<u8>, at: usize, bytes: &[u8]| {
        if m.len() >= at + bytes.len() {
            m[at..at + bytes.len()].copy_from_slice(bytes);
        }
    };
    match *e {
        Edit::Len { msg, len } => {
            let i = pick(msg);
            put(&mut msgs[i], 0, &len.to_ne_bytes());
        }
        Edit::Kind { msg, kind } => {
            let i = pick(msg);
            put(&mut msgs[i], 4, &kind.to_ne_bytes());
        }
        Edit::Flags { msg, flags } => {
            let i = pick(msg);
            put(&mut msgs[i], 6, &flags.to_ne_bytes());
        }
        Edit::Cut { msg, keep } => {
            let i = pick(msg);
            msgs[i].truncate(usize::from(keep));
        }
        Edit::Repeat { msg } => {
            let i = pick(msg);
            let m = msgs[i].clone();
            msgs.insert(i + 1, m);
        }
        Edit::Drop { msg } => {
            let i = pick(msg);
            msgs.remove(i);
        }
        Edit::Poke { msg, at, value } => {
            let i = pick(msg);
            let m = &mut msgs[i];
            if !m.is_empty() {
                let at = usize::from(at) % m.len();
                m[at] = value;
            }
        }
    }
}

/// Reads the bytes as the live reader does: one `decode` per receive buffer,
/// each dump until its NLMSG_DONE, a new dump after it. The kernel never
/// splits a message across receive buffers, so buffers end only where the
/// length fields say a message ends (NLMSG_NEXT).
fn chunked(bytes: &[u8], splits: &[u8]) -> Result<Vec<Socket>, DecodeError> {
    let mut ends = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= 16 {
        let len = u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        if len < 16 || len > bytes.len() - at {
            break;
        }
        at = ((at + len + 3) & !3).min(bytes.len());
        ends.push(at);
    }
    let mut bounds: Vec<usize> = splits
        .iter()
        .filter(|_| !ends.is_empty())
        .map(|s| ends[usize::from(*s) % ends.len()])
        .collect();
    bounds.push(bytes.len());
    bounds.sort_unstable();
    bounds.dedup();
    let mut out = Vec::new();
    let mut start = 0;
    for end in bounds {
        let mut rest = &bytes[start..end];
        start = end;
        while !rest.is_empty() {
            let p = decode(rest, &mut |s| {
                out.push(*s);
                Flow::Continue(())
            })?;
            assert!(
                !p.interrupted,
                "decode_capture accepted an interrupted dump"
            );
            rest = &rest[p.consumed..];
        }
    }
    Ok(out)
}

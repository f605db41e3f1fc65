//! Raw sock_diag receive buffers: `decode` (one recv's worth, as the live
//! reader calls it) and `decode_capture` (an `ss -D` file). Beyond "never
//! panics": offsets stay inside the buffer, errors are one printable line,
//! and a capture that decodes gives the same sockets when read dump by dump.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use tw::model::Flow;
use tw::model::Socket;
use tw::source::netlink::{decode, decode_capture};

fuzz_target!(|data: &[u8]| {
    let mut first = Vec::new();
    match decode(data, &mut |s| {
        first.push(*s);
        Flow::Continue(())
    }) {
        Ok(p) => {
            assert!(p.consumed <= data.len());
            if p.done {
                assert!(p.consumed >= 16, "NLMSG_DONE in fewer than 16 bytes");
            } else {
                // Without NLMSG_DONE the whole buffer was taken.
                assert_eq!(p.consumed, data.len());
            }
        }
        Err(e) => common::check_error(&e, data.len()),
    }

    let mut all = Vec::new();
    match decode_capture(data, &mut |s| {
        all.push(*s);
        Flow::Continue(())
    }) {
        Ok(()) => assert_eq!(dump_by_dump(data), all),
        Err(e) => common::check_error(&e, data.len()),
    }
});

/// Reads a capture one dump at a time through `decode`, as a reader that
/// stops at each NLMSG_DONE would.
fn dump_by_dump(mut data: &[u8]) -> Vec<Socket> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let p = decode(data, &mut |s| {
            out.push(*s);
            Flow::Continue(())
        })
        .expect("decode_capture accepted it");
        assert!(p.done && !p.interrupted && p.consumed > 0);
        data = &data[p.consumed..];
    }
    out
}

//! The conntrack readers on arbitrary bytes: ctnetlink receive buffers
//! (`decode`, `decode_stats`), a `tw capture` conntrack.dump
//! (`read_capture`), and the procfs text (`parse_proc_line`,
//! `parse_proc_stats`). Beyond "never panics": offsets stay inside the input
//! and errors are one printable line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tw::model::conntrack::Stats;
use tw::source::conntrack::{
    decode, decode_stats, parse_proc_line, parse_proc_stats, read_capture, DecodeError,
};

fn check(e: &DecodeError, len: usize) {
    if let DecodeError::Malformed { offset, .. } = e {
        assert!(*offset <= len, "offset {offset} past {len} bytes");
    }
    let msg = e.to_string();
    assert!(!msg.is_empty() && !msg.contains('\n'), "{msg:?}");
}

fuzz_target!(|data: &[u8]| {
    let mut n = 0usize;
    match decode(data, &mut |_| n += 1) {
        Ok(p) => assert!(p.consumed <= data.len()),
        Err(e) => check(&e, data.len()),
    }
    let mut s = Stats::default();
    if let Err(e) = decode_stats(data, &mut s) {
        check(&e, data.len());
    }
    if let Err(e) = read_capture(data, &mut |b| decode(b, &mut |_| {})) {
        check(&e, data.len());
    }
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        if let Err(e) = parse_proc_line(line) {
            assert!(!e.contains('\n'), "{e:?}");
        }
    }
    let _ = parse_proc_stats(&text);
});

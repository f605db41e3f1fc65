//! Regression tests for what `cargo fuzz` (fuzz/, .ci/after.d/70-fuzz.sh) found, each named for
//! the bug and holding the input the fuzzer reduced it to. No root needed.

use std::process::Command;
use tw::model::Flow;

use tw::model::StateSet;
use tw::source::netlink::{decode, DecodeError};
use tw::source::proc::parse_line;

/// An NLMSG_ERROR message (type 2) whose error field is `error`.
fn nlmsg_error(error: i32) -> Vec<u8> {
    let mut m = 20u32.to_ne_bytes().to_vec();
    m.extend_from_slice(&2u16.to_ne_bytes());
    m.extend_from_slice(&[0; 10]);
    m.extend_from_slice(&error.to_ne_bytes());
    m
}

/// netlink_decode: `-(error as i32)` overflowed (a panic in debug builds) on i32::MIN; only 0
/// (an ack) and -4095..=-1 (a negative errno, netlink_ack) come from a kernel.
#[test]
fn nlmsg_error_of_i32_min_is_malformed_not_an_overflow() {
    for error in [i32::MIN, i32::MIN + 1, -4096, 1, 105, i32::MAX] {
        match decode(&nlmsg_error(error), &mut |_| Flow::Continue(())) {
            Err(DecodeError::Malformed { offset: 0, what }) => {
                assert!(what.contains("not a negative errno"), "{error}: {what}")
            }
            other => panic!("{error}: {other:?}"),
        }
    }
    assert_eq!(
        decode(&nlmsg_error(-libc::ENOBUFS), &mut |_| Flow::Continue(())),
        Err(DecodeError::Kernel(libc::ENOBUFS))
    );
    assert_eq!(
        decode(&nlmsg_error(-4095), &mut |_| Flow::Continue(())),
        Err(DecodeError::Kernel(4095))
    );
    assert!(decode(&nlmsg_error(0), &mut |_| Flow::Continue(())).is_ok());

    // Through the command line: one line, exit 2.
    let path = std::env::temp_dir().join(format!("tw-fuzz-errmin-{}.dump", std::process::id()));
    std::fs::write(&path, nlmsg_error(i32::MIN)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tw"))
        .args(["--from", path.to_str().unwrap(), "count"])
        .output()
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("NLMSG_ERROR carries -2147483648"), "{err}");
}

/// proc_parse: the fuzzer's input `\0` (after its two state-mask bytes) gave an error quoting
/// the NUL as it was; a field's control characters now print as U+FFFD.
#[test]
fn proc_error_messages_hold_no_control_characters() {
    for line in [
        &b"\0"[..],
        b"\x1b[2J",
        b"\x7f",
        b"   0: 01\x0700007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1",
    ] {
        let err = parse_line(line, StateSet::ALL).unwrap_err();
        assert!(!err.chars().any(char::is_control), "{line:?}: {err:?}");
        assert!(err.contains('\u{FFFD}'), "{line:?}: {err:?}");
    }
}

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

/// serve_request: a request line holding a CR inside it (`POST /metrics1.1\r HTTP/1.1`) was
/// parsed, and its path echoed with the CR into the 404 body (and 5xx bodies into the log).
/// Control characters in a request line are now a 400 that echoes nothing.
#[test]
fn a_request_line_with_a_cr_inside_is_a_bad_request_that_echoes_nothing() {
    use tw::serve::http::parse_request;
    for raw in [
        &b"POST /metrics1.1\r HTTP/1.1\r\nContent-Length: 3\r\n\r\n"[..],
        b"GET /metrics\x1b[2J HTTP/1.1\r\n\r\n",
        b"GET\x07 /metrics HTTP/1.1\r\n\r\n",
    ] {
        let reply = parse_request(raw).unwrap_err();
        assert_eq!(reply.status, 400, "{raw:?}");
        let body = String::from_utf8(reply.body).unwrap();
        assert!(body.contains("control characters"), "{body:?}");
        assert!(!body.trim_end().chars().any(char::is_control), "{body:?}");
    }
}

/// serve_request (CI's fuzz step): a scrape timeout of 1.2e-17 s parsed as a Duration of zero,
/// and every scrape with it would have failed at once with 503. Below a nanosecond it is now no
/// limit of Prometheus's, and `--timeout` applies.
#[test]
fn a_scrape_timeout_below_a_nanosecond_is_no_limit_not_zero() {
    use tw::serve::http::parse_request;
    for t in [
        "00000.0000000000000001244543964319919782100",
        "1e-10",
        "4.9e-324",
    ] {
        let head =
            format!("GET /metrics HTTP/1.1\r\nX-Prometheus-Scrape-Timeout-Seconds: {t}\r\n\r\n");
        let req = parse_request(head.as_bytes()).unwrap();
        assert_eq!(req.scrape_timeout, None, "{t}");
    }
    let head = b"GET /metrics HTTP/1.1\r\nX-Prometheus-Scrape-Timeout-Seconds: 0.5\r\n\r\n";
    let req = parse_request(head).unwrap();
    assert_eq!(
        req.scrape_timeout,
        Some(std::time::Duration::from_millis(500))
    );
}

/// proc_facts: /proc/net/netstat whose values line named another section quoted both section
/// names whole, control characters and all (a 1,502-byte error from a 3,234-byte input); every
/// word from the file is now quoted short and escaped.
#[test]
fn counter_file_errors_quote_words_short_and_escaped() {
    use tw::source::facts::parse_file;
    let names = format!("TcpExt: {}\n", "SyncookiesSent ".repeat(100));
    let cases = [
        format!("{names}{}\x01\0\x10Ip: 1 2\n", "TCPHys ".repeat(200)),
        "Tcp\x1b[2J: A B\nTcp\x1b[2J: 1\n".to_string(),
        "Tcp\x07: A\n".to_string(),
        "Tcp: A\x1b\nTcp: x\n".to_string(),
    ];
    for text in &cases {
        for rel in ["net/netstat", "net/snmp"] {
            let e = parse_file(rel, text).unwrap().unwrap_err();
            let msg = format!("{e:#}");
            assert!(msg.len() < 300, "{} bytes: {msg:?}", msg.len());
            assert!(!msg.chars().any(char::is_control), "{msg:?}");
        }
    }
    let e = parse_file("net/sockstat", "TCP: inuse\x1b[31m x\n")
        .unwrap()
        .unwrap_err();
    assert!(!format!("{e:#}").chars().any(char::is_control), "{e:#}");
}

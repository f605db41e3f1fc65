//! /proc/net/tcp{,6} text: `parse` over a whole table and `parse_line` over
//! each of its lines. Beyond "never panics": the two agree (repeats dropped), a parsed socket
//! is in the asked-for states, an error is one printable line, and a parsed
//! socket printed back in the kernel's format parses to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::fmt::Write;
use std::net::IpAddr;
use tw::model::Flow;
use tw::model::{Socket, StateSet, TcpState};
use tw::source::proc::{parse, parse_line};

fuzz_target!(|data: &[u8]| {
    // Two bytes pick states to leave out (bit i: TcpState::ALL[i]); the seeds
    // start with two zero bytes, so they parse with every state.
    let [m0, m1, text @ ..] = data else {
        return;
    };
    let skip = u16::from_le_bytes([*m0, *m1]);
    let left_out: Vec<TcpState> = TcpState::ALL
        .iter()
        .enumerate()
        .filter(|(i, _)| skip >> i & 1 == 1)
        .map(|(_, s)| *s)
        .collect();
    let states = StateSet::ALL.without(&left_out);

    let mut whole = Vec::new();
    let result = parse(text, states, &mut |s| {
        whole.push(*s);
        Flow::Continue(())
    });
    if let Err(e) = &result {
        assert_one_line(&e.what);
        assert!(e.line >= 1);
    }

    // Line by line, as parse sees them.
    let mut by_line = Vec::new();
    let mut failed = false;
    for line in text.split_inclusive(|b| *b == b'\n') {
        match parse_line(line, states) {
            Ok(Some(s)) => {
                assert!(states.contains(s.state), "{s:?} not in {states:?}");
                round_trip(&s);
                // parse hands a socket over once: a repeat (same 4-tuple and inode) is the
                // kernel resuming a page at a shifted position.
                if !by_line
                    .iter()
                    .any(|o: &Socket| (o.local, o.peer, o.inode) == (s.local, s.peer, s.inode))
                {
                    by_line.push(s);
                }
            }
            Ok(None) => {}
            Err(what) => {
                assert_one_line(&what);
                failed = true;
                break;
            }
        }
    }
    if result.is_ok() {
        assert!(!failed, "parse accepted what parse_line refused");
        assert_eq!(whole, by_line);
    }
});

fn assert_one_line(msg: &str) {
    assert!(!msg.is_empty());
    assert!(
        !msg.chars().any(char::is_control),
        "error message holds control characters: {msg:?}"
    );
}

/// Prints `s` the way tcp4_seq_show / tcp6_seq_show would and parses it again.
fn round_trip(s: &Socket) {
    let mut line = String::from("   0: ");
    for e in [&s.local, &s.peer] {
        match e.addr {
            IpAddr::V4(a) => write!(line, "{:08X}", u32::from_ne_bytes(a.octets())).unwrap(),
            IpAddr::V6(a) => {
                for w in a.octets().chunks(4) {
                    let w = u32::from_ne_bytes([w[0], w[1], w[2], w[3]]);
                    write!(line, "{w:08X}").unwrap();
                }
            }
        }
        write!(line, ":{:04X} ", e.port).unwrap();
    }
    writeln!(
        line,
        "{:02X} {:08X}:{:08X} 00:00000000 {:08X} {} 0 {}",
        s.state.kernel(),
        s.send_q,
        s.recv_q,
        s.retrans,
        s.uid,
        s.inode
    )
    .unwrap();
    let again = parse_line(line.as_bytes(), StateSet::ALL)
        .unwrap_or_else(|e| panic!("{line:?}: {e}"))
        .unwrap_or_else(|| panic!("{line:?}: skipped"));
    assert_eq!(
        (again.family, again.state, again.local, again.peer),
        (s.family, s.state, s.local, s.peer),
        "{line:?}"
    );
    assert_eq!(
        (
            again.recv_q,
            again.send_q,
            again.retrans,
            again.uid,
            again.inode
        ),
        (s.recv_q, s.send_q, s.retrans, s.uid, s.inode),
        "{line:?}"
    );
}

//! ss's filter language: `expr::parse` over any words, then, for what parses, the compiled
//! INET_DIAG_REQ_BYTECODE against two oracles: the kernel's own validator (inet_diag_bc_audit
//! in net/ipv4/inet_diag.c, transcribed below), since a program it refuses fails the dump with
//! EINVAL, and the expression's own evaluation, run over real sockets from the fixtures and
//! over sockets made from the input.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tw::model::abi::bc::{AUTO, DEV_COND, D_COND, JMP, MARK_COND, NOP, S_COND};
use tw::model::Flow;
use tw::model::{Endpoint, Family, Socket, TcpState};
use tw::query::expr::parse;
use tw::source::netlink::bytecode;
use tw::source::netlink::decode_capture;

fn service(name: &str) -> Option<u16> {
    match name {
        "ssh" => Some(22),
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// Real sockets: every one in the fixture capture.
fn fixture_sockets() -> &'static [Socket] {
    static SOCKETS: OnceLock<Vec<Socket>> = OnceLock::new();
    SOCKETS.get_or_init(|| {
        let mut v = Vec::new();
        decode_capture(
            include_bytes!("../../fixtures/netlink/tcp.dump"),
            &mut |s| {
                v.push(*s);
                Flow::Continue(())
            },
        )
        .expect("the fixture decodes");
        v
    })
}

/// A socket from 37 input bytes: form (IPv4, IPv6, IPv4-mapped), addresses, ports.
fn socket(b: &[u8]) -> Socket {
    let addr = |a: &[u8]| -> IpAddr {
        match b[0] % 3 {
            0 => IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])),
            1 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(a).unwrap())),
            _ => IpAddr::V6(Ipv4Addr::new(a[0], a[1], a[2], a[3]).to_ipv6_mapped()),
        }
    };
    let family = match b[0] % 3 {
        0 => Family::Inet,
        _ => Family::Inet6,
    };
    Socket::new(
        family,
        TcpState::Established,
        Endpoint::new(addr(&b[1..17]), u16::from_ne_bytes([b[17], b[18]])),
        Endpoint::new(addr(&b[19..35]), u16::from_ne_bytes([b[35], b[36]])),
    )
}

fuzz_target!(|data: &[u8]| {
    // Text, then after a NUL, bytes for sockets (the seeds are plain text).
    let (text, rest) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let text = String::from_utf8_lossy(text);
    let words: Vec<&str> = text.split_whitespace().collect();
    let Ok(parsed) = parse(&words, &service) else {
        return;
    };
    let Some(expr) = parsed.expr else {
        return;
    };
    let Some(bc) = bytecode::compile(&expr) else {
        return;
    };
    if let Err(at) = audit(&bc) {
        panic!("the kernel would refuse the program for {text:?} (at byte {at}): {bc:?}");
    }
    let own: Vec<Socket> = rest.chunks_exact(37).map(socket).collect();
    for s in fixture_sockets().iter().chain(&own) {
        assert_eq!(
            bytecode::run(&bc, s).expect("a compiled program runs to its end"),
            expr.matches(s),
            "{text:?} on {s:?}: the program and the expression disagree"
        );
    }
});

/// inet_diag_bc_audit (net/ipv4/inet_diag.c), for a caller without CAP_NET_ADMIN: `Err` holds
/// the offset of the op it would refuse.
fn audit(bc: &[u8]) -> Result<(), usize> {
    let total = bc.len() as isize;
    if total < 4 || total > u16::MAX as isize - 4 {
        return Err(0);
    }
    let op = |at: isize| -> (u8, isize, isize) {
        let i = at as usize;
        (
            bc[i],
            isize::from(bc[i + 1]),
            u16::from_ne_bytes([bc[i + 2], bc[i + 3]]) as isize,
        )
    };
    // valid_cc: does some chain of `yes` jumps from the start land on `cc`?
    let valid_cc = |cc: isize| -> bool {
        let (mut at, mut len) = (0isize, total);
        while len >= 0 {
            if cc > len {
                return false;
            }
            if cc == len {
                return true;
            }
            if at + 4 > total {
                return false;
            }
            let yes = op(at).1;
            if yes < 4 || yes & 3 != 0 {
                return false;
            }
            len -= yes;
            at += yes;
        }
        false
    };
    let (mut at, mut len) = (0isize, total);
    while len > 0 {
        if len < 4 {
            return Err(at as usize);
        }
        let (code, yes, no) = op(at);
        let mut min_len = 4isize;
        let ok = match code {
            S_COND | D_COND => {
                // struct inet_diag_hostcond: family, prefix_len, port (int), then the address.
                min_len += 8;
                len >= min_len && {
                    let (family, prefix) = (bc[at as usize + 4], bc[at as usize + 5]);
                    let addr_len = match family {
                        0 => Some(0),
                        2 => Some(4),
                        10 => Some(16),
                        _ => None,
                    };
                    addr_len.is_some_and(|a| {
                        min_len += a;
                        len >= min_len && isize::from(prefix) <= 8 * a
                    })
                }
            }
            DEV_COND => {
                min_len += 4;
                len >= min_len
            }
            2..=5 | 11 | 12 => {
                min_len += 4;
                len >= min_len
            }
            MARK_COND => false, // needs CAP_NET_ADMIN
            AUTO | JMP | NOP => true,
            _ => false,
        };
        if !ok {
            return Err(at as usize);
        }
        if code != NOP {
            if no < min_len || no > len + 4 || no & 3 != 0 {
                return Err(at as usize);
            }
            if no < len && !valid_cc(len - no) {
                return Err(at as usize);
            }
        }
        if yes < min_len || yes > len + 4 || yes & 3 != 0 {
            return Err(at as usize);
        }
        at += yes;
        len -= yes;
    }
    if len == 0 {
        Ok(())
    } else {
        Err(at as usize)
    }
}

//! /proc/net/tcp and tcp6: a line parser (pure half) and the file reader.
//!
//! procfs's TcpNetEntry drops the `tr` and `tm->when` columns, which carry the
//! TIME_WAIT time left, so tw parses the lines itself. Line formats:
//! tcp4_seq_show/get_tcp4_sock, get_timewait4_sock, get_openreq4 in
//! net/ipv4/tcp_ipv4.c, and their IPv6 twins in net/ipv6/tcp_ipv6.c.

use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::{Endpoint, Family, Socket, StateSet, TcpState, Timer, TimerKind};

/// Clock ticks per second of `tm->when` (jiffies_delta_to_clock_t). USER_HZ is
/// 100 on every architecture Linux runs servers on.
const USER_HZ: u64 = 100;

/// A line that does not parse, with its 1-based number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub what: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.line, self.what)
    }
}

/// Parses a whole table, handing each socket whose state is in `states` to
/// `visit`. The header line is skipped; any other line that does not parse
/// is an error, since a silently skipped line would be a wrong count.
pub fn parse(
    mut r: impl BufRead,
    states: StateSet,
    visit: &mut dyn FnMut(&Socket),
) -> Result<(), ParseError> {
    let mut line = Vec::with_capacity(256);
    let mut n = 0;
    loop {
        line.clear();
        let got = r.read_until(b'\n', &mut line).map_err(|e| ParseError {
            line: n + 1,
            what: format!("read failed: {e}"),
        })?;
        if got == 0 {
            return Ok(());
        }
        n += 1;
        if line.last() != Some(&b'\n') {
            return Err(ParseError {
                line: n,
                what: "line is cut off (no newline at the end; truncated capture?)".into(),
            });
        }
        match parse_line(&line, states) {
            Ok(Some(s)) => visit(&s),
            Ok(None) => {}
            Err(what) => return Err(ParseError { line: n, what }),
        }
    }
}

/// Parses one line. `Ok(None)`: the header, a blank line, or a socket whose
/// state is not in `states` (checked before the addresses are decoded).
pub fn parse_line(line: &[u8], states: StateSet) -> Result<Option<Socket>, String> {
    let mut f = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty());
    let Some(sl) = f.next() else {
        return Ok(None);
    };
    if sl == b"sl" {
        return Ok(None);
    }
    if sl.last() != Some(&b':') {
        return Err(format!(
            "expected a slot number like '12:', found '{}'",
            show(sl)
        ));
    }
    let mut next = |name: &str| {
        f.next()
            .ok_or_else(|| format!("missing the {name} column (truncated line?)"))
    };
    let local = next("local_address")?;
    let peer = next("rem_address")?;
    let st = next("st")?;
    let queues = next("tx_queue:rx_queue")?;
    let timer = next("tr:tm->when")?;
    let retrnsmt = next("retrnsmt")?;
    let uid = next("uid")?;
    let _timeout = next("timeout")?;
    let inode = next("inode")?;

    if st.contains(&b':') {
        // Addresses and queues hold a colon, st never does: the line is short
        // of a column before it.
        return Err(format!(
            "found '{}' where the st column belongs: a column is missing",
            show(st)
        ));
    }
    let st = hex(st, "st")?;
    let state = u8::try_from(st)
        .ok()
        .and_then(TcpState::from_kernel)
        .ok_or_else(|| format!("unknown TCP state 0x{st:02X}"))?;
    if !states.contains(state) {
        return Ok(None);
    }
    let (family, local) = endpoint(local, "local_address")?;
    let (peer_family, peer) = endpoint(peer, "rem_address")?;
    if family != peer_family {
        return Err("local and remote addresses are of different families".into());
    }
    let (tx, rx) = pair(queues, "tx_queue:rx_queue")?;
    let (tr, when) = pair(timer, "tr:tm->when")?;
    let kind = u8::try_from(tr)
        .ok()
        .and_then(|t| TimerKind::from_code(t).ok())
        .ok_or_else(|| format!("unknown timer code {tr:X} in tr"))?;
    Ok(Some(Socket {
        family,
        state,
        local,
        peer,
        timer: kind.map(|kind| Timer {
            kind,
            ms: ticks_to_ms(when),
        }),
        retrans: u8::try_from(hex(retrnsmt, "retrnsmt")?).unwrap_or(u8::MAX),
        recv_q: u32::try_from(rx).unwrap_or(u32::MAX),
        send_q: u32::try_from(tx).unwrap_or(u32::MAX),
        uid: dec(uid, "uid")?,
        inode: dec(inode, "inode")?,
        direction: None,
    }))
}

/// `tm->when` in USER_HZ ticks to milliseconds. Kernels before 4.x printed
/// an overdue timer as a negative long (ffff...); that means 0 left.
fn ticks_to_ms(ticks: u64) -> u32 {
    if ticks > i64::MAX as u64 {
        return 0;
    }
    u32::try_from(ticks.saturating_mul(1000) / USER_HZ).unwrap_or(u32::MAX)
}

fn show(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(40)]).into_owned();
    if b.len() > 40 {
        s + "..."
    } else {
        s
    }
}

fn hex(b: &[u8], name: &str) -> Result<u64, String> {
    std::str::from_utf8(b)
        .ok()
        .filter(|s| !s.is_empty() && s.len() <= 16)
        .and_then(|s| u64::from_str_radix(s, 16).ok())
        .ok_or_else(|| format!("bad hex '{}' in {name}", show(b)))
}

fn dec<T: std::str::FromStr>(b: &[u8], name: &str) -> Result<T, String> {
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad number '{}' in {name}", show(b)))
}

fn pair(b: &[u8], name: &str) -> Result<(u64, u64), String> {
    let mut it = b.splitn(2, |c| *c == b':');
    match (it.next(), it.next()) {
        (Some(a), Some(c)) => Ok((hex(a, name)?, hex(c, name)?)),
        _ => Err(format!("expected '{name}', found '{}'", show(b))),
    }
}

/// `0100007F:0050` or `00000000000000000000000001000000:01BB`. The kernel
/// prints each 32-bit word of the (network-order) address with %08X, so the
/// words are in host byte order: decode them with the host's order.
fn endpoint(b: &[u8], name: &str) -> Result<(Family, Endpoint), String> {
    let bad = || format!("bad address '{}' in {name}", show(b));
    let colon = b.iter().position(|c| *c == b':').ok_or_else(bad)?;
    let (addr, port) = (&b[..colon], &b[colon + 1..]);
    if port.len() != 4 {
        return Err(bad());
    }
    let port = hex(port, name)? as u16;
    let word = |i: usize| -> Result<[u8; 4], String> {
        let w = hex(&addr[i * 8..i * 8 + 8], name)?;
        Ok((w as u32).to_ne_bytes())
    };
    match addr.len() {
        8 => {
            let a = Ipv4Addr::from(word(0)?);
            Ok((Family::Inet, Endpoint::new(IpAddr::V4(a), port)))
        }
        32 => {
            let mut a = [0u8; 16];
            for i in 0..4 {
                a[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            let a = Ipv6Addr::from(a);
            Ok((Family::Inet6, Endpoint::new(IpAddr::V6(a), port)))
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";

    fn one(line: &str) -> Socket {
        parse_line(line.as_bytes(), StateSet::ALL)
            .unwrap()
            .expect("a socket")
    }

    #[test]
    fn listener_v4() {
        let s = one("   0: 0100007F:1F90 00000000:0000 0A 00000000:00000005 00:00000000 00000000   998        0 31337 1 0000000000000000 100 0 0 10 0");
        assert_eq!(s.family, Family::Inet);
        assert_eq!(s.state, TcpState::Listen);
        assert_eq!(s.local.to_string(), "127.0.0.1:8080");
        assert_eq!(s.peer.to_string(), "0.0.0.0:*");
        assert_eq!((s.recv_q, s.send_q, s.uid, s.inode), (5, 0, 998, 31337));
        assert_eq!(s.timer, None);
    }

    #[test]
    fn time_wait_v4_timer_in_ticks() {
        let s = one("   7: 0100007F:A2F4 0200007F:0050 06 00000000:00000000 03:00000FAB 00000000     0        0 0 3 0000000000000000");
        assert_eq!(s.state, TcpState::TimeWait);
        assert_eq!(s.peer.to_string(), "127.0.0.2:80");
        // 0xFAB = 4011 ticks of 10 ms.
        assert_eq!(s.timewait_ms(), Some(40_110));
        assert_eq!((s.uid, s.inode), (0, 0));
    }

    #[test]
    fn fin_wait2_minisocket() {
        let s = one("   2: 0100007F:9C40 0100007F:1F90 05 00000000:00000000 03:000016F9 00000000     0        0 0 3 0000000000000000");
        assert_eq!(s.state, TcpState::FinWait2);
        assert_eq!(s.timewait_ms(), Some(58_810));
    }

    #[test]
    fn keepalive_and_retransmit_timers() {
        let s = one("   1: 0100007F:0016 0100007F:D431 01 00000000:00000000 02:000AFC7F 00000003  1000        0 4242 1 0000000000000000 20 4 30 10 -1");
        assert_eq!(
            s.timer,
            Some(Timer {
                kind: TimerKind::Keepalive,
                ms: 7_199_990
            })
        );
        assert_eq!(s.retrans, 3);
    }

    #[test]
    fn overdue_timer_from_old_kernels_is_zero() {
        let s = one("   7: 0100007F:A2F4 0200007F:0050 06 00000000:00000000 03:FFFFFFFFFFFFFFF6 00000000     0        0 0 3 0000000000000000");
        assert_eq!(s.timewait_ms(), Some(0));
    }

    #[test]
    fn ipv6_loopback_and_mapped() {
        let s = one("   0: 00000000000000000000000001000000:01BB 00000000000000000000000001000000:D6D8 01 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 20 4 30 10 -1");
        assert_eq!(s.family, Family::Inet6);
        assert_eq!(s.local.to_string(), "[::1]:443");
        let m = one("   1: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000100007F:B5C2 06 00000000:00000000 03:00001000 00000000     0        0 0 3 0000000000000000");
        assert_eq!(m.local.to_string(), "[::ffff:127.0.0.1]:8080");
        assert_eq!(m.peer.addr.to_string(), "::ffff:127.0.0.1");
    }

    #[test]
    fn header_blank_and_unwanted_states_are_skipped() {
        assert_eq!(parse_line(HEADER.as_bytes(), StateSet::ALL), Ok(None));
        assert_eq!(parse_line(b"\n", StateSet::ALL), Ok(None));
        let listen = b"   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000   0        0 1 1";
        let tw_only = StateSet::of(&[TcpState::TimeWait]);
        assert_eq!(parse_line(listen, tw_only), Ok(None));
    }

    #[test]
    fn corrupt_lines_say_what_is_wrong() {
        let cases: &[(&str, &str)] = &[
            ("   0: 0100007F:1F90 00000000:0000 0E 00000000:00000000 00:00000000 00000000 0 0 1", "unknown TCP state 0x0E"),
            ("   0: 0100007F:1F90 00000000:0000 0A", "missing the tx_queue:rx_queue column"),
            ("   0: 0100007G:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1", "bad hex"),
            ("   0: 0100007F1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1", "bad address"),
            ("   0: 0100007F:1F90 0A 00000000:00000000 00:00000000 00000000 0 0 1 1", "a column is missing"),
            ("   0: 0100007F:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1", "different families"),
            ("   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 07:00000000 00000000 0 0 1", "unknown timer"),
            ("   0: 0100007F:1F90 00000000:0000 0A 0000000000000000 00:00000000 00000000 0 0 1", "tx_queue:rx_queue"),
            ("   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 x 0 1", "bad number 'x' in uid"),
            ("garbage", "slot number"),
        ];
        for (line, want) in cases {
            let err = parse_line(line.as_bytes(), StateSet::ALL).unwrap_err();
            assert!(err.contains(want), "{line}\n  -> {err}");
        }
    }

    #[test]
    fn parse_numbers_lines_and_rejects_a_cut_last_line() {
        let text = format!(
            "{HEADER}\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1\n   1: 0100007F:1F9"
        );
        let mut n = 0;
        let err = parse(text.as_bytes(), StateSet::ALL, &mut |_| n += 1).unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.what.contains("cut off"), "{err}");
        let good =
            "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1\n";
        let bytes = [
            HEADER.as_bytes(),
            b"\n",
            good.as_bytes(),
            b"\xff\xfe garbage\n",
        ]
        .concat();
        let err = parse(&bytes[..], StateSet::ALL, &mut |_| n += 1).unwrap_err();
        assert!(err.what.contains("slot number"), "{err}");
        assert_eq!(err.line, 3);
    }
}

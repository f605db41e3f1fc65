//! The kernel program's `struct tw_event` (bpf/tw.bpf.c) into a model
//! [`Event`]. The layout is the C struct's, native-endian, 72 bytes:
//!
//! | offset | field  | |
//! |-------:|--------|---|
//! | 0  | ts     | u64 bpf_ktime_get_ns |
//! | 8  | netns  | u32 namespace inode |
//! | 12 | pid    | u32 tgid, 0 unknown |
//! | 16 | kind   | u8 enum tw_kind, 1..=9 |
//! | 17 | family | u8 AF_INET 2, AF_INET6 10 |
//! | 18 | state  | u8 TCP state (kind-specific) |
//! | 19 | dir    | u8 0 unknown, 1 in, 2 out |
//! | 20 | sport  | u16 local port, host order |
//! | 22 | dport  | u16 remote port, host order |
//! | 24 | saddr  | 16 bytes, network order (IPv4 in the first 4) |
//! | 40 | daddr  | 16 bytes |
//! | 56 | comm   | 16 bytes, NUL-padded |

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::event::{Event, EventKind, Process};
use crate::model::{Direction, Endpoint, Family, TcpState};

pub const EVENT_SIZE: usize = 72;

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// Decodes one ring buffer record; an error names what was wrong with it.
pub fn decode(b: &[u8]) -> Result<Event, String> {
    if b.len() < EVENT_SIZE {
        return Err(format!(
            "event record of {} bytes, expected {EVENT_SIZE}",
            b.len()
        ));
    }
    let u16_at = |o: usize| u16::from_ne_bytes([b[o], b[o + 1]]);
    let u32_at = |o: usize| u32::from_ne_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let ts_ns = u64::from_ne_bytes(b[0..8].try_into().expect("8 bytes"));
    let kind = EventKind::from_wire(b[16]).ok_or_else(|| format!("event kind {}", b[16]))?;
    let (family, saddr, daddr) = match b[17] {
        AF_INET => (Family::Inet, v4(&b[24..28]), v4(&b[40..44])),
        AF_INET6 => (Family::Inet6, v6(&b[24..40]), v6(&b[40..56])),
        f => return Err(format!("address family {f}")),
    };
    let state = TcpState::ALL.iter().copied().find(|s| *s as u8 == b[18]);
    let substate = match kind {
        EventKind::TimeWait | EventKind::CloseFirst => state,
        _ => None,
    };
    let comm = &b[56..72];
    let comm = &comm[..comm.iter().position(|&c| c == 0).unwrap_or(16)];
    Ok(Event {
        ts_ns,
        netns: u32_at(8),
        kind,
        process: Process {
            pid: u32_at(12),
            comm: String::from_utf8_lossy(comm).into_owned(),
        },
        family,
        local: Endpoint {
            addr: saddr,
            port: u16_at(20),
        },
        peer: Endpoint {
            addr: daddr,
            port: u16_at(22),
        },
        direction: match b[19] {
            1 => Some(Direction::Inbound),
            2 => Some(Direction::Outbound),
            _ => None,
        },
        substate,
    })
}

fn v4(b: &[u8]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
}

fn v6(b: &[u8]) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(b).expect("16 bytes")))
}

/// Encodes an event as the kernel program would: the inverse of [`decode`],
/// for tests and replay.
pub fn encode(e: &Event) -> [u8; EVENT_SIZE] {
    let mut b = [0u8; EVENT_SIZE];
    b[0..8].copy_from_slice(&e.ts_ns.to_ne_bytes());
    b[8..12].copy_from_slice(&e.netns.to_ne_bytes());
    b[12..16].copy_from_slice(&e.process.pid.to_ne_bytes());
    b[16] = EventKind::ALL
        .iter()
        .position(|k| *k == e.kind)
        .expect("kind") as u8
        + 1;
    b[17] = match e.family {
        Family::Inet => AF_INET,
        Family::Inet6 => AF_INET6,
    };
    b[18] = e.substate.map_or(0, |s| s as u8);
    b[19] = match e.direction {
        None => 0,
        Some(Direction::Inbound) => 1,
        Some(Direction::Outbound) => 2,
    };
    b[20..22].copy_from_slice(&e.local.port.to_ne_bytes());
    b[22..24].copy_from_slice(&e.peer.port.to_ne_bytes());
    for (at, addr) in [(24, e.local.addr), (40, e.peer.addr)] {
        match addr {
            IpAddr::V4(a) => b[at..at + 4].copy_from_slice(&a.octets()),
            IpAddr::V6(a) => b[at..at + 16].copy_from_slice(&a.octets()),
        }
    }
    let comm = e.process.comm.as_bytes();
    let n = comm.len().min(15);
    b[56..56 + n].copy_from_slice(&comm[..n]);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as the kernel program writes it, byte by byte.
    fn raw_time_wait_v4() -> [u8; EVENT_SIZE] {
        let mut b = [0u8; EVENT_SIZE];
        b[0..8].copy_from_slice(&123_456_789u64.to_ne_bytes());
        b[8..12].copy_from_slice(&4_026_531_840u32.to_ne_bytes());
        b[12..16].copy_from_slice(&4242u32.to_ne_bytes());
        b[16] = 4; // TW_TIME_WAIT
        b[17] = 2; // AF_INET
        b[18] = 5; // TCP_FIN_WAIT2 substate
        b[19] = 2; // out
        b[20..22].copy_from_slice(&40_000u16.to_ne_bytes());
        b[22..24].copy_from_slice(&443u16.to_ne_bytes());
        b[24..28].copy_from_slice(&[10, 0, 0, 1]);
        b[40..44].copy_from_slice(&[192, 0, 2, 7]);
        b[56..60].copy_from_slice(b"curl");
        b
    }

    #[test]
    fn a_time_wait_record_decodes_with_its_fin_wait2_substate() {
        let e = decode(&raw_time_wait_v4()).unwrap();
        assert_eq!(e.kind, EventKind::TimeWait);
        assert_eq!(e.substate, Some(TcpState::FinWait2));
        assert_eq!(e.netns, 4_026_531_840);
        assert_eq!(e.process.pid, 4242);
        assert_eq!(e.process.comm, "curl");
        assert_eq!(e.family, Family::Inet);
        assert_eq!(e.local.to_string(), "10.0.0.1:40000");
        assert_eq!(e.peer.to_string(), "192.0.2.7:443");
        assert_eq!(e.direction, Some(Direction::Outbound));
        assert_eq!(e.destination(), ("192.0.2.7".parse().unwrap(), Some(443)));
    }

    #[test]
    fn every_kind_and_family_round_trips() {
        let base = decode(&raw_time_wait_v4()).unwrap();
        for kind in EventKind::ALL {
            for (family, l, p) in [
                (Family::Inet, "127.0.0.1", "127.0.0.2"),
                (Family::Inet6, "::1", "2001:db8::5"),
            ] {
                let mut e = base.clone();
                e.kind = kind;
                e.family = family;
                e.local.addr = l.parse().unwrap();
                e.peer.addr = p.parse().unwrap();
                e.direction = Some(Direction::Inbound);
                if !matches!(kind, EventKind::TimeWait | EventKind::CloseFirst) {
                    e.substate = None;
                }
                assert_eq!(decode(&encode(&e)).unwrap(), e);
            }
        }
    }

    #[test]
    fn a_full_comm_has_no_terminator_and_is_kept_whole() {
        let mut b = raw_time_wait_v4();
        b[56..72].copy_from_slice(b"abcdefghijklmnop");
        assert_eq!(decode(&b).unwrap().process.comm, "abcdefghijklmnop");
    }

    #[test]
    fn short_records_unknown_kinds_and_families_are_errors_not_panics() {
        let b = raw_time_wait_v4();
        assert!(decode(&b[..71]).unwrap_err().contains("71 bytes"));
        assert!(decode(&[]).is_err());
        let mut k = b;
        k[16] = 0;
        assert!(decode(&k).unwrap_err().contains("kind 0"));
        k[16] = 10;
        assert!(decode(&k).unwrap_err().contains("kind 10"));
        let mut f = b;
        f[17] = 1;
        assert!(decode(&f).unwrap_err().contains("family 1"));
    }

    #[test]
    fn inbound_destinations_drop_the_client_port() {
        let mut e = decode(&raw_time_wait_v4()).unwrap();
        e.direction = Some(Direction::Inbound);
        assert_eq!(e.destination().1, None);
    }
}

//! Decodes sock_diag replies into [`Socket`]s: live buffers and `ss -D`
//! captures alike (the pure half of the netlink reader).
//!
//! `struct inet_diag_msg` (include/uapi/linux/inet_diag.h) is read here
//! directly: netlink-packet-sock-diag's response type turns timer 3 into a
//! variant without `idiag_expires` and allocates per message.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::frame::{self, frames, u16_ne, u32_ne};
pub use super::frame::{DecodeError, Progress};
use crate::model::abi::{
    INET_DIAG_CONG, INET_DIAG_INFO, INET_DIAG_MSG_LEN, INET_DIAG_SKMEMINFO, NLMSG_DONE,
    NLMSG_ERROR, NLMSG_HDRLEN, SOCK_DIAG_BY_FAMILY, TCPDIAG_GETSOCK,
};
use crate::model::internals::{Cong, Extras, SkMem, TcpInfo, Wants};
use crate::model::{Endpoint, Family, Flow, Socket, TcpState, Timer, TimerKind};

/// Decodes the netlink messages in `buf` up to and including the first
/// NLMSG_DONE, handing each socket to `visit`. A buffer may end between
/// messages (the next recv continues the dump), never inside one.
pub fn decode(buf: &[u8], visit: &mut dyn FnMut(&Socket) -> Flow) -> Result<Progress, DecodeError> {
    decode_with(buf, Wants::NONE, &mut |s, _| visit(s))
}

/// [`decode`], with the attributes `wants` names decoded too and handed to
/// `visit` beside each socket (`None` when nothing is wanted).
pub fn decode_with(
    buf: &[u8],
    wants: Wants,
    visit: &mut dyn FnMut(&Socket, Option<&Extras>) -> Flow,
) -> Result<Progress, DecodeError> {
    frames(buf, &mut |kind, body| match kind {
        SOCK_DIAG_BY_FAMILY | TCPDIAG_GETSOCK => {
            let s = decode_inet_diag_msg(body)?;
            Ok(if wants.any() {
                visit(&s, Some(&decode_extras(&body[INET_DIAG_MSG_LEN..], wants)?))
            } else {
                visit(&s, None)
            })
        }
        other => Err(format!("unexpected netlink message type {other}")),
    })
}

/// Decodes one `struct inet_diag_msg` (attributes after it are ignored).
pub fn decode_inet_diag_msg(b: &[u8]) -> Result<Socket, String> {
    if b.len() < INET_DIAG_MSG_LEN {
        return Err(format!(
            "inet_diag_msg of {} bytes, expected at least {INET_DIAG_MSG_LEN}",
            b.len()
        ));
    }
    let family = match b[0] {
        f if f == Family::Inet.af() => Family::Inet,
        f if f == Family::Inet6.af() => Family::Inet6,
        f => {
            return Err(format!(
                "address family {f} is neither AF_INET nor AF_INET6"
            ))
        }
    };
    let state = TcpState::from_kernel(b[1]).ok_or_else(|| format!("unknown TCP state {}", b[1]))?;
    let timer_kind = TimerKind::from_code(b[2]).map_err(|n| format!("unknown timer {n}"))?;
    // struct inet_diag_sockid: ports and addresses in network byte order.
    let sport = u16::from_be_bytes([b[4], b[5]]);
    let dport = u16::from_be_bytes([b[6], b[7]]);
    let addr = |at: usize| -> IpAddr {
        match family {
            Family::Inet => IpAddr::V4(Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])),
            Family::Inet6 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(&b[at..at + 16]);
                IpAddr::V6(Ipv6Addr::from(a))
            }
        }
    };
    let expires = u32_ne(b, 52);
    Ok(Socket {
        family,
        state,
        local: Endpoint::new(addr(8), sport),
        peer: Endpoint::new(addr(24), dport),
        timer: timer_kind.map(|kind| Timer { kind, ms: expires }),
        retrans: b[3],
        recv_q: u32_ne(b, 56),
        send_q: u32_ne(b, 60),
        uid: u32_ne(b, 64),
        inode: u64::from(u32_ne(b, 68)),
        direction: None,
        netns: 0,
        proto: crate::model::Proto::Tcp,
    })
}

/// The attributes after an `inet_diag_msg` (struct nlattr each, 4-aligned):
/// INET_DIAG_INFO, INET_DIAG_CONG and INET_DIAG_SKMEMINFO when `wants` them;
/// the rest are skipped.
pub fn decode_extras(mut b: &[u8], wants: Wants) -> Result<Extras, String> {
    let mut x = Extras::default();
    while b.len() >= 4 {
        let len = usize::from(u16_ne(b, 0));
        // NLA_F_NESTED and NLA_F_NET_BYTEORDER are flags, not the type.
        let kind = u16_ne(b, 2) & 0x3fff;
        if len < 4 || len > b.len() {
            return Err(format!(
                "attribute length {len} does not fit ({} bytes left)",
                b.len()
            ));
        }
        let payload = &b[4..len];
        match kind {
            INET_DIAG_INFO if wants.info => x.info = Some(TcpInfo::from_bytes(payload)),
            INET_DIAG_CONG if wants.info => x.cong = Cong::from_bytes(payload),
            INET_DIAG_SKMEMINFO if wants.memory => x.memory = Some(SkMem::from_bytes(payload)),
            _ => {}
        }
        b = &b[((len + 3) & !3).min(b.len())..];
    }
    Ok(x)
}

/// Decodes a whole capture (as `ss -D FILE` writes it): one or more dumps,
/// each ended by NLMSG_DONE. Every dump must be complete.
pub fn decode_capture(
    buf: &[u8],
    visit: &mut dyn FnMut(&Socket) -> Flow,
) -> Result<(), DecodeError> {
    read_capture(buf, visit)
}

/// The longest message a capture may hold. sock_diag replies are one
/// `inet_diag_msg` and a few small attributes (well under 1 KiB); the cap
/// keeps a corrupt length field from asking for gigabytes.
const MAX_CAPTURE_MESSAGE: usize = 1 << 20;

/// Decodes a capture from a reader one message at a time, so a capture of
/// any size, or an endless stream, is read in constant memory. Sockets reach
/// `visit` as they are read; an error (a cut, an interrupted dump) may come
/// after some of them, as in a live read, and the caller discards them.
pub fn read_capture(
    r: impl std::io::Read,
    visit: &mut dyn FnMut(&Socket) -> Flow,
) -> Result<(), DecodeError> {
    frame::read_capture(r, MAX_CAPTURE_MESSAGE, "sock_diag", &mut |m| {
        decode(m, visit)
    })?;
    Ok(())
}

/// True when `buf` starts like a sock_diag reply rather than text.
pub fn looks_like_dump(buf: &[u8]) -> bool {
    buf.len() >= NLMSG_HDRLEN && {
        let len = u32_ne(buf, 0) as usize;
        let kind = u16_ne(buf, 4);
        len >= NLMSG_HDRLEN
            && matches!(
                kind,
                SOCK_DIAG_BY_FAMILY | TCPDIAG_GETSOCK | NLMSG_DONE | NLMSG_ERROR
            )
    }
}

#[cfg(test)]
mod tests {
    use super::super::request::{one_walk, request, request_one_walk};
    use super::*;
    use crate::model::abi::NLM_F_DUMP_INTR;
    use crate::model::abi::{NLM_F_DUMP, NLM_F_REQUEST};
    use crate::model::StateSet;
    use crate::source::netlink::frame::malformed;

    /// A reply message as the kernel lays it out, for table-driven cases.
    fn msg(kind: u16, flags: u16, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(body);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    #[allow(clippy::too_many_arguments)]
    fn diag(
        af: u8,
        state: u8,
        timer: u8,
        src: &[u8],
        sport: u16,
        dst: &[u8],
        dport: u16,
        expires: u32,
        uid: u32,
        inode: u32,
    ) -> Vec<u8> {
        let mut b = vec![af, state, timer, 0];
        b.extend_from_slice(&sport.to_be_bytes());
        b.extend_from_slice(&dport.to_be_bytes());
        let mut a = [0u8; 16];
        a[..src.len()].copy_from_slice(src);
        b.extend_from_slice(&a);
        let mut a = [0u8; 16];
        a[..dst.len()].copy_from_slice(dst);
        b.extend_from_slice(&a);
        b.extend_from_slice(&[0; 12]); // if + cookie
        for v in [expires, 1, 2, uid, inode] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        assert_eq!(b.len(), INET_DIAG_MSG_LEN);
        b
    }

    fn collect(buf: &[u8]) -> (Result<Progress, DecodeError>, Vec<Socket>) {
        let mut v = Vec::new();
        let r = decode(buf, &mut |s| {
            v.push(*s);
            Flow::Continue(())
        });
        (r, v)
    }

    #[test]
    fn time_wait_keeps_expires() {
        let body = diag(
            2,
            6,
            3,
            &[127, 0, 0, 1],
            40000,
            &[127, 0, 0, 2],
            80,
            41_300,
            0,
            0,
        );
        let mut buf = msg(SOCK_DIAG_BY_FAMILY, 2, &body);
        buf.extend(msg(NLMSG_DONE, 2, &[0; 4]));
        let (r, socks) = collect(&buf);
        let p = r.unwrap();
        assert!(p.done && !p.interrupted);
        assert_eq!(socks.len(), 1);
        let s = socks[0];
        assert_eq!(s.state, TcpState::TimeWait);
        assert_eq!(s.local.to_string(), "127.0.0.1:40000");
        assert_eq!(s.peer.to_string(), "127.0.0.2:80");
        assert_eq!(s.timewait_ms(), Some(41_300));
        assert_eq!((s.recv_q, s.send_q), (1, 2));
    }

    #[test]
    fn ipv6_and_mapped_addresses() {
        let mut mapped = [0u8; 16];
        mapped[10] = 0xff;
        mapped[11] = 0xff;
        mapped[12..].copy_from_slice(&[127, 0, 0, 1]);
        let mut one = [0u8; 16];
        one[15] = 1;
        let body = diag(10, 1, 0, &one, 443, &mapped, 5555, 0, 1000, 4242);
        let (r, socks) = collect(&msg(SOCK_DIAG_BY_FAMILY, 2, &body));
        assert!(!r.unwrap().done);
        let s = socks[0];
        assert_eq!(s.family, Family::Inet6);
        assert_eq!(s.local.to_string(), "[::1]:443");
        assert_eq!(s.peer.to_string(), "[::ffff:127.0.0.1]:5555");
        assert_eq!(s.timer, None);
        assert_eq!((s.uid, s.inode), (1000, 4242));
    }

    #[test]
    fn fin_wait2_minisocket_has_a_timewait_timer() {
        let body = diag(
            2,
            5,
            3,
            &[127, 0, 0, 1],
            1,
            &[127, 0, 0, 1],
            2,
            59_000,
            0,
            0,
        );
        let (_, socks) = collect(&msg(SOCK_DIAG_BY_FAMILY, 2, &body));
        assert_eq!(socks[0].state, TcpState::FinWait2);
        assert_eq!(socks[0].timewait_ms(), Some(59_000));
    }

    #[test]
    fn dump_intr_is_reported() {
        let body = diag(2, 1, 0, &[127, 0, 0, 1], 1, &[127, 0, 0, 1], 2, 0, 0, 0);
        let mut buf = msg(SOCK_DIAG_BY_FAMILY, 2 | NLM_F_DUMP_INTR, &body);
        buf.extend(msg(NLMSG_DONE, 2, &[0; 4]));
        assert!(collect(&buf).0.unwrap().interrupted);
    }

    #[test]
    fn kernel_errors_and_malformed_replies() {
        let eperm = (-libc::EPERM).to_ne_bytes();
        assert_eq!(
            collect(&msg(NLMSG_ERROR, 0, &eperm)).0,
            Err(DecodeError::Kernel(libc::EPERM))
        );
        let ok_ack = msg(NLMSG_ERROR, 0, &0i32.to_ne_bytes());
        assert!(collect(&ok_ack).0.is_ok());

        let good = msg(
            SOCK_DIAG_BY_FAMILY,
            2,
            &diag(2, 1, 0, &[1, 2, 3, 4], 1, &[5, 6, 7, 8], 2, 0, 0, 0),
        );
        let bad_cases: Vec<(&str, Vec<u8>)> = vec![
            ("short header", good[..10].to_vec()),
            ("cut message", good[..40].to_vec()),
            ("zero length", {
                let mut b = good.clone();
                b[..4].copy_from_slice(&0u32.to_ne_bytes());
                b
            }),
            ("short body", msg(SOCK_DIAG_BY_FAMILY, 2, &[2, 1, 0, 0])),
            ("bad family", {
                let mut b = good.clone();
                b[16] = 7;
                b
            }),
            ("unknown state", {
                let mut b = good.clone();
                b[17] = 13;
                b
            }),
            ("unknown timer", {
                let mut b = good.clone();
                b[18] = 9;
                b
            }),
            ("foreign type", msg(99, 0, &[])),
        ];
        for (what, buf) in bad_cases {
            match collect(&buf).0 {
                Err(DecodeError::Malformed { .. }) => {}
                other => panic!("{what}: {other:?}"),
            }
        }
    }

    #[test]
    fn request_asks_for_tcp_and_the_mask() {
        let states = StateSet::of(&[TcpState::TimeWait, TcpState::SynRecv]);
        let req = request(Family::Inet6, states, 7);
        // nlmsghdr + inet_diag_req_v2 (56 bytes).
        assert_eq!(req.len(), 16 + 56);
        assert_eq!(u16_ne(&req, 4), SOCK_DIAG_BY_FAMILY);
        assert_eq!(u16_ne(&req, 6), NLM_F_REQUEST | NLM_F_DUMP);
        assert_eq!(u32_ne(&req, 8), 7);
        assert_eq!(req[16], libc::AF_INET6 as u8);
        assert_eq!(req[17], libc::IPPROTO_TCP as u8);
        assert_eq!(u32_ne(&req, 20), (1 << 6) | (1 << 3));
    }

    #[test]
    fn one_walk_request_names_no_family() {
        assert!(one_walk(&[Family::Inet, Family::Inet6]));
        assert!(!one_walk(&[Family::Inet6]));
        let states = StateSet::of(&[TcpState::TimeWait, TcpState::Listen]);
        let req = request_one_walk(states, 9);
        // nlmsghdr + struct inet_diag_req (60 bytes).
        assert_eq!(req.len(), 16 + 60);
        assert_eq!(u32_ne(&req, 0) as usize, req.len());
        assert_eq!(u16_ne(&req, 4), TCPDIAG_GETSOCK);
        assert_eq!(u16_ne(&req, 6), NLM_F_REQUEST | NLM_F_DUMP);
        assert_eq!(u32_ne(&req, 8), 9);
        // AF_UNSPEC, no lengths, no extensions, a zero socket id.
        assert!(req[16..16 + 52].iter().all(|b| *b == 0));
        assert_eq!(u32_ne(&req, 68), (1 << 6) | (1 << 10));
        assert_eq!(u32_ne(&req, 72), 0);
    }

    #[test]
    fn one_walk_replies_decode_like_the_others() {
        let v4 = diag(2, 6, 3, &[127, 0, 0, 1], 1, &[127, 0, 0, 2], 2, 5, 0, 0);
        let v6 = diag(10, 10, 0, &[0; 16], 443, &[0; 16], 0, 0, 0, 7);
        let mut buf = msg(TCPDIAG_GETSOCK, 2, &v4);
        buf.extend(msg(TCPDIAG_GETSOCK, 2, &v6));
        buf.extend(msg(NLMSG_DONE, 2, &[0; 4]));
        assert!(looks_like_dump(&buf));
        let (r, socks) = collect(&buf);
        assert!(r.unwrap().done);
        let families: Vec<Family> = socks.iter().map(|s| s.family).collect();
        assert_eq!(families, [Family::Inet, Family::Inet6]);
    }

    /// Hands out at most `step` bytes per read, as a pipe may.
    struct Trickle<'a> {
        bytes: &'a [u8],
        step: usize,
    }

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_capture_read_in_pieces_gives_what_it_gives_whole() {
        let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/netlink/tcp.dump");
        let whole = std::fs::read(fixture).unwrap();
        let mut want = Vec::new();
        decode_capture(&whole, &mut |s| {
            want.push(*s);
            Flow::Continue(())
        })
        .unwrap();
        assert!(want.len() > 10);
        // Every cut of the file, read in pieces of every size: the same sockets, or the same
        // error at the same byte.
        for cut in (0..=whole.len()).step_by(7).chain([whole.len()]) {
            let bytes = &whole[..cut];
            let mut one = Vec::new();
            let expected = decode_capture(bytes, &mut |s| {
                one.push(*s);
                Flow::Continue(())
            });
            for step in [1, 3, 16, 17, 4096] {
                let mut got = Vec::new();
                let r = read_capture(Trickle { bytes, step }, &mut |s| {
                    got.push(*s);
                    Flow::Continue(())
                });
                assert_eq!(r, expected, "cut {cut}, step {step}");
                assert_eq!(got, one, "cut {cut}, step {step}");
            }
        }
    }

    #[test]
    fn a_length_beyond_any_reply_is_refused_before_it_is_read() {
        let mut buf = msg(SOCK_DIAG_BY_FAMILY, 2, &[0; 72]);
        buf[..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        let err = read_capture(&buf[..], &mut |_| Flow::Continue(())).unwrap_err();
        assert_eq!(
            err,
            malformed(
                0,
                "netlink message length 4294967295 is beyond any sock_diag reply"
            )
        );
    }

    /// Issue 12 item 10: an NLMSG_DONE carrying a negative errno (netlink_dump_done after a
    /// failed dump callback) was taken for a complete dump.
    #[test]
    fn a_done_carrying_a_negative_errno_is_a_failed_dump() {
        let body = diag(2, 10, 0, &[0; 4], 22, &[0; 4], 0, 0, 0, 1);
        let mut buf = msg(SOCK_DIAG_BY_FAMILY, 2, &body);
        buf.extend(msg(NLMSG_DONE, 2, &(-libc::ENOMEM).to_ne_bytes()));
        let mut n = 0;
        let got = decode(&buf, &mut |_| {
            n += 1;
            Flow::Continue(())
        });
        assert_eq!(got.unwrap_err(), DecodeError::DumpFailed(libc::ENOMEM));
        let err = read_capture(&buf[..], &mut |_| Flow::Continue(())).unwrap_err();
        assert_eq!(err, DecodeError::DumpFailed(libc::ENOMEM));
        assert!(err.to_string().contains("Cannot allocate memory"), "{err}");
        // 0 is a whole dump; a positive status is no errno and no failure.
        for status in [0i32, 1] {
            let mut buf = msg(SOCK_DIAG_BY_FAMILY, 2, &body);
            buf.extend(msg(NLMSG_DONE, 2, &status.to_ne_bytes()));
            assert!(
                decode(&buf, &mut |_| Flow::Continue(())).unwrap().done,
                "{status}"
            );
        }
    }

    #[test]
    fn capture_needs_every_done() {
        let body = diag(2, 10, 0, &[0; 4], 22, &[0; 4], 0, 0, 0, 1);
        let mut buf = msg(SOCK_DIAG_BY_FAMILY, 2, &body);
        buf.extend(msg(NLMSG_DONE, 2, &[0; 4]));
        buf.extend(msg(SOCK_DIAG_BY_FAMILY, 2, &body));
        let mut n = 0;
        let err = decode_capture(&buf, &mut |_| {
            n += 1;
            Flow::Continue(())
        })
        .unwrap_err();
        assert!(err.to_string().contains("NLMSG_DONE"), "{err}");
        buf.extend(msg(NLMSG_DONE, 2, &[0; 4]));
        n = 0;
        decode_capture(&buf, &mut |_| {
            n += 1;
            Flow::Continue(())
        })
        .unwrap();
        assert_eq!(n, 2);
        assert!(looks_like_dump(&buf));
        assert!(!looks_like_dump(b"  sl  local_address rem_address"));
    }
}

#[cfg(test)]
mod extras_tests {
    use super::*;
    use crate::model::abi::TCP_INFO_LEN;

    fn attr(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(payload);
        a.resize((a.len() + 3) & !3, 0);
        a
    }

    const BOTH: Wants = Wants {
        info: true,
        memory: true,
    };

    #[test]
    fn info_cong_and_skmem_are_read_and_others_skipped() {
        let mut info = vec![0u8; TCP_INFO_LEN];
        info[80..84].copy_from_slice(&10u32.to_ne_bytes());
        let mem: Vec<u8> = (0..9u32).flat_map(|v| v.to_ne_bytes()).collect();
        let mut b = attr(5, &[0]); // INET_DIAG_TOS: skipped
        b.extend(attr(INET_DIAG_INFO, &info));
        b.extend(attr(INET_DIAG_CONG, b"cubic\0"));
        b.extend(attr(INET_DIAG_SKMEMINFO, &mem));
        let x = decode_extras(&b, BOTH).unwrap();
        assert_eq!(x.info.unwrap().cwnd(), Some(10));
        assert_eq!(x.cong.unwrap().as_str(), "cubic");
        assert_eq!(x.memory.unwrap().sent(), &[0, 1, 2, 3, 4, 5, 6, 7, 8]);
        // Only what is wanted is kept.
        let only_mem = decode_extras(
            &b,
            Wants {
                info: false,
                memory: true,
            },
        )
        .unwrap();
        assert!(only_mem.info.is_none() && only_mem.cong.is_none());
        assert!(only_mem.memory.is_some());
    }

    #[test]
    fn an_older_kernels_short_tcp_info_is_read_by_its_length() {
        let info = vec![1u8; 104];
        let x = decode_extras(&attr(INET_DIAG_INFO, &info), BOTH).unwrap();
        let i = x.info.unwrap();
        assert_eq!(i.len(), 104);
        assert!(i.total_retrans().is_some() && i.pacing_rate().is_none());
    }

    #[test]
    fn a_bad_attribute_length_is_an_error_not_a_panic() {
        for bad in [
            vec![2u8, 0, 2, 0],
            vec![200, 0, 2, 0, 1, 2, 3, 4],
            vec![8, 0, 2, 0, 1],
        ] {
            assert!(decode_extras(&bad, BOTH).is_err(), "{bad:?}");
        }
        // Trailing bytes shorter than a header are padding.
        assert_eq!(decode_extras(&[0, 0], BOTH), Ok(Extras::default()));
    }
}

//! ctnetlink's wire format: the dump request, and replies decoded into
//! [`Entry`]s and per-CPU [`Stats`] (include/uapi/linux/netfilter/
//! nfnetlink.h, nfnetlink_conntrack.h; net/netfilter/nf_conntrack_netlink.c).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::abi::{NLMSG_HDRLEN, NLM_F_DUMP, NLM_F_REQUEST};
use crate::model::conntrack::{CtState, Entry, Stats, Tuple};
use crate::model::{Family, Flow};
use crate::source::netlink::frame::{frames, u16_ne};
pub use crate::source::netlink::frame::{DecodeError, Progress};

// include/uapi/linux/netfilter/nfnetlink.h: the message type is
// (subsystem << 8) | message; ctnetlink is subsystem 1.
pub(super) const NFNL_SUBSYS_CTNETLINK: u16 = 1;
// enum cntl_msg_types (nfnetlink_conntrack.h).
pub(super) const IPCTNL_MSG_CT_NEW: u16 = 0;
pub(super) const IPCTNL_MSG_CT_GET: u16 = 1;
pub(super) const IPCTNL_MSG_CT_GET_STATS_CPU: u16 = 4;
/// What a table dump asks and is answered with (ctnetlink_fill_info echoes
/// the request's type; events and `conntrack -E` captures use CT_NEW).
pub const CT_GET: u16 = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
pub(super) const CT_NEW: u16 = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW;
pub const CT_GET_STATS_CPU: u16 = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET_STATS_CPU;
/// sizeof(struct nfgenmsg): u8 nfgen_family, u8 version, __be16 res_id.
pub(super) const NFGENMSG_LEN: usize = 4;
pub(super) const AF_UNSPEC: u8 = 0;
pub(super) const AF_INET: u8 = 2;
pub(super) const AF_INET6: u8 = 10;

// enum ctattr_type.
pub(super) const CTA_TUPLE_ORIG: u16 = 1;
pub(super) const CTA_TUPLE_REPLY: u16 = 2;
pub(super) const CTA_STATUS: u16 = 3;
pub(super) const CTA_PROTOINFO: u16 = 4;
pub(super) const CTA_TIMEOUT: u16 = 7;
pub(super) const CTA_MARK: u16 = 8;
pub(super) const CTA_ZONE: u16 = 18;
// enum ctattr_tuple.
pub(super) const CTA_TUPLE_IP: u16 = 1;
pub(super) const CTA_TUPLE_PROTO: u16 = 2;
// enum ctattr_ip.
pub(super) const CTA_IP_V4_SRC: u16 = 1;
pub(super) const CTA_IP_V4_DST: u16 = 2;
pub(super) const CTA_IP_V6_SRC: u16 = 3;
pub(super) const CTA_IP_V6_DST: u16 = 4;
// enum ctattr_l4proto.
pub(super) const CTA_PROTO_NUM: u16 = 1;
pub(super) const CTA_PROTO_SRC_PORT: u16 = 2;
pub(super) const CTA_PROTO_DST_PORT: u16 = 3;
// enum ctattr_protoinfo, enum ctattr_protoinfo_tcp.
pub(super) const CTA_PROTOINFO_TCP: u16 = 1;
pub(super) const CTA_PROTOINFO_TCP_STATE: u16 = 1;
// enum ctattr_stats_cpu: each a __be32.
pub(super) const CTA_STATS_FOUND: u16 = 2;
pub(super) const CTA_STATS_INVALID: u16 = 4;
pub(super) const CTA_STATS_INSERT: u16 = 8;
pub(super) const CTA_STATS_INSERT_FAILED: u16 = 9;
pub(super) const CTA_STATS_DROP: u16 = 10;
pub(super) const CTA_STATS_EARLY_DROP: u16 = 11;
pub(super) const CTA_STATS_ERROR: u16 = 12;
pub(super) const CTA_STATS_SEARCH_RESTART: u16 = 13;
pub(super) const CTA_STATS_CLASH_RESOLVE: u16 = 14;
pub(super) const CTA_STATS_CHAIN_TOOLONG: u16 = 15;
/// include/uapi/linux/netlink.h: nla_type carries NLA_F_NESTED (ctnetlink
/// sets it on every nest) and NLA_F_NET_BYTEORDER in its top bits.
pub(super) const NLA_TYPE_MASK: u16 = 0x3fff;

/// A dump request: nlmsghdr and nfgenmsg (AF_UNSPEC: both families; version
/// NFNETLINK_V0; res_id 0), no attributes, so no filter.
pub fn request(kind: u16, seq: u32) -> Vec<u8> {
    let len = NLMSG_HDRLEN + NFGENMSG_LEN;
    let mut b = Vec::with_capacity(len);
    b.extend_from_slice(&(len as u32).to_ne_bytes());
    b.extend_from_slice(&kind.to_ne_bytes());
    b.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    b.extend_from_slice(&seq.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    b.extend_from_slice(&[AF_UNSPEC, 0, 0, 0]);
    b
}

/// Decodes table replies in `buf`, handing each entry to `visit`.
pub fn decode(buf: &[u8], visit: &mut dyn FnMut(&Entry)) -> Result<Progress, DecodeError> {
    frames(buf, &mut |kind, body| match kind {
        CT_GET | CT_NEW => {
            visit(&decode_entry(body)?);
            Ok(Flow::Continue(()))
        }
        other => Err(format!("unexpected netlink message type {other:#x}")),
    })
}

/// Decodes per-CPU statistics replies in `buf`, adding each CPU's to `sum`;
/// returns how many CPUs answered, with the progress.
pub fn decode_stats(buf: &[u8], sum: &mut Stats) -> Result<(Progress, usize), DecodeError> {
    let mut cpus = 0;
    let p = frames(buf, &mut |kind, body| match kind {
        CT_GET_STATS_CPU => {
            sum.add(&decode_stats_cpu(body)?);
            cpus += 1;
            Ok(Flow::Continue(()))
        }
        other => Err(format!("unexpected netlink message type {other:#x}")),
    })?;
    Ok((p, cpus))
}

/// The attributes of a nest (or of a message after its fixed header):
/// (type without flags, payload).
pub(super) fn attrs(mut b: &[u8]) -> impl Iterator<Item = Result<(u16, &[u8]), String>> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = usize::from(u16_ne(b, 0));
        let kind = u16_ne(b, 2) & NLA_TYPE_MASK;
        if len < 4 || len > b.len() {
            b = &[];
            return Some(Err(format!("attribute length {len} does not fit")));
        }
        let payload = &b[4..len];
        b = &b[((len + 3) & !3).min(b.len())..];
        Some(Ok((kind, payload)))
    })
}

pub(super) fn be16(p: &[u8], what: &str) -> Result<u16, String> {
    p.get(..2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or_else(|| format!("{what}: {} bytes, expected 2", p.len()))
}

pub(super) fn be32(p: &[u8], what: &str) -> Result<u32, String> {
    p.get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| format!("{what}: {} bytes, expected 4", p.len()))
}

/// One `IPCTNL_MSG_CT_GET` reply: nfgenmsg, then CTA_* attributes.
pub fn decode_entry(body: &[u8]) -> Result<Entry, String> {
    if body.len() < NFGENMSG_LEN {
        return Err(format!("nfgenmsg of {} bytes", body.len()));
    }
    let family = match body[0] {
        AF_INET => Family::Inet,
        AF_INET6 => Family::Inet6,
        f => {
            return Err(format!(
                "address family {f} is neither AF_INET nor AF_INET6"
            ))
        }
    };
    let mut e = Entry {
        family,
        proto: 0,
        tcp_state: None,
        orig: Tuple::default(),
        reply: Tuple::default(),
        timeout: 0,
        mark: 0,
        zone: 0,
        status: 0,
    };
    let mut have_orig = false;
    for a in attrs(&body[NFGENMSG_LEN..]) {
        let (kind, p) = a?;
        match kind {
            CTA_TUPLE_ORIG => {
                (e.orig, e.proto) = tuple(p)?;
                have_orig = true;
            }
            CTA_TUPLE_REPLY => e.reply = tuple(p)?.0,
            CTA_STATUS => e.status = be32(p, "CTA_STATUS")?,
            CTA_TIMEOUT => e.timeout = be32(p, "CTA_TIMEOUT")?,
            CTA_MARK => e.mark = be32(p, "CTA_MARK")?,
            // Only sent for a zone other than the default (ctnetlink_dump_zone_id).
            CTA_ZONE => e.zone = be16(p, "CTA_ZONE")?,
            CTA_PROTOINFO => {
                for a in attrs(p) {
                    let (kind, p) = a?;
                    if kind != CTA_PROTOINFO_TCP {
                        continue;
                    }
                    for a in attrs(p) {
                        let (kind, p) = a?;
                        if kind == CTA_PROTOINFO_TCP_STATE {
                            let n = *p.first().ok_or("empty CTA_PROTOINFO_TCP_STATE")?;
                            e.tcp_state = Some(
                                CtState::from_kernel(n)
                                    .ok_or_else(|| format!("unknown conntrack TCP state {n}"))?,
                            );
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if !have_orig {
        return Err("entry without CTA_TUPLE_ORIG".into());
    }
    Ok(e)
}

/// CTA_TUPLE_ORIG or CTA_TUPLE_REPLY: the tuple and its protocol.
pub(super) fn tuple(b: &[u8]) -> Result<(Tuple, u8), String> {
    let mut t = Tuple::default();
    let mut proto = 0;
    for a in attrs(b) {
        let (kind, p) = a?;
        match kind {
            CTA_TUPLE_IP => {
                for a in attrs(p) {
                    let (kind, p) = a?;
                    let v4 = || -> Result<IpAddr, String> {
                        let b: [u8; 4] = p.try_into().map_err(|_| "IPv4 address length")?;
                        Ok(IpAddr::V4(Ipv4Addr::from(b)))
                    };
                    let v6 = || -> Result<IpAddr, String> {
                        let b: [u8; 16] = p.try_into().map_err(|_| "IPv6 address length")?;
                        Ok(IpAddr::V6(Ipv6Addr::from(b)))
                    };
                    match kind {
                        CTA_IP_V4_SRC => t.src = v4()?,
                        CTA_IP_V4_DST => t.dst = v4()?,
                        CTA_IP_V6_SRC => t.src = v6()?,
                        CTA_IP_V6_DST => t.dst = v6()?,
                        _ => {}
                    }
                }
            }
            CTA_TUPLE_PROTO => {
                for a in attrs(p) {
                    let (kind, p) = a?;
                    match kind {
                        CTA_PROTO_NUM => proto = *p.first().ok_or("empty CTA_PROTO_NUM")?,
                        CTA_PROTO_SRC_PORT => t.sport = be16(p, "CTA_PROTO_SRC_PORT")?,
                        CTA_PROTO_DST_PORT => t.dport = be16(p, "CTA_PROTO_DST_PORT")?,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok((t, proto))
}

/// One CPU's IPCTNL_MSG_CT_GET_STATS_CPU reply (res_id is the CPU).
pub(super) fn decode_stats_cpu(body: &[u8]) -> Result<Stats, String> {
    if body.len() < NFGENMSG_LEN {
        return Err(format!("nfgenmsg of {} bytes", body.len()));
    }
    let mut s = Stats::default();
    for a in attrs(&body[NFGENMSG_LEN..]) {
        let (kind, p) = a?;
        let slot = match kind {
            CTA_STATS_FOUND => &mut s.found,
            CTA_STATS_INVALID => &mut s.invalid,
            CTA_STATS_INSERT => &mut s.insert,
            CTA_STATS_INSERT_FAILED => &mut s.insert_failed,
            CTA_STATS_DROP => &mut s.drop,
            CTA_STATS_EARLY_DROP => &mut s.early_drop,
            CTA_STATS_ERROR => &mut s.error,
            CTA_STATS_SEARCH_RESTART => &mut s.search_restart,
            CTA_STATS_CLASH_RESOLVE => &mut s.clash_resolve,
            CTA_STATS_CHAIN_TOOLONG => &mut s.chaintoolong,
            _ => continue,
        };
        *slot = u64::from(be32(p, "CTA_STATS")?);
    }
    Ok(s)
}

// ---- procfs text ----

//! Builds sock_diag dump requests: the state mask, exact ports in the
//! socket id, and the filter program as an attribute.

use crate::model::abi::{
    INET_DIAG_REQ_BYTECODE, INET_DIAG_SOCKID_LEN, NLMSG_HDRLEN, NLM_F_DUMP, NLM_F_REQUEST,
    SOCK_DIAG_BY_FAMILY, TCPDIAG_GETSOCK,
};
use crate::model::{Family, StateSet};
use crate::query::Filter;

use super::bytecode;

/// What the kernel can filter besides states: exact ports in the request's
/// socket id (checked before anything else, inet_diag_dump_icsk) and an
/// INET_DIAG_REQ_BYTECODE program (see `expr`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelFilter {
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    pub bytecode: Option<Vec<u8>>,
}

impl KernelFilter {
    /// What the kernel can apply of `filter`'s expression: exact ports and a
    /// bytecode program. Direction is never kernel-side (it needs listeners).
    pub fn of(filter: &Filter) -> KernelFilter {
        let Some(e) = &filter.expr else {
            return KernelFilter::default();
        };
        let (sport, dport) = e.exact_ports();
        KernelFilter {
            sport,
            dport,
            bytecode: bytecode::compile(e),
        }
    }

    /// True when the kernel may drop sockets the state mask alone would
    /// keep, listeners included.
    pub fn is_active(&self) -> bool {
        self.sport.is_some() || self.dport.is_some() || self.bytecode.is_some()
    }
}

/// Builds a SOCK_DIAG_BY_FAMILY dump request for TCP sockets of `family` in
/// the states of `states`, so the kernel sends only those.
pub fn request(family: Family, states: StateSet, seq: u32) -> Vec<u8> {
    request_filtered(family, states, seq, &KernelFilter::default())
}

/// [`request`] with a kernel-side filter: an nlmsghdr, a `struct
/// inet_diag_req_v2` and, with a program, an INET_DIAG_REQ_BYTECODE attribute.
pub fn request_filtered(family: Family, states: StateSet, seq: u32, kf: &KernelFilter) -> Vec<u8> {
    // family, protocol, ext, pad; states; inet_diag_sockid.
    const INET_DIAG_REQ_V2_LEN: usize = 4 + 4 + INET_DIAG_SOCKID_LEN;
    let mut b = Vec::with_capacity(NLMSG_HDRLEN + INET_DIAG_REQ_V2_LEN + 8);
    header(&mut b, SOCK_DIAG_BY_FAMILY, seq);
    b.extend_from_slice(&[family.af(), libc::IPPROTO_TCP as u8, 0, 0]);
    b.extend_from_slice(&states.kernel_mask().to_ne_bytes());
    // struct inet_diag_sockid: sport, dport (network order), then addresses,
    // interface and cookie, all zero (any).
    b.extend_from_slice(&kf.sport.unwrap_or(0).to_be_bytes());
    b.extend_from_slice(&kf.dport.unwrap_or(0).to_be_bytes());
    b.extend_from_slice(&[0; INET_DIAG_SOCKID_LEN - 4]);
    if let Some(bc) = &kf.bytecode {
        // struct nlattr { u16 nla_len; u16 nla_type; } + program, 4-aligned.
        b.extend_from_slice(&((4 + bc.len()) as u16).to_ne_bytes());
        b.extend_from_slice(&INET_DIAG_REQ_BYTECODE.to_ne_bytes());
        b.extend_from_slice(bc);
        b.resize((b.len() + 3) & !3, 0);
    }
    let len = b.len() as u32;
    b[..4].copy_from_slice(&len.to_ne_bytes());
    b
}

/// An nlmsghdr asking for a dump; its length is set once the body is in.
fn header(b: &mut Vec<u8>, kind: u16, seq: u32) {
    b.extend_from_slice(&0u32.to_ne_bytes());
    b.extend_from_slice(&kind.to_ne_bytes());
    b.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    b.extend_from_slice(&seq.to_ne_bytes());
    // nlmsg_pid: 0, the kernel.
    b.extend_from_slice(&0u32.to_ne_bytes());
}

/// Whether a dump of `families` takes one walk of the connection hash (a
/// TCPDIAG_GETSOCK request naming no family) rather than one per family:
/// when both families are wanted. At a million sockets the second walk costs
/// about 90 ms even with no IPv6 socket at all.
pub fn one_walk(families: &[Family]) -> bool {
    families.contains(&Family::Inet) && families.contains(&Family::Inet6)
}

/// Builds a TCPDIAG_GETSOCK dump request for TCP sockets of both families in
/// the states of `states`: an nlmsghdr and a `struct inet_diag_req` with
/// family AF_UNSPEC and a zero socket id (any address, any port).
pub fn request_one_walk(states: StateSet, seq: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(NLMSG_HDRLEN + 4 + INET_DIAG_SOCKID_LEN + 8);
    header(&mut b, TCPDIAG_GETSOCK, seq);
    // family, src_len, dst_len, ext; inet_diag_sockid; states; dbs.
    b.extend_from_slice(&[0; 4 + INET_DIAG_SOCKID_LEN]);
    b.extend_from_slice(&states.kernel_mask().to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    let len = b.len() as u32;
    b[..4].copy_from_slice(&len.to_ne_bytes());
    b
}

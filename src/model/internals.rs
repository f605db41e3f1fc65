//! What sock_diag says about a socket beyond its row, asked for only when
//! shown (`tw ls -i`, `-m`, `count --stats`): `struct tcp_info`
//! (include/uapi/linux/tcp.h), the skmeminfo array and the congestion
//! control's name. Kept apart from the `Copy` [`Socket`](super::Socket) so
//! that the count paths over a million sockets stay small.

use super::abi::{SK_MEMINFO_VARS, TCP_CA_NAME_MAX, TCP_INFO_LEN};

/// Which extras a consumer wants read (none by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Wants {
    /// `struct tcp_info` and the congestion control's name.
    pub info: bool,
    /// The skmeminfo array.
    pub memory: bool,
}

impl Wants {
    pub const NONE: Wants = Wants {
        info: false,
        memory: false,
    };

    pub fn any(self) -> bool {
        self.info || self.memory
    }
}

/// The extras of one socket, each `None` when the kernel sent none (a
/// TIME_WAIT or request socket has no tcp_info; /proc has none at all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extras {
    pub info: Option<TcpInfo>,
    pub memory: Option<SkMem>,
    pub cong: Option<Cong>,
}

impl Extras {
    pub fn is_empty(&self) -> bool {
        self.info.is_none() && self.memory.is_none() && self.cong.is_none()
    }
}

/// `struct tcp_info` as the kernel sent it: the bytes, zero past what it
/// sent. A field the sending kernel's struct does not reach reads `None`
/// (tcp_info grew from 104 bytes in 2.6 to 248 in 6.7).
#[derive(Clone, PartialEq, Eq)]
pub struct TcpInfo {
    raw: [u8; TCP_INFO_LEN],
    len: usize,
}

impl std::fmt::Debug for TcpInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpInfo")
            .field("len", &self.len)
            .field("rtt_us", &self.rtt_us())
            .field("cwnd", &self.cwnd())
            .finish_non_exhaustive()
    }
}

/// Offsets in `struct tcp_info` (include/uapi/linux/tcp.h).
mod off {
    pub const STATE: usize = 0;
    pub const CA_STATE: usize = 1;
    pub const RETRANSMITS: usize = 2;
    pub const RTO: usize = 8;
    pub const SND_MSS: usize = 16;
    pub const UNACKED: usize = 24;
    pub const LOST: usize = 32;
    pub const RETRANS: usize = 36;
    pub const RTT: usize = 68;
    pub const RTTVAR: usize = 72;
    pub const SND_SSTHRESH: usize = 76;
    pub const SND_CWND: usize = 80;
    pub const TOTAL_RETRANS: usize = 100;
    pub const PACING_RATE: usize = 104;
    pub const BYTES_ACKED: usize = 120;
    pub const BYTES_RECEIVED: usize = 128;
    pub const SEGS_OUT: usize = 136;
    pub const SEGS_IN: usize = 140;
    pub const MIN_RTT: usize = 148;
    pub const DELIVERY_RATE: usize = 160;
    pub const BUSY_TIME: usize = 168;
    pub const RWND_LIMITED: usize = 176;
    pub const SNDBUF_LIMITED: usize = 184;
    pub const BYTES_SENT: usize = 200;
    pub const BYTES_RETRANS: usize = 208;
}

/// ssthresh the kernel starts with, "infinite" (TCP_INFINITE_SSTHRESH,
/// include/net/tcp.h); ss prints ssthresh only below 0xffff.
pub const INFINITE_SSTHRESH: u32 = 0x7fff_ffff;

impl TcpInfo {
    /// The attribute's payload; longer than this build knows is cut.
    pub fn from_bytes(b: &[u8]) -> TcpInfo {
        let len = b.len().min(TCP_INFO_LEN);
        let mut raw = [0u8; TCP_INFO_LEN];
        raw[..len].copy_from_slice(&b[..len]);
        TcpInfo { raw, len }
    }

    /// How many bytes of the struct the kernel sent.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn u8_at(&self, at: usize) -> Option<u8> {
        (at < self.len).then(|| self.raw[at])
    }

    fn u32_at(&self, at: usize) -> Option<u32> {
        (at + 4 <= self.len)
            .then(|| u32::from_ne_bytes(self.raw[at..at + 4].try_into().expect("4 bytes")))
    }

    fn u64_at(&self, at: usize) -> Option<u64> {
        (at + 8 <= self.len)
            .then(|| u64::from_ne_bytes(self.raw[at..at + 8].try_into().expect("8 bytes")))
    }

    /// The kernel's state number, as tcp_info has it.
    pub fn state(&self) -> Option<u8> {
        self.u8_at(off::STATE)
    }
    /// Congestion avoidance state (TCP_CA_Open = 0 ... TCP_CA_Loss = 4).
    pub fn ca_state(&self) -> Option<u8> {
        self.u8_at(off::CA_STATE)
    }
    /// Retransmits of the current segment (icsk_retransmits).
    pub fn retransmits(&self) -> Option<u8> {
        self.u8_at(off::RETRANSMITS)
    }
    pub fn rto_us(&self) -> Option<u32> {
        self.u32_at(off::RTO)
    }
    pub fn mss(&self) -> Option<u32> {
        self.u32_at(off::SND_MSS)
    }
    /// Segments sent and not yet acknowledged (packets_out).
    pub fn unacked(&self) -> Option<u32> {
        self.u32_at(off::UNACKED)
    }
    /// Segments presumed lost (lost_out).
    pub fn lost(&self) -> Option<u32> {
        self.u32_at(off::LOST)
    }
    /// Segments retransmitted and not yet acknowledged (retrans_out).
    pub fn retrans(&self) -> Option<u32> {
        self.u32_at(off::RETRANS)
    }
    /// Smoothed round-trip time, microseconds.
    pub fn rtt_us(&self) -> Option<u32> {
        self.u32_at(off::RTT)
    }
    pub fn rttvar_us(&self) -> Option<u32> {
        self.u32_at(off::RTTVAR)
    }
    pub fn ssthresh(&self) -> Option<u32> {
        self.u32_at(off::SND_SSTHRESH)
    }
    pub fn cwnd(&self) -> Option<u32> {
        self.u32_at(off::SND_CWND)
    }
    /// Retransmitted segments over the connection's life.
    pub fn total_retrans(&self) -> Option<u32> {
        self.u32_at(off::TOTAL_RETRANS)
    }
    /// Bytes per second (sk_pacing_rate; ~0 means unlimited).
    pub fn pacing_rate(&self) -> Option<u64> {
        self.u64_at(off::PACING_RATE)
    }
    pub fn bytes_acked(&self) -> Option<u64> {
        self.u64_at(off::BYTES_ACKED)
    }
    pub fn bytes_received(&self) -> Option<u64> {
        self.u64_at(off::BYTES_RECEIVED)
    }
    pub fn segs_out(&self) -> Option<u32> {
        self.u32_at(off::SEGS_OUT)
    }
    pub fn segs_in(&self) -> Option<u32> {
        self.u32_at(off::SEGS_IN)
    }
    pub fn min_rtt_us(&self) -> Option<u32> {
        self.u32_at(off::MIN_RTT)
    }
    /// Bytes per second.
    pub fn delivery_rate(&self) -> Option<u64> {
        self.u64_at(off::DELIVERY_RATE)
    }
    /// Microseconds busy sending data.
    pub fn busy_us(&self) -> Option<u64> {
        self.u64_at(off::BUSY_TIME)
    }
    /// Microseconds limited by the receiver's window.
    pub fn rwnd_limited_us(&self) -> Option<u64> {
        self.u64_at(off::RWND_LIMITED)
    }
    /// Microseconds limited by the send buffer.
    pub fn sndbuf_limited_us(&self) -> Option<u64> {
        self.u64_at(off::SNDBUF_LIMITED)
    }
    pub fn bytes_sent(&self) -> Option<u64> {
        self.u64_at(off::BYTES_SENT)
    }
    pub fn bytes_retrans(&self) -> Option<u64> {
        self.u64_at(off::BYTES_RETRANS)
    }
}

/// The skmeminfo array (sock_diag_put_meminfo): what the socket holds and
/// may hold, in bytes, and its drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SkMem {
    /// SK_MEMINFO_* in order: rmem_alloc, rcvbuf, wmem_alloc, sndbuf,
    /// fwd_alloc, wmem_queued, optmem, backlog, drops.
    pub vars: [u32; SK_MEMINFO_VARS],
    /// How many the kernel sent (drops came in 4.0, backlog in 3.19...).
    pub len: u8,
}

/// ss's names for the skmeminfo entries, in order (misc/ss.c, print_skmeminfo).
pub const SKMEM_NAMES: [&str; SK_MEMINFO_VARS] = ["r", "rb", "t", "tb", "f", "w", "o", "bl", "d"];
/// tw's JSON keys for them.
pub const SKMEM_KEYS: [&str; SK_MEMINFO_VARS] = [
    "rmem_alloc",
    "rcvbuf",
    "wmem_alloc",
    "sndbuf",
    "fwd_alloc",
    "wmem_queued",
    "optmem",
    "backlog",
    "drops",
];

impl SkMem {
    pub fn from_bytes(b: &[u8]) -> SkMem {
        let mut m = SkMem::default();
        for (i, c) in b.chunks_exact(4).take(SK_MEMINFO_VARS).enumerate() {
            m.vars[i] = u32::from_ne_bytes(c.try_into().expect("4 bytes"));
            m.len = i as u8 + 1;
        }
        m
    }

    /// The entries the kernel sent.
    pub fn sent(&self) -> &[u32] {
        &self.vars[..usize::from(self.len)]
    }
}

/// A congestion control's name (`cubic`, `bbr`), at most TCP_CA_NAME_MAX.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Cong {
    name: [u8; TCP_CA_NAME_MAX],
    len: u8,
}

impl Cong {
    /// The attribute's payload: a NUL-terminated string.
    pub fn from_bytes(b: &[u8]) -> Option<Cong> {
        let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
        let text = &b[..end.min(TCP_CA_NAME_MAX)];
        // Kernel module names: printable ASCII; anything else is not a name.
        if text.is_empty() || !text.iter().all(|c| c.is_ascii_graphic()) {
            return None;
        }
        let mut name = [0u8; TCP_CA_NAME_MAX];
        name[..text.len()].copy_from_slice(text);
        Some(Cong {
            name,
            len: text.len() as u8,
        })
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.name[..usize::from(self.len)]).unwrap_or("?")
    }
}

impl std::fmt::Debug for Cong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put32(b: &mut [u8], at: usize, v: u32) {
        b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    }

    #[test]
    fn fields_past_a_short_struct_are_none_not_zero() {
        let mut b = vec![0u8; TCP_INFO_LEN];
        put32(&mut b, off::RTT, 31);
        put32(&mut b, off::SND_CWND, 10);
        b[off::BYTES_SENT..off::BYTES_SENT + 8].copy_from_slice(&5u64.to_ne_bytes());
        let whole = TcpInfo::from_bytes(&b);
        assert_eq!(whole.rtt_us(), Some(31));
        assert_eq!(whole.cwnd(), Some(10));
        assert_eq!(whole.bytes_sent(), Some(5));
        // A 4.1 kernel's struct ended at tcpi_segs_in (144 bytes).
        let old = TcpInfo::from_bytes(&b[..144]);
        assert_eq!(old.cwnd(), Some(10));
        assert_eq!(old.segs_in(), Some(0));
        assert_eq!(old.delivery_rate(), None);
        assert_eq!(old.bytes_sent(), None);
        // 2.6's 104 bytes: no pacing rate yet.
        let older = TcpInfo::from_bytes(&b[..104]);
        assert_eq!(older.total_retrans(), Some(0));
        assert_eq!(older.pacing_rate(), None);
        // A newer kernel's longer struct: the known part is kept.
        let mut longer = b.clone();
        longer.extend_from_slice(&[0xff; 40]);
        assert_eq!(TcpInfo::from_bytes(&longer).len(), TCP_INFO_LEN);
        assert_eq!(TcpInfo::from_bytes(&[]).rtt_us(), None);
    }

    #[test]
    fn skmem_keeps_what_was_sent() {
        let b: Vec<u8> = (1..=7u32).flat_map(|v| v.to_ne_bytes()).collect();
        let m = SkMem::from_bytes(&b);
        assert_eq!(m.sent(), &[1, 2, 3, 4, 5, 6, 7]);
        let b: Vec<u8> = (1..=12u32).flat_map(|v| v.to_ne_bytes()).collect();
        assert_eq!(SkMem::from_bytes(&b).sent().len(), SK_MEMINFO_VARS);
        // A ragged tail is not an entry.
        assert_eq!(SkMem::from_bytes(&[1, 0, 0, 0, 9]).sent(), &[1]);
    }

    #[test]
    fn congestion_names_are_cut_at_nul_and_checked() {
        assert_eq!(Cong::from_bytes(b"cubic\0").unwrap().as_str(), "cubic");
        assert_eq!(Cong::from_bytes(b"bbr").unwrap().as_str(), "bbr");
        assert!(Cong::from_bytes(b"\0").is_none());
        assert!(Cong::from_bytes(b"cu bic\0").is_none());
        assert!(Cong::from_bytes(b"\x1b[31m\0").is_none());
        assert_eq!(
            Cong::from_bytes(b"aaaaaaaaaaaaaaaaaaaaaaaa")
                .unwrap()
                .as_str()
                .len(),
            TCP_CA_NAME_MAX
        );
    }
}

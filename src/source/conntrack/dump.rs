//! The live ctnetlink dump (a NETLINK_NETFILTER socket in the current
//! namespace) and the replay of a captured one, in constant memory.

use std::io::{ErrorKind, Read};

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket as NlSocket, SocketAddr};

use crate::model::conntrack::Stats;
use crate::source::netlink::frame::{self, malformed};
pub use crate::source::netlink::frame::{DecodeError, Progress};
use crate::source::netlink::{MAX_DUMP_ATTEMPTS, RECV_BUF, SOCK_RCVBUF};

use super::wire::*;
use super::*;

/// Why the live dump failed.
#[derive(Debug)]
pub enum DumpError {
    /// ctnetlink is not here or not for us: no module, no CAP_NET_ADMIN.
    Unavailable(String),
    Failed(String),
    Interrupted(usize),
}

impl std::fmt::Display for DumpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DumpError::Unavailable(m) => write!(f, "{m}"),
            DumpError::Failed(m) => write!(f, "ctnetlink dump failed: {m}"),
            DumpError::Interrupted(n) => write!(
                f,
                "the conntrack table changed during each of {n} dumps (NLM_F_DUMP_INTR); try again"
            ),
        }
    }
}

impl std::error::Error for DumpError {}

/// The errno of a refused request, as the one line `tw conntrack` prints.
pub(super) fn refusal(errno: i32) -> DumpError {
    let e = std::io::Error::from_raw_os_error(errno);
    match errno {
        libc::EPERM | libc::EACCES => DumpError::Unavailable(format!(
            "reading the conntrack table needs CAP_NET_ADMIN (ctnetlink said: {e}); run as root"
        )),
        // nfnetlink_rcv_msg answers EINVAL when no ctnetlink subsystem
        // registers (nf_conntrack_netlink not loaded and not loadable).
        libc::EINVAL | libc::ENOENT | libc::EOPNOTSUPP | libc::EPROTONOSUPPORT => {
            DumpError::Unavailable(format!(
                "conntrack is not loaded here (ctnetlink said: {e}); `modprobe nf_conntrack_netlink`"
            ))
        }
        _ => DumpError::Failed(e.to_string()),
    }
}

/// A NETLINK_NETFILTER socket in the namespace that is current when opened.
pub struct Dumper {
    sock: NlSocket,
    buf: Vec<u8>,
    seq: u32,
}

impl Dumper {
    pub fn open() -> Result<Dumper, DumpError> {
        let mut sock = NlSocket::new(NETLINK_NETFILTER).map_err(|e| {
            DumpError::Unavailable(format!(
                "conntrack is not available here: no nfnetlink ({e})"
            ))
        })?;
        sock.bind_auto()
            .map_err(|e| DumpError::Unavailable(format!("binding a netfilter socket: {e}")))?;
        // Best effort, as for sock_diag: a small buffer only costs speed.
        let _ = sock.set_rx_buf_sz(SOCK_RCVBUF as libc::c_int);
        Ok(Dumper {
            sock,
            buf: Vec::with_capacity(RECV_BUF),
            seq: 0,
        })
    }

    /// One dump of `kind`; each received buffer goes to `each` (which
    /// decodes it). Returns whether it completed without NLM_F_DUMP_INTR.
    fn dump(
        &mut self,
        kind: u16,
        each: &mut dyn FnMut(&[u8]) -> Result<Progress, DecodeError>,
        mut raw: Option<&mut Vec<u8>>,
    ) -> Result<bool, DumpError> {
        self.seq = self.seq.wrapping_add(1);
        self.sock
            .send_to(&request(kind, self.seq), &SocketAddr::new(0, 0), 0)
            .map_err(|e| refusal(e.raw_os_error().unwrap_or(libc::EIO)))?;
        let mut interrupted = false;
        let mut first = true;
        loop {
            self.buf.clear();
            let n = match self.sock.recv(&mut self.buf, 0) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    return Err(DumpError::Failed(format!(
                        "recv: {e}: replies were lost; try again"
                    )))
                }
                Err(e) => return Err(DumpError::Failed(format!("recv: {e}"))),
            };
            if n == 0 {
                return Err(DumpError::Failed(
                    "the kernel closed the dump without NLMSG_DONE".into(),
                ));
            }
            let bytes = &self.buf[..n.min(self.buf.len())];
            let p = each(bytes).map_err(|e| match e {
                DecodeError::Kernel(errno) | DecodeError::DumpFailed(errno) if first => {
                    refusal(errno)
                }
                DecodeError::Kernel(errno) | DecodeError::DumpFailed(errno) => {
                    DumpError::Failed(std::io::Error::from_raw_os_error(errno).to_string())
                }
                other => DumpError::Failed(other.to_string()),
            })?;
            first = false;
            interrupted |= p.interrupted;
            if let Some(raw) = raw.as_deref_mut() {
                raw.extend_from_slice(&bytes[..p.consumed]);
            }
            if p.done {
                return Ok(!interrupted);
            }
        }
    }

    /// The whole table into `sink`, retried (after `sink.restart()`) while
    /// the kernel flags the dump interrupted. With `raw`, the replies of the
    /// complete dump are kept too, for `tw capture`.
    pub fn table(
        &mut self,
        sink: &mut dyn EntrySink,
        mut raw: Option<&mut Vec<u8>>,
    ) -> Result<(), DumpError> {
        for attempt in 1..=MAX_DUMP_ATTEMPTS {
            if attempt > 1 {
                sink.restart();
            }
            if let Some(r) = raw.as_deref_mut() {
                r.clear();
            }
            let complete = self.dump(
                CT_GET,
                &mut |b| decode(b, &mut |e| sink.push(e)),
                raw.as_deref_mut(),
            )?;
            if complete {
                return Ok(());
            }
        }
        Err(DumpError::Interrupted(MAX_DUMP_ATTEMPTS))
    }

    /// The per-CPU statistics, summed, and the number of CPUs.
    pub fn stats(&mut self, raw: Option<&mut Vec<u8>>) -> Result<(Stats, usize), DumpError> {
        let mut sum = Stats::default();
        let mut cpus = 0;
        self.dump(
            CT_GET_STATS_CPU,
            &mut |b| {
                let (p, n) = decode_stats(b, &mut sum)?;
                cpus += n;
                Ok(p)
            },
            raw,
        )?;
        Ok((sum, cpus))
    }
}

// ---- captures ----

/// The longest message a capture may hold: a ctnetlink entry is a few
/// hundred bytes; this keeps a corrupt length from asking for gigabytes.
pub(super) const MAX_CAPTURE_MESSAGE: usize = 64 * 1024;

/// Reads a capture of ctnetlink replies one message at a time, in constant
/// memory, handing each to `each`. The capture must hold a whole dump, ended
/// by its NLMSG_DONE, that was not interrupted.
pub fn read_capture(
    r: impl Read,
    each: &mut dyn FnMut(&[u8]) -> Result<Progress, DecodeError>,
) -> Result<(), DecodeError> {
    match frame::read_capture(r, MAX_CAPTURE_MESSAGE, "ctnetlink", each)? {
        0 => Err(malformed(
            0,
            "capture ends before the dump's NLMSG_DONE (truncated?)",
        )),
        _ => Ok(()),
    }
}

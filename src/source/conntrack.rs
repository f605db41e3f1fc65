//! The conntrack table: ctnetlink (NETLINK_NETFILTER, the IPCTNL_MSG_CT_GET
//! dump that `conntrack -L` sends), /proc/net/nf_conntrack as the fallback,
//! and replay of what `tw capture` kept. Also the table's statistics
//! (IPCTNL_MSG_CT_GET_STATS_CPU, or /proc/net/stat/nf_conntrack) and its
//! sysctls. Every reader hands [`Entry`]s to an [`EntrySink`].
//!
//! Wire format: include/uapi/linux/netfilter/nfnetlink.h (`struct nfgenmsg`,
//! NFNL_SUBSYS_CTNETLINK) and include/uapi/linux/netfilter/nfnetlink_conntrack.h
//! (the CTA_* attributes); the kernel side is net/netfilter/nf_conntrack_netlink.c
//! (ctnetlink_dump_table, ctnetlink_fill_info, ctnetlink_ct_stat_cpu_dump).
//! Netlink framing, the receive buffer sizes and the netlink socket come from
//! the sock_diag reader ([`super::netlink`]).

use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket as NlSocket, SocketAddr};

use super::facts::fact_path;
use super::netlink::frame::{frames, malformed, u16_ne, u32_ne};
pub use super::netlink::frame::{DecodeError, Progress};
use super::netlink::{decode::read_full, MAX_DUMP_ATTEMPTS, RECV_BUF, SOCK_RCVBUF};
use crate::model::abi::{NLMSG_HDRLEN, NLM_F_DUMP, NLM_F_REQUEST};
use crate::model::conntrack::{
    CtState, Entry, Settings, Stats, Tuple, IPPROTO_TCP, IPS_ASSURED, IPS_SEEN_REPLY,
};
use crate::model::{Family, Flow};

// include/uapi/linux/netfilter/nfnetlink.h: the message type is
// (subsystem << 8) | message; ctnetlink is subsystem 1.
const NFNL_SUBSYS_CTNETLINK: u16 = 1;
// enum cntl_msg_types (nfnetlink_conntrack.h).
const IPCTNL_MSG_CT_NEW: u16 = 0;
const IPCTNL_MSG_CT_GET: u16 = 1;
const IPCTNL_MSG_CT_GET_STATS_CPU: u16 = 4;
/// What a table dump asks and is answered with (ctnetlink_fill_info echoes
/// the request's type; events and `conntrack -E` captures use CT_NEW).
pub const CT_GET: u16 = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
const CT_NEW: u16 = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW;
pub const CT_GET_STATS_CPU: u16 = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET_STATS_CPU;
/// sizeof(struct nfgenmsg): u8 nfgen_family, u8 version, __be16 res_id.
const NFGENMSG_LEN: usize = 4;
const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

// enum ctattr_type.
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_STATUS: u16 = 3;
const CTA_PROTOINFO: u16 = 4;
const CTA_TIMEOUT: u16 = 7;
const CTA_MARK: u16 = 8;
const CTA_ZONE: u16 = 18;
// enum ctattr_tuple.
const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
// enum ctattr_ip.
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_IP_V6_SRC: u16 = 3;
const CTA_IP_V6_DST: u16 = 4;
// enum ctattr_l4proto.
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;
// enum ctattr_protoinfo, enum ctattr_protoinfo_tcp.
const CTA_PROTOINFO_TCP: u16 = 1;
const CTA_PROTOINFO_TCP_STATE: u16 = 1;
// enum ctattr_stats_cpu: each a __be32.
const CTA_STATS_FOUND: u16 = 2;
const CTA_STATS_INVALID: u16 = 4;
const CTA_STATS_INSERT: u16 = 8;
const CTA_STATS_INSERT_FAILED: u16 = 9;
const CTA_STATS_DROP: u16 = 10;
const CTA_STATS_EARLY_DROP: u16 = 11;
const CTA_STATS_ERROR: u16 = 12;
const CTA_STATS_SEARCH_RESTART: u16 = 13;
const CTA_STATS_CLASH_RESOLVE: u16 = 14;
const CTA_STATS_CHAIN_TOOLONG: u16 = 15;
/// include/uapi/linux/netlink.h: nla_type carries NLA_F_NESTED (ctnetlink
/// sets it on every nest) and NLA_F_NET_BYTEORDER in its top bits.
const NLA_TYPE_MASK: u16 = 0x3fff;

/// Names, in a `tw capture` folder, of the raw ctnetlink replies.
pub const DUMP_FILE: &str = "conntrack.dump";
pub const STATS_DUMP_FILE: &str = "conntrack-stats.dump";
/// The table as procfs prints it (CONFIG_NF_CONNTRACK_PROCFS), relative to a
/// proc root, and the per-CPU statistics.
pub const PROC_TABLE: &str = "net/nf_conntrack";
pub const PROC_STATS: &str = "net/stat/nf_conntrack";
const SYSCTL_DIR: &str = "sys/net/netfilter";
/// The sysctls read for the table's health (and copied by `tw capture`).
pub const SIZE_SYSCTLS: [&str; 3] = [
    "nf_conntrack_count",
    "nf_conntrack_max",
    "nf_conntrack_buckets",
];
pub const TIMEOUT_SYSCTLS: [&str; 15] = [
    "nf_conntrack_tcp_timeout_syn_sent",
    "nf_conntrack_tcp_timeout_syn_recv",
    "nf_conntrack_tcp_timeout_established",
    "nf_conntrack_tcp_timeout_fin_wait",
    "nf_conntrack_tcp_timeout_close_wait",
    "nf_conntrack_tcp_timeout_last_ack",
    "nf_conntrack_tcp_timeout_time_wait",
    "nf_conntrack_tcp_timeout_close",
    "nf_conntrack_tcp_timeout_max_retrans",
    "nf_conntrack_tcp_timeout_unacknowledged",
    "nf_conntrack_udp_timeout",
    "nf_conntrack_udp_timeout_stream",
    "nf_conntrack_icmp_timeout",
    "nf_conntrack_icmpv6_timeout",
    "nf_conntrack_generic_timeout",
];

/// Receives entries as a reader produces them.
pub trait EntrySink {
    fn push(&mut self, e: &Entry);
    /// Forget what was pushed: an interrupted dump is read again.
    fn restart(&mut self);
}

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
fn attrs(mut b: &[u8]) -> impl Iterator<Item = Result<(u16, &[u8]), String>> {
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

fn be16(p: &[u8], what: &str) -> Result<u16, String> {
    p.get(..2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or_else(|| format!("{what}: {} bytes, expected 2", p.len()))
}

fn be32(p: &[u8], what: &str) -> Result<u32, String> {
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
fn tuple(b: &[u8]) -> Result<(Tuple, u8), String> {
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
fn decode_stats_cpu(body: &[u8]) -> Result<Stats, String> {
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

/// One line of /proc/net/nf_conntrack (ct_seq_show in
/// net/netfilter/nf_conntrack_standalone.c):
/// `ipv4 2 tcp 6 119 TIME_WAIT src=.. dst=.. sport=.. dport=.. src=.. [ASSURED] mark=0 zone=0 use=2`.
/// The first src/dst/sport/dport are the original direction, the second the reply.
pub fn parse_proc_line(line: &str) -> Result<Entry, String> {
    let mut w = line.split_ascii_whitespace();
    let mut next = |what: &str| w.next().ok_or_else(|| format!("no {what}"));
    let family = match next("family")? {
        "ipv4" => Family::Inet,
        "ipv6" => Family::Inet6,
        f => return Err(format!("family '{f}' is neither ipv4 nor ipv6")),
    };
    next("family number")?;
    next("protocol name")?;
    let proto: u8 = next("protocol number")?
        .parse()
        .map_err(|_| "protocol number is not a number")?;
    let timeout: u32 = next("timeout")?
        .parse()
        .map_err(|_| "timeout is not a number")?;
    let mut e = Entry {
        family,
        proto,
        tcp_state: None,
        orig: Tuple::default(),
        reply: Tuple::default(),
        timeout,
        mark: 0,
        zone: 0,
        status: IPS_SEEN_REPLY,
    };
    // Which tuple the next src= belongs to: a second src= starts the reply.
    let mut srcs = 0;
    for word in w {
        let Some((k, v)) = word.split_once('=') else {
            match word {
                "[UNREPLIED]" => e.status &= !IPS_SEEN_REPLY,
                "[ASSURED]" => e.status |= IPS_ASSURED,
                w if w.starts_with('[') => {}
                // The TCP state comes before the first tuple.
                w if srcs == 0 && proto == IPPROTO_TCP => {
                    e.tcp_state =
                        Some(CtState::parse(w).ok_or_else(|| format!("unknown TCP state '{w}'"))?)
                }
                _ => {}
            }
            continue;
        };
        if k == "src" {
            srcs += 1;
        }
        let t = if srcs >= 2 { &mut e.reply } else { &mut e.orig };
        let addr = || {
            v.parse::<IpAddr>()
                .map_err(|_| format!("{k}={v} is not an address"))
        };
        let port = || {
            v.parse::<u16>()
                .map_err(|_| format!("{k}={v} is not a port"))
        };
        match k {
            "src" => t.src = addr()?,
            "dst" => t.dst = addr()?,
            "sport" => t.sport = port()?,
            "dport" => t.dport = port()?,
            "mark" => e.mark = v.parse().map_err(|_| format!("mark={v}"))?,
            "zone" => e.zone = v.parse().map_err(|_| format!("zone={v}"))?,
            _ => {}
        }
    }
    if srcs == 0 {
        return Err("no src= field".into());
    }
    Ok(e)
}

/// Reads /proc/net/nf_conntrack text line by line.
pub fn read_proc_table(
    r: impl Read,
    path: &Path,
    visit: &mut dyn FnMut(&Entry),
) -> anyhow::Result<()> {
    let mut r = BufReader::with_capacity(64 * 1024, r);
    let mut line = String::new();
    let mut n = 0usize;
    loop {
        line.clear();
        // A line is about 250 bytes; a corrupt file without newlines stops here.
        let got = r
            .by_ref()
            .take(64 * 1024)
            .read_line(&mut line)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        if got == 0 {
            return Ok(());
        }
        n += 1;
        if !line.ends_with('\n') && got == 64 * 1024 {
            anyhow::bail!(
                "{} line {n}: longer than 64 KiB; not a conntrack table",
                path.display()
            );
        }
        if line.trim().is_empty() {
            continue;
        }
        let e = parse_proc_line(&line)
            .map_err(|what| anyhow::anyhow!("{} line {n}: {what}", path.display()))?;
        visit(&e);
    }
}

/// /proc/net/stat/nf_conntrack (ct_cpu_seq_show): a header naming the
/// columns, then one row of hex numbers per CPU. Returns the sum and the
/// number of CPUs.
pub fn parse_proc_stats(text: &str) -> Result<(Stats, usize), String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .ok_or("empty file")?
        .split_whitespace()
        .collect();
    if header.first() != Some(&"entries") {
        return Err("the header does not start with 'entries'".into());
    }
    let mut sum = Stats::default();
    let mut cpus = 0;
    for (i, row) in lines.enumerate() {
        let values: Vec<&str> = row.split_whitespace().collect();
        if values.len() != header.len() {
            return Err(format!(
                "row {} has {} columns, the header {}",
                i + 1,
                values.len(),
                header.len()
            ));
        }
        let mut s = Stats::default();
        for (name, v) in header.iter().zip(values) {
            let v = u64::from_str_radix(v, 16).map_err(|_| format!("'{v}' is not hex"))?;
            let slot = match *name {
                "found" => &mut s.found,
                "invalid" => &mut s.invalid,
                "insert" => &mut s.insert,
                "insert_failed" => &mut s.insert_failed,
                "drop" => &mut s.drop,
                "early_drop" => &mut s.early_drop,
                "icmp_error" => &mut s.error,
                "search_restart" => &mut s.search_restart,
                "clashres" => &mut s.clash_resolve,
                "chainlength" => &mut s.chaintoolong,
                _ => continue,
            };
            *slot = v;
        }
        sum.add(&s);
        cpus += 1;
    }
    Ok((sum, cpus))
}

// ---- sysctls ----

/// Reads the size and timeout sysctls under `root` (`/proc` or a capture).
pub fn read_settings(root: &Path) -> anyhow::Result<Settings> {
    let mut s = Settings::default();
    let read =
        |name: &str| -> anyhow::Result<Option<u64>> {
            let path = root.join(SYSCTL_DIR).join(name);
            match std::fs::read_to_string(&path) {
                Ok(t) => t.trim().parse().map(Some).map_err(|_| {
                    anyhow::anyhow!("reading {}: expected one number", path.display())
                }),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
                Err(e) => Err(anyhow::anyhow!("reading {}: {e}", path.display())),
            }
        };
    s.count = read("nf_conntrack_count")?;
    s.max = read("nf_conntrack_max")?;
    s.buckets = read("nf_conntrack_buckets")?;
    for name in TIMEOUT_SYSCTLS {
        if let Some(v) = read(name)? {
            s.timeouts.insert(name.to_string(), v);
        }
    }
    Ok(s)
}

// ---- live ctnetlink ----

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
fn refusal(errno: i32) -> DumpError {
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
const MAX_CAPTURE_MESSAGE: usize = 64 * 1024;

/// Reads a capture of ctnetlink replies one message at a time, in constant
/// memory, handing each complete buffer to `each`. The capture must end
/// with its NLMSG_DONE and must not be an interrupted dump.
pub fn read_capture(
    mut r: impl Read,
    each: &mut dyn FnMut(&[u8]) -> Result<Progress, DecodeError>,
) -> Result<(), DecodeError> {
    let mut msg = Vec::with_capacity(4096);
    let mut offset = 0usize;
    loop {
        msg.resize(NLMSG_HDRLEN, 0);
        let got =
            read_full(&mut r, &mut msg, offset).map_err(|e| malformed(offset, e.to_string()))?;
        if got == 0 {
            return Err(malformed(
                offset,
                "capture ends before the dump's NLMSG_DONE (truncated?)",
            ));
        }
        let len = u32_ne(&msg, 0) as usize;
        if got == NLMSG_HDRLEN && len > MAX_CAPTURE_MESSAGE {
            return Err(malformed(
                offset,
                format!("netlink message length {len} is beyond any ctnetlink reply"),
            ));
        }
        if got == NLMSG_HDRLEN && len > NLMSG_HDRLEN {
            msg.resize((len + 3) & !3, 0);
            let body = read_full(&mut r, &mut msg[NLMSG_HDRLEN..], offset)
                .map_err(|e| malformed(offset, e.to_string()))?;
            msg.truncate(NLMSG_HDRLEN + body);
        } else {
            msg.truncate(got);
        }
        let p = each(&msg).map_err(|e| match e {
            DecodeError::Malformed { offset: at, what } => malformed(offset + at, what),
            k => k,
        })?;
        if p.interrupted {
            return Err(malformed(
                offset,
                "this dump was interrupted (NLM_F_DUMP_INTR) when captured; capture it again",
            ));
        }
        if p.done {
            return Ok(());
        }
        offset += msg.len();
    }
}

/// Where the entries came from, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Ctnetlink,
    Procfs,
    Capture,
}

/// `--source` for conntrack: ctnetlink, /proc, or either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    Auto,
    Netlink,
    Proc,
}

/// What a read found besides the entries.
#[derive(Debug, Clone, Default)]
pub struct Health {
    pub settings: Settings,
    /// Summed per-CPU statistics and the number of CPUs, when readable.
    pub stats: Option<(Stats, usize)>,
    pub notes: Vec<String>,
}

/// Reads the live table (in the current network namespace) into `sink`:
/// ctnetlink, or /proc/net/nf_conntrack when ctnetlink is unavailable and
/// `want` allows. net/ files are read through /proc/thread-self, so a
/// thread that entered another namespace (`--netns`) reads its own.
pub fn read_live(want: Want, sink: &mut dyn EntrySink) -> anyhow::Result<(Origin, Health)> {
    let proc = Path::new("/proc");
    // Checked first: ctnetlink would load the module on demand
    // (nfnetlink_rcv_msg's request_module), and a reader must not.
    let count = proc.join(SYSCTL_DIR).join("nf_conntrack_count");
    if !count.exists() {
        anyhow::bail!(
            "conntrack is not loaded here ({} is absent): no flow is tracked in this namespace",
            count.display()
        );
    }
    let mut health = Health {
        settings: read_settings(proc)?,
        ..Health::default()
    };
    if want != Want::Proc {
        let tried = Dumper::open().and_then(|mut d| {
            d.table(sink, None)?;
            // Statistics are a bonus: a kernel that refuses them still
            // gave the table.
            Ok(d.stats(None).ok())
        });
        match tried {
            Ok(stats) => {
                health.stats = stats.or_else(|| read_proc_stats_file(proc));
                return Ok((Origin::Ctnetlink, health));
            }
            Err(DumpError::Unavailable(m)) if want == Want::Auto => {
                let path = fact_path(proc, PROC_TABLE);
                if !path.exists() {
                    anyhow::bail!("{m}");
                }
                health
                    .notes
                    .push(format!("{m}; reading {PROC_TABLE} instead"));
            }
            Err(e) => anyhow::bail!("{e}"),
        }
    }
    read_proc_root(proc, sink)?;
    health.stats = read_proc_stats_file(proc);
    Ok((Origin::Procfs, health))
}

fn read_proc_stats_file(root: &Path) -> Option<(Stats, usize)> {
    let path = fact_path(root, PROC_STATS);
    parse_proc_stats(&std::fs::read_to_string(path).ok()?).ok()
}

/// The table as procfs text under `root`.
fn read_proc_root(root: &Path, sink: &mut dyn EntrySink) -> anyhow::Result<()> {
    let path = fact_path(root, PROC_TABLE);
    let f = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => anyhow::bail!(
            "conntrack is not loaded here: no {} (and ctnetlink unavailable)",
            path.display()
        ),
        Err(e) if e.kind() == ErrorKind::PermissionDenied => anyhow::bail!(
            "reading {} needs root (it is mode 0440); run as root",
            path.display()
        ),
        Err(e) => anyhow::bail!("reading {}: {e}", path.display()),
    };
    read_proc_table(f, &path, &mut |e| sink.push(e))
}

/// Reads what `tw capture` kept under `dir`: the ctnetlink dump, else the
/// procfs table; statistics from their dump, else the procfs file.
pub fn read_captured(dir: &Path, sink: &mut dyn EntrySink) -> anyhow::Result<Health> {
    let meta = std::fs::metadata(dir)
        .map_err(|e| anyhow::anyhow!("reading proc root {}: {e}", dir.display()))?;
    if !meta.is_dir() {
        anyhow::bail!("reading proc root {}: not a directory", dir.display());
    }
    let mut health = Health {
        settings: read_settings(dir)?,
        ..Health::default()
    };
    let dump = dir.join(DUMP_FILE);
    match std::fs::File::open(&dump) {
        Ok(f) => read_capture(BufReader::with_capacity(64 * 1024, f), &mut |b| {
            decode(b, &mut |e| sink.push(e))
        })
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", dump.display()))?,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let text = dir.join(PROC_TABLE);
            if !text.exists() {
                anyhow::bail!(
                    "{} holds no conntrack table ({DUMP_FILE} or {PROC_TABLE}); \
                     `tw capture` keeps it when conntrack is loaded",
                    dir.display()
                );
            }
            read_proc_root(dir, sink)?;
        }
        Err(e) => anyhow::bail!("reading {}: {e}", dump.display()),
    }
    let stats = dir.join(STATS_DUMP_FILE);
    health.stats = match std::fs::read(&stats) {
        Ok(b) => {
            let mut sum = Stats::default();
            let mut cpus = 0;
            read_capture(&b[..], &mut |m| {
                let (p, n) = decode_stats(m, &mut sum)?;
                cpus += n;
                Ok(p)
            })
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", stats.display()))?;
            Some((sum, cpus))
        }
        Err(_) => read_proc_stats_file(dir),
    };
    Ok(health)
}

/// `tw capture`: the ctnetlink replies of the table and its statistics,
/// the sysctls, and the procfs statistics, in the current namespace. When
/// ctnetlink is unavailable, the procfs table instead. Returns the files
/// written, or a note when there is no conntrack at all. Files go out
/// through `write` (path relative to the capture, bytes): the capture's own
/// folder writer, which never follows what is planted there.
pub fn capture(
    write: &mut dyn FnMut(&str, &[u8]) -> anyhow::Result<()>,
) -> anyhow::Result<(usize, Option<String>)> {
    let proc = Path::new("/proc");
    let mut written = 0;
    // Copies one file; false when it is absent here.
    let mut copy = |rel: &str| -> anyhow::Result<bool> {
        let src = fact_path(proc, rel);
        let bytes = match std::fs::read(&src) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
            Err(e) => anyhow::bail!("reading {}: {e}", src.display()),
        };
        write(rel, &bytes)?;
        Ok(true)
    };
    for name in SIZE_SYSCTLS.iter().chain(TIMEOUT_SYSCTLS.iter()) {
        written += usize::from(copy(&format!("{SYSCTL_DIR}/{name}"))?);
    }
    written += usize::from(copy(PROC_STATS)?);
    // As in read_live: never make ctnetlink load the module.
    if !proc.join(SYSCTL_DIR).join("nf_conntrack_count").exists() {
        return Ok((written, Some("conntrack is not loaded here".into())));
    }
    struct Nothing;
    impl EntrySink for Nothing {
        fn push(&mut self, _: &Entry) {}
        fn restart(&mut self) {}
    }
    let mut raw = Vec::new();
    let mut stats = Vec::new();
    let got = Dumper::open().and_then(|mut d| {
        d.table(&mut Nothing, Some(&mut raw))?;
        d.stats(Some(&mut stats)).ok();
        Ok(())
    });
    let note = match got {
        Ok(()) => {
            write(DUMP_FILE, &raw)?;
            written += 1;
            if !stats.is_empty() {
                write(STATS_DUMP_FILE, &stats)?;
                written += 1;
            }
            None
        }
        // The rest of the capture stands without the table: say so.
        Err(DumpError::Unavailable(m)) => match copy(PROC_TABLE) {
            Ok(true) => {
                written += 1;
                None
            }
            Ok(false) => Some(m),
            Err(e) => Some(format!("{m}; {e:#}")),
        },
        Err(e) => Some(e.to_string()),
    };
    Ok((written, note))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::abi::{NLMSG_DONE, NLMSG_ERROR, NLM_F_DUMP_INTR};

    /// Builds netlink messages and attributes as the kernel lays them out.
    fn nla(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
        b.extend_from_slice(&kind.to_ne_bytes());
        b.extend_from_slice(payload);
        while b.len() % 4 != 0 {
            b.push(0);
        }
        b
    }

    fn nest(kind: u16, parts: &[Vec<u8>]) -> Vec<u8> {
        nla(kind | 0x8000, &parts.concat())
    }

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

    fn tuple4(src: [u8; 4], dst: [u8; 4], proto: u8, sport: u16, dport: u16) -> Vec<Vec<u8>> {
        vec![
            nest(
                CTA_TUPLE_IP,
                &[nla(CTA_IP_V4_SRC, &src), nla(CTA_IP_V4_DST, &dst)],
            ),
            nest(
                CTA_TUPLE_PROTO,
                &[
                    nla(CTA_PROTO_NUM, &[proto]),
                    nla(CTA_PROTO_SRC_PORT, &sport.to_be_bytes()),
                    nla(CTA_PROTO_DST_PORT, &dport.to_be_bytes()),
                ],
            ),
        ]
    }

    fn tcp_entry(state: u8, timeout: u32) -> Vec<u8> {
        let mut b = vec![AF_INET, 0, 0, 0];
        b.extend(nest(
            CTA_TUPLE_ORIG,
            &tuple4([10, 0, 0, 1], [10, 0, 0, 2], 6, 40000, 443),
        ));
        b.extend(nest(
            CTA_TUPLE_REPLY,
            &tuple4([10, 0, 0, 2], [10, 0, 0, 1], 6, 443, 40000),
        ));
        b.extend(nla(
            CTA_STATUS,
            &(IPS_SEEN_REPLY | IPS_ASSURED).to_be_bytes(),
        ));
        b.extend(nla(CTA_TIMEOUT, &timeout.to_be_bytes()));
        b.extend(nla(CTA_MARK, &7u32.to_be_bytes()));
        b.extend(nla(CTA_ZONE, &3u16.to_be_bytes()));
        b.extend(nest(
            CTA_PROTOINFO,
            &[nest(
                CTA_PROTOINFO_TCP,
                &[nla(CTA_PROTOINFO_TCP_STATE, &[state])],
            )],
        ));
        b
    }

    fn entries(buf: &[u8]) -> (Result<Progress, DecodeError>, Vec<Entry>) {
        let mut v = Vec::new();
        let r = decode(buf, &mut |e| v.push(*e));
        (r, v)
    }

    #[test]
    fn request_is_a_dump_of_both_families() {
        let r = request(CT_GET, 5);
        assert_eq!(r.len(), 20);
        assert_eq!(u32_ne(&r, 0), 20);
        assert_eq!(u16_ne(&r, 4), 0x101);
        assert_eq!(u16_ne(&r, 6), NLM_F_REQUEST | NLM_F_DUMP);
        assert_eq!(u32_ne(&r, 8), 5);
        assert_eq!(&r[16..], &[0, 0, 0, 0]);
        assert_eq!(u16_ne(&request(CT_GET_STATS_CPU, 1), 4), 0x104);
    }

    #[test]
    fn an_entry_decodes_with_its_nested_tuples() {
        let mut buf = msg(CT_GET, 2, &tcp_entry(7, 118));
        buf.extend(msg(NLMSG_DONE, 2, &0i32.to_ne_bytes()));
        let (r, v) = entries(&buf);
        assert!(r.unwrap().done);
        let e = v[0];
        assert_eq!(e.family, Family::Inet);
        assert_eq!(e.proto, 6);
        assert_eq!(e.tcp_state, Some(CtState::TimeWait));
        assert_eq!(e.orig.src.to_string(), "10.0.0.1");
        assert_eq!((e.orig.sport, e.orig.dport), (40000, 443));
        assert_eq!(e.reply.src.to_string(), "10.0.0.2");
        assert_eq!((e.timeout, e.mark, e.zone), (118, 7, 3));
        assert_eq!(e.state_label(), "TIME_WAIT");
    }

    #[test]
    fn ipv6_udp_without_a_reply() {
        let mut one = [0u8; 16];
        one[15] = 1;
        let mut b = vec![AF_INET6, 0, 0, 0];
        b.extend(nest(
            CTA_TUPLE_ORIG,
            &[
                nest(
                    CTA_TUPLE_IP,
                    &[nla(CTA_IP_V6_SRC, &one), nla(CTA_IP_V6_DST, &one)],
                ),
                nest(
                    CTA_TUPLE_PROTO,
                    &[
                        nla(CTA_PROTO_NUM, &[17]),
                        nla(CTA_PROTO_SRC_PORT, &5353u16.to_be_bytes()),
                        nla(CTA_PROTO_DST_PORT, &53u16.to_be_bytes()),
                    ],
                ),
            ],
        ));
        b.extend(nla(CTA_STATUS, &0u32.to_be_bytes()));
        let (_, v) = entries(&msg(CT_GET, 2, &b));
        assert_eq!(v[0].family, Family::Inet6);
        assert_eq!(v[0].orig.dst.to_string(), "::1");
        assert_eq!(v[0].orig.dport, 53);
        assert_eq!(v[0].tcp_state, None);
        assert_eq!(v[0].state_label(), "UNREPLIED");
    }

    #[test]
    fn done_with_a_negative_errno_is_an_error() {
        let mut buf = msg(CT_GET, 2, &tcp_entry(3, 10));
        buf.extend(msg(NLMSG_DONE, 2, &(-libc::ENOMEM).to_ne_bytes()));
        // The dump stopped part way: the table is incomplete (the shared
        // framing's DumpFailed; a refusal is NLMSG_ERROR's Kernel).
        assert_eq!(entries(&buf).0, Err(DecodeError::DumpFailed(libc::ENOMEM)));
        let err = msg(NLMSG_ERROR, 0, &(-libc::EPERM).to_ne_bytes());
        assert_eq!(entries(&err).0, Err(DecodeError::Kernel(libc::EPERM)));
        assert!(matches!(refusal(libc::EPERM), DumpError::Unavailable(m) if m.contains("root")));
        assert!(
            matches!(refusal(libc::EINVAL), DumpError::Unavailable(m) if m.contains("not loaded"))
        );
    }

    #[test]
    fn dump_intr_is_reported() {
        let mut buf = msg(CT_GET, 2 | NLM_F_DUMP_INTR, &tcp_entry(3, 10));
        buf.extend(msg(NLMSG_DONE, 2, &0i32.to_ne_bytes()));
        assert!(entries(&buf).0.unwrap().interrupted);
        let err = read_capture(&buf[..], &mut |b| decode(b, &mut |_| {})).unwrap_err();
        assert!(err.to_string().contains("interrupted"), "{err}");
    }

    #[test]
    fn malformed_replies_are_refused_not_panicked_on() {
        let good = msg(CT_GET, 2, &tcp_entry(3, 10));
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("short header", good[..10].to_vec()),
            ("cut message", good[..40].to_vec()),
            ("no orig tuple", msg(CT_GET, 2, &[AF_INET, 0, 0, 0])),
            ("bad family", {
                let mut b = good.clone();
                b[16] = 7;
                b
            }),
            ("attribute too long", {
                let mut b = good.clone();
                b[20..22].copy_from_slice(&900u16.to_ne_bytes());
                b
            }),
            ("unknown state", msg(CT_GET, 2, &tcp_entry(42, 1))),
            ("foreign type", msg(99, 0, &[])),
        ];
        for (what, buf) in cases {
            match entries(&buf).0 {
                Err(DecodeError::Malformed { .. }) => {}
                other => panic!("{what}: {other:?}"),
            }
        }
        // Every prefix of a good dump: an error or a partial read, never a panic.
        let mut buf = good.clone();
        buf.extend(msg(NLMSG_DONE, 2, &0i32.to_ne_bytes()));
        for cut in 0..buf.len() {
            let r = read_capture(&buf[..cut], &mut |b| decode(b, &mut |_| {}));
            assert!(r.is_err(), "cut {cut}");
        }
        assert!(read_capture(&buf[..], &mut |b| decode(b, &mut |_| {})).is_ok());
    }

    #[test]
    fn a_captured_dump_survives_every_corrupted_byte() {
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/conntrack/capture/conntrack.dump"
        );
        let whole = std::fs::read(fixture).unwrap();
        let mut n = 0;
        read_capture(&whole[..], &mut |b| decode(b, &mut |_| n += 1)).unwrap();
        assert_eq!(n, 17);
        // Each byte flipped in turn: a clean error or entries, never a panic or a hang, and
        // an error offset inside the file.
        for at in 0..whole.len() {
            let mut bad = whole.clone();
            bad[at] ^= 0xff;
            if let Err(DecodeError::Malformed { offset, .. }) =
                read_capture(&bad[..], &mut |b| decode(b, &mut |_| {}))
            {
                assert!(offset <= bad.len(), "byte {at}: offset {offset}");
            }
        }
    }

    #[test]
    fn per_cpu_stats_are_summed() {
        let cpu = |found: u32, drop: u32| {
            let mut b = vec![AF_UNSPEC, 0, 0, 0];
            b.extend(nla(CTA_STATS_FOUND, &found.to_be_bytes()));
            b.extend(nla(CTA_STATS_DROP, &drop.to_be_bytes()));
            b.extend(nla(CTA_STATS_SEARCH_RESTART, &1u32.to_be_bytes()));
            msg(CT_GET_STATS_CPU, 2, &b)
        };
        let mut buf = cpu(5, 1);
        buf.extend(cpu(7, 2));
        buf.extend(msg(NLMSG_DONE, 2, &0i32.to_ne_bytes()));
        let mut s = Stats::default();
        let (p, n) = decode_stats(&buf, &mut s).unwrap();
        assert!(p.done);
        assert_eq!(n, 2);
        assert_eq!((s.found, s.drop, s.search_restart), (12, 3, 2));
    }

    #[test]
    fn proc_lines_parse_like_conntrack_prints_them() {
        let l = "ipv4     2 tcp      6 119 TIME_WAIT src=127.0.0.1 dst=127.0.0.2 sport=56474 \
                 dport=8080 src=127.0.0.2 dst=127.0.0.1 sport=8080 dport=56474 [ASSURED] mark=5 \
                 zone=2 use=2";
        let e = parse_proc_line(l).unwrap();
        assert_eq!(e.tcp_state, Some(CtState::TimeWait));
        assert_eq!(e.timeout, 119);
        assert_eq!(e.orig.dst.to_string(), "127.0.0.2");
        assert_eq!(e.orig.dport, 8080);
        assert_eq!(e.reply.sport, 8080);
        assert_eq!((e.mark, e.zone), (5, 2));
        assert!(e.status & IPS_ASSURED != 0);
        let u = parse_proc_line(
            "ipv6     10 udp      17 29 src=::1 dst=::1 sport=1 dport=53 [UNREPLIED] \
             src=::1 dst=::1 sport=53 dport=1 mark=0 zone=0 use=2",
        )
        .unwrap();
        assert_eq!(u.family, Family::Inet6);
        assert_eq!(u.state_label(), "UNREPLIED");
        for bad in [
            "",
            "ipv5 2 tcp 6 1",
            "ipv4 2 tcp six 1 src=1.2.3.4",
            "ipv4 2 tcp 6 1 BOGUS src=1.2.3.4",
            "ipv4 2 tcp 6 1 ESTABLISHED src=1.2.3.999",
            "ipv4 2 tcp 6 1 ESTABLISHED",
        ] {
            assert!(parse_proc_line(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn proc_stats_columns_are_hex_per_cpu() {
        let text = "entries  clashres found new invalid ignore delete chainlength insert \
                    insert_failed drop early_drop icmp_error  expect_new expect_create \
                    expect_delete search_restart\n\
                    00000002  00000000 0000000a 00000000 00000001 00000000 00000000 00000000 \
                    00000003 00000000 00000010 00000000 00000000  00000000 00000000 00000000 \
                    00000004\n\
                    00000002  00000000 00000001 00000000 00000000 00000000 00000000 00000000 \
                    00000000 00000000 00000000 00000002 00000000  00000000 00000000 00000000 \
                    00000000\n";
        let (s, cpus) = parse_proc_stats(text).unwrap();
        assert_eq!(cpus, 2);
        assert_eq!(
            (
                s.found,
                s.invalid,
                s.insert,
                s.drop,
                s.early_drop,
                s.search_restart
            ),
            (11, 1, 3, 16, 2, 4)
        );
        assert!(parse_proc_stats("entries found\n1 2 3\n").is_err());
        assert!(parse_proc_stats("entries found\nzz 1\n").is_err());
        assert!(parse_proc_stats("").is_err());
    }
}

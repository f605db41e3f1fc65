//! System facts: sysctls, /proc/net/sockstat, TCP counters and conntrack,
//! read from a /proc tree (the live one or a capture).
//!
//! [`read`] is the I/O half: it reads the files named in [`CAPTURE_FILES`]
//! under a proc root. Everything else is pure parsing over `&str`. A missing
//! file is a fact (`None`: no conntrack, no IPv6, a sysctl this namespace does
//! not show); a file that exists but does not parse is an error naming it.
//!
//! Namespaces: the net sysctls and the /proc/net files describe a network
//! namespace, so a capture taken with `ip netns exec` describes that one. On
//! the live /proc, [`read`] gives the namespace of the calling thread, which
//! may differ from the process's after setns(2) (`--netns`): /proc/sys/net
//! resolves against the thread that opens it, and net/ files are read
//! through /proc/thread-self/net ([`fact_path`]).

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use crate::model::PortRange;

const PORT_RANGE: &str = "sys/net/ipv4/ip_local_port_range";
const RESERVED_PORTS: &str = "sys/net/ipv4/ip_local_reserved_ports";
const TW_REUSE: &str = "sys/net/ipv4/tcp_tw_reuse";
const TIMESTAMPS: &str = "sys/net/ipv4/tcp_timestamps";
const FIN_TIMEOUT: &str = "sys/net/ipv4/tcp_fin_timeout";
const MAX_TW_BUCKETS: &str = "sys/net/ipv4/tcp_max_tw_buckets";
const MAX_ORPHANS: &str = "sys/net/ipv4/tcp_max_orphans";
const SOMAXCONN: &str = "sys/net/core/somaxconn";
const CT_COUNT: &str = "sys/net/netfilter/nf_conntrack_count";
const CT_MAX: &str = "sys/net/netfilter/nf_conntrack_max";
const CT_BUCKETS: &str = "sys/net/netfilter/nf_conntrack_buckets";
const CT_TIME_WAIT: &str = "sys/net/netfilter/nf_conntrack_tcp_timeout_time_wait";
const SOCKSTAT: &str = "net/sockstat";
const SOCKSTAT6: &str = "net/sockstat6";
const NETSTAT: &str = "net/netstat";
const SNMP: &str = "net/snmp";

/// Paths, relative to the proc root, of every file [`read`] uses, plus
/// net/tcp and net/tcp6, so `tw capture DIR` copies exactly what tw reads.
pub const CAPTURE_FILES: &[&str] = &[
    PORT_RANGE,
    RESERVED_PORTS,
    TW_REUSE,
    TIMESTAMPS,
    FIN_TIMEOUT,
    MAX_TW_BUCKETS,
    MAX_ORPHANS,
    SOMAXCONN,
    CT_COUNT,
    CT_MAX,
    CT_BUCKETS,
    CT_TIME_WAIT,
    SOCKSTAT,
    SOCKSTAT6,
    NETSTAT,
    SNMP,
    "net/tcp",
    "net/tcp6",
];

/// Everything [`read`] found. Each leaf is `None` when its file (or, for the
/// counter files, its entry) is absent.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Facts {
    pub sysctl: Sysctls,
    pub conntrack: Conntrack,
    pub sockstat: Sockstat,
    pub tcp_ext: TcpExt,
    pub tcp: TcpSnmp,
    /// Whole counter files, for any counter not picked out above. Left out of
    /// the JSON schema because their keys change with the kernel version.
    #[serde(skip)]
    pub raw: Raw,
}

/// Sysctls under /proc/sys/net. All are per network namespace except
/// `tcp_max_orphans`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Sysctls {
    /// net.ipv4.ip_local_port_range: the ephemeral ports, both ends included.
    pub ip_local_port_range: Option<PortRange>,
    /// net.ipv4.ip_local_reserved_ports: ports connect() and bind(0) skip.
    pub ip_local_reserved_ports: Option<Vec<PortRange>>,
    /// net.ipv4.tcp_tw_reuse: 0 off, 1 on, 2 loopback only (the default).
    pub tcp_tw_reuse: Option<i64>,
    /// net.ipv4.tcp_timestamps: 0 off, 1 on with random offsets, 2 on without.
    /// tcp_tw_reuse needs timestamps on both sides.
    pub tcp_timestamps: Option<i64>,
    /// net.ipv4.tcp_fin_timeout, seconds: the life of an orphaned FIN_WAIT2,
    /// not of TIME_WAIT (fixed at TCP_TIMEWAIT_LEN = 60 s).
    pub tcp_fin_timeout: Option<i64>,
    /// net.ipv4.tcp_max_tw_buckets: beyond it new TIME_WAIT sockets are not
    /// kept and TcpExt TCPTimeWaitOverflow grows.
    pub tcp_max_tw_buckets: Option<i64>,
    /// net.ipv4.tcp_max_orphans. A global sysctl: only the initial network
    /// namespace shows it, so it is `None` inside a container.
    pub tcp_max_orphans: Option<i64>,
    /// net.core.somaxconn: the cap on every listen() backlog.
    pub somaxconn: Option<i64>,
}

/// Connection tracking (net/netfilter), all `None` when nf_conntrack is not
/// loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Conntrack {
    /// nf_conntrack_count: entries now, in this namespace.
    pub count: Option<i64>,
    /// nf_conntrack_max: at this count new flows are dropped. Global, and
    /// read-only outside the initial namespace.
    pub max: Option<i64>,
    /// nf_conntrack_buckets: hash table size.
    pub buckets: Option<i64>,
    /// nf_conntrack_tcp_timeout_time_wait, seconds (120 by default): conntrack
    /// keeps its own TIME_WAIT entries, twice as long as the socket's.
    pub tcp_timeout_time_wait: Option<i64>,
}

/// /proc/net/sockstat and sockstat6 (kernel: sockstat_seq_show in
/// net/ipv4/proc.c).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Sockstat {
    /// `TCP: inuse`: IPv4 TCP sockets of this namespace, TIME_WAIT excluded.
    pub tcp_inuse: Option<i64>,
    /// `TCP: orphan`: host-wide (tcp_orphan_count_sum), even inside a namespace.
    pub tcp_orphan: Option<i64>,
    /// `TCP: tw`: TIME_WAIT and FIN_WAIT2 minisockets of this namespace, IPv4
    /// and IPv6 together (tw_refcount of the namespace's death row, minus 1).
    pub tcp_tw: Option<i64>,
    /// `TCP: alloc`: host-wide count of allocated TCP sockets.
    pub tcp_alloc: Option<i64>,
    /// `TCP: mem`: host-wide TCP memory, in pages.
    pub tcp_mem: Option<i64>,
    /// `TCP6: inuse` from sockstat6; `None` without IPv6.
    pub tcp6_inuse: Option<i64>,
}

/// Picked from the TcpExt section of /proc/net/netstat: cumulative counters
/// of this namespace, IPv4 and IPv6 together.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TcpExt {
    /// `TW`: minisockets (TIME_WAIT or FIN_WAIT2) scheduled with a timeout
    /// over 4 s. Current kernels count them when scheduled, not when they
    /// expire (__inet_twsk_schedule in net/ipv4/inet_timewait_sock.c), so it
    /// includes live ones.
    pub tw: Option<i64>,
    /// `TWRecycled`: TIME_WAIT entries taken over by connect() (tcp_tw_reuse).
    pub tw_recycled: Option<i64>,
    /// `TWKilled`: minisockets scheduled with a timeout of 4 s or less.
    pub tw_killed: Option<i64>,
    /// `TCPTimeWaitOverflow`: closes that skipped TIME_WAIT because
    /// tcp_max_tw_buckets was reached.
    pub time_wait_overflow: Option<i64>,
    /// `ListenOverflows`: handshakes dropped on a full accept queue.
    pub listen_overflows: Option<i64>,
    /// `ListenDrops`: all drops at a listener, overflows included.
    pub listen_drops: Option<i64>,
}

/// Picked from the Tcp section of /proc/net/snmp: IPv4 and IPv6 together.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TcpSnmp {
    /// `ActiveOpens`: connect() calls that sent a SYN, cumulative.
    pub active_opens: Option<i64>,
    /// `PassiveOpens`: connections accepted by listeners, cumulative.
    pub passive_opens: Option<i64>,
    /// `CurrEstab`: sockets now in ESTABLISHED or CLOSE_WAIT.
    pub curr_estab: Option<i64>,
}

/// The counter files as read; each table is empty when its file is absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Raw {
    /// sockstat and sockstat6 together: `TCP` -> `tw`, `TCP6` -> `inuse`, ...
    pub sockstat: Table,
    /// /proc/net/netstat: `TcpExt`, `IpExt`, `MPTcpExt`, ...
    pub netstat: Table,
    /// /proc/net/snmp: `Ip`, `Icmp`, `Tcp`, `Udp`, ...
    pub snmp: Table,
}

/// Named values by section, e.g. `TcpExt` -> `TW` -> 4.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Table(pub BTreeMap<String, BTreeMap<String, i64>>);

impl Table {
    /// One value, e.g. `get("TcpExt", "ListenOverflows")`.
    pub fn get(&self, section: &str, name: &str) -> Option<i64> {
        self.0.get(section)?.get(name).copied()
    }

    fn merge(&mut self, other: Table) {
        for (section, values) in other.0 {
            self.0.entry(section).or_default().extend(values);
        }
    }
}

/// How many ephemeral ports the kernel can hand out automatically, and how
/// they split by parity. `available == preferred_parity + other_parity +
/// never_chosen`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PortCapacity {
    /// Ports in ip_local_port_range.
    pub range: u32,
    /// Reserved ports inside the range (reserved ports outside it do not count).
    pub reserved: u32,
    /// `range - reserved`.
    pub available: u32,
    /// Available ports of the range's low-end parity: connect()'s first pass.
    pub preferred_parity: u32,
    /// Available ports of the other parity: bind(0)'s first pass and
    /// connect()'s second.
    pub other_parity: u32,
    /// Available ports no automatic choice ever picks: the top port of a range
    /// with an odd number of ports (0 or 1).
    pub never_chosen: u32,
}

impl Facts {
    /// The ephemeral port capacity, from ip_local_port_range and
    /// ip_local_reserved_ports (none reserved if that file is absent).
    pub fn ephemeral_capacity(&self) -> Option<PortCapacity> {
        let range = self.sysctl.ip_local_port_range?;
        let reserved = self
            .sysctl
            .ip_local_reserved_ports
            .as_deref()
            .unwrap_or(&[]);
        Some(port_capacity(range, reserved))
    }

    /// Picks the typed counters out of the whole tables.
    fn from_tables(sysctl: Sysctls, conntrack: Conntrack, raw: Raw) -> Facts {
        let ss = |s, k| raw.sockstat.get(s, k);
        let ext = |k| raw.netstat.get("TcpExt", k);
        let tcp = |k| raw.snmp.get("Tcp", k);
        Facts {
            sysctl,
            conntrack,
            sockstat: Sockstat {
                tcp_inuse: ss("TCP", "inuse"),
                tcp_orphan: ss("TCP", "orphan"),
                tcp_tw: ss("TCP", "tw"),
                tcp_alloc: ss("TCP", "alloc"),
                tcp_mem: ss("TCP", "mem"),
                tcp6_inuse: ss("TCP6", "inuse"),
            },
            tcp_ext: TcpExt {
                tw: ext("TW"),
                tw_recycled: ext("TWRecycled"),
                tw_killed: ext("TWKilled"),
                time_wait_overflow: ext("TCPTimeWaitOverflow"),
                listen_overflows: ext("ListenOverflows"),
                listen_drops: ext("ListenDrops"),
            },
            tcp: TcpSnmp {
                active_opens: tcp("ActiveOpens"),
                passive_opens: tcp("PassiveOpens"),
                curr_estab: tcp("CurrEstab"),
            },
            raw,
        }
    }
}

/// Counts the ports connect() and bind(0) can pick in `range`, skipping
/// `reserved` (which may overlap each other or lie outside the range).
///
/// How the kernel walks the range (__inet_hash_connect in
/// net/ipv4/inet_hashtables.c, inet_csk_find_open_port in
/// net/ipv4/inet_connection_sock.c), without a per-socket IP_LOCAL_PORT_RANGE:
/// - `remaining = high - low + 1`, rounded down to even when above 1, and only
///   ports `low .. low + remaining` are tried. So when the range holds an odd
///   number of ports (both ends of the same parity, which the kernel warns
///   about: "prefer different parity for start/end values"), its top port is
///   never chosen: counted in `never_chosen`, not in either half.
/// - Ports are stepped by 2. connect() starts at an even offset from `low`, so
///   tries ports with the parity of `low` first (`preferred_parity`), then the
///   other parity; bind(0) does the opposite (`other_parity` first).
/// - Reserved ports are skipped in both passes, so each reserved port inside
///   the range is taken out of the half its parity belongs to.
///
/// A range of one port has `remaining = 1`: that port is the preferred half.
///
/// Measured on 6.18 in a namespace with the range 40000-40002: connect() got
/// 40000 and 40001, then EADDRNOTAVAIL; bind(0) got 40001 and 40000, then
/// EADDRINUSE. 40002 was never chosen.
pub fn port_capacity(range: PortRange, reserved: &[PortRange]) -> PortCapacity {
    let len = range.len();
    let walked = if len > 1 { len & !1 } else { len };
    // Bitmap of the range's reserved ports, so overlapping entries count once.
    let mut is_reserved = vec![false; len as usize];
    for r in reserved {
        let lo = r.lo.max(range.lo);
        let hi = r.hi.min(range.hi);
        for port in u32::from(lo)..=u32::from(hi) {
            // lo >= range.lo here, so the offset cannot underflow.
            is_reserved[(port - u32::from(range.lo)) as usize] = true;
        }
    }
    let mut cap = PortCapacity {
        range: len,
        reserved: 0,
        available: 0,
        preferred_parity: 0,
        other_parity: 0,
        never_chosen: 0,
    };
    for (offset, reserved) in (0u32..).zip(is_reserved) {
        if reserved {
            cap.reserved += 1;
            continue;
        }
        cap.available += 1;
        if offset >= walked {
            cap.never_chosen += 1;
        } else if offset % 2 == 0 {
            cap.preferred_parity += 1;
        } else {
            cap.other_parity += 1;
        }
    }
    cap
}

/// Reads every fact under `proc_root` (`/proc`, or a directory laid out like
/// it, such as a `tw capture`). Absent files give `None`; a file that exists
/// but cannot be read or parsed is an error naming it.
pub fn read(proc_root: &Path) -> Result<Facts> {
    // Without this check a mistyped --proc-root would read as "nothing known".
    let meta = std::fs::metadata(proc_root)
        .with_context(|| format!("reading proc root {}", proc_root.display()))?;
    if !meta.is_dir() {
        bail!("reading proc root {}: not a directory", proc_root.display());
    }
    let int = |rel| fact(proc_root, rel, parse_int);
    let sysctl = Sysctls {
        ip_local_port_range: fact(proc_root, PORT_RANGE, parse_port_range)?,
        ip_local_reserved_ports: fact(proc_root, RESERVED_PORTS, parse_port_list)?,
        tcp_tw_reuse: int(TW_REUSE)?,
        tcp_timestamps: int(TIMESTAMPS)?,
        tcp_fin_timeout: int(FIN_TIMEOUT)?,
        tcp_max_tw_buckets: int(MAX_TW_BUCKETS)?,
        tcp_max_orphans: int(MAX_ORPHANS)?,
        somaxconn: int(SOMAXCONN)?,
    };
    let conntrack = Conntrack {
        count: int(CT_COUNT)?,
        max: int(CT_MAX)?,
        buckets: int(CT_BUCKETS)?,
        tcp_timeout_time_wait: int(CT_TIME_WAIT)?,
    };
    let mut sockstat = fact(proc_root, SOCKSTAT, parse_sockstat)?.unwrap_or_default();
    if let Some(six) = fact(proc_root, SOCKSTAT6, parse_sockstat)? {
        sockstat.merge(six);
    }
    let raw = Raw {
        sockstat,
        netstat: fact(proc_root, NETSTAT, parse_counters)?.unwrap_or_default(),
        snmp: fact(proc_root, SNMP, parse_counters)?.unwrap_or_default(),
    };
    Ok(Facts::from_tables(sysctl, conntrack, raw))
}

/// Where `rel` lives under `proc_root`. On the live /proc, net/ files are
/// read through /proc/thread-self/net: /proc/net follows the process's first
/// thread, and a thread that entered another namespace (`--netns`) must see
/// its own. /proc/sys/net already follows the reading thread.
pub fn fact_path(proc_root: &Path, rel: &str) -> PathBuf {
    match rel.strip_prefix("net/") {
        Some(rest) if proc_root == Path::new("/proc") => {
            Path::new("/proc/thread-self/net").join(rest)
        }
        _ => proc_root.join(rel),
    }
}

/// Reads `proc_root/rel` and parses it; `Ok(None)` when it does not exist.
fn fact<T>(proc_root: &Path, rel: &str, parse: fn(&str) -> Result<T>) -> Result<Option<T>> {
    let path = fact_path(proc_root, rel);
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(&text).map(Some),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
    .with_context(|| format!("reading {}", path.display()))
}

// ---- pure parsers ----

/// A sysctl holding one integer, such as "60\n".
fn parse_int(text: &str) -> Result<i64> {
    let t = text.trim();
    t.parse()
        .map_err(|_| anyhow!("expected one integer, got {}", snippet(t)))
}

/// ip_local_port_range: two ports separated by a tab ("32768\t60999\n").
fn parse_port_range(text: &str) -> Result<PortRange> {
    let mut words = text.split_whitespace();
    let (Some(low), Some(high), None) = (words.next(), words.next(), words.next()) else {
        bail!("expected two port numbers, got {}", snippet(text.trim()));
    };
    let range = PortRange {
        lo: parse_port(low)?,
        hi: parse_port(high)?,
    };
    if range.is_empty() {
        bail!("low end {} above high end {}", range.lo, range.hi);
    }
    Ok(range)
}

/// ip_local_reserved_ports: comma-separated ports and ranges, as the kernel's
/// proc_do_large_bitmap prints them ("8080,9000-9010"), or an empty line.
fn parse_port_list(text: &str) -> Result<Vec<PortRange>> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(Vec::new());
    }
    t.split(',')
        .map(|item| {
            let item = item.trim();
            let range = match item.split_once('-') {
                Some((lo, hi)) => PortRange {
                    lo: parse_port(lo.trim())?,
                    hi: parse_port(hi.trim())?,
                },
                None => {
                    let port = parse_port(item)?;
                    PortRange { lo: port, hi: port }
                }
            };
            if range.is_empty() {
                bail!("reversed range {}", snippet(item));
            }
            Ok(range)
        })
        .collect()
}

fn parse_port(word: &str) -> Result<u16> {
    word.parse()
        .map_err(|_| anyhow!("expected a port number (0-65535), got {}", snippet(word)))
}

/// /proc/net/sockstat or sockstat6: lines of `Proto: key value key value ...`
/// ("TCP: inuse 12 orphan 0 tw 4 alloc 16 mem 234").
fn parse_sockstat(text: &str) -> Result<Table> {
    let mut table = Table::default();
    for (n, line) in (1..).zip(text.lines()) {
        if line.trim().is_empty() {
            continue;
        }
        let (section, rest) = line
            .split_once(':')
            .ok_or_else(|| anyhow!("line {n}: no `Proto:` prefix in {}", snippet(line)))?;
        let values = table.0.entry(section.trim().to_owned()).or_default();
        let mut words = rest.split_whitespace();
        while let Some(key) = words.next() {
            let value = words
                .next()
                .ok_or_else(|| anyhow!("line {n}: {} has no value", snippet(key)))?;
            let value = parse_counter(value).with_context(|| format!("line {n}: {key}"))?;
            values.insert(key.to_owned(), value);
        }
    }
    Ok(table)
}

/// /proc/net/netstat or /proc/net/snmp: for each section, a line of names and
/// then a line of values, both starting with the section name
/// ("TcpExt: SyncookiesSent ...", "TcpExt: 0 ...").
fn parse_counters(text: &str) -> Result<Table> {
    let mut table = Table::default();
    let mut lines = (1..)
        .zip(text.lines())
        .filter(|(_, l)| !l.trim().is_empty());
    while let Some((n, header)) = lines.next() {
        let (section, names) = header
            .split_once(':')
            .ok_or_else(|| anyhow!("line {n}: no `Section:` prefix in {}", snippet(header)))?;
        let (m, values) = lines
            .next()
            .ok_or_else(|| anyhow!("line {n}: {section} names without a line of values"))?;
        let (vsection, values) = values
            .split_once(':')
            .ok_or_else(|| anyhow!("line {m}: no `Section:` prefix in {}", snippet(values)))?;
        if vsection != section {
            bail!("line {m}: values for {vsection} after names for {section}");
        }
        let names: Vec<&str> = names.split_whitespace().collect();
        let values: Vec<&str> = values.split_whitespace().collect();
        if names.len() != values.len() {
            bail!(
                "line {m}: {section} has {} names but {} values",
                names.len(),
                values.len()
            );
        }
        let entry = table.0.entry(section.trim().to_owned()).or_default();
        for (name, value) in names.into_iter().zip(values) {
            let value = parse_counter(value).with_context(|| format!("line {m}: {name}"))?;
            entry.insert(name.to_owned(), value);
        }
    }
    Ok(table)
}

/// One counter value. Signed because /proc/net/snmp prints `Tcp: MaxConn` as
/// -1; an unsigned counter beyond i64::MAX (2^63 events, never reached in
/// practice) saturates rather than failing the whole read.
fn parse_counter(word: &str) -> Result<i64> {
    word.parse::<i64>()
        .or_else(|_| word.parse::<u64>().map(|_| i64::MAX))
        .map_err(|_| anyhow!("expected an integer, got {}", snippet(word)))
}

/// The start of `s`, quoted, for error messages about files that may hold
/// anything (never slices inside a character).
fn snippet(s: &str) -> String {
    const MAX: usize = 40;
    let head: String = s.chars().take(MAX).collect();
    if s.chars().nth(MAX).is_some() {
        format!("{head:?}...")
    } else {
        format!("{head:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn r(lo: u16, hi: u16) -> PortRange {
        PortRange { lo, hi }
    }

    #[test]
    fn port_range_parses() {
        let ok: &[(&str, PortRange)] = &[
            ("32768\t60999\n", r(32768, 60999)),
            ("40000 40199", r(40000, 40199)),
            ("  1\t65535  \n", r(1, 65535)),
            ("5000\t5000\n", r(5000, 5000)),
        ];
        for (text, want) in ok {
            assert_eq!(parse_port_range(text).unwrap(), *want, "{text:?}");
        }
        let bad = [
            "",
            "\n",
            "32768",
            "32768\t60999\t1",
            "60999\t32768",
            "x\t60999",
            "-1\t10",
            "1\t65536",
            "32768,60999",
        ];
        for text in bad {
            assert!(parse_port_range(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn port_list_parses() {
        let ok: &[(&str, &[PortRange])] = &[
            ("", &[]),
            ("\n", &[]),
            ("8080\n", &[r(8080, 8080)]),
            ("8080,9000-9010\n", &[r(8080, 8080), r(9000, 9010)]),
            ("1-3, 5 ,7-7", &[r(1, 3), r(5, 5), r(7, 7)]),
            ("0-65535", &[r(0, 65535)]),
        ];
        for (text, want) in ok {
            assert_eq!(parse_port_list(text).unwrap(), *want, "{text:?}");
        }
        let bad = [
            ",",
            "8080,",
            "9010-9000",
            "1-2-3",
            "a",
            "70000",
            "-5",
            "5-",
            "1 2",
        ];
        for text in bad {
            assert!(parse_port_list(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn int_parses() {
        let ok: &[(&str, i64)] = &[("2\n", 2), ("0", 0), (" 131072 \n", 131072), ("-1\n", -1)];
        for (text, want) in ok {
            assert_eq!(parse_int(text).unwrap(), *want, "{text:?}");
        }
        for text in ["", "\n", "1 2", "one", "1.5", "99999999999999999999"] {
            assert!(parse_int(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn sockstat_parses() {
        let t = parse_sockstat(
            "sockets: used 15\nTCP: inuse 12 orphan 0 tw 4 alloc 16 mem 234\n\
             FRAG: inuse 0 memory 0\n\n",
        )
        .unwrap();
        let cases = [
            ("sockets", "used", Some(15)),
            ("TCP", "inuse", Some(12)),
            ("TCP", "tw", Some(4)),
            ("TCP", "mem", Some(234)),
            ("FRAG", "memory", Some(0)),
            ("TCP", "nope", None),
            ("UDP", "inuse", None),
        ];
        for (section, key, want) in cases {
            assert_eq!(t.get(section, key), want, "{section} {key}");
        }
        assert_eq!(parse_sockstat("").unwrap(), Table::default());
        for bad in [
            "TCP inuse 1",
            "TCP: inuse",
            "TCP: inuse x",
            "TCP: inuse 1 tw",
            "TCP: 1 inuse",
        ] {
            assert!(parse_sockstat(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn counters_parse() {
        let t = parse_counters(
            "Tcp: RtoAlgorithm MaxConn ActiveOpens\nTcp: 1 -1 11\n\
             TcpExt: TW ListenOverflows\nTcpExt: 4 18446744073709551615\n",
        )
        .unwrap();
        let cases = [
            ("Tcp", "MaxConn", Some(-1)),
            ("Tcp", "ActiveOpens", Some(11)),
            ("TcpExt", "TW", Some(4)),
            ("TcpExt", "ListenOverflows", Some(i64::MAX)),
            ("TcpExt", "TWKilled", None),
            ("IpExt", "InOctets", None),
        ];
        for (section, key, want) in cases {
            assert_eq!(t.get(section, key), want, "{section} {key}");
        }
        // A section with no names (an empty IcmpMsg) is still well formed.
        assert!(parse_counters("IcmpMsg:\nIcmpMsg:\n").is_ok());
        let bad = [
            "Tcp: A B\n",                  // names without values
            "Tcp: A B\nTcp: 1\n",          // too few values
            "Tcp: A\nTcp: 1 2\n",          // too many values
            "Tcp: A\nUdp: 1\n",            // values of another section
            "Tcp: A\nTcp: x\n",            // not a number
            "Tcp A\nTcp 1\n",              // no prefix
            "Tcp: A\nTcp: 1\nUdp: B\n",    // trailing names
            "Tcp: A\nTcp 1\n",             // values without prefix
            "Tcp: A\nTcp: 1.5\n",          // not an integer
            "Tcp: A\nTcp: 1\nUdp: B\nx\n", // garbage values line
        ];
        for text in bad {
            assert!(parse_counters(text).is_err(), "{text:?}");
        }
    }

    fn cap(range: u32, reserved: u32, pref: u32, other: u32, never: u32) -> PortCapacity {
        PortCapacity {
            range,
            reserved,
            available: range - reserved,
            preferred_parity: pref,
            other_parity: other,
            never_chosen: never,
        }
    }

    #[test]
    fn capacity_counts_parity_halves() {
        // cap(range, reserved, preferred parity, other parity, never chosen)
        #[rustfmt::skip]
        let cases: &[(&str, PortRange, &[PortRange], PortCapacity)] = &[
            ("default", r(32768, 60999), &[], cap(28232, 0, 14116, 14116, 0)),
            ("one port", r(40000, 40000), &[], cap(1, 0, 1, 0, 0)),
            ("one odd port", r(40001, 40001), &[], cap(1, 0, 1, 0, 0)),
            ("one port, reserved", r(40000, 40000), &[r(40000, 40000)], cap(1, 1, 0, 0, 0)),
            ("two ports", r(40000, 40001), &[], cap(2, 0, 1, 1, 0)),
            // Both ends even: 201 ports, the walk covers 200, 40200 is never chosen.
            ("even/even", r(40000, 40200), &[], cap(201, 0, 100, 100, 1)),
            ("odd/odd", r(40001, 40201), &[], cap(201, 0, 100, 100, 1)),
            ("odd/even", r(40001, 40200), &[], cap(200, 0, 100, 100, 0)),
            ("three ports", r(40000, 40002), &[], cap(3, 0, 1, 1, 1)),
            ("whole space", r(1, 65535), &[], cap(65535, 0, 32767, 32767, 1)),
            ("zero to max", r(0, 65535), &[], cap(65536, 0, 32768, 32768, 0)),
            // 40100-40109: five of each parity.
            ("reserved inside", r(40000, 40199), &[r(40100, 40109)], cap(200, 10, 95, 95, 0)),
            // Clipped to 40000-40004: 40000, 40002, 40004 preferred; 40001, 40003 other.
            ("reserved across low end", r(40000, 40199), &[r(39990, 40004)], cap(200, 5, 97, 98, 0)),
            // Clipped to 40195-40199: 40196, 40198 preferred; 40195, 40197, 40199 other.
            ("reserved across high end", r(40000, 40199), &[r(40195, 40300)], cap(200, 5, 98, 97, 0)),
            ("reserved outside", r(40000, 40199), &[r(8080, 8080), r(39000, 39999), r(40200, 41000)],
                cap(200, 0, 100, 100, 0)),
            // Union 40100-40120: 11 even, 10 odd.
            ("reserved overlapping", r(40000, 40199), &[r(40100, 40109), r(40105, 40120), r(40100, 40100)],
                cap(200, 21, 89, 90, 0)),
            ("reserved never-chosen top", r(40000, 40200), &[r(40200, 40200)], cap(201, 1, 100, 100, 0)),
            ("all reserved", r(40000, 40199), &[r(0, 65535)], cap(200, 200, 0, 0, 0)),
        ];
        for (name, range, reserved, want) in cases {
            let got = port_capacity(*range, reserved);
            assert_eq!(got, *want, "{name}");
            assert_eq!(
                got.available,
                got.preferred_parity + got.other_parity + got.never_chosen,
                "{name}"
            );
        }
        // A reversed range (only constructible by hand) counts as empty.
        assert_eq!(port_capacity(r(10, 5), &[r(0, 100)]), cap(0, 0, 0, 0, 0));
    }

    /// The parsers must not panic on anything a file could hold.
    #[test]
    fn parsers_never_panic() {
        const ALPHABET: &[u8] = b"0123456789 \t\n:,-TcpExt:TW ";
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let mut s: String = (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize] as char)
                .collect();
            if next() % 8 == 0 {
                s.push_str("é\u{0}\u{fffd}");
            }
            let _ = parse_int(&s);
            let _ = parse_port_range(&s);
            let _ = parse_port_list(&s);
            let _ = parse_sockstat(&s);
            let _ = parse_counters(&s);
        }
        let long = "é".repeat(100);
        assert!(parse_int(&long).unwrap_err().to_string().ends_with("..."));
    }

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/procroot")
            .join(name)
    }

    /// Captured in a fresh network namespace; see fixtures/procroot/README.md.
    #[test]
    fn reads_live_capture() {
        let f = read(&fixture("live")).unwrap();
        assert_eq!(
            f.sysctl,
            Sysctls {
                ip_local_port_range: Some(r(32768, 60999)),
                ip_local_reserved_ports: Some(vec![]),
                tcp_tw_reuse: Some(2),
                tcp_timestamps: Some(1),
                tcp_fin_timeout: Some(60),
                tcp_max_tw_buckets: Some(131072),
                // Global sysctl: not shown inside a network namespace.
                tcp_max_orphans: None,
                somaxconn: Some(4096),
            }
        );
        assert_eq!(
            f.conntrack,
            Conntrack {
                count: Some(0),
                max: Some(262144),
                buckets: Some(262144),
                tcp_timeout_time_wait: Some(120),
            }
        );
        assert_eq!(
            f.sockstat,
            Sockstat {
                tcp_inuse: Some(12),
                tcp_orphan: Some(0),
                tcp_tw: Some(4),
                tcp_alloc: Some(16),
                tcp_mem: Some(234),
                tcp6_inuse: Some(3),
            }
        );
        assert_eq!(
            f.tcp_ext,
            TcpExt {
                tw: Some(4),
                tw_recycled: Some(0),
                tw_killed: Some(0),
                time_wait_overflow: Some(0),
                listen_overflows: Some(2),
                listen_drops: Some(2),
            }
        );
        assert_eq!(
            f.tcp,
            TcpSnmp {
                active_opens: Some(11),
                passive_opens: Some(9),
                curr_estab: Some(10),
            }
        );
        assert_eq!(f.raw.netstat.get("TcpExt", "DelayedACKs"), Some(4));
        assert_eq!(f.raw.netstat.get("IpExt", "InOctets"), Some(1948));
        assert_eq!(f.raw.snmp.get("Tcp", "MaxConn"), Some(-1));
        assert_eq!(f.raw.sockstat.get("sockets", "used"), Some(15));
        assert_eq!(f.ephemeral_capacity(), Some(cap(28232, 0, 14116, 14116, 0)));
    }

    /// The live capture holds every file tw reads, except the one this kernel
    /// hides inside a namespace; keeps capture.sh and CAPTURE_FILES in step.
    #[test]
    fn live_capture_has_capture_files() {
        for rel in CAPTURE_FILES {
            let exists = fixture("live").join(rel).is_file();
            assert_eq!(exists, *rel != MAX_ORPHANS, "{rel}");
        }
    }

    #[test]
    fn reads_hand_edited_variants() {
        let full = read(&fixture("full-conntrack")).unwrap();
        assert_eq!(full.conntrack.count, Some(261_000));
        assert_eq!(full.conntrack.max, Some(262_144));

        let none = read(&fixture("no-conntrack")).unwrap();
        assert_eq!(none.conntrack, Conntrack::default());
        assert_eq!(none.sockstat.tcp_tw, Some(4));

        let narrow = read(&fixture("narrow-range")).unwrap();
        assert_eq!(narrow.sysctl.ip_local_port_range, Some(r(40000, 40199)));
        assert_eq!(
            narrow.sysctl.ip_local_reserved_ports,
            Some(vec![r(40100, 40109)])
        );
        assert_eq!(narrow.ephemeral_capacity(), Some(cap(200, 10, 95, 95, 0)));
    }

    /// A scratch proc root under the system temp dir, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("tw-system-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn write(&self, rel: &str, text: &[u8]) {
            let path = self.0.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn empty_root_is_all_none() {
        let root = Scratch::new("empty");
        let f = read(&root.0).unwrap();
        assert_eq!(f.sysctl, Sysctls::default());
        assert_eq!(f.conntrack, Conntrack::default());
        assert_eq!(f.sockstat, Sockstat::default());
        assert_eq!(f.tcp_ext, TcpExt::default());
        assert_eq!(f.tcp, TcpSnmp::default());
        assert_eq!(f.ephemeral_capacity(), None);
    }

    #[test]
    fn errors_name_the_file() {
        let cases: &[(&str, &[u8], &str)] = &[
            (PORT_RANGE, b"32768\n", "expected two port numbers"),
            (RESERVED_PORTS, b"9010-9000\n", "reversed range"),
            (TW_REUSE, b"yes\n", "expected one integer"),
            (SOCKSTAT, b"TCP: inuse\n", "has no value"),
            (SOCKSTAT6, b"TCP6 inuse 1\n", "no `Proto:` prefix"),
            (
                NETSTAT,
                b"TcpExt: TW\nTcpExt: 1 2\n",
                "1 names but 2 values",
            ),
            (SNMP, b"Tcp: CurrEstab\n", "without a line of values"),
            (SNMP, b"\xff\xfe", "valid UTF-8"),
        ];
        for (rel, text, why) in cases {
            let root = Scratch::new("bad");
            root.write(rel, text);
            let msg = format!("{:#}", read(&root.0).unwrap_err());
            let want = format!("reading {}: ", root.0.join(rel).display());
            assert!(msg.starts_with(&want), "{rel}: {msg}");
            assert!(msg.contains(why), "{rel}: {msg}");
        }
    }

    #[test]
    fn missing_root_is_an_error() {
        let msg = format!("{:#}", read(Path::new("/nonexistent/tw-proc")).unwrap_err());
        assert!(
            msg.starts_with("reading proc root /nonexistent/tw-proc: "),
            "{msg}"
        );
        let root = Scratch::new("file");
        root.write("proc", b"");
        let msg = format!("{:#}", read(&root.0.join("proc")).unwrap_err());
        assert!(msg.ends_with("not a directory"), "{msg}");
    }

    /// The I/O half against this machine's kernel (no root needed).
    #[test]
    fn reads_live_proc() {
        let f = read(Path::new("/proc")).unwrap();
        assert!(f.sysctl.ip_local_port_range.is_some());
        assert!(f.sockstat.tcp_inuse.is_some());
        assert!(f.tcp_ext.tw.is_some());
        assert!(f.tcp.curr_estab.is_some());
        serde_json::to_string(&f).unwrap();
    }

    #[test]
    fn json_field_names() {
        let f = read(&fixture("narrow-range")).unwrap();
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(v["sysctl"]["ip_local_port_range"]["lo"], 40000);
        assert_eq!(v["sysctl"]["tcp_max_orphans"], serde_json::Value::Null);
        assert_eq!(v["conntrack"]["tcp_timeout_time_wait"], 120);
        assert_eq!(v["sockstat"]["tcp_tw"], 4);
        assert_eq!(v["tcp_ext"]["listen_overflows"], 2);
        assert_eq!(v["tcp"]["curr_estab"], 10);
        assert!(v.get("raw").is_none());
    }
}

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

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::model::facts::{Conntrack, Facts, Raw, Sysctls, Table};
use crate::model::PortRange;
use anyhow::{anyhow, bail, Context, Result};

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
    // Bounded, and only a regular file: a FIFO or /dev/zero planted in a
    // --proc-root tree must not hang or fill memory.
    match super::input::read_small(&path).and_then(|b| {
        String::from_utf8(b)
            .map_err(|_| std::io::Error::other("stream did not contain valid UTF-8"))
    }) {
        Ok(text) => parse(&text).map(Some),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
    .with_context(|| format!("reading {}", path.display()))
}

// ---- pure parsers ----

/// What one fact file parses to ([`parse_file`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Int(i64),
    Range(PortRange),
    Ports(Vec<PortRange>),
    Table(Table),
}

/// Parses the text of the fact file `rel` (one of [`CAPTURE_FILES`] but the
/// socket tables) as [`read`] does: the entry point of the fuzz target
/// (fuzz/fuzz_targets/proc_facts.rs). `None` for a file that is no fact.
pub fn parse_file(rel: &str, text: &str) -> Option<Result<Parsed>> {
    Some(match rel {
        PORT_RANGE => parse_port_range(text).map(Parsed::Range),
        RESERVED_PORTS => parse_port_list(text).map(Parsed::Ports),
        SOCKSTAT | SOCKSTAT6 => parse_sockstat(text).map(Parsed::Table),
        NETSTAT | SNMP => parse_counters(text).map(Parsed::Table),
        "net/tcp" | "net/tcp6" => return None,
        r if CAPTURE_FILES.contains(&r) => parse_int(text).map(Parsed::Int),
        _ => return None,
    })
}

/// A sysctl holding one integer, such as "60\n".
fn parse_int(text: &str) -> Result<i64> {
    let t = text.trim();
    t.parse()
        .map_err(|_| anyhow!("expected one integer, got {}", snippet(t)))
}

/// ip_local_port_range under `proc_root`, `None` when absent or unreadable:
/// what classifying directions needs, without reading every fact.
pub fn port_range_at(proc_root: &Path) -> Option<PortRange> {
    let text = std::fs::read_to_string(fact_path(proc_root, PORT_RANGE)).ok()?;
    parse_port_range(&text).ok()
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
            let value =
                parse_counter(value).with_context(|| format!("line {n}: {}", snippet(key)))?;
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
        let (m, values) = lines.next().ok_or_else(|| {
            anyhow!(
                "line {n}: {} names without a line of values",
                snippet(section)
            )
        })?;
        let (vsection, values) = values
            .split_once(':')
            .ok_or_else(|| anyhow!("line {m}: no `Section:` prefix in {}", snippet(values)))?;
        if vsection != section {
            bail!(
                "line {m}: values for {} after names for {}",
                snippet(vsection),
                snippet(section)
            );
        }
        let names: Vec<&str> = names.split_whitespace().collect();
        let values: Vec<&str> = values.split_whitespace().collect();
        if names.len() != values.len() {
            bail!(
                "line {m}: {} has {} names but {} values",
                snippet(section),
                names.len(),
                values.len()
            );
        }
        let entry = table.0.entry(section.trim().to_owned()).or_default();
        for (name, value) in names.into_iter().zip(values) {
            let value =
                parse_counter(value).with_context(|| format!("line {m}: {}", snippet(name)))?;
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
/// A word from a file, quoted and escaped, cut to at most [`SNIPPET_MAX`]
/// bytes of escaped text: the cut is made after escaping, since one control
/// character escapes to up to 10 bytes (`\u{10ffff}`), and an error quotes two
/// words.
fn snippet(s: &str) -> String {
    const SNIPPET_MAX: usize = 60;
    let mut out = String::from("\"");
    for (i, c) in s.chars().enumerate() {
        let esc: String = c.escape_debug().collect();
        if out.len() + esc.len() > SNIPPET_MAX || i >= 40 {
            out.push_str("\"...");
            return out;
        }
        out.push_str(&esc);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::facts::{Sockstat, TcpExt, TcpSnmp};
    use crate::model::ports::tests::cap;
    use std::path::PathBuf;

    #[test]
    fn a_counter_line_of_control_characters_stays_one_short_line_fuzz_proc_facts() {
        // Found by CI's fuzz step (proc_facts): 40 control characters each
        // escaped to 6 bytes made a 522-byte message.
        let junk = "\u{1d}".repeat(300);
        let text = format!("TcpExt: A\nTcpExt: {junk}\n");
        let e = parse_file("net/netstat", &text).unwrap().unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.len() < 512, "{} bytes: {msg}", msg.len());
        assert!(!msg.chars().any(char::is_control), "{msg:?}");
        assert!(msg.contains("\\u{1d}"), "{msg}");
        assert_eq!(snippet("ab\"c"), "\"ab\\\"c\"");
        assert_eq!(
            snippet(&"x".repeat(41)),
            format!("\"{}\"...", "x".repeat(40))
        );
    }

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

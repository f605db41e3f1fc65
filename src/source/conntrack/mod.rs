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
//!
//! Here: where entries come from (live, procfs, a capture) and `tw capture`'s
//! part; the wire format in `wire`, procfs text in `procfs`, the live dump
//! and a capture's replay in `dump`.

mod dump;
mod procfs;
mod wire;

use std::io::{BufReader, ErrorKind};
use std::path::Path;

use crate::model::conntrack::{Entry, Settings, Stats};
use crate::source::facts::fact_path;
pub use crate::source::netlink::frame::{DecodeError, Progress};

pub use dump::*;
pub use procfs::*;
pub use wire::*;

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
    use crate::model::abi::{NLMSG_HDRLEN, NLM_F_DUMP, NLM_F_REQUEST};
    use crate::model::conntrack::{CtState, IPS_ASSURED, IPS_SEEN_REPLY};
    use crate::model::Family;
    use crate::source::netlink::frame::{u16_ne, u32_ne};

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

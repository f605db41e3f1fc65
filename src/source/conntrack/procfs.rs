//! The conntrack table and its statistics as procfs prints them
//! (/proc/net/nf_conntrack, /proc/net/stat/nf_conntrack), and the table's
//! sysctls.

use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::net::IpAddr;
use std::path::Path;

use crate::model::conntrack::{
    CtState, Entry, Settings, Stats, Tuple, IPPROTO_TCP, IPS_ASSURED, IPS_SEEN_REPLY,
};
use crate::model::Family;

use super::*;

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

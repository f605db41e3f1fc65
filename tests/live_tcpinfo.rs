//! `tw ls -i` / `-m` against `ss -tinm` on the same sockets, in a namespace
//! of the test's own: connections that moved known bytes, then idle, so the
//! two reads see the same values. Tolerances: rtt and rttvar within 0.1 ms
//! or 10% (they move only on ACKs, and an idle socket gets none), every
//! other field exact. Needs root.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use common::{ss_endpoint, tw_endpoint, Netns};
use serde_json::Value;

/// Per (local, peer): ss's key:value fields of its info line, plus `cc`.
fn ss_info(ns: &Netns) -> BTreeMap<(String, String), BTreeMap<String, String>> {
    let out = ns.output("ss", &["-tinmH"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut all = BTreeMap::new();
    let mut key = None;
    for line in text.lines() {
        if !line.starts_with(char::is_whitespace) {
            let f: Vec<&str> = line.split_whitespace().collect();
            key = Some((ss_endpoint(f[3]), ss_endpoint(f[4])));
            continue;
        }
        let mut fields = BTreeMap::new();
        let toks: Vec<&str> = line.split_whitespace().collect();
        let mut i = 0;
        while i < toks.len() {
            let t = toks[i];
            if let Some((k, v)) = t.split_once(':') {
                let v = v.trim_start_matches('(').trim_end_matches(')');
                fields.insert(k.to_string(), v.to_string());
            } else if matches!(t, "send" | "pacing_rate" | "delivery_rate") && i + 1 < toks.len() {
                fields.insert(t.to_string(), toks[i + 1].to_string());
                i += 1;
            } else if matches!(t, "cubic" | "reno" | "bbr" | "dctcp" | "htcp" | "vegas") {
                fields.insert("cc".to_string(), t.to_string());
            }
            i += 1;
        }
        all.insert(
            key.clone().expect("an info line follows a socket line"),
            fields,
        );
    }
    all
}

fn tw_json(ns: &Netns, args: &[&str]) -> Vec<Value> {
    let all = [&["ls", "--format", "json"], args].concat();
    let out = ns.output(env!("CARGO_BIN_EXE_tw"), &all);
    assert!(
        out.status.success(),
        "tw {all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// Connections over loopback that each moved a different number of bytes
/// both ways, held open and idle.
fn connections(ns: &Netns, n: usize) -> Vec<TcpStream> {
    ns.run(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut held = Vec::new();
        for i in 0..n {
            let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (mut s, _) = l.accept().unwrap();
            let up = vec![7u8; 1000 * (i + 1)];
            let down = vec![9u8; 30_000 * (i + 1)];
            c.write_all(&up).unwrap();
            let mut got = vec![0u8; up.len()];
            s.read_exact(&mut got).unwrap();
            s.write_all(&down).unwrap();
            let mut got = vec![0u8; down.len()];
            c.read_exact(&mut got).unwrap();
            held.push(c);
            held.push(s);
        }
        held.push(TcpStream::connect(l.local_addr().unwrap()).unwrap());
        held.push(l.accept().unwrap().0);
        // Delayed ACKs (up to 40 ms on loopback) land before the reads.
        thread::sleep(Duration::from_millis(300));
        held
    })
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn tcp_info_and_skmem_match_ss() {
    let ns = Netns::new("tcpinfo");
    let _held = connections(&ns, 4);
    let theirs = ss_info(&ns);
    let ours = tw_json(&ns, &["-tim"]);
    assert_eq!(ours.len(), 10, "{ours:?}");
    assert_eq!(ours.len(), theirs.len());
    for row in &ours {
        let key = (
            tw_endpoint(row["local"].as_str().unwrap()),
            tw_endpoint(row["peer"].as_str().unwrap()),
        );
        let ss = theirs
            .get(&key)
            .unwrap_or_else(|| panic!("{key:?} not in ss"));
        let info = &row["tcp_info"];
        let field = |k: &str| ss.get(k).cloned().unwrap_or_else(|| "0".into());
        assert_eq!(
            row["congestion"].as_str(),
            ss.get("cc").map(String::as_str),
            "{key:?}"
        );
        for (ours, theirs) in [
            ("cwnd", "cwnd"),
            ("bytes_sent", "bytes_sent"),
            ("bytes_acked", "bytes_acked"),
            ("bytes_received", "bytes_received"),
            ("segs_out", "segs_out"),
            ("segs_in", "segs_in"),
            ("unacked", "unacked"),
            ("lost", "lost"),
            ("mss", "mss"),
        ] {
            assert_eq!(
                num(&info[ours]).to_string(),
                field(theirs),
                "{key:?} {ours}"
            );
        }
        let (retrans, total) = field("retrans")
            .split_once('/')
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .unwrap_or(("0".into(), "0".into()));
        assert_eq!(num(&info["retrans"]).to_string(), retrans, "{key:?}");
        assert_eq!(num(&info["total_retrans"]).to_string(), total, "{key:?}");
        match info["ssthresh"].as_u64() {
            Some(t) => assert_eq!(t.to_string(), field("ssthresh")),
            None => assert!(!ss.contains_key("ssthresh"), "{key:?}"),
        }
        let (rtt, rttvar) = field("rtt").split_once('/').map_or((0.0, 0.0), |(a, b)| {
            (a.parse::<f64>().unwrap(), b.parse::<f64>().unwrap())
        });
        for (ours, theirs) in [(&info["rtt_ms"], rtt), (&info["rttvar_ms"], rttvar)] {
            let ours = ours.as_f64().unwrap();
            assert!(
                (ours - theirs).abs() <= 0.1_f64.max(theirs * 0.1),
                "{key:?}: rtt {ours} against ss's {theirs}"
            );
        }
        let rate = |k: &str| field(k).trim_end_matches("bps").parse::<u64>().unwrap();
        assert_eq!(
            num(&info["delivery_rate_bps"]),
            rate("delivery_rate"),
            "{key:?}"
        );
        if let Some(p) = info["pacing_rate_bps"].as_u64() {
            assert_eq!(p, rate("pacing_rate"), "{key:?}");
        }
        let mem: Vec<String> = ["r", "rb", "t", "tb", "f", "w", "o", "bl", "d"]
            .iter()
            .zip([
                "rmem_alloc",
                "rcvbuf",
                "wmem_alloc",
                "sndbuf",
                "fwd_alloc",
                "wmem_queued",
                "optmem",
                "backlog",
                "drops",
            ])
            .map(|(n, k)| format!("{n}{}", num(&row["skmem"][k])))
            .collect();
        assert_eq!(mem.join(","), field("skmem"), "{key:?}");
    }
    // The bytes moved are the ones the test wrote: 1000*i up, 30000*i down.
    let mut received: Vec<u64> = ours
        .iter()
        .map(|r| num(&r["tcp_info"]["bytes_received"]))
        .collect();
    received.sort_unstable();
    assert_eq!(
        received,
        [0, 0, 1000, 2000, 3000, 4000, 30_000, 60_000, 90_000, 120_000]
    );
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn plain_rows_are_one_token_per_column_and_proc_says_what_it_lacks() {
    let ns = Netns::new("tcpinfo-plain");
    let _held = connections(&ns, 2);
    let out = ns.output(env!("CARGO_BIN_EXE_tw"), &["-tim", "--format", "plain"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header[5..8], ["CC", "RTT", "CWND"]);
    assert_eq!(header.last(), Some(&"SKMEM"));
    for l in lines {
        assert_eq!(l.split_whitespace().count(), header.len(), "{l}");
    }
    // /proc has no tcp_info: every internal field is `-`, and stderr says so.
    let out = ns.output(
        env!("CARGO_BIN_EXE_tw"),
        &["-tim", "--format", "plain", "--source", "proc"],
    );
    assert!(out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("-i: ") && err.contains("no tcp_info"), "{err}");
    let text = String::from_utf8(out.stdout).unwrap();
    for l in text.lines().skip(1) {
        let f: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(f.len(), header.len(), "{l}");
        assert!(f[5..].iter().all(|c| *c == "-"), "{l}");
    }
}

/// `count --by raddr --stats` against the same aggregation of `ss -tin`:
/// connections, bytes and retransmits per peer exact, the largest rtt within
/// 0.1 ms or 10%.
#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn count_stats_per_peer_match_ss() {
    let ns = Netns::new("tcpstats");
    let _held = ns.run(|| {
        let mut held = Vec::new();
        for (addr, n) in [("127.0.0.2:5000", 3usize), ("127.0.0.3:5000", 2)] {
            let l = TcpListener::bind(addr).unwrap();
            for i in 0..n {
                let mut c = TcpStream::connect(addr).unwrap();
                let (mut s, _) = l.accept().unwrap();
                let data = vec![1u8; 5000 * (i + 1)];
                c.write_all(&data).unwrap();
                let mut got = vec![0u8; data.len()];
                s.read_exact(&mut got).unwrap();
                held.push(c);
                held.push(s);
            }
            held.push(TcpStream::connect(addr).unwrap());
            held.push(l.accept().unwrap().0);
            drop(l);
        }
        thread::sleep(Duration::from_millis(300));
        held
    });
    // ss, aggregated by remote address: connections, sent, received, rtts.
    let mut theirs: BTreeMap<String, (u64, u64, u64, Vec<f64>)> = BTreeMap::new();
    for ((_, peer), f) in ss_info(&ns) {
        let addr = peer.rsplit_once(':').unwrap().0.to_string();
        let e = theirs.entry(addr).or_default();
        let n = |k: &str| f.get(k).map_or(0, |v| v.parse::<u64>().unwrap());
        e.0 += 1;
        e.1 += n("bytes_sent");
        e.2 += n("bytes_received");
        let rtt = f["rtt"].split_once('/').unwrap().0.parse::<f64>().unwrap();
        e.3.push(rtt);
    }
    let out = ns.output(
        env!("CARGO_BIN_EXE_tw"),
        &["count", "--by", "raddr", "--stats", "--format", "json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["by"], "raddr");
    let groups = v["groups"].as_array().unwrap();
    assert_eq!(groups.len(), theirs.len(), "{v}");
    for g in groups {
        let (conns, sent, received, rtts) = &theirs[g["key"].as_str().unwrap()];
        assert_eq!(num(&g["connections"]), *conns, "{g}");
        assert_eq!(num(&g["bytes_sent"]), *sent, "{g}");
        assert_eq!(num(&g["bytes_received"]), *received, "{g}");
        assert_eq!(num(&g["total_retrans"]), 0, "{g}");
        let max = rtts.iter().cloned().fold(0.0, f64::max);
        let ours = g["rtt_max_ms"].as_f64().unwrap();
        assert!(
            (ours - max).abs() <= 0.1_f64.max(max * 0.1),
            "{g}: rtt max {ours} against ss's {max}"
        );
        let (p50, p95) = (
            g["rtt_p50_ms"].as_f64().unwrap(),
            g["rtt_p95_ms"].as_f64().unwrap(),
        );
        assert!(0.0 < p50 && p50 <= p95 && p95 <= ours, "{g}");
    }
    // Plain: a header (dropped by -H) and one TAB-separated line per peer.
    let out = ns.output(
        env!("CARGO_BIN_EXE_tw"),
        &[
            "count", "--by", "raddr", "--stats", "-H", "--format", "plain",
        ],
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), theirs.len(), "{text}");
    assert!(text.lines().all(|l| l.split('\t').count() == 8), "{text}");
}

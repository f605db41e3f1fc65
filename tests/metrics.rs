//! `tw metrics`: its Prometheus text checked by promtool (Debian's
//! prometheus package) and compared, number by number, with what tw's own
//! commands and the kernel say: on a real namespace (root) and on the /proc
//! trees under fixtures/. The example alerting rules are checked and
//! unit-tested with promtool too.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{assert_promtool_accepts, Net, Netns, Population};
use serde_json::Value;

const TW: &str = env!("CARGO_BIN_EXE_tw");

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn require_promtool() {
    match Command::new("promtool").arg("--version").output() {
        Ok(o) if o.status.success() => {}
        other => panic!(
            "these tests need promtool, from Debian's prometheus package \
             (`apt-get install prometheus`, as scripts/test does): {other:?}"
        ),
    }
}

fn promtool(args: &[&str]) -> Output {
    require_promtool();
    common::run_bounded(Command::new("promtool").args(args))
}

/// Every sample line as (series as printed, value).
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("a sample line has a value");
            (series.to_string(), value.parse().expect("a numeric value"))
        })
        .collect()
}

/// Samples of one metric, keyed by their label text (`family="inet",...`).
fn series<'a>(m: &'a BTreeMap<String, f64>, name: &str) -> BTreeMap<&'a str, f64> {
    m.iter()
        .filter_map(|(k, v)| {
            let labels = match k.strip_prefix(name)? {
                "" => "",
                rest => rest.strip_prefix('{')?.strip_suffix('}')?,
            };
            Some((labels, *v))
        })
        .collect()
}

fn stdout(o: &Output) -> String {
    assert!(o.status.code().is_some(), "{o:?}");
    String::from_utf8(o.stdout.clone()).expect("UTF-8 output")
}

/// `tw count --by KEY` lines as a map.
fn count_by(o: &Output) -> BTreeMap<String, f64> {
    assert!(o.status.success(), "{o:?}");
    stdout(o)
        .lines()
        .map(|l| {
            let (k, n) = l.split_once('\t').expect("KEY<TAB>COUNT");
            (k.to_string(), n.parse().unwrap())
        })
        .collect()
}

/// tw_doctor_findings as (rule, severity) -> count, and the same from
/// `tw doctor --format json`.
fn findings_both_ways(m: &BTreeMap<String, f64>, doctor_json: &[u8]) {
    let v: Value = serde_json::from_slice(doctor_json).expect("doctor JSON");
    let mut want: BTreeMap<(String, String), f64> = BTreeMap::new();
    for f in v["findings"].as_array().unwrap() {
        let key = (
            f["rule"].as_str().unwrap().to_string(),
            f["severity"].as_str().unwrap().to_string(),
        );
        *want.entry(key).or_default() += 1.0;
    }
    let got = series(m, "tw_doctor_findings");
    // Every rule, with all three severities, whether it reported or not: no
    // series vanishes when a rule is quiet.
    assert_eq!(got.len(), tw::analyze::doctor::RULES.len() * 3, "{got:?}");
    let reported: BTreeSet<&String> = want.keys().map(|k| &k.0).collect();
    for rule in &reported {
        assert!(
            tw::analyze::doctor::RULES.contains(&rule.as_str()),
            "{rule}"
        );
    }
    for rule in tw::analyze::doctor::RULES.map(String::from).iter() {
        for sev in ["ok", "warn", "crit"] {
            let labels = format!("rule=\"{rule}\",severity=\"{sev}\"");
            let want_n = want
                .get(&(rule.clone(), sev.to_string()))
                .copied()
                .unwrap_or(0.0);
            assert_eq!(got.get(labels.as_str()), Some(&want_n), "{labels}");
        }
    }
    let status = match v["status"].as_str().unwrap() {
        "ok" => 0.0,
        "warn" => 1.0,
        _ => 2.0,
    };
    assert_eq!(m["tw_doctor_status"], status);
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn live_metrics_agree_with_count_ports_doctor_and_the_kernel() {
    let ns = Netns::new("metrics");
    // 1000 ports, so that per-destination use shows at a small scale.
    ns.set_sysctl("net/ipv4/ip_local_port_range", "40000 40999");
    let pop = Population::builder()
        .listeners(Net::V4, 2)
        .established(Net::V4, 3)
        .half_closed(Net::V4, 2)
        .time_wait(Net::V4, 120)
        .time_wait(Net::V6, 10)
        .build(&ns);
    let tw = |args: &[&str]| ns.output(TW, args);

    let out = tw(&["metrics", "--top", "2"]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert_promtool_accepts(&text);
    let m = samples(&text);

    // Sockets by family and state: tw count per family, and the population.
    let sockets = series(&m, "tw_sockets");
    // node_exporter's tcpstat states (11: NEW_SYN_RECV never shows), both families.
    assert_eq!(sockets.len(), 2 * 11, "every state of both families");
    for (family, flag) in [("inet", "-4"), ("inet6", "-6")] {
        let counts = count_by(&tw(&["count", "--by", "state", flag]));
        let made = pop.counts_where(|e| e.family() == family);
        let prefix = format!("family=\"{family}\",state=\"");
        for (labels, n) in &sockets {
            let Some(state) = labels.strip_prefix(&prefix) else {
                continue;
            };
            let state = state.trim_end_matches('"');
            assert_eq!(state, state.to_lowercase(), "node_exporter's spelling");
            let state = state.to_uppercase();
            let state = state.as_str();
            assert_eq!(counts.get(state).copied().unwrap_or(0.0), *n, "{labels}");
            assert_eq!(made.get(state).copied().unwrap_or(0) as f64, *n, "{labels}");
        }
    }
    let tw_total = stdout(&tw(&["count", "--state", "time-wait"]));
    let sum_tw: f64 = sockets
        .iter()
        .filter(|(l, _)| l.ends_with("state=\"time_wait\""))
        .map(|x| x.1)
        .sum();
    assert_eq!(sum_tw, tw_total.trim().parse::<f64>().unwrap());
    assert_eq!(sum_tw, 130.0);

    // TIME_WAIT by direction, as tw count has it.
    let dirs = count_by(&tw(&["count", "--state", "time-wait", "--by", "direction"]));
    let by_dir = series(&m, "tw_time_wait_sockets");
    assert_eq!(by_dir["direction=\"out\""], dirs["out"]);
    assert_eq!(
        by_dir["direction=\"in\""],
        dirs.get("in").copied().unwrap_or(0.0)
    );

    // The time left is gauges, not a histogram (a snapshot per scrape):
    // cumulative, every TIME_WAIT socket ends within 60 s.
    assert!(!text.contains("histogram"), "no histogram type in 0.0.4");
    let buckets = series(&m, "tw_time_wait_expiring_sockets");
    assert_eq!(buckets.len(), 8, "{buckets:?}");
    assert_eq!(buckets["within_seconds=\"60\""], sum_tw);
    let mut last = 0.0;
    for le in ["1", "5", "10", "20", "30", "40", "50", "60"] {
        let n = buckets[format!("within_seconds=\"{le}\"").as_str()];
        assert!(n >= last, "buckets are cumulative: {buckets:?}");
        last = n;
    }
    // The population is seconds old, so most have more than 40 s left.
    assert!(
        buckets["within_seconds=\"40\""] < sum_tw / 2.0,
        "{buckets:?}"
    );

    // Ports per destination: the same numbers as tw ports, cut to --top 2.
    let ports: Value = serde_json::from_slice(&tw(&["ports", "--format", "json"]).stdout).unwrap();
    let dests = ports["destinations"].as_array().unwrap();
    assert_eq!(m["tw_destinations"], dests.len() as f64);
    assert!(
        dests.len() > 2,
        "the population has more destinations than --top"
    );
    let held = series(&m, "tw_destination_ports_held");
    assert_eq!(held.len(), 2, "--top 2 bounds the series: {held:?}");
    let usable = ports["capacity"]["preferred_parity"].as_f64().unwrap()
        + ports["capacity"]["other_parity"].as_f64().unwrap();
    assert_eq!(usable, 1000.0);
    for d in &dests[..2] {
        // "[::1]:80" or "10.0.0.9:80": the address and the port apart.
        let peer: std::net::SocketAddr = d["peer"].as_str().unwrap().parse().unwrap();
        let labels = format!(
            "local_address=\"{}\",peer_address=\"{}\",peer_port=\"{}\"",
            d["local"].as_str().unwrap(),
            peer.ip(),
            peer.port()
        );
        let l = labels.as_str();
        assert_eq!(held[l], d["held"].as_f64().unwrap(), "{l}");
        let first = series(&m, "tw_destination_ports_held_first_choice");
        assert_eq!(first[l], d["held_preferred"].as_f64().unwrap(), "{l}");
        let tw_n = d["states"]["TIME_WAIT"].as_f64().unwrap_or(0.0);
        assert_eq!(series(&m, "tw_destination_time_wait_sockets")[l], tw_n);
        assert_eq!(series(&m, "tw_destination_ports_capacity")[l], usable);
    }
    assert_eq!(m["tw_ephemeral_port_range_low"], 40000.0);
    assert_eq!(m["tw_ephemeral_port_range_high"], 40999.0);
    assert_eq!(m["tw_ephemeral_ports_first_choice"], 500.0);

    // Sysctls and counters: what the namespace's /proc says.
    for (metric, key) in [
        ("tw_sysctl_tcp_tw_reuse", "net/ipv4/tcp_tw_reuse"),
        (
            "tw_sysctl_tcp_fin_timeout_seconds",
            "net/ipv4/tcp_fin_timeout",
        ),
        (
            "tw_sysctl_tcp_max_tw_buckets",
            "net/ipv4/tcp_max_tw_buckets",
        ),
        ("tw_sysctl_somaxconn", "net/core/somaxconn"),
    ] {
        assert_eq!(
            m[metric],
            ns.sysctl(key).parse::<f64>().unwrap(),
            "{metric}"
        );
    }
    assert_eq!(m["tw_time_wait_minisockets"], sum_tw, "sockstat tw");
    // TcpExt TW counts minisockets when scheduled, so at least these.
    assert!(m["tw_tcpext_time_wait_total"] >= sum_tw);

    // Doctor's findings, as tw doctor gives them.
    findings_both_ways(&m, &tw(&["doctor", "--format", "json"]).stdout);
    assert_eq!(m["tw_build_info{version=\"0.1.0\"}"], 1.0);
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn fixture_trees_give_their_files_and_doctors_verdict() {
    let read = |root: &Path, rel: &str| -> Option<f64> {
        std::fs::read_to_string(root.join(rel))
            .ok()
            .map(|t| t.split_whitespace().next().unwrap().parse().unwrap())
    };
    for tree in ["live", "full-conntrack", "no-conntrack", "narrow-range"] {
        let root = manifest_dir().join("fixtures/procroot").join(tree);
        let r = root.to_str().unwrap();
        let tw = |args: &[&str]| {
            let mut all = vec!["--proc-root", r];
            all.extend_from_slice(args);
            common::run_bounded(Command::new(TW).args(all))
        };
        let out = tw(&["metrics"]);
        assert!(out.status.success(), "{tree}: {out:?}");
        let text = stdout(&out);
        assert_promtool_accepts(&text);
        let m = samples(&text);
        for (metric, rel) in [
            (
                "tw_conntrack_entries",
                "sys/net/netfilter/nf_conntrack_count",
            ),
            (
                "tw_conntrack_entries_limit",
                "sys/net/netfilter/nf_conntrack_max",
            ),
            (
                "tw_sysctl_tcp_max_tw_buckets",
                "sys/net/ipv4/tcp_max_tw_buckets",
            ),
            (
                "tw_ephemeral_port_range_low",
                "sys/net/ipv4/ip_local_port_range",
            ),
        ] {
            // A fact whose file is absent has no series at all, never a 0.
            assert_eq!(m.get(metric).copied(), read(&root, rel), "{tree}: {metric}");
        }
        let total = stdout(&tw(&["count"])).trim().parse::<f64>().unwrap();
        let sockets: f64 = series(&m, "tw_sockets").values().sum();
        assert_eq!(sockets, total, "{tree}");
        findings_both_ways(&m, &tw(&["doctor", "--format", "json"]).stdout);
    }
}

#[test]
fn metrics_take_no_format() {
    let out = common::run_bounded(Command::new(TW).args(["metrics", "--format", "json"]));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("tw: --format"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
#[ignore = "live: needs root, namespaces and the tools scripts/test installs; scripts/test runs it"]
fn example_rules_and_scrape_config_pass_promtool() {
    let dir = manifest_dir().join("packaging/prometheus");
    let path = |f: &str| dir.join(f).to_str().unwrap().to_string();
    for args in [
        vec!["check", "rules", &path("tw-alerts.yml")],
        vec!["check", "rules", &path("tw-rules.yml")],
        vec!["check", "config", &path("prometheus.yml")],
        // Each alert fires on trouble-shaped series when it should, not before.
        vec!["test", "rules", &path("tw-alerts.test.yml")],
    ] {
        let out = promtool(&args);
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Every metric the rules use is one tw prints.
    let text = stdout(&common::run_bounded(
        Command::new(TW).args([
            "--proc-root",
            manifest_dir()
                .join("fixtures/procroot/live")
                .to_str()
                .unwrap(),
            "metrics",
        ]),
    ));
    // Of the rules and the dashboard; a recording rule's own name (with
    // colons) is no metric of tw's.
    let rules = [
        "tw-alerts.yml",
        "tw-rules.yml",
        "../grafana/tw-dashboard.json",
    ]
    .map(|f| std::fs::read_to_string(dir.join(f)).unwrap())
    .join("\n");
    let used: BTreeSet<&str> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.starts_with("tw_") && !w.contains(':'))
        .collect();
    assert!(used.len() >= 12, "{used:?}");
    // tw serve's eBPF event counters (`tw_*_events_total`) are not in `tw
    // metrics`, which runs once and so keeps no counters; the live
    // tests/serve.rs checks that every rule and panel using them returns
    // data from tw serve.
    for name in used.into_iter().filter(|n| !n.ends_with("_events_total")) {
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "{name} is in the rules or the dashboard but not in tw metrics"
        );
    }
}

//! Whole-output snapshots of every renderer, for every command and format,
//! on the deterministic fixtures (`--proc-root`, `--from`, a recorded
//! watch). A change to any output shows up here as a diff against the
//! committed file in tests/snapshots/. After a deliberate change, rewrite
//! them with `UPDATE_SNAPSHOTS=1 cargo test --test snapshots` and review
//! the diff. No root needed.

use std::path::{Path, PathBuf};
use std::process::Command;

use tw::analyze::watch::Record;

const TW: &str = env!("CARGO_BIN_EXE_tw");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Compares `actual` with tests/snapshots/`name`, or writes it there when
/// UPDATE_SNAPSHOTS is set.
fn assert_snapshot(name: &str, actual: &str) {
    let path = root().join("tests/snapshots").join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; write it with UPDATE_SNAPSHOTS=1 cargo test --test snapshots",
            path.display()
        )
    });
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name} differs from {} at line {}:\n  want: {:?}\n  got:  {:?}\n--- whole output ---\n{actual}",
            path.display(),
            first + 1,
            expected.lines().nth(first).unwrap_or("<end>"),
            actual.lines().nth(first).unwrap_or("<end>"),
        );
    }
}

/// Runs tw in the repository with `args`; returns (exit code, stdout, stderr).
fn tw(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(TW)
        .args(args)
        .current_dir(root())
        .env("TZ", "UTC")
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Every command's output, in every format it has, on fixtures: (snapshot
/// name, arguments). The exit code and stderr are part of the snapshot.
const CASES: &[(&str, &[&str])] = &[
    // The summary, from a /proc copy and from an ss -D capture.
    (
        "summary.table",
        &["--from", "fixtures/proc", "--format", "table"],
    ),
    (
        "summary.plain",
        &["--from", "fixtures/proc", "--format", "plain"],
    ),
    (
        "summary.json",
        &["--from", "fixtures/proc", "--format", "json"],
    ),
    (
        "summary-dump.plain",
        &["--from", "fixtures/netlink/tcp.dump", "summary"],
    ),
    // Inflow from timer ages on captures of loads at known rates.
    (
        "ports-inflow.plain",
        &[
            "--from",
            "fixtures/inflow/proxy/sock_diag.dump",
            "--proc-root",
            "fixtures/inflow/proxy",
            "ports",
            "--format",
            "plain",
        ],
    ),
    (
        "summary-inflow.plain",
        &["--proc-root", "fixtures/inflow/proxy", "--format", "plain"],
    ),
    (
        "doctor-exhaustion-capture.plain",
        &[
            "--from",
            "fixtures/inflow/exhaustion/sock_diag.dump",
            "--proc-root",
            "fixtures/inflow/exhaustion",
            "doctor",
        ],
    ),
    // Listings.
    (
        "ls.table",
        &["--from", "fixtures/proc", "ls", "--format", "table"],
    ),
    (
        "ls.plain",
        &["--from", "fixtures/proc", "ls", "--format", "plain"],
    ),
    (
        "ls.json",
        &["--from", "fixtures/proc", "ls", "--format", "json"],
    ),
    // ls -i / -m from the ss -D capture, which has no tcp_info or skmem
    // (ss -tan asks for none): the columns and JSON fields, `-`/null, and
    // the one line on stderr. Streamed (plain, JSON) and held (table).
    (
        "ls-internals.plain",
        &[
            "--from",
            "fixtures/netlink/tcp.dump",
            "ls",
            "-i",
            "-m",
            "--format",
            "plain",
        ],
    ),
    (
        "ls-internals.json",
        &[
            "--from",
            "fixtures/netlink/tcp.dump",
            "ls",
            "-i",
            "-m",
            "--format",
            "json",
        ],
    ),
    (
        "ls-internals-sorted.table",
        &[
            "--from",
            "fixtures/netlink/tcp.dump",
            "ls",
            "-m",
            "--sort",
            "peer",
            "--format",
            "table",
        ],
    ),
    (
        "count-stats.json",
        &[
            "--from",
            "fixtures/netlink/tcp.dump",
            "count",
            "--by",
            "raddr",
            "--stats",
            "--format",
            "json",
        ],
    ),
    (
        "ls-sorted-limited.plain",
        &[
            "--from",
            "fixtures/netlink/tcp.dump",
            "ls",
            "--sort",
            "timer",
            "--limit",
            "5",
        ],
    ),
    (
        "ls-expression.plain",
        &[
            "--from",
            "fixtures/proc",
            "ls",
            "dport",
            "=",
            ":5000",
            "or",
            "sport",
            "=",
            ":5000",
        ],
    ),
    // Counts.
    ("count.plain", &["--from", "fixtures/proc", "count"]),
    (
        "count.json",
        &["--from", "fixtures/proc", "count", "--format", "json"],
    ),
    (
        "count-by-state.table",
        &[
            "--from",
            "fixtures/proc",
            "count",
            "--by",
            "state",
            "--format",
            "table",
        ],
    ),
    (
        "count-by-state.plain",
        &["--from", "fixtures/proc", "count", "--by", "state"],
    ),
    (
        "count-by-state.json",
        &[
            "--from",
            "fixtures/proc",
            "count",
            "--by",
            "state",
            "--format",
            "json",
        ],
    ),
    (
        "count-by-raddr.plain",
        &[
            "--from",
            "fixtures/proc",
            "count",
            "--by",
            "raddr",
            "--top",
            "3",
        ],
    ),
    // Ports, on a capture whose range ran out.
    (
        "ports.table",
        &[
            "--proc-root",
            "fixtures/procroot/narrow-range",
            "ports",
            "--format",
            "table",
        ],
    ),
    (
        "ports.plain",
        &["--proc-root", "fixtures/procroot/narrow-range", "ports"],
    ),
    (
        "ports.json",
        &[
            "--proc-root",
            "fixtures/procroot/narrow-range",
            "ports",
            "--format",
            "json",
        ],
    ),
    // Doctor, critical and calm, short and verbose.
    (
        "doctor-narrow.table",
        &[
            "--proc-root",
            "fixtures/procroot/narrow-range",
            "doctor",
            "--format",
            "table",
        ],
    ),
    (
        "doctor-narrow.plain",
        &["--proc-root", "fixtures/procroot/narrow-range", "doctor"],
    ),
    (
        "doctor-narrow.json",
        &[
            "--proc-root",
            "fixtures/procroot/narrow-range",
            "doctor",
            "--format",
            "json",
        ],
    ),
    (
        "doctor-conntrack-verbose.plain",
        &[
            "--proc-root",
            "fixtures/procroot/full-conntrack",
            "doctor",
            "-v",
        ],
    ),
    (
        "doctor-live.plain",
        &["--proc-root", "fixtures/procroot/live", "doctor"],
    ),
    // Explain.
    ("explain-list.txt", &["explain"]),
    ("explain-time-wait.txt", &["explain", "time-wait"]),
    ("explain-tcp-tw-reuse.txt", &["explain", "tcp_tw_reuse"]),
    // Metrics (the scrape's own duration masked below).
    (
        "metrics.prom",
        &["--proc-root", "fixtures/procroot/live", "metrics"],
    ),
    (
        "metrics-narrow.prom",
        &["--proc-root", "fixtures/procroot/narrow-range", "metrics"],
    ),
    // The conntrack table, from a `tw capture` of a namespace with tracking on.
    (
        "conntrack.table",
        &[
            "--proc-root",
            "fixtures/conntrack/capture",
            "conntrack",
            "--format",
            "table",
        ],
    ),
    (
        "conntrack.plain",
        &["--proc-root", "fixtures/conntrack/capture", "conntrack"],
    ),
    (
        "conntrack.json",
        &[
            "--proc-root",
            "fixtures/conntrack/capture",
            "conntrack",
            "--format",
            "json",
        ],
    ),
    (
        "conntrack-by-dst.plain",
        &[
            "--proc-root",
            "fixtures/conntrack/procfs",
            "conntrack",
            "--by",
            "dst",
        ],
    ),
    // Trace reads the live kernel only (eBPF): a capture is refused in one line.
    ("trace-from.txt", &["--from", "fixtures/proc", "trace"]),
];

/// Values that change from run to run, whatever the input.
fn mask(name: &str, text: &str) -> String {
    if !name.ends_with(".prom") {
        return text.to_string();
    }
    text.lines()
        .map(|l| match l.split_once(' ') {
            Some((metric, _)) if metric == "tw_scrape_duration_seconds" => {
                format!("{metric} <masked>")
            }
            _ => l.to_string(),
        })
        .map(|l| l + "\n")
        .collect()
}

#[test]
fn every_command_and_format_renders_as_committed() {
    let mut failures = Vec::new();
    for (name, args) in CASES {
        let (code, out, err) = tw(args);
        let whole = format!(
            "$ tw {}\nexit {code}\n{}--- stdout ---\n{}",
            args.join(" "),
            stderr_block(&err),
            mask(name, &out)
        );
        if let Err(e) = std::panic::catch_unwind(|| assert_snapshot(name, &whole)) {
            failures.push(format!("{name}: {}", panic_text(&e)));
        }
    }
    assert!(
        failures.is_empty(),
        "{} snapshots differ:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

fn stderr_block(err: &str) -> String {
    if err.is_empty() {
        String::new()
    } else {
        format!("--- stderr ---\n{err}")
    }
}

fn panic_text(e: &Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// The recorded watch, as the records `tw watch` wrote.
fn recorded() -> Vec<Record> {
    let text = std::fs::read_to_string(root().join("fixtures/watch/exhaustion.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn watch_plain_and_json_lines_render_as_committed() {
    use tw::render::watch::{plain_header, plain_line, write_line};
    let records = recorded();
    // The clock column is local time: mask it, the rest is the record's.
    let mut plain = plain_header() + "\n";
    let mut json = Vec::new();
    for r in &records {
        let line = plain_line(r);
        plain.push_str("HH:MM:SS");
        plain.push_str(&line[8..]);
        plain.push('\n');
        write_line(&mut json, r).unwrap();
    }
    assert_snapshot("watch.plain", &plain);
    assert_snapshot("watch.jsonl", &String::from_utf8(json).unwrap());
}

#[cfg(feature = "tui")]
#[test]
fn the_live_view_renders_as_committed() {
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;
    use tw::tui::{draw, View};
    let mut view = View::new(std::time::Duration::from_secs(1), None);
    for r in recorded() {
        view.push(r);
    }
    for (w, h) in [(80, 24), (120, 36)] {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| draw(f, &view)).unwrap();
        let buf = t.backend().buffer().clone();
        let screen: String = (0..h)
            .map(|y| (0..w).map(|x| buf[(x, y)].symbol()).collect::<String>() + "\n")
            .collect();
        // The header's clock is local time.
        let screen = mask_clock(&screen);
        assert_snapshot(&format!("watch-live-{w}x{h}.txt"), &screen);
    }
}

/// HH:MM:SS times replaced, whatever the time zone.
fn mask_clock(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        let is_clock = i + 8 <= b.len()
            && b[i..i + 8].iter().enumerate().all(|(k, c)| {
                if k == 2 || k == 5 {
                    *c == b':'
                } else {
                    c.is_ascii_digit()
                }
            });
        if is_clock {
            out.push_str("HH:MM:SS");
            i += 8;
        } else {
            let ch = s[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

#[cfg(feature = "plot")]
#[test]
fn the_plot_renders_as_committed() {
    let dir = std::env::temp_dir().join(format!("tw-snapshot-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("plot.svg");
    let (code, _, err) = tw(&[
        "plot",
        "fixtures/watch/exhaustion.jsonl",
        "-o",
        svg.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&svg);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(code, 0, "{err}");
    assert_snapshot("plot.svg", &text.unwrap());
}

#[test]
fn masking_leaves_everything_but_clocks_and_durations() {
    assert_eq!(mask_clock("at 12:34:56, 1:2"), "at HH:MM:SS, 1:2");
    let m = mask("x.prom", "tw_scrape_duration_seconds 0.1\ntw_up 1\n");
    assert_eq!(m, "tw_scrape_duration_seconds <masked>\ntw_up 1\n");
    assert!(Path::new(TW).exists());
}

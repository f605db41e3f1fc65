//! The surfaces that read through the source seam, end to end on captured
//! files, without root: `tw serve` answers scrapes of a `tw capture` folder
//! with what `tw metrics` prints for it, and doctor, ports and metrics agree
//! on one capture. The live twins of these tests are in serve.rs, metrics.rs
//! and live_doctor.rs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TW: &str = env!("CARGO_BIN_EXE_tw");
const TREE: &str = "fixtures/procroot/narrow-range";

/// A `tw serve` child, killed (by its PID, through the handle) when dropped.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tw(args: &[&str]) -> (i32, String) {
    let out = Command::new(TW)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
    )
}

/// The metric lines, without the scrape's own duration (it differs).
fn samples(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("tw_scrape_duration_seconds"))
        .collect()
}

fn get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    reply
}

#[test]
fn serve_answers_scrapes_of_a_capture_with_what_metrics_prints() {
    let mut child = Command::new(TW)
        .args(["--proc-root", TREE, "serve", "--listen", "127.0.0.1:0"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let served = Served(child);
    // "tw: serve: serving http://127.0.0.1:PORT/metrics and /healthz"
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        assert!(
            Instant::now() < deadline,
            "tw serve did not say where it listens"
        );
        let line = lines.next().expect("tw serve exited").unwrap();
        if let Some(rest) = line.split("http://").nth(1) {
            break rest.split('/').next().unwrap().to_string();
        }
    };
    let reply = get(&addr, "/metrics");
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (code, printed) = tw(&["--proc-root", TREE, "metrics"]);
    assert_eq!(code, 0);
    assert_eq!(samples(body), samples(&printed));
    assert!(
        samples(body).iter().any(|l| l.starts_with("tw_sockets")),
        "{body}"
    );
    assert!(get(&addr, "/healthz").ends_with("ok\n"));
    drop(served);
}

#[test]
fn doctor_ports_and_metrics_agree_on_one_capture() {
    let (code, doctor) = tw(&["--proc-root", TREE, "doctor", "--format", "json"]);
    let doctor: serde_json::Value = serde_json::from_str(&doctor).unwrap();
    let (_, metrics) = tw(&["--proc-root", TREE, "metrics"]);
    let status = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tw_doctor_status "))
        .expect("tw_doctor_status");
    assert_eq!(
        status,
        code.to_string(),
        "metrics' verdict is doctor's exit status"
    );
    assert!(doctor["findings"].as_array().is_some_and(|f| !f.is_empty()));
    let (code, ports) = tw(&["--proc-root", TREE, "ports", "--format", "json"]);
    assert_eq!(code, 0);
    let ports: serde_json::Value = serde_json::from_str(&ports).unwrap();
    assert!(ports.is_object(), "{ports}");
}

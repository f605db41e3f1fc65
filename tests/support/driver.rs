//! The load driver (tests/support/trace_driver.rs) and a TCP server for it, shared by the live
//! event tests (trace, watch_events, serve_events). A test binary includes this with
//! `#[path = "support/driver.rs"] mod driver;` beside `mod common;`; not every one uses all
//! of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{run_bounded, Netns};

/// The driver, compiled once per test binary into cargo's scratch folder for tests (as the
/// netlink shim is) under `name`, which is also the process name the kernel reports (its first
/// 15 bytes), and renamed into place so test binaries running at once never run a half-written
/// one.
pub fn driver_path(name: &str) -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let tmp = dir.join(format!("{name}-{}", std::process::id()));
        let out = dir.join(name);
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/trace_driver.rs");
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        let o = run_bounded(
            Command::new(rustc)
                .args(["--edition", "2021", "-O", "-o"])
                .arg(&tmp)
                .arg(&src),
        );
        assert!(
            o.status.success(),
            "building the driver: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        std::fs::rename(&tmp, &out).unwrap();
        out
    })
}

/// What a driver run printed: its pid and its `key value` lines.
pub struct DriverRun {
    pub pid: u32,
    pub said: BTreeMap<String, f64>,
}

impl DriverRun {
    pub fn get(&self, k: &str) -> u64 {
        *self
            .said
            .get(k)
            .unwrap_or_else(|| panic!("driver printed no {k}")) as u64
    }
}

/// Runs the driver built as `name` in `ns` to completion (bounded).
pub fn drive(name: &str, ns: &Netns, args: &[&str]) -> DriverRun {
    let mut cmd = ns.cmd(driver_path(name).to_str().unwrap());
    cmd.args(args);
    let out = run_bounded(&mut cmd);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "driver {args:?}: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said: BTreeMap<String, f64> = text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
        .collect();
    let pid = said["pid"] as u32;
    DriverRun { pid, said }
}

/// A TCP server on a thread inside `ns`: accepts and, per `hold`, keeps every connection or
/// reads each to EOF and closes it (so the client is the one that closed first). Stopped and
/// joined on drop; it gives up by itself after 120 s.
pub struct Server {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(ns: &Netns, addr: &str, hold: bool) -> Server {
        let listener = ns.run(|| TcpListener::bind(addr).unwrap());
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = thread::spawn(move || {
            let mut held = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(120);
            while !stopping.load(Ordering::SeqCst) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        if hold {
                            held.push(s);
                        } else {
                            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                            let _ = s.read_to_end(&mut Vec::new());
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(1))
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            }
        });
        Server {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

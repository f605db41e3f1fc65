//! Live-test harness: a throwaway network namespace, a known population of TCP sockets held in
//! it, and `ss` (iproute2) as the reference view of that namespace. Needs root and `ip netns`.
// Each test crate that includes this module uses a different subset of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const NS_PREFIX: &str = "tw-test-";
/// Upper bound for any one command (ss, tw, ip) run by a test.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// A uniquely named network namespace, deleted on drop together with any process still in it.
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `tw-test-{pid}-{tag}` with `lo` up and `tcp_tw_reuse` = 0.
    pub fn new(tag: &str) -> Netns {
        require_root();
        remove_stale_namespaces();
        let name = format!("{NS_PREFIX}{}-{tag}", std::process::id());
        run_checked(Command::new("ip").args(["netns", "add", &name]));
        // Built before the remaining steps so that a failure below still deletes the namespace.
        let ns = Netns { name };
        run_checked(Command::new("ip").args(["-n", &ns.name, "link", "set", "lo", "up"]));
        // A new namespace starts at 2 (loopback only): a connect() to a destination that already
        // has a TIME_WAIT entry older than ~1 s would take it over and shrink the population.
        ns.set_sysctl("net/ipv4/tcp_tw_reuse", "0");
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip netns exec NAME program`: add arguments and run it like any `Command`.
    pub fn cmd(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Runs `program args` in the namespace with a time limit, capturing its output.
    pub fn output(&self, program: &str, args: &[&str]) -> Output {
        let mut cmd = self.cmd(program);
        cmd.args(args);
        run_bounded(&mut cmd)
    }

    /// Runs `f` on a thread that has joined the namespace. Sockets made there stay in the
    /// namespace and may be used from any thread afterwards.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.name);
        thread::scope(|scope| {
            let joined = scope.spawn(|| {
                let handle = File::open(&path).unwrap_or_else(|e| panic!("opening {path}: {e}"));
                // SAFETY: setns only reads the fd; it moves this thread alone (CLONE_NEWNET is
                // allowed in a multi-threaded process), and the thread ends after `f`.
                if unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    panic!("setns {path}: {}", std::io::Error::last_os_error());
                }
                f()
            });
            joined
                .join()
                .unwrap_or_else(|payload| std::panic::resume_unwind(payload))
        })
    }

    /// Reads a sysctl of this namespace (`key` as a path under /proc/sys, e.g. `net/ipv4/...`).
    pub fn sysctl(&self, key: &str) -> String {
        // /proc/sys/net resolves against the namespace of the thread that opens it.
        let path = format!("/proc/sys/{key}");
        self.run(|| std::fs::read_to_string(&path))
            .unwrap_or_else(|e| panic!("reading {path} in {}: {e}", self.name))
            .trim()
            .to_string()
    }

    pub fn set_sysctl(&self, key: &str, value: &str) {
        let path = format!("/proc/sys/{key}");
        self.run(|| std::fs::write(&path, value))
            .unwrap_or_else(|e| panic!("writing {value} to {path} in {}: {e}", self.name));
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Anything still running in the namespace was started by this test: end it by PID.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse::<libc::pid_t>().ok())
            {
                // SAFETY: plain syscall on a PID that `ip netns pids` found in our namespace.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let deleted = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .status();
        if !matches!(deleted, Ok(s) if s.success()) && !thread::panicking() {
            panic!("could not delete network namespace {}", self.name);
        }
    }
}

/// Panics with the reason when the live tests cannot run, so that they never pass silently.
pub fn require_root() {
    const HOW: &str = "the live tests need root and iproute2 (`ip netns`, `ss`) to build a \
                       private network namespace; run them with `scripts/test` (as root; e.g. `scripts/test --test live`)";
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        panic!("{HOW} (running as uid {})", unsafe { libc::geteuid() });
    }
    for probe in [&["ip", "netns", "list"][..], &["ss", "-V"]] {
        match Command::new(probe[0]).args(&probe[1..]).output() {
            Ok(out) if out.status.success() => {}
            other => panic!("{HOW} (`{}` failed: {other:?})", probe.join(" ")),
        }
    }
}

/// Deletes `tw-test-PID-*` namespaces left by earlier runs that were killed before `Drop` ran.
fn remove_stale_namespaces() {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(NS_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "delete", &name]).status();
        }
    }
}

/// Runs `cmd` to completion within [`COMMAND_TIMEOUT`], killing it (by PID) if it overruns.
pub fn run_bounded(cmd: &mut Command) -> Output {
    let what = format!("{cmd:?}");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {what}: {e}"));
    wait_bounded(child, &what, Instant::now() + COMMAND_TIMEOUT)
}

/// Collects a child's piped stdout and stderr and waits for it; past `deadline`, kills it (by
/// PID) and fails the test.
pub fn wait_bounded(mut child: Child, what: &str, deadline: Instant) -> Output {
    // Drain both pipes on their own threads so a chatty child cannot block on a full pipe.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish in time");
        }
        thread::sleep(Duration::from_millis(2));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

fn run_checked(cmd: &mut Command) -> Output {
    let out = run_bounded(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// How a population's connections are addressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Net {
    /// AF_INET on 127.0.0.x.
    V4,
    /// AF_INET6 on ::1.
    V6,
    /// AF_INET6 sockets on IPv4-mapped addresses (`::ffff:127.0.0.x`), listener included.
    Mapped,
}

impl Net {
    /// Address of this family's `i`-th listener. Fixed ports below the ephemeral range (32768+),
    /// so port filters on them never catch a client's port; distinct addresses so CIDR filters
    /// can pick listeners apart.
    fn listener_addr(self, i: usize) -> SocketAddr {
        let i = u8::try_from(i)
            .ok()
            .filter(|&i| i < 90)
            .expect("at most 90 listeners");
        match self {
            Net::V4 => SocketAddr::new(Ipv4Addr::new(127, 0, 0, 2 + i).into(), 5000 + u16::from(i)),
            Net::V6 => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), 6000 + u16::from(i)),
            Net::Mapped => SocketAddr::new(
                Ipv4Addr::new(127, 0, 0, 100 + i).to_ipv6_mapped().into(),
                7000 + u16::from(i),
            ),
        }
    }
}

/// One socket the population made, with the state the kernel should report for it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Expected {
    /// netstat spelling: LISTEN, ESTABLISHED, CLOSE_WAIT, FIN_WAIT2, TIME_WAIT.
    pub state: &'static str,
    pub local: SocketAddr,
    pub peer: SocketAddr,
}

impl Expected {
    /// "inet" or "inet6", as tw's JSON says; IPv4-mapped sockets are AF_INET6.
    pub fn family(&self) -> &'static str {
        match self.local {
            SocketAddr::V4(_) => "inet",
            SocketAddr::V6(_) => "inet6",
        }
    }

    /// (state, local, peer) in tw's address format: `127.0.0.1:80`, `[::1]:80`.
    pub fn tuple(&self) -> Tuple {
        (
            self.state.to_string(),
            self.local.to_string(),
            self.peer.to_string(),
        )
    }
}

pub type Tuple = (String, String, String);

/// What to make; see [`Population::builder`].
#[derive(Default)]
pub struct Builder {
    listeners: BTreeMap<Net, usize>,
    established: Vec<(Net, usize)>,
    half_closed: Vec<(Net, usize)>,
    orphan_fin_wait2: Vec<(Net, usize)>,
    time_wait: Vec<(Net, usize)>,
}

impl Builder {
    /// `n` LISTEN sockets; connections of the same `Net` are spread over them round-robin
    /// (one is made if a connection needs it and none was asked for).
    pub fn listeners(mut self, net: Net, n: usize) -> Self {
        self.listeners.insert(net, n);
        self
    }

    /// `n` connections, each two ESTABLISHED sockets.
    pub fn established(mut self, net: Net, n: usize) -> Self {
        self.established.push((net, n));
        self
    }

    /// `n` pairs that stay put: the client shuts down writing but keeps its fd, so it is a full
    /// FIN_WAIT2 socket without a timer; the server never closes, so it stays CLOSE_WAIT.
    pub fn half_closed(mut self, net: Net, n: usize) -> Self {
        self.half_closed.push((net, n));
        self
    }

    /// `n` pairs where the client closed while the server keeps its end: the client side is a
    /// FIN_WAIT2 minisocket (timewait timer, tcp_fin_timeout = 60 s), the server CLOSE_WAIT.
    pub fn orphan_fin_wait2(mut self, net: Net, n: usize) -> Self {
        self.orphan_fin_wait2.push((net, n));
        self
    }

    /// `n` TIME_WAIT sockets (client side; the server side is gone). They live 60 s.
    pub fn time_wait(mut self, net: Net, n: usize) -> Self {
        self.time_wait.push((net, n));
        self
    }

    /// Makes the sockets in `ns`, then waits until `ss` sees exactly them.
    pub fn build(self, ns: &Netns) -> Population {
        let tw_total: usize = self
            .time_wait
            .iter()
            .chain(&self.orphan_fin_wait2)
            .map(|t| t.1)
            .sum();
        // tcp_max_tw_buckets is per namespace (131072 in a new one); beyond it the kernel
        // silently skips TIME_WAIT. It counts FIN_WAIT2 minisockets too; keep 2x headroom.
        let buckets: usize = ns
            .sysctl("net/ipv4/tcp_max_tw_buckets")
            .parse()
            .expect("tcp_max_tw_buckets is a number");
        if buckets < tw_total * 2 {
            ns.set_sysctl("net/ipv4/tcp_max_tw_buckets", &(tw_total * 2).to_string());
        }
        let mut population = ns.run(|| self.make());
        population.settle(ns);
        population
    }

    fn make(&self) -> Population {
        let mut pop = Population::default();
        let mut listeners: BTreeMap<Net, Vec<TcpListener>> = BTreeMap::new();
        let needed = [
            &self.established,
            &self.half_closed,
            &self.orphan_fin_wait2,
            &self.time_wait,
        ]
        .into_iter()
        .flatten()
        .filter(|(_, n)| *n > 0)
        .map(|(net, _)| (*net, 1));
        for (net, n) in self.listeners.iter().map(|(k, v)| (*k, *v)).chain(needed) {
            let have = listeners.entry(net).or_default();
            while have.len() < n {
                let addr = net.listener_addr(have.len());
                let l = TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
                pop.expect("LISTEN", l.local_addr().unwrap(), unspecified(addr));
                have.push(l);
            }
        }
        let mut next = BTreeMap::<Net, usize>::new();
        let mut connect = |net: Net| -> (TcpStream, TcpStream) {
            let slot = next.entry(net).or_default();
            let all = &listeners[&net];
            let listener = &all[*slot % all.len()];
            *slot += 1;
            connect_pair(listener)
        };

        for &(net, n) in &self.established {
            for _ in 0..n {
                let (client, server) = connect(net);
                pop.expect_pair("ESTABLISHED", &client, "ESTABLISHED", &server);
                pop.hold(client);
                pop.hold(server);
            }
        }
        for &(net, n) in &self.half_closed {
            for _ in 0..n {
                let (client, server) = connect(net);
                client
                    .shutdown(std::net::Shutdown::Write)
                    .expect("shutdown(Write)");
                pop.expect_pair("FIN_WAIT2", &client, "CLOSE_WAIT", &server);
                pop.hold(client);
                pop.hold(server);
            }
        }
        for &(net, n) in &self.orphan_fin_wait2 {
            for _ in 0..n {
                let (client, server) = connect(net);
                pop.expect(
                    "FIN_WAIT2",
                    client.local_addr().unwrap(),
                    client.peer_addr().unwrap(),
                );
                pop.expect(
                    "CLOSE_WAIT",
                    server.local_addr().unwrap(),
                    server.peer_addr().unwrap(),
                );
                drop(client);
                pop.hold(server);
            }
        }
        for &(net, n) in &self.time_wait {
            for _ in 0..n {
                let (client, mut server) = connect(net);
                pop.expect(
                    "TIME_WAIT",
                    client.local_addr().unwrap(),
                    client.peer_addr().unwrap(),
                );
                drop(client);
                // Wait for the client's FIN before closing, so the server goes CLOSE_WAIT ->
                // LAST_ACK -> gone and only the client (who closed first) keeps TIME_WAIT;
                // closing early could make it a simultaneous close with TIME_WAIT on both ends.
                match server.read(&mut [0u8; 1]) {
                    Ok(0) => {}
                    other => panic!("expected EOF from the closed client, got {other:?}"),
                }
                drop(server);
            }
        }
        for l in listeners.into_values().flatten() {
            pop.hold(l);
        }
        pop
    }
}

/// Connects a client to `listener` and accepts it; both sides blocking with a read timeout so a
/// harness mistake fails instead of hanging.
fn connect_pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
    let addr = listener.local_addr().unwrap();
    let client = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let (server, from) = listener.accept().expect("accept");
    // Only one connection is ever pending, so this is the one just made.
    assert_eq!(from, client.local_addr().unwrap());
    server
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    (client, server)
}

/// The peer the kernel reports for a listener: the unspecified address of its family, port 0.
fn unspecified(local: SocketAddr) -> SocketAddr {
    let ip: IpAddr = match local {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    SocketAddr::new(ip, 0)
}

/// A known set of sockets in a namespace, held open until dropped.
#[derive(Default)]
pub struct Population {
    held: Vec<OwnedFd>,
    expected: Vec<Expected>,
}

impl Population {
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Every socket made, with the state it should be in.
    pub fn expected(&self) -> &[Expected] {
        &self.expected
    }

    pub fn total(&self) -> usize {
        self.expected.len()
    }

    /// Count per state (netstat spelling).
    pub fn counts(&self) -> BTreeMap<String, usize> {
        self.counts_where(|_| true)
    }

    /// Count per state of the sockets that match `keep`.
    pub fn counts_where(&self, keep: impl Fn(&Expected) -> bool) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for e in self.expected.iter().filter(|e| keep(e)) {
            *counts.entry(e.state.to_string()).or_insert(0) += 1;
        }
        counts
    }

    pub fn count_where(&self, keep: impl Fn(&Expected) -> bool) -> usize {
        self.expected.iter().filter(|e| keep(e)).count()
    }

    /// Count per family: "inet" / "inet6".
    pub fn family_counts(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for e in &self.expected {
            *counts.entry(e.family()).or_insert(0) += 1;
        }
        counts
    }

    pub fn tuples(&self) -> BTreeSet<Tuple> {
        self.expected.iter().map(Expected::tuple).collect()
    }

    fn expect(&mut self, state: &'static str, local: SocketAddr, peer: SocketAddr) {
        self.expected.push(Expected { state, local, peer });
    }

    fn expect_pair(&mut self, cs: &'static str, c: &TcpStream, ss: &'static str, s: &TcpStream) {
        self.expect(cs, c.local_addr().unwrap(), c.peer_addr().unwrap());
        self.expect(ss, s.local_addr().unwrap(), s.peer_addr().unwrap());
    }

    fn hold(&mut self, socket: impl Into<OwnedFd>) {
        self.held.push(socket.into());
    }

    /// Waits (bounded) until the FIN/ACK exchanges on loopback have landed and `ss` reports
    /// exactly the expected sockets.
    fn settle(&mut self, ns: &Netns) {
        let want = self.tuples();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let seen = ss_tuples(ns, &[]);
            if seen == want {
                return;
            }
            if Instant::now() > deadline {
                // Rarely (about 1 in 200k here) a loopback connection closed
                // first ends without a TIME_WAIT entry. That is the kernel's
                // doing, not tw's: accept one such loss, say so, and expect
                // what the kernel really holds. Anything else still fails.
                let missing: Vec<&Tuple> = want.difference(&seen).collect();
                if seen.is_subset(&want) && missing.len() == 1 && missing[0].0 == "TIME_WAIT" {
                    eprintln!(
                        "note: {} ended without TIME_WAIT in {}; expecting the rest",
                        missing[0].1,
                        ns.name()
                    );
                    let gone = missing[0].clone();
                    self.expected.retain(|e| e.tuple() != gone);
                    return;
                }
                panic!(
                    "population never settled in {}: expected but not in ss: {:?}; in ss but not \
                     expected: {:?}",
                    ns.name(),
                    want.difference(&seen).take(10).collect::<Vec<_>>(),
                    seen.difference(&want).take(10).collect::<Vec<_>>(),
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// netstat's spelling of an ss state name.
pub fn netstat_state(ss: &str) -> &str {
    match ss {
        "ESTAB" => "ESTABLISHED",
        "SYN-SENT" => "SYN_SENT",
        "SYN-RECV" => "SYN_RECV",
        "FIN-WAIT-1" => "FIN_WAIT1",
        "FIN-WAIT-2" => "FIN_WAIT2",
        "TIME-WAIT" => "TIME_WAIT",
        "UNCONN" => "CLOSE",
        "CLOSE-WAIT" => "CLOSE_WAIT",
        "LAST-ACK" => "LAST_ACK",
        other => other, // LISTEN, CLOSING, UNKNOWN are spelt alike
    }
}

/// One socket line of `ss -tan[o]` (always with the State column: no single-state filter).
#[derive(Clone, Debug)]
pub struct SsLine {
    /// netstat spelling
    pub state: String,
    pub local: String,
    pub peer: String,
    /// tw's timer kind and the time left in ms, from `-o`'s `timer:(kind,time,retrans)`.
    pub timer: Option<(String, u64)>,
}

/// Runs `ss -tano EXTRA...` in the namespace and parses every socket line.
pub fn ss_lines(ns: &Netns, extra: &[&str]) -> Vec<SsLine> {
    let mut args = vec!["-tano"];
    args.extend_from_slice(extra);
    let out = run_checked(ns.cmd("ss").args(&args));
    parse_ss_text(&String::from_utf8(out.stdout).expect("ss prints UTF-8"))
}

/// Parses `ss -tan[o]` output (with its header line) into socket lines.
pub fn parse_ss_text(text: &str) -> Vec<SsLine> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    assert!(
        header.starts_with("State"),
        "ss output has no State column (a single-state filter drops it): {header:?}"
    );
    lines.map(parse_ss_line).collect()
}

fn parse_ss_line(line: &str) -> SsLine {
    let f: Vec<&str> = line.split_whitespace().collect();
    assert!(f.len() >= 5, "unexpected ss line: {line:?}");
    let timer = f[5..]
        .iter()
        .find_map(|t| t.strip_prefix("timer:("))
        .map(|t| parse_ss_timer(t).unwrap_or_else(|| panic!("unexpected ss timer in {line:?}")));
    SsLine {
        state: netstat_state(f[0]).to_string(),
        local: ss_endpoint(f[3]),
        peer: ss_endpoint(f[4]),
        timer,
    }
}

/// ss's endpoint as the kernel has it (`[::]:0`, `0.0.0.0:0`). ss writes port 0 as `*`, and the
/// unspecified IPv6 address as `*` unless the socket is IPV6_V6ONLY (which binding to ::1
/// sets), then as `[::]`. ss never writes `*` for an IPv4 address.
pub fn ss_endpoint(endpoint: &str) -> String {
    let (host, port) = endpoint
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("ss endpoint without a port: {endpoint:?}"));
    let host = if host == "*" { "[::]" } else { host };
    let port = if port == "*" { "0" } else { port };
    format!("{host}:{port}")
}

/// tw's endpoint as the kernel has it: tw prints port 0 (a listener's peer) as `*`, like ss.
pub fn tw_endpoint(s: &str) -> String {
    match s.strip_suffix(":*") {
        Some(host) => format!("{host}:0"),
        None => s.to_string(),
    }
}

/// Parses the inside of ss's `timer:(timewait,59sec,0)` into tw's kind and milliseconds.
pub fn parse_ss_timer(inner: &str) -> Option<(String, u64)> {
    let mut parts = inner.trim_end_matches(')').split(',');
    let kind = match parts.next()? {
        "on" => "retransmit",
        "persist" => "probe0",
        k @ ("keepalive" | "timewait") => k,
        _ => return None,
    };
    Some((kind.to_string(), parse_ss_duration(parts.next()?)?))
}

/// Parses iproute2 6.1's `print_ms_timer`: `1min`, `1min5sec`, `59sec`, `5.123ms` (5.123 s),
/// `320ms`, or `` for 0. Below 10 s it keeps milliseconds; from 10 s on it truncates to seconds,
/// and from 10 min on to minutes.
pub fn parse_ss_duration(text: &str) -> Option<u64> {
    let (minutes, rest) = match text.split_once("min") {
        Some((m, rest)) => (m.parse::<u64>().ok()?, rest),
        None => (0, text),
    };
    let ms = if rest.is_empty() {
        0
    } else if let Some(s) = rest.strip_suffix("sec") {
        s.parse::<u64>().ok()? * 1000
    } else {
        let body = rest.strip_suffix("ms")?;
        match body.split_once('.') {
            Some((s, ms)) => s.parse::<u64>().ok()? * 1000 + ms.parse::<u64>().ok()?,
            None => body.parse().ok()?,
        }
    };
    Some(minutes * 60_000 + ms)
}

/// `ss -tan EXTRA...` in the namespace, counted per state (netstat spelling).
pub fn ss_counts(ns: &Netns, extra: &[&str]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for line in ss_lines(ns, extra) {
        *counts.entry(line.state).or_insert(0) += 1;
    }
    counts
}

/// The set of (state, local, peer) ss reports, in tw's address format.
pub fn ss_tuples(ns: &Netns, extra: &[&str]) -> BTreeSet<Tuple> {
    ss_lines(ns, extra)
        .into_iter()
        .map(|l| (l.state, l.local, l.peer))
        .collect()
}

/// Time left (ms) of each TIME_WAIT socket, keyed by (local, peer).
pub fn ss_timewait_ms(ns: &Netns) -> BTreeMap<(String, String), u64> {
    ss_lines(ns, &[])
        .into_iter()
        .filter(|l| l.state == "TIME_WAIT")
        .map(|l| {
            let (kind, ms) = l.timer.expect("ss shows a timer on every TIME_WAIT socket");
            assert_eq!(kind, "timewait");
            ((l.local, l.peer), ms)
        })
        .collect()
}

/// A daemon a test started (HAProxy, nginx, Prometheus, tw serve), ended by
/// PID when dropped: SIGTERM, then SIGKILL after 5 s, and the test fails if
/// it did not stop on SIGTERM.
pub struct Daemon {
    pub child: std::process::Child,
    pub what: String,
}

impl Daemon {
    /// Panics if the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("{} exited: {status}", self.what);
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: a plain signal to the PID of a child this test started and has not reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !thread::panicking() {
            panic!("{} did not stop on SIGTERM within 5 s", self.what);
        }
    }
}

/// `promtool check metrics` on `text`: passes only with no lint problem.
pub fn assert_promtool_accepts(text: &str) {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect(
            "these tests need promtool, from Debian's prometheus package \
             (`apt-get install prometheus`, as scripts/test does)",
        );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

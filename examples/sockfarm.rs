//! A socket farm for benchmarks (not part of tw): makes a private network
//! namespace, fills it with TIME_WAIT sockets (client-side active close, spread
//! over many loopback source addresses and listener ports so that no port range
//! caps it), ESTABLISHED pairs, FIN_WAIT2/CLOSE_WAIT pairs and listeners, says
//! `ready`, holds them, and deletes the namespace on exit, Ctrl-C or failure.
//!
//! ```text
//! sudo cargo run --release --example sockfarm -- --time-wait 1000000
//! # ready netns=tw-farm-4242 time_wait=1000000 ...; then, from another shell:
//! sudo ip netns exec tw-farm-4242 target/release/tw count --state time-wait
//! ```
//!
//! TIME_WAIT lasts 60 s (TCP_TIMEWAIT_LEN) from the moment each socket is
//! made, so the population is whole for 60 s less the build time; the farm
//! reports both and refuses a build slower than [`MAX_BUILD`].

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;

/// A build slower than this leaves too little of the 60 s TIME_WAIT life to
/// measure anything.
const MAX_BUILD: Duration = Duration::from_secs(40);
/// Bound on every blocking connect, accept and read, so that a mistake fails
/// instead of hanging.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// First listener port: below the default ephemeral range (32768-60999), so
/// no client port ever lands on a listening port.
const FIRST_PORT: u16 = 5000;

#[derive(Debug, Parser)]
#[command(about = "Fills a private network namespace with TCP sockets for benchmarks")]
struct Args {
    /// Namespace to create (it must not exist) [default: tw-farm-PID].
    #[arg(long)]
    netns: Option<String>,
    /// TIME_WAIT sockets to make (client side; the server side is gone).
    #[arg(long, default_value_t = 100_000)]
    time_wait: u64,
    /// ESTABLISHED connections to hold (two sockets each).
    #[arg(long, default_value_t = 1000)]
    established: u64,
    /// Half-closed connections to hold: the client shut down writing (a full
    /// FIN_WAIT2 socket), the server never closes (CLOSE_WAIT).
    #[arg(long, default_value_t = 100)]
    half_closed: u64,
    /// Listening ports, on 127.0.0.2 upwards from port 5000.
    #[arg(long, default_value_t = 32)]
    listeners: u16,
    /// Destination addresses the listeners are spread over (127.0.0.2...).
    #[arg(long, default_value_t = 4)]
    dests: u8,
    /// Loopback source addresses the clients bind to (127.1.x.y).
    #[arg(long, default_value_t = 256)]
    sources: u32,
    /// Threads making TIME_WAIT [default: one per core].
    #[arg(long)]
    threads: Option<usize>,
    /// Share the machine's established hash instead of giving the namespace
    /// its own (see `Netns::create`).
    #[arg(long)]
    shared_ehash: bool,
    /// Hold the sockets at most this long after `ready`, in seconds; SIGINT,
    /// SIGTERM or SIGHUP end the hold earlier.
    #[arg(long, default_value_t = 300)]
    hold: u64,
}

/// Set by SIGINT, SIGTERM and SIGHUP: every loop stops and the farm cleans up.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sockfarm: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("needs root to create a network namespace (ip netns add); run it with sudo");
    }
    if args.time_wait > 0 && (args.listeners == 0 || args.sources == 0 || args.dests == 0) {
        bail!("--listeners, --sources and --dests must be at least 1");
    }
    if args.sources > 254 * 256 {
        bail!(
            "--sources: at most {} (127.1.0.1 to 127.1.255.254)",
            254 * 256
        );
    }
    install_signal_handlers();
    let threads = args
        .threads
        .unwrap_or_else(|| thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let name = args
        .netns
        .clone()
        .unwrap_or_else(|| format!("tw-farm-{}", std::process::id()));
    let ns = Netns::create(&name, !args.shared_ehash)?;
    ns.enter()?;
    raise_fd_limit();
    // tcp_max_tw_buckets is per namespace; past it the kernel silently skips
    // TIME_WAIT (TCPTimeWaitOverflow). It counts FIN_WAIT2 minisockets too.
    let buckets = (args.time_wait + args.half_closed) * 2 + 1024;
    write_sysctl("net/ipv4/tcp_max_tw_buckets", &buckets.to_string())?;
    // A new namespace starts at 2 (loopback): a connect() could take over a
    // TIME_WAIT entry older than 1 s and shrink the population.
    write_sysctl("net/ipv4/tcp_tw_reuse", "0")?;

    let listeners = make_listeners(args.listeners.max(threads as u16), args.dests)?;
    let sources: Vec<Ipv4Addr> = (0..args.sources)
        .map(|k| Ipv4Addr::new(127, 1, (k / 254) as u8, (k % 254 + 1) as u8))
        .collect();

    let mut held = Vec::new();
    for i in 0..args.established {
        let (c, s) = pair(&listeners, &sources, i)?;
        held.push(c);
        held.push(s.into());
    }
    for i in 0..args.half_closed {
        let (c, s) = pair(&listeners, &sources, args.established + i)?;
        // SAFETY: shutdown on an fd we own.
        if unsafe { libc::shutdown(c.as_raw_fd(), libc::SHUT_WR) } != 0 {
            return Err(io::Error::last_os_error()).context("shutdown(SHUT_WR)");
        }
        held.push(c);
        held.push(s.into());
    }

    let start = Instant::now();
    let made = AtomicU64::new(0);
    make_time_wait(&listeners, &sources, args.time_wait, threads, &made)?;
    let build = start.elapsed();
    if build > MAX_BUILD {
        bail!(
            "making {} TIME_WAIT took {:.1} s (limit {} s): too little of their 60 s life \
             is left; use more --threads or fewer sockets",
            args.time_wait,
            build.as_secs_f64(),
            MAX_BUILD.as_secs()
        );
    }
    let tw = settle(args.time_wait)?;
    let overflow = tcp_ext("TCPTimeWaitOverflow")?;
    if overflow != 0 {
        bail!("TCPTimeWaitOverflow is {overflow}: the kernel skipped TIME_WAIT");
    }
    let listening = listeners.len();
    // The first TIME_WAIT was made at `start` and expires 60 s later.
    let whole_for = Duration::from_secs(60).saturating_sub(start.elapsed());
    println!(
        "ready netns={name} time_wait={tw} established={} half_closed={} listeners={listening} \
         threads={threads} build_ms={} whole_for_ms={}",
        args.established,
        args.half_closed,
        build.as_millis(),
        whole_for.as_millis()
    );
    io::stdout().flush()?;
    eprintln!(
        "sockfarm: {tw} TIME_WAIT in {:.1} s ({:.0}/s); the population is whole for {:.1} s more",
        build.as_secs_f64(),
        tw as f64 / build.as_secs_f64().max(1e-9),
        whole_for.as_secs_f64()
    );

    let until = Instant::now() + Duration::from_secs(args.hold);
    while !STOP.load(Ordering::SeqCst) && Instant::now() < until {
        thread::sleep(Duration::from_millis(50));
    }
    drop(held);
    drop(listeners);
    drop(ns);
    Ok(())
}

fn install_signal_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe; sa_flags = 0 lets blocking calls return EINTR.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// A namespace made with `ip netns add`, deleted on drop. Sockets in it are
/// freed when this process, their last holder, exits.
struct Netns {
    name: String,
}

impl Netns {
    /// With `own_ehash`, the namespace gets its own TCP established hash, as
    /// large as the machine's (tcp_child_ehash_entries, set in this namespace
    /// only for the moment of `ip netns add`): every dump walks the whole hash
    /// of its namespace, so a shared one would make dumps elsewhere on the
    /// machine walk the farm's sockets, and the farm's dumps walk theirs.
    fn create(name: &str, own_ehash: bool) -> Result<Netns> {
        const CHILD: &str = "net/ipv4/tcp_child_ehash_entries";
        let before = own_ehash.then(|| read_sysctl(CHILD)).transpose()?;
        if before.is_some() {
            let global = read_sysctl("net/ipv4/tcp_ehash_entries")?;
            // Negative: this namespace shares the initial one's hash.
            write_sysctl(CHILD, global.trim_start_matches('-'))?;
        }
        let added = ip(&["netns", "add", name]);
        if let Some(before) = &before {
            write_sysctl(CHILD, before)?;
        }
        added?;
        let ns = Netns {
            name: name.to_string(),
        };
        ip(&["-n", name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Moves this thread, and so every thread it starts later, into the
    /// namespace.
    fn enter(&self) -> Result<()> {
        let path = format!("/run/netns/{}", self.name);
        let f = File::open(&path).with_context(|| format!("opening {path}"))?;
        // SAFETY: setns only reads the fd. Threads started afterwards inherit
        // the namespace (clone copies the caller's nsproxy).
        if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error()).with_context(|| format!("setns {path}"));
        }
        Ok(())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = ip(&["netns", "delete", &self.name]) {
            eprintln!("sockfarm: could not delete namespace {}: {e:#}", self.name);
        }
    }
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip (iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// /proc/sys/net resolves against the namespace of the thread that opens it.
fn read_sysctl(key: &str) -> Result<String> {
    let path = format!("/proc/sys/{key}");
    Ok(std::fs::read_to_string(&path)
        .with_context(|| format!("reading {path}"))?
        .trim()
        .to_string())
}

fn write_sysctl(key: &str, value: &str) -> Result<()> {
    let path = format!("/proc/sys/{key}");
    std::fs::write(&path, value).with_context(|| format!("writing {value} to {path}"))
}

fn raise_fd_limit() {
    // SAFETY: plain get/setrlimit on a local struct.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

/// Listener `i` on 127.0.0.(2 + i % dests), port 5000 + i, with accept
/// bounded by [`IO_TIMEOUT`].
fn make_listeners(n: u16, dests: u8) -> Result<Vec<TcpListener>> {
    (0..n)
        .map(|i| {
            let addr = SocketAddrV4::new(
                Ipv4Addr::new(127, 0, 0, 2 + (i % u16::from(dests)) as u8),
                FIRST_PORT + i,
            );
            let l = TcpListener::bind(addr).with_context(|| format!("bind {addr}"))?;
            set_timeout(l.as_raw_fd(), libc::SO_RCVTIMEO)?;
            Ok(l)
        })
        .collect()
}

fn set_timeout(fd: libc::c_int, which: libc::c_int) -> Result<()> {
    let tv = libc::timeval {
        tv_sec: IO_TIMEOUT.as_secs() as libc::time_t,
        tv_usec: 0,
    };
    // SAFETY: setsockopt reads `tv` for its size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            which,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error()).context("setsockopt timeout");
    }
    Ok(())
}

/// A client socket bound to `src` with IP_BIND_ADDRESS_NO_PORT, so connect()
/// picks the port per (src, dst, dport) and every source address gets the
/// whole ephemeral range toward each listener; connected to `dst`.
fn connect_from(src: Ipv4Addr, dst: SocketAddrV4) -> Result<OwnedFd> {
    // SAFETY: socket() returns a new fd or -1; OwnedFd takes it over.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error()).context("socket");
    }
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    // SAFETY: setsockopt reads an int.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error()).context("IP_BIND_ADDRESS_NO_PORT");
    }
    // connect() on a blocking socket is bounded by SO_SNDTIMEO.
    set_timeout(fd.as_raw_fd(), libc::SO_SNDTIMEO)?;
    let sa = |a: SocketAddrV4| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(a.ip().octets()),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    let local = sa(SocketAddrV4::new(src, 0));
    // SAFETY: bind and connect read a sockaddr_in of `len` bytes.
    if unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&local as *const libc::sockaddr_in).cast(),
            len,
        )
    } != 0
    {
        return Err(io::Error::last_os_error()).with_context(|| format!("bind {src}"));
    }
    let remote = sa(dst);
    loop {
        let rc = unsafe {
            libc::connect(
                fd.as_raw_fd(),
                (&remote as *const libc::sockaddr_in).cast(),
                len,
            )
        };
        if rc == 0 {
            return Ok(fd);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted || STOP.load(Ordering::SeqCst) {
            return Err(e).with_context(|| format!("connect {src} -> {dst}"));
        }
    }
}

fn local_v4(l: &TcpListener) -> Result<SocketAddrV4> {
    match l.local_addr()? {
        std::net::SocketAddr::V4(a) => Ok(a),
        other => Err(anyhow!("listener on {other}: expected IPv4")),
    }
}

/// Connection `i` of the held population: a client and the server's end.
fn pair(listeners: &[TcpListener], sources: &[Ipv4Addr], i: u64) -> Result<(OwnedFd, TcpStream)> {
    let l = &listeners[(i % listeners.len() as u64) as usize];
    let src = sources[((i / listeners.len() as u64) % sources.len() as u64) as usize];
    let client = connect_from(src, local_v4(l)?)?;
    let (server, _) = l.accept().context("accept")?;
    Ok((client, server))
}

/// Makes `n` TIME_WAIT sockets on `threads` threads; each thread owns the
/// listeners `t, t + threads, ...`, so what it accepts is what it connected.
fn make_time_wait(
    listeners: &[TcpListener],
    sources: &[Ipv4Addr],
    n: u64,
    threads: usize,
    made: &AtomicU64,
) -> Result<()> {
    let started = Instant::now();
    thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let own: Vec<&TcpListener> = listeners.iter().skip(t).step_by(threads).collect();
                let share = n / threads as u64 + u64::from((t as u64) < n % threads as u64);
                scope.spawn(move || worker(&own, sources, share, made, started))
            })
            .collect();
        // Progress on stderr while the workers run.
        let mut last = Instant::now();
        while workers.iter().any(|w| !w.is_finished()) {
            thread::sleep(Duration::from_millis(50));
            if last.elapsed() >= Duration::from_secs(5) {
                last = Instant::now();
                let m = made.load(Ordering::Relaxed);
                eprintln!(
                    "sockfarm: {m} of {n} TIME_WAIT after {:.0} s",
                    started.elapsed().as_secs_f64()
                );
            }
        }
        let mut first_err = None;
        for w in workers {
            let r = w
                .join()
                .unwrap_or_else(|_| Err(anyhow!("a worker thread panicked")));
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    })
}

/// One thread's share. Per connection: the client closes first (FIN), the
/// server reads the EOF and closes, so only the client side keeps TIME_WAIT;
/// closing the server before the FIN arrived could make it a simultaneous
/// close with TIME_WAIT on both ends.
fn worker(
    own: &[&TcpListener],
    sources: &[Ipv4Addr],
    n: u64,
    made: &AtomicU64,
    started: Instant,
) -> Result<()> {
    let dsts: Vec<SocketAddrV4> = own.iter().map(|l| local_v4(l)).collect::<Result<_>>()?;
    // Threads own disjoint listeners, so their (src, dst, dport) port
    // searches never meet.
    let mut src_i = 0;
    let mut dst_i = 0;
    let mut byte = [0u8; 1];
    for i in 0..n {
        if STOP.load(Ordering::Relaxed) {
            bail!("interrupted");
        }
        if i.is_multiple_of(1024) && started.elapsed() > MAX_BUILD {
            bail!(
                "{} TIME_WAIT made in {} s, too slowly: the first ones would expire before the \
                 last; is the machine busy?",
                made.load(Ordering::Relaxed),
                MAX_BUILD.as_secs()
            );
        }
        let client = connect_from(sources[src_i], dsts[dst_i])?;
        let (mut server, _) = own[dst_i].accept().context("accept")?;
        server.set_read_timeout(Some(IO_TIMEOUT))?;
        drop(client);
        match server.read(&mut byte) {
            Ok(0) => {}
            Ok(_) => bail!("the server read data where the client's FIN was expected"),
            Err(e) => return Err(e).context("waiting for the client's FIN"),
        }
        drop(server);
        made.fetch_add(1, Ordering::Relaxed);
        dst_i += 1;
        if dst_i == dsts.len() {
            dst_i = 0;
            src_i = (src_i + 1) % sources.len();
        }
    }
    Ok(())
}

/// Waits (at most 10 s) until /proc/net/sockstat's `tw` (TIME_WAIT and
/// FIN_WAIT2 minisockets of this namespace) reaches `want`, or holds still
/// for a second within 0.01% of it (a rare connection can end without
/// TIME_WAIT on a busy machine); returns the count, which the benchmark then
/// checks every tool's output against.
fn settle(want: u64) -> Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = (u64::MAX, Instant::now());
    loop {
        let text = std::fs::read_to_string("/proc/net/sockstat")?;
        let tw = text
            .lines()
            .find(|l| l.starts_with("TCP:"))
            .and_then(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.iter()
                    .position(|w| *w == "tw")
                    .and_then(|i| f.get(i + 1)?.parse::<u64>().ok())
            })
            .ok_or_else(|| anyhow!("/proc/net/sockstat has no TCP tw count"))?;
        if tw == want {
            return Ok(tw);
        }
        if tw != last.0 {
            last = (tw, Instant::now());
        } else if tw <= want
            && tw >= want - want / 10_000
            && last.1.elapsed() >= Duration::from_secs(1)
        {
            eprintln!(
                "sockfarm: {} connections ended without TIME_WAIT",
                want - tw
            );
            return Ok(tw);
        }
        if Instant::now() > deadline {
            bail!("/proc/net/sockstat says tw {tw}, expected {want}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A TcpExt counter of this namespace (/proc/net/netstat: a names line, then
/// a values line).
fn tcp_ext(name: &str) -> Result<u64> {
    let text = std::fs::read_to_string("/proc/net/netstat")?;
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (lines.next(), lines.next());
    let (Some(names), Some(values)) = (names, values) else {
        bail!("/proc/net/netstat has no TcpExt lines");
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.parse().ok())
        .ok_or_else(|| anyhow!("/proc/net/netstat has no TcpExt {name}"))
}

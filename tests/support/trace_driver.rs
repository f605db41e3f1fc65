//! A load driver for tests/trace.rs, built with rustc at test time (std only) and started in a
//! test's network namespace, so that its pid is its own and the events `tw trace` credits to it
//! can be checked. Prints its pid first, then what it did, one `key value` per line.
//!
//!   close-first ADDR RATE SECONDS  connect and close (client closes first) at RATE/s
//!   exhaust ADDR COUNT             connect COUNT times holding every connection open; count
//!                                  the connects that fail with EADDRNOTAVAIL
//!   linger0 ADDR COUNT             connect, SO_LINGER 0, close: a reset instead of a FIN
//!   alternate ADDR COUNT           COUNT times: a linger-0 close, then a close that sends a FIN
//!   serve ADDR SECONDS             accept for SECONDS, each connection read to EOF then closed
//!                                  (scripts/bench-trace)

use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

const EADDRNOTAVAIL: i32 = 99;
const SOL_SOCKET: i32 = 1;
const SO_LINGER: i32 = 13;

extern "C" {
    fn setsockopt(fd: i32, level: i32, name: i32, value: *const u8, len: u32) -> i32;
}

/// Connects and closes with SO_LINGER 0: the kernel sends a reset.
fn reset(addr: &SocketAddr) {
    let s = TcpStream::connect_timeout(addr, Duration::from_secs(2)).expect("connect");
    let linger: [i32; 2] = [1, 0];
    // SAFETY: a valid fd and an 8-byte struct linger.
    let rc = unsafe {
        setsockopt(
            s.as_raw_fd(),
            SOL_SOCKET,
            SO_LINGER,
            linger.as_ptr().cast(),
            8,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER");
    drop(s);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr: SocketAddr = args[1].parse().expect("ADDR");
    println!("pid {}", std::process::id());
    match args[0].as_str() {
        "close-first" => {
            let rate: u32 = args[2].parse().expect("RATE");
            let secs: u32 = args[3].parse().expect("SECONDS");
            let total = rate * secs;
            let start = Instant::now();
            let mut made = 0u32;
            let mut failed = 0u32;
            for i in 0..total {
                // Fixed schedule: connection i at start + i/rate.
                let due = start + Duration::from_secs_f64(f64::from(i) / f64::from(rate));
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                    Ok(s) => {
                        drop(s);
                        made += 1;
                    }
                    Err(_) => failed += 1,
                }
            }
            println!("made {made}");
            println!("failed {failed}");
            println!("seconds {:.3}", start.elapsed().as_secs_f64());
        }
        "exhaust" => {
            let count: u32 = args[2].parse().expect("COUNT");
            let mut held = Vec::new();
            let (mut eaddrnotavail, mut other) = (0u32, 0u32);
            for _ in 0..count {
                match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                    Ok(s) => held.push(s),
                    Err(e) if e.raw_os_error() == Some(EADDRNOTAVAIL) => eaddrnotavail += 1,
                    Err(_) => other += 1,
                }
            }
            println!("made {}", held.len());
            println!("eaddrnotavail {eaddrnotavail}");
            println!("other {other}");
        }
        "linger0" => {
            let count: u32 = args[2].parse().expect("COUNT");
            for _ in 0..count {
                reset(&addr);
            }
            println!("made {count}");
        }
        "alternate" => {
            let count: u32 = args[2].parse().expect("COUNT");
            for _ in 0..count {
                reset(&addr);
                drop(TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect"));
                // Let the FIN exchange end before the next reset.
                std::thread::sleep(Duration::from_millis(5));
            }
            println!("made {count}");
        }
        "serve" => {
            let secs: u64 = args[2].parse().expect("SECONDS");
            let listener = std::net::TcpListener::bind(addr).expect("bind");
            listener.set_nonblocking(true).unwrap();
            let end = Instant::now() + Duration::from_secs(secs);
            let mut served = 0u64;
            while Instant::now() < end {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
                        let _ = std::io::Read::read_to_end(&mut s, &mut Vec::new());
                        served += 1;
                    }
                    Err(_) => std::thread::sleep(Duration::from_micros(50)),
                }
            }
            println!("served {served}");
        }
        other => panic!("unknown mode {other}"),
    }
}

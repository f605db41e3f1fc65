//! Throughput of tw's own work, in sockets per second, on a synthetic table
//! shaped like the socket farm's (TIME_WAIT toward a few listeners from many
//! loopback sources, some ESTABLISHED): decoding sock_diag replies, parsing
//! /proc/net/tcp, counting, grouping, the summary, and the plain listing.
//! The kernel's side is measured by scripts/bench; this is the part tw adds.
//!
//!   cargo bench --bench throughput

use std::hint::black_box;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use tw::model::Flow;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tw::analyze::aggregate::{Counter, GroupBy, Groups, Summary};
use tw::model::Consumer;
use tw::model::{Direction, Endpoint, Family, Socket, StateSet, TcpState, Timer, TimerKind};
use tw::render::{plain, Report};
use tw::source::netlink::decode;
use tw::source::proc::parse;

const N: usize = 100_000;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_DONE: u16 = 3;
const NLM_F_MULTI: u16 = 2;

/// Socket `i`: TIME_WAIT from 127.1.x.y to one of 32 listeners, except
/// every 100th, which is ESTABLISHED.
fn socket(i: usize) -> Socket {
    let src = Ipv4Addr::new(127, 1, (i / 254 % 256) as u8, (i % 254 + 1) as u8);
    let dst = Ipv4Addr::new(127, 0, 0, 2 + (i % 4) as u8);
    let state = if i.is_multiple_of(100) {
        TcpState::Established
    } else {
        TcpState::TimeWait
    };
    let mut s = Socket::new(
        Family::Inet,
        state,
        Endpoint::new(src.into(), 32768 + (i % 28000) as u16),
        Endpoint::new(dst.into(), 5000 + (i % 32) as u16),
    );
    if state == TcpState::TimeWait {
        s.timer = Some(Timer {
            kind: TimerKind::TimeWait,
            ms: (i % 60_000) as u32,
        });
    } else {
        s.inode = 100_000 + i as u64;
    }
    s.direction = Some(Direction::Outbound);
    s
}

/// The sockets as one sock_diag reply: an nlmsghdr and a struct
/// inet_diag_msg each (include/uapi/linux/inet_diag.h), then NLMSG_DONE.
fn netlink_reply(socks: &[Socket]) -> Vec<u8> {
    let mut b = Vec::with_capacity(socks.len() * 88 + 20);
    let header = |b: &mut Vec<u8>, len: u32, kind: u16| {
        b.extend_from_slice(&len.to_ne_bytes());
        b.extend_from_slice(&kind.to_ne_bytes());
        b.extend_from_slice(&NLM_F_MULTI.to_ne_bytes());
        b.extend_from_slice(&[0; 8]);
    };
    let v4 = |e: &Endpoint| match e.addr {
        std::net::IpAddr::V4(a) => a.octets(),
        std::net::IpAddr::V6(_) => unreachable!("the synthetic table is IPv4"),
    };
    for s in socks {
        header(&mut b, 16 + 72, SOCK_DIAG_BY_FAMILY);
        let timer = s.timer.map_or(0, |_| 3);
        b.extend_from_slice(&[libc::AF_INET as u8, s.state.kernel(), timer, 0]);
        b.extend_from_slice(&s.local.port.to_be_bytes());
        b.extend_from_slice(&s.peer.port.to_be_bytes());
        for e in [&s.local, &s.peer] {
            b.extend_from_slice(&v4(e));
            b.extend_from_slice(&[0; 12]);
        }
        b.extend_from_slice(&[0; 12]); // interface, cookie
        let ms = s.timer.map_or(0, |t| t.ms);
        for v in [ms, s.recv_q, s.send_q, s.uid, s.inode as u32] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
    }
    header(&mut b, 20, NLMSG_DONE);
    b.extend_from_slice(&0u32.to_ne_bytes());
    b
}

/// The sockets as /proc/net/tcp prints them (tcp4_seq_show and friends in
/// net/ipv4/tcp_ipv4.c), each line padded to 149 characters.
fn proc_table(socks: &[Socket]) -> Vec<u8> {
    let mut t = Vec::new();
    writeln!(
        t,
        "{:<149}",
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
    )
    .unwrap();
    let hex = |e: &Endpoint| match e.addr {
        std::net::IpAddr::V4(a) => format!("{:08X}:{:04X}", u32::from_ne_bytes(a.octets()), e.port),
        std::net::IpAddr::V6(_) => unreachable!("the synthetic table is IPv4"),
    };
    for (i, s) in socks.iter().enumerate() {
        let (tr, when) = s.timer.map_or((0, 0), |t| (3, t.ms / 10));
        let line = format!(
            "{i:4}: {} {} {:02X} {:08X}:{:08X} {tr:02X}:{when:08X} 00000000 {:5} {:8} {} 1 0000000000000000",
            hex(&s.local),
            hex(&s.peer),
            s.state.kernel(),
            s.send_q,
            s.recv_q,
            s.uid,
            0,
            s.inode,
        );
        writeln!(t, "{line:<149}").unwrap();
    }
    t
}

fn feed(c: &mut dyn Consumer, socks: &[Socket]) {
    for s in socks {
        let _ = c.push(black_box(s));
    }
}

fn readers(c: &mut Criterion) {
    let socks: Vec<Socket> = (0..N).map(socket).collect();
    let reply = netlink_reply(&socks);
    let table = proc_table(&socks);
    let mut g = c.benchmark_group("read");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("netlink decode", |b| {
        b.iter(|| {
            let mut n = 0u64;
            decode(black_box(&reply), &mut |_| {
                n += 1;
                Flow::Continue(())
            })
            .unwrap();
            assert_eq!(n, N as u64);
        })
    });
    g.bench_function("proc parse", |b| {
        b.iter(|| {
            let mut n = 0u64;
            parse(black_box(&table[..]), StateSet::ALL, &mut |_| {
                n += 1;
                Flow::Continue(())
            })
            .unwrap();
            assert_eq!(n, N as u64);
        })
    });
    g.finish();
}

fn aggregation(c: &mut Criterion) {
    let socks: Vec<Socket> = (0..N).map(socket).collect();
    let mut g = c.benchmark_group("aggregate");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("count", |b| {
        b.iter(|| {
            let mut c = Counter::default();
            feed(&mut c, black_box(&socks));
            c.total
        })
    });
    for by in [GroupBy::Raddr, GroupBy::Peer, GroupBy::State] {
        g.bench_function(format!("group by {}", by.name()), |b| {
            b.iter(|| {
                let mut groups = Groups::new(by);
                feed(&mut groups, black_box(&socks));
                groups.total
            })
        });
    }
    g.bench_function("summary", |b| {
        b.iter(|| {
            let mut sum = Summary::default();
            feed(&mut sum, black_box(&socks));
            sum.total
        })
    });
    g.bench_function("plain listing", |b| {
        b.iter(|| plain::render(&Report::Sockets(black_box(&socks)), &mut io::sink()).unwrap())
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = readers, aggregation
}
criterion_main!(benches);

//! Direction of each socket, learned in the same pass as the read.
//!
//! A socket is inbound when its local port is listening. Ephemeral port
//! selection skips every port whose bind bucket was made by bind() (the
//! `fastreuse >= 0` check in __inet_hash_connect, net/ipv4/inet_hashtables.c),
//! so a connect()ed socket never sits on a listening port: the port alone
//! decides, whatever the address or family.
//!
//! Both sock_diag (the `cb->args[0]` phases of inet_diag_dump_icsk /
//! tcp_diag_dump) and /proc/net/tcp (tcp_get_idx: listening_get_first, then
//! established_get_first) walk the listening hash before the connection hash,
//! per family, so every listener is known before the sockets it accepted.
//!
//! A socket whose listener has since closed (a restart, a reload) keeps its
//! local port. Then the port range decides: connect() takes its local port
//! from ip_local_port_range, so a local port inside it is outbound; a local
//! port outside it facing a peer port inside it is an accepted connection
//! whose listener is gone: inbound, counted as a guess (the read says how
//! many). Where neither port says, outbound, as before.

use crate::model::ports::DEFAULT_PORT_RANGE;
use crate::model::{Direction, PortRange, Socket, TcpState};

/// The set of listening ports: 65,536 bits.
#[derive(Clone)]
pub struct Listeners {
    bits: Box<[u64; 1024]>,
    /// ip_local_port_range of the namespace read (the kernel's default when
    /// unknown).
    range: PortRange,
    /// Sockets taken as inbound by the port range alone (no listener).
    pub guessed: u64,
}

impl Default for Listeners {
    fn default() -> Self {
        Listeners {
            bits: Box::new([0; 1024]),
            range: DEFAULT_PORT_RANGE,
            guessed: 0,
        }
    }
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n: u32 = self.bits.iter().map(|w| w.count_ones()).sum();
        write!(f, "Listeners({n} ports)")
    }
}

impl Listeners {
    pub fn add(&mut self, port: u16) {
        self.bits[usize::from(port >> 6)] |= 1 << (port & 63);
    }

    pub fn contains(&self, port: u16) -> bool {
        self.bits[usize::from(port >> 6)] & (1 << (port & 63)) != 0
    }

    pub fn clear(&mut self) {
        self.bits.fill(0);
        self.guessed = 0;
    }

    /// Classifies against `range` (ip_local_port_range) where no listener
    /// answers.
    pub fn set_range(&mut self, range: PortRange) {
        self.range = range;
    }

    /// Learns `s` if it listens, then returns its direction.
    pub fn classify(&mut self, s: &Socket) -> Direction {
        if s.state == TcpState::Listen {
            self.add(s.local.port);
            return Direction::Inbound;
        }
        if self.contains(s.local.port) {
            return Direction::Inbound;
        }
        // No listener on the local port.
        if self.range.contains(s.local.port) {
            // connect() picked it; a socket accepted on a port inside the
            // range whose listener is gone is the rare miss.
            return Direction::Outbound;
        }
        if self.range.contains(s.peer.port) {
            self.guessed += 1;
            Direction::Inbound
        } else {
            // Neither port says: outbound, as tw always took it (an explicit
            // bind() outside the range, or two fixed ports).
            Direction::Outbound
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Endpoint, Family};

    fn sock(state: TcpState, local: u16, peer: u16) -> Socket {
        let ip = "127.0.0.1".parse().unwrap();
        Socket::new(
            Family::Inet,
            state,
            Endpoint::new(ip, local),
            Endpoint::new(ip, peer),
        )
    }

    #[test]
    fn listeners_make_their_port_inbound() {
        let mut l = Listeners::default();
        assert_eq!(
            l.classify(&sock(TcpState::Listen, 80, 0)),
            Direction::Inbound
        );
        assert_eq!(
            l.classify(&sock(TcpState::TimeWait, 80, 40000)),
            Direction::Inbound
        );
        assert_eq!(
            l.classify(&sock(TcpState::TimeWait, 40000, 80)),
            Direction::Outbound
        );
        assert_eq!(
            l.classify(&sock(TcpState::Established, 65535, 1)),
            Direction::Outbound
        );
        l.add(65535);
        l.add(0);
        assert!(l.contains(65535) && l.contains(0) && !l.contains(65534));
        assert_eq!(format!("{l:?}"), "Listeners(3 ports)");
        l.clear();
        assert!(!l.contains(80));
    }

    #[test]
    fn a_listener_gone_after_a_restart_is_told_by_the_port_range() {
        let mut l = Listeners::default();
        l.set_range(PortRange {
            lo: 32768,
            hi: 60999,
        });
        // The server on 8080 restarted: its TIME_WAIT stay inbound, a guess.
        assert_eq!(
            l.classify(&sock(TcpState::TimeWait, 8080, 40000)),
            Direction::Inbound
        );
        assert_eq!(l.guessed, 1);
        // A local port from the range is connect()'s: outbound, no guess.
        assert_eq!(
            l.classify(&sock(TcpState::TimeWait, 40001, 8080)),
            Direction::Outbound
        );
        assert_eq!(l.guessed, 1);
        // Neither side ephemeral: outbound, as before.
        assert_eq!(
            l.classify(&sock(TcpState::Established, 2000, 3000)),
            Direction::Outbound
        );
        assert_eq!(l.guessed, 1);
        // With the listener back, no guess.
        l.classify(&sock(TcpState::Listen, 8080, 0));
        assert_eq!(
            l.classify(&sock(TcpState::TimeWait, 8080, 40002)),
            Direction::Inbound
        );
        assert_eq!(l.guessed, 1);
        l.clear();
        assert_eq!(l.guessed, 0);
    }
}

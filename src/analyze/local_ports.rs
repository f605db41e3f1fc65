//! Local ports as services: sockets of a listener grouped by the address
//! and port they were accepted on, so two backends on 127.0.0.21:8080 and
//! 127.0.0.22:8080 stay two groups instead of one "8080".
//!
//! A port is shown alone when that says it all: its inbound sockets share one
//! local address, or a wildcard listener (0.0.0.0 / [::]) serves them and
//! no listener is bound to a specific address on it. Otherwise each group is
//! the address and port; sockets at an address with no listener of its own
//! (served by the wildcard one) are counted under the bare port. Outbound
//! sockets (ephemeral local ports) are counted by port, as before.

use std::collections::{HashMap, HashSet};

use crate::analyze::aggregate::Key;
use crate::model::{Direction, Endpoint, Socket, TcpState};

#[derive(Debug, Default)]
pub struct LocalPorts {
    /// Inbound sockets (and listeners, when counted) by local endpoint.
    inbound: HashMap<Endpoint, u64>,
    /// Everything else by local port.
    other: HashMap<u16, u64>,
    /// Ports with a listener on the unspecified address.
    wildcard: HashSet<u16>,
    /// Listeners bound to one address.
    specific: HashSet<Endpoint>,
}

impl LocalPorts {
    /// Notes a listener (whether or not it is counted).
    pub fn listener(&mut self, s: &Socket) {
        if s.state != TcpState::Listen {
            return;
        }
        if s.local.addr.is_unspecified() {
            self.wildcard.insert(s.local.port);
        } else {
            self.specific.insert(s.local);
        }
    }

    /// Counts `s` under its local port or its listener's address and port.
    pub fn count(&mut self, s: &Socket) {
        if s.state == TcpState::Listen || s.direction == Some(Direction::Inbound) {
            *self.inbound.entry(s.local).or_insert(0) += 1;
        } else {
            *self.other.entry(s.local.port).or_insert(0) += 1;
        }
    }

    pub fn clear(&mut self) {
        *self = LocalPorts::default();
    }

    /// The groups: bare ports where one address or a wildcard listener
    /// covers a port, address and port where listeners differ.
    pub fn groups(&self) -> HashMap<Key, u64> {
        let mut addrs: HashMap<u16, HashSet<std::net::IpAddr>> = HashMap::new();
        for e in self.inbound.keys() {
            addrs.entry(e.port).or_default().insert(e.addr);
        }
        let has_specific: HashSet<u16> = self.specific.iter().map(|e| e.port).collect();
        let mut out: HashMap<Key, u64> = HashMap::new();
        for (p, n) in &self.other {
            *out.entry(Key::Port(*p)).or_insert(0) += n;
        }
        for (e, n) in &self.inbound {
            let one_addr = addrs.get(&e.port).is_some_and(|a| a.len() == 1);
            let wildcard_only = self.wildcard.contains(&e.port) && !has_specific.contains(&e.port);
            let own_listener = self.specific.contains(e);
            let served_by_wildcard = self.wildcard.contains(&e.port) && !own_listener;
            let key = if one_addr || wildcard_only || served_by_wildcard || e.addr.is_unspecified()
            {
                Key::Port(e.port)
            } else {
                Key::Endpoint(*e)
            };
            *out.entry(key).or_insert(0) += n;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Family;

    fn sock(state: TcpState, local: &str, dir: Direction) -> Socket {
        let sa: std::net::SocketAddr = local.parse().unwrap();
        let mut s = Socket::new(
            Family::Inet,
            state,
            Endpoint::new(sa.ip(), sa.port()),
            Endpoint::new("127.0.0.1".parse().unwrap(), 50000),
        );
        s.direction = Some(dir);
        s
    }

    fn groups(socks: &[Socket]) -> Vec<(String, u64)> {
        let mut l = LocalPorts::default();
        for s in socks {
            l.listener(s);
            l.count(s);
        }
        let mut v: Vec<(String, u64)> = l
            .groups()
            .into_iter()
            .map(|(k, n)| (k.to_string(), n))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn two_backends_on_one_port_stay_two() {
        use Direction::Inbound;
        let tw = TcpState::TimeWait;
        let mut socks = vec![sock(tw, "127.0.0.21:8080", Inbound); 3];
        socks.extend(vec![sock(tw, "127.0.0.22:8080", Inbound); 2]);
        // Without listeners (a time-wait filter): the addresses differ.
        assert_eq!(
            groups(&socks),
            [("127.0.0.21:8080".into(), 3), ("127.0.0.22:8080".into(), 2)]
        );
        // With their own listeners, each listener counts too.
        socks.push(sock(TcpState::Listen, "127.0.0.21:8080", Inbound));
        socks.push(sock(TcpState::Listen, "127.0.0.22:8080", Inbound));
        assert_eq!(
            groups(&socks),
            [("127.0.0.21:8080".into(), 4), ("127.0.0.22:8080".into(), 3)]
        );
    }

    #[test]
    fn one_wildcard_listener_or_one_address_is_just_the_port() {
        use Direction::{Inbound, Outbound};
        let est = TcpState::Established;
        let socks = [
            sock(TcpState::Listen, "0.0.0.0:22", Inbound),
            sock(est, "10.0.0.1:22", Inbound),
            sock(est, "10.0.0.2:22", Inbound),
            sock(est, "10.0.0.1:40000", Outbound),
        ];
        assert_eq!(groups(&socks), [("22".into(), 3), ("40000".into(), 1)]);
        let one = [
            sock(est, "10.0.0.1:80", Inbound),
            sock(est, "10.0.0.1:80", Inbound),
        ];
        assert_eq!(groups(&one), [("80".into(), 2)]);
    }

    #[test]
    fn a_specific_listener_beside_a_wildcard_one_is_apart() {
        use Direction::Inbound;
        let est = TcpState::Established;
        let socks = [
            sock(TcpState::Listen, "0.0.0.0:80", Inbound),
            sock(TcpState::Listen, "10.0.0.9:80", Inbound),
            sock(est, "10.0.0.9:80", Inbound),
            sock(est, "10.0.0.1:80", Inbound),
        ];
        assert_eq!(
            groups(&socks),
            [("10.0.0.9:80".into(), 2), ("80".into(), 2)]
        );
    }
}

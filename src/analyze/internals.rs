//! Sockets held with their extras (tcp_info, socket memory), for `tw ls -i`
//! / `-m`: only these listings pay for the extras, boxed beside each row.

use crate::model::internals::{Extras, Wants};
use crate::model::{Consumer, Flow, Socket};

use super::aggregate::Order;

/// One socket and what sock_diag said about it beyond its row.
#[derive(Debug, Clone)]
pub struct Row {
    pub socket: Socket,
    /// `None` where the reader had nothing (TIME_WAIT, /proc, captures).
    pub extras: Option<Box<Extras>>,
}

/// Holds the rows of a listing with extras, in `order` (the reader's when
/// `None`), at most `limit` of them.
pub struct CollectExtras {
    pub rows: Vec<Row>,
    wants: Wants,
    order: Option<Order>,
    limit: Option<usize>,
}

impl CollectExtras {
    pub fn new(wants: Wants, order: Option<Order>, limit: Option<usize>) -> CollectExtras {
        CollectExtras {
            rows: Vec::new(),
            wants,
            order,
            limit,
        }
    }

    /// The rows, sorted stably and cut to the limit.
    pub fn finish(mut self) -> Vec<Row> {
        if let Some(order) = self.order {
            self.rows.sort_by(|a, b| order(&a.socket, &b.socket));
        }
        if let Some(n) = self.limit {
            self.rows.truncate(n);
        }
        self.rows
    }

    fn take(&mut self, row: Row) -> Flow {
        self.rows.push(row);
        match (self.order, self.limit) {
            // In the reader's order the first `n` are final.
            (None, Some(n)) if self.rows.len() >= n => Flow::Break(()),
            _ => Flow::Continue(()),
        }
    }
}

impl Consumer for CollectExtras {
    fn push(&mut self, s: &Socket) -> Flow {
        self.take(Row {
            socket: *s,
            extras: None,
        })
    }

    fn push_extras(&mut self, s: &Socket, extras: &Extras) -> Flow {
        self.take(Row {
            socket: *s,
            extras: (!extras.is_empty()).then(|| Box::new(extras.clone())),
        })
    }

    fn restart(&mut self) {
        self.rows.clear();
    }

    fn wants(&self) -> Wants {
        self.wants
    }
}

/// True when rows that could carry tcp_info (a full socket, not TIME_WAIT
/// or a request socket) came without any: the reader had none to give.
pub fn none_given(rows: &[Row]) -> bool {
    use crate::model::TcpState::{SynRecv, TimeWait};
    let eligible = rows
        .iter()
        .filter(|r| !matches!(r.socket.state, TimeWait | SynRecv));
    let mut any = false;
    for r in eligible {
        if r.extras.is_some() {
            return false;
        }
        any = true;
    }
    any
}

/// Per-group health over tcp_info, for `tw count --by KEY --stats`: which
/// backend is slow or lossy, one line each.
pub struct GroupStats {
    by: super::aggregate::GroupBy,
    groups: std::collections::HashMap<super::aggregate::Key, Acc>,
    /// Sockets that came without tcp_info (the reader had none).
    pub without_info: u64,
}

/// What one group adds up.
#[derive(Debug, Default, Clone)]
struct Acc {
    rtt_us: Vec<u32>,
    total_retrans: u64,
    segs_out: u64,
    bytes_sent: u64,
    bytes_received: u64,
}

/// One group's line.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub connections: u64,
    pub rtt_p50_us: u32,
    pub rtt_p95_us: u32,
    pub rtt_max_us: u32,
    /// Segments retransmitted over the connections' lives.
    pub total_retrans: u64,
    pub segs_out: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

impl Stats {
    /// Retransmitted segments per segment sent, 0..=1 (0 with nothing sent).
    pub fn retrans_rate(&self) -> f64 {
        if self.segs_out == 0 {
            0.0
        } else {
            self.total_retrans as f64 / self.segs_out as f64
        }
    }
}

/// The nearest-rank percentile `p` (0..=100) of sorted `v`.
pub fn percentile(sorted: &[u32], p: u32) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (u64::from(p) * sorted.len() as u64).div_ceil(100).max(1);
    sorted[(rank as usize - 1).min(sorted.len() - 1)]
}

impl GroupStats {
    pub fn new(by: super::aggregate::GroupBy) -> GroupStats {
        GroupStats {
            by,
            groups: std::collections::HashMap::new(),
            without_info: 0,
        }
    }

    /// Groups by connections, most first (ties by key), at most `top`.
    pub fn ranked(&self, top: Option<usize>) -> Vec<(super::aggregate::Key, Stats)> {
        let mut v: Vec<_> = self
            .groups
            .iter()
            .map(|(k, a)| {
                let mut rtt = a.rtt_us.clone();
                rtt.sort_unstable();
                let stats = Stats {
                    connections: rtt.len() as u64,
                    rtt_p50_us: percentile(&rtt, 50),
                    rtt_p95_us: percentile(&rtt, 95),
                    rtt_max_us: rtt.last().copied().unwrap_or(0),
                    total_retrans: a.total_retrans,
                    segs_out: a.segs_out,
                    bytes_sent: a.bytes_sent,
                    bytes_received: a.bytes_received,
                };
                (*k, stats)
            })
            .collect();
        v.sort_by(|a, b| b.1.connections.cmp(&a.1.connections).then(a.0.cmp(&b.0)));
        if let Some(n) = top {
            v.truncate(n);
        }
        v
    }
}

impl Consumer for GroupStats {
    fn push(&mut self, s: &Socket) -> Flow {
        if is_connection(s) {
            self.without_info += 1;
        }
        Flow::Continue(())
    }

    fn push_extras(&mut self, s: &Socket, x: &Extras) -> Flow {
        let Some(i) = x.info.as_ref().filter(|_| is_connection(s)) else {
            return self.push(s);
        };
        let a = self.groups.entry(self.by.key(s)).or_default();
        a.rtt_us.push(i.rtt_us().unwrap_or(0));
        a.total_retrans += u64::from(i.total_retrans().unwrap_or(0));
        a.segs_out += u64::from(i.segs_out().unwrap_or(0));
        a.bytes_sent += i.bytes_sent().or(i.bytes_acked()).unwrap_or(0);
        a.bytes_received += i.bytes_received().unwrap_or(0);
        Flow::Continue(())
    }

    fn restart(&mut self) {
        self.groups.clear();
        self.without_info = 0;
    }

    fn wants(&self) -> Wants {
        Wants {
            info: true,
            memory: false,
        }
    }
}

/// A socket with a connection's tcp_info: not a listener, nor a TIME_WAIT
/// or request minisocket (which have none).
fn is_connection(s: &Socket) -> bool {
    use crate::model::TcpState::{Listen, SynRecv, TimeWait};
    !matches!(s.state, Listen | TimeWait | SynRecv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::aggregate::{GroupBy, Key};
    use crate::model::abi::TCP_INFO_LEN;
    use crate::model::internals::TcpInfo;
    use crate::model::{Endpoint, Family, TcpState};

    fn sock(state: TcpState, peer: &str) -> Socket {
        Socket::new(
            Family::Inet,
            state,
            Endpoint::new("127.0.0.1".parse().unwrap(), 40000),
            Endpoint::new(peer.parse().unwrap(), 443),
        )
    }

    fn info(rtt_us: u32, total_retrans: u32, segs_out: u32, sent: u64) -> Extras {
        let mut b = vec![0u8; TCP_INFO_LEN];
        b[68..72].copy_from_slice(&rtt_us.to_ne_bytes());
        b[100..104].copy_from_slice(&total_retrans.to_ne_bytes());
        b[136..140].copy_from_slice(&segs_out.to_ne_bytes());
        b[200..208].copy_from_slice(&sent.to_ne_bytes());
        Extras {
            info: Some(TcpInfo::from_bytes(&b)),
            ..Extras::default()
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), 50);
        assert_eq!(percentile(&v, 95), 95);
        assert_eq!(percentile(&v, 100), 100);
        assert_eq!(percentile(&[7], 95), 7);
        assert_eq!(percentile(&[1, 2], 50), 1);
        assert_eq!(percentile(&[], 50), 0);
    }

    #[test]
    fn stats_per_peer_leave_out_sockets_without_a_connection() {
        let mut g = GroupStats::new(GroupBy::Raddr);
        for rtt in [100, 200, 300, 10_000] {
            let _ = g.push_extras(
                &sock(TcpState::Established, "10.0.0.1"),
                &info(rtt, 1, 100, 5),
            );
        }
        let _ = g.push_extras(
            &sock(TcpState::Established, "10.0.0.2"),
            &info(50, 0, 10, 7),
        );
        // A listener's tcp_info and a TIME_WAIT socket are no connection.
        let _ = g.push_extras(&sock(TcpState::Listen, "0.0.0.0"), &info(0, 0, 0, 0));
        let _ = g.push(&sock(TcpState::TimeWait, "10.0.0.1"));
        assert_eq!(g.without_info, 0);
        let r = g.ranked(None);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].0, Key::Addr("10.0.0.1".parse().unwrap()));
        let s = &r[0].1;
        assert_eq!(s.connections, 4);
        assert_eq!(
            (s.rtt_p50_us, s.rtt_p95_us, s.rtt_max_us),
            (200, 10_000, 10_000)
        );
        assert_eq!(s.bytes_sent, 20);
        assert!((s.retrans_rate() - 0.01).abs() < 1e-9);
        assert_eq!(r[1].1.connections, 1);
        assert_eq!(g.ranked(Some(1)).len(), 1);
        // Read from /proc: connections came without tcp_info, and are said.
        let _ = g.push(&sock(TcpState::Established, "10.0.0.3"));
        assert_eq!(g.without_info, 1);
    }
}

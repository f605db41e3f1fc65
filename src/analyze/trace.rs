//! `tw trace`: events counted per interval per key (process, destination,
//! or listener), with a bound on the number of keys.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::model::event::{Event, EventKind, Process};
use crate::model::{Direction, Endpoint, TcpState};

/// `--by`: what a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum By {
    /// One row per process and destination (the default).
    #[default]
    #[value(name = "process-destination", hide = true)]
    ProcessDestination,
    /// One row per process (pid and command).
    Process,
    /// One row per destination: the peer's address and port for outbound
    /// connections, the peer's address for inbound ones.
    Destination,
    /// One row per listening address and port, for inbound connections only.
    Listener,
}

/// A row's key; the fields `--by` does not use are None.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub netns: u32,
    pub process: Option<Process>,
    /// Address, and port unless the connection is inbound.
    pub destination: Option<(IpAddr, Option<u16>)>,
    pub listener: Option<Endpoint>,
}

/// Index of the FIN_WAIT2-substate subset of time_wait in [`Counts`].
pub const FIN_WAIT2: usize = EventKind::ALL.len();

/// Events per kind (in `EventKind::ALL` order), then the TIME_WAIT
/// minisockets made in the FIN_WAIT2 substate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts(pub [u64; EventKind::ALL.len() + 1]);

impl Counts {
    pub fn get(&self, k: EventKind) -> u64 {
        self.0[k as usize]
    }

    pub fn fin_wait2(&self) -> u64 {
        self.0[FIN_WAIT2]
    }

    pub fn total(&self) -> u64 {
        self.0[..FIN_WAIT2].iter().sum()
    }

    pub fn add(&mut self, o: &Counts) {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a += b;
        }
    }
}

/// Rows past this many in one interval are summed into one `(other)` row,
/// so memory stays bounded whatever the traffic.
pub const MAX_KEYS: usize = 10_000;

/// One interval's counts.
#[derive(Debug, Default)]
pub struct Tally {
    by: By,
    rows: HashMap<Key, Counts>,
    /// Events folded into the `(other)` row.
    pub folded: u64,
}

impl Tally {
    pub fn new(by: By) -> Tally {
        Tally {
            by,
            ..Tally::default()
        }
    }

    /// The key of `e` under `--by`, or None when the event has no row
    /// (`--by listener` and an outbound or unknown socket).
    pub fn key(&self, e: &Event) -> Option<Key> {
        let mut k = Key {
            netns: e.netns,
            process: None,
            destination: None,
            listener: None,
        };
        match self.by {
            By::ProcessDestination => {
                k.process = Some(e.process.clone());
                k.destination = Some(e.destination());
            }
            By::Process => k.process = Some(e.process.clone()),
            By::Destination => k.destination = Some(e.destination()),
            By::Listener => {
                if e.direction != Some(Direction::Inbound) {
                    return None;
                }
                k.listener = Some(e.local);
            }
        }
        Some(k)
    }

    pub fn add(&mut self, e: &Event) {
        let Some(mut key) = self.key(e) else {
            return;
        };
        if self.rows.len() >= MAX_KEYS && !self.rows.contains_key(&key) {
            self.folded += 1;
            key = Key {
                netns: e.netns,
                process: Some(Process {
                    pid: 0,
                    comm: "(other)".into(),
                }),
                destination: None,
                listener: None,
            };
        }
        let c = self.rows.entry(key).or_default();
        c.0[e.kind as usize] += 1;
        if e.kind == EventKind::TimeWait && e.substate == Some(TcpState::FinWait2) {
            c.0[FIN_WAIT2] += 1;
        }
    }

    /// The interval's rows, busiest first, and a fresh interval.
    pub fn take(&mut self) -> Vec<(Key, Counts)> {
        self.folded = 0;
        let mut rows: Vec<(Key, Counts)> = self.rows.drain().collect();
        rows.sort_by(|a, b| b.1.total().cmp(&a.1.total()).then_with(|| a.0.cmp(&b.0)));
        rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Family;

    fn event(kind: EventKind, pid: u32, peer: &str, dir: Option<Direction>) -> Event {
        let peer: std::net::SocketAddr = peer.parse().unwrap();
        Event {
            ts_ns: 1,
            netns: 7,
            kind,
            process: Process {
                pid,
                comm: format!("p{pid}"),
            },
            family: Family::Inet,
            local: Endpoint {
                addr: "10.0.0.1".parse().unwrap(),
                port: 8080,
            },
            peer: Endpoint {
                addr: peer.ip(),
                port: peer.port(),
            },
            direction: dir,
            substate: None,
        }
    }

    #[test]
    fn counts_go_to_the_process_and_destination_row() {
        let mut t = Tally::new(By::ProcessDestination);
        let out = Some(Direction::Outbound);
        for _ in 0..3 {
            t.add(&event(EventKind::Connect, 1, "10.0.0.2:80", out));
        }
        let mut tw = event(EventKind::TimeWait, 1, "10.0.0.2:80", out);
        tw.substate = Some(TcpState::FinWait2);
        t.add(&tw);
        t.add(&event(EventKind::Connect, 2, "10.0.0.2:80", out));
        let rows = t.take();
        assert_eq!(rows.len(), 2);
        let (k, c) = &rows[0];
        assert_eq!(k.process.as_ref().unwrap().pid, 1);
        assert_eq!(k.destination, Some(("10.0.0.2".parse().unwrap(), Some(80))));
        assert_eq!(c.get(EventKind::Connect), 3);
        assert_eq!(c.get(EventKind::TimeWait), 1);
        assert_eq!(c.fin_wait2(), 1);
        assert_eq!(c.total(), 4);
        assert!(t.is_empty(), "take starts a new interval");
    }

    #[test]
    fn by_listener_keeps_inbound_events_only() {
        let mut t = Tally::new(By::Listener);
        t.add(&event(
            EventKind::Accept,
            1,
            "10.0.0.9:5000",
            Some(Direction::Inbound),
        ));
        t.add(&event(
            EventKind::Accept,
            1,
            "10.0.0.8:5001",
            Some(Direction::Inbound),
        ));
        t.add(&event(
            EventKind::Connect,
            1,
            "10.0.0.2:80",
            Some(Direction::Outbound),
        ));
        t.add(&event(EventKind::RstRecv, 1, "10.0.0.2:80", None));
        let rows = t.take();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].0.listener.unwrap().to_string(), "10.0.0.1:8080");
        assert_eq!(rows[0].1.get(EventKind::Accept), 2);
    }

    #[test]
    fn keys_past_the_bound_fold_into_one_row() {
        let mut t = Tally::new(By::Process);
        let n = MAX_KEYS as u32 + 5;
        for pid in 0..n {
            t.add(&event(EventKind::Connect, pid + 1, "10.0.0.2:80", None));
        }
        assert_eq!(t.folded, 5);
        let rows = t.take();
        assert_eq!(rows.len(), MAX_KEYS + 1);
        let total: u64 = rows.iter().map(|r| r.1.total()).sum();
        assert_eq!(total, u64::from(n));
        let other = rows
            .iter()
            .find(|r| r.0.process.as_ref().unwrap().comm == "(other)");
        assert_eq!(other.unwrap().1.get(EventKind::Connect), 5);
    }
}

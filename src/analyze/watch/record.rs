//! The record of one `tw watch` sample: a line of its JSON Lines output, of
//! a `--record` file, and what `tw plot` and the live view read. The schema
//! is in README.md.

use serde::{Deserialize, Serialize};

use crate::analyze::aggregate::TW_SLOTS;
use crate::model::TcpState;

/// One sample, as a line of `tw watch` JSON Lines output and of a
/// `--record` file. The schema is in README.md; `tw plot` reads it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// When the sample was taken (the start of its read), in Unix seconds.
    pub time: f64,
    /// Seconds since the first sample.
    pub elapsed_s: f64,
    /// Seconds since the previous sample; `None` for the first, which only
    /// sets the baseline and is not written out.
    pub interval_s: Option<f64>,
    /// Sockets that matched the filters.
    pub total: u64,
    pub states: StateCounts,
    pub time_wait: TimeWaitRecord,
    /// Outbound destinations, soonest to run out of ports first, then by
    /// ports held; at most `--top` of them.
    pub destinations: Vec<DestinationRecord>,
    /// The namespace watched, as `--netns` named it; absent for the one tw
    /// runs in (and in records written before the option existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeWaitRecord {
    pub count: u64,
    pub inbound: u64,
    pub outbound: u64,
    /// 4-tuples in TIME_WAIT now that were not at the previous sample (or
    /// entered it again since). `None` on the first sample, and when the
    /// filters leave TIME_WAIT out.
    pub new: Option<u64>,
    /// `new / interval_s`.
    pub inflow_per_s: Option<f64>,
    /// The inflow over the last `rate_window_s`: the rate forecasts use.
    pub rate_per_s: Option<f64>,
    pub rate_window_s: Option<f64>,
    /// Where the count settles at `rate_per_s`: each socket stays 60 s.
    pub forecast: Option<u64>,
    /// Growth of the kernel's TcpExt `TW` counter over the interval: every
    /// TIME_WAIT (and orphaned FIN_WAIT2) minisocket of the namespace,
    /// whatever the filters, for cross-checking `new`.
    pub kernel_tw: Option<i64>,
    /// Growth of TcpExt `TWRecycled`: TIME_WAIT entries connect() took over
    /// (tcp_tw_reuse).
    pub kernel_recycled: Option<i64>,
    /// How many expire in each 5 s slot of time left: [0-5 s, ..., 55-60 s].
    pub left_5s_slots: [u64; TW_SLOTS],
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DestinationRecord {
    /// Local address: each (local IP, remote IP, remote port) has the whole
    /// ephemeral range to itself.
    pub local: String,
    pub peer: String,
    /// Ephemeral ports held, in every state.
    pub held: u64,
    /// Of those, in TIME_WAIT.
    pub time_wait: u64,
    /// Ports connect() can choose from (the range less reserved ports).
    pub usable: u64,
    pub free: u64,
    /// New TIME_WAIT toward it this interval.
    pub new: Option<u64>,
    /// New TIME_WAIT per second over the rate window.
    pub rate_per_s: Option<f64>,
    /// Ports it will hold at that rate once TIME_WAIT has turned over: the
    /// sockets in other states plus rate x 60 s.
    pub settles_at: u64,
    /// Seconds until every usable port is held at this rate, counting the
    /// TIME_WAIT sockets that expire meanwhile: 0 when full now, `None` when
    /// it never fills at this rate.
    pub exhausted_in_s: Option<f64>,
}

/// Sockets per state, every state present (zeros included) so the keys are
/// stable, spelled as netstat spells them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct StateCounts {
    pub established: u64,
    pub syn_sent: u64,
    pub syn_recv: u64,
    pub fin_wait1: u64,
    pub fin_wait2: u64,
    pub time_wait: u64,
    pub close: u64,
    pub close_wait: u64,
    pub last_ack: u64,
    pub listen: u64,
    pub closing: u64,
}

impl StateCounts {
    /// The counts of every state from `count`.
    pub fn from_fn(count: impl Fn(TcpState) -> u64) -> StateCounts {
        StateCounts {
            established: count(TcpState::Established),
            syn_sent: count(TcpState::SynSent),
            syn_recv: count(TcpState::SynRecv),
            fin_wait1: count(TcpState::FinWait1),
            fin_wait2: count(TcpState::FinWait2),
            time_wait: count(TcpState::TimeWait),
            close: count(TcpState::Close),
            close_wait: count(TcpState::CloseWait),
            last_ack: count(TcpState::LastAck),
            listen: count(TcpState::Listen),
            closing: count(TcpState::Closing),
        }
    }

    pub fn get(&self, s: TcpState) -> u64 {
        match s {
            TcpState::Established => self.established,
            TcpState::SynSent => self.syn_sent,
            TcpState::SynRecv | TcpState::NewSynRecv => self.syn_recv,
            TcpState::FinWait1 => self.fin_wait1,
            TcpState::FinWait2 => self.fin_wait2,
            TcpState::TimeWait => self.time_wait,
            TcpState::Close => self.close,
            TcpState::CloseWait => self.close_wait,
            TcpState::LastAck => self.last_ack,
            TcpState::Listen => self.listen,
            TcpState::Closing => self.closing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::StateSet;

    #[test]
    fn state_counts_are_keyed_by_netstat_names() {
        let c = StateCounts::from_fn(|s| u64::from(s.kernel()));
        let json = serde_json::to_value(c).unwrap();
        let keys = json.as_object().unwrap();
        assert_eq!(keys.len(), 11);
        for s in StateSet::ALL.iter() {
            assert_eq!(keys[s.name()], u64::from(s.kernel()), "{s}");
            assert_eq!(c.get(s), u64::from(s.kernel()), "{s}");
        }
    }
}

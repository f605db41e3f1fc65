//! The record of one `tw watch` sample: a line of its JSON Lines output, of
//! a `--record` file, and what `tw plot` and the live view read. The schema
//! is in README.md.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::analyze::aggregate::TW_SLOTS;
use crate::model::schema::SchemaVersion;
use crate::model::TcpState;

/// One sample, as a line of `tw watch` JSON Lines output and of a
/// `--record` file. The schema is in README.md; `tw plot` reads it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Record {
    /// Absent in recordings made before the field.
    #[serde(default)]
    pub schema_version: SchemaVersion,
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
    /// Where `time_wait.new` and the rates come from: `events` (eBPF, exact)
    /// or `timers` (4-tuples new since the last sample, and timer ages).
    /// Absent in recordings made before the field (timers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inflow_from: Option<InflowFrom>,
    /// With events: seconds since the full dump that `total`, `states` but
    /// TIME_WAIT, and each destination's ports held in other states come
    /// from; 0 when this sample dumped. Absent without events (every sample
    /// is a full dump).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dump_age_s: Option<f64>,
    /// With events: the processes that made the most TIME_WAIT this
    /// interval, most first, at most `--top`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes: Option<Vec<ProcessRecord>>,
    /// With events: events lost this interval because the ring buffer was
    /// full, plus runs of the programs the kernel skipped (each already
    /// running on that CPU): the counts are low by at most that much.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_lost: Option<u64>,
}

/// Where a record's inflow comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum InflowFrom {
    /// eBPF events: every socket that entered TIME_WAIT, counted.
    Events,
    /// Samples of the table: 4-tuples new since the last one, timer ages.
    Timers,
}

/// Where `time_wait.count` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CountFrom {
    /// A full dump of the table this interval (the filters honoured).
    Dump,
    /// /proc/net/sockstat `tw` of the namespace: every TIME_WAIT (and
    /// orphaned FIN_WAIT2) minisocket, read in O(1) between dumps.
    Sockstat,
    /// The last dump carried forward with the events since (sockstat
    /// unreadable).
    Projection,
}

/// A process making TIME_WAIT (with events).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProcessRecord {
    /// Thread-group id; 0 when the socket's owner is unknown (or `(other)`,
    /// past 10,000 processes in one interval).
    pub pid: u32,
    pub comm: String,
    /// Sockets of its that entered TIME_WAIT this interval.
    pub time_wait: u64,
    /// `time_wait / interval_s`.
    pub rate_per_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
    /// Between dumps (events), projected from the last dump and the entries
    /// since, so their sum can differ a little from `count`.
    pub left_5s_slots: [u64; TW_SLOTS],
    /// With events: where `count` comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count_from: Option<CountFrom>,
    /// With events: connect() calls that failed with EADDRNOTAVAIL (no
    /// local port free) this interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_failed: Option<u64>,
    /// With events: TIME_WAIT 4-tuples connect() took over (tcp_tw_reuse)
    /// this interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tw_reused: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
    /// Of the usable ports, those of the parity connect() tries first (that
    /// of the range's low end); absent in recordings made before the field.
    #[serde(default)]
    pub usable_first_choice: Option<u64>,
    /// Of the ports held, those of that parity: past `usable_first_choice`
    /// every connect() walks the whole first half before it finds a port.
    #[serde(default)]
    pub held_first_choice: Option<u64>,
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
    /// With events: connect() calls toward it that failed with
    /// EADDRNOTAVAIL this interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_failed: Option<u64>,
    /// With events: its TIME_WAIT ports connect() took over this interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tw_reused: Option<u64>,
}

/// Sockets per state, every state present (zeros included) so the keys are
/// stable, spelled as netstat spells them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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

//! Resets: the kernel's counters of connections ended by RST instead of the
//! FIN exchange (no TIME_WAIT on either side), each with what it counts.
//! Read from the whole counter tables (/proc/net/snmp `Tcp`, /proc/net/netstat
//! `TcpExt`); all are cumulative and per network namespace. A counter that
//! was not read is `None` (unknown), never 0.

use serde::Serialize;

use crate::model::facts::Facts;

/// One reset counter: its section and name in /proc/net/{snmp,netstat},
/// what it counts (with the kernel function that counts it), and its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResetCounter {
    pub section: &'static str,
    pub name: &'static str,
    pub meaning: &'static str,
    pub value: Option<i64>,
}

/// The counters, in the order they are shown.
const COUNTERS: [(&str, &str, &str); 6] = [
    // tcp_v4_send_reset / tcp_send_active_reset: TCP_MIB_OUTRSTS.
    (
        "Tcp",
        "OutRsts",
        "segments sent with RST: aborts below, and answers to segments for no socket \
         (a SYN to a closed port, data to a connection already gone)",
    ),
    // tcp_set_state: leaving ESTABLISHED or CLOSE_WAIT straight for CLOSE.
    (
        "Tcp",
        "EstabResets",
        "connections reset from ESTABLISHED or CLOSE_WAIT, by either side",
    ),
    // tcp_close: SO_LINGER on with a 0 timeout (counted after the disconnect);
    // tcp_rcv_state_process: data arriving after this side shut down.
    (
        "TcpExt",
        "TCPAbortOnData",
        "closed with RST by a linger-0 close (SO_LINGER, timeout 0), or data came in after \
         this side had shut down",
    ),
    // tcp_close: data_was_unread.
    (
        "TcpExt",
        "TCPAbortOnClose",
        "closed with RST because data was left unread at close()",
    ),
    // tcp_close / tcp_rcv_state_process / tcp_keepalive_timer: linger2 < 0.
    (
        "TcpExt",
        "TCPAbortOnLinger",
        "orphaned FIN_WAIT2 reset at once instead of waiting (TCP_LINGER2 below 0)",
    ),
    // tcp_write_timeout / tcp_keepalive_timer: retries ran out.
    (
        "TcpExt",
        "TCPAbortOnTimeout",
        "given up after retransmissions, keepalive or zero-window probes ran out",
    ),
];

/// The reset counters of `facts`, each with its meaning.
pub fn counters(facts: &Facts) -> Vec<ResetCounter> {
    COUNTERS
        .iter()
        .map(|&(section, name, meaning)| ResetCounter {
            section,
            name,
            meaning,
            value: match section {
                "Tcp" => facts.raw.snmp.get(section, name),
                _ => facts.raw.netstat.get(section, name),
            },
        })
        .collect()
}

/// A value as printed: the number, or "unknown" when it was not read.
pub fn value_text(v: Option<i64>) -> String {
    v.map_or_else(|| "unknown".into(), |n| n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn counters_come_from_snmp_and_netstat_and_unknown_stays_unknown() {
        let mut f = Facts::default();
        f.raw.snmp.0.insert(
            "Tcp".into(),
            BTreeMap::from([("OutRsts".into(), 7), ("EstabResets".into(), 3)]),
        );
        f.raw.netstat.0.insert(
            "TcpExt".into(),
            BTreeMap::from([("TCPAbortOnData".into(), 2)]),
        );
        let c = counters(&f);
        let get = |n: &str| c.iter().find(|x| x.name == n).unwrap().value;
        assert_eq!(get("OutRsts"), Some(7));
        assert_eq!(get("EstabResets"), Some(3));
        assert_eq!(get("TCPAbortOnData"), Some(2));
        assert_eq!(get("TCPAbortOnClose"), None);
        assert_eq!(value_text(get("TCPAbortOnTimeout")), "unknown");
        assert!(c.iter().all(|x| !x.meaning.is_empty()));
        // Nothing read at all: every one unknown.
        assert!(counters(&Facts::default())
            .iter()
            .all(|x| x.value.is_none()));
    }
}

//! What the sockets read add up to: counts and groups, ports held per
//! destination, doctor's rules, scrape snapshots and watch's rate model.

pub mod aggregate;
pub mod conntrack;
pub mod doctor;
pub mod inflow;
pub mod internals;
pub mod local_ports;
pub mod resets;
pub mod scrape;
pub mod trace;
pub mod watch;

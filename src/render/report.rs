//! What a command hands the renderers: one [`Report`] per answer.

use crate::analyze::aggregate::{Destination, PortUse, Summary};
use crate::analyze::doctor::Finding;
use crate::model::ports::PortCapacity;
use crate::model::Socket;

use super::cells::Annotation;

/// What a command has to show.
#[derive(Debug)]
pub enum Report<'a> {
    Summary(&'a Summary),
    Sockets(&'a [Socket]),
    Count(u64),
    Groups {
        by: &'static str,
        total: u64,
        /// Keys as printed (see `Key::label`).
        groups: &'a [(String, u64)],
    },
    /// A listing with a NETNS column (several namespaces) and/or a PROCESS
    /// column (`-p`).
    Annotated {
        socks: &'a [Socket],
        notes: Annotation<'a>,
    },
    Ports {
        rows: &'a [(Destination, PortUse)],
        /// Destinations counted, before `--top` kept the first rows.
        destinations: usize,
        capacity: PortCapacity,
        /// Low end of ip_local_port_range: its parity is connect()'s first choice.
        low: u16,
    },
    Doctor {
        findings: &'a [Finding],
        verbose: bool,
    },
}

//! tw: shows and explains TCP socket states on Linux.
//!
//! The modules are layers, and imports only point down the data flow:
//!
//! ```text
//! model    Socket, states, endpoints, Consumer, kernel wire constants, port-range arithmetic
//! query    the filter: states, ports, CIDRs, direction, ss's expression language
//! source   the seam (live kernel or captured files) and its readers, namespaces, owners, facts
//! analyze  aggregation, doctor rules, scrape snapshots, watch's rate model
//! render   one module per output format and section
//! app      one function per command: read, analyze, render, decide the exit code
//! ```
//!
//! The surfaces (`serve`, `tui`, `plot`, `explain`) sit beside `app`, over
//! the layers below; `cli` holds the command-line types.

pub mod analyze;
pub mod app;
pub mod cli;
pub mod explain;
pub mod model;
#[cfg(feature = "plot")]
pub mod plot;
pub mod query;

pub mod render;
pub mod serve;
pub mod source;
#[cfg(feature = "tui")]
pub mod tui;

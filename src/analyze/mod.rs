//! Aggregation and models over what the sources read.

pub mod trace;

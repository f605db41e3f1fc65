//! One function per command: read, aggregate, render, exit code.

pub mod trace;

//! The one interface between the readers and everything after them.

use std::ops::ControlFlow;

use super::Socket;

/// What a consumer answers to each socket: `Continue`, or `Break` to end the
/// read there (a `--limit` reached, the output closed, a write failed).
pub type Flow = ControlFlow<()>;

/// Receives sockets as a reader produces them.
pub trait Consumer {
    /// Takes one socket. After `Break` the reader hands over no more: a
    /// netlink dump is dropped after the buffer at hand, a /proc table is
    /// left at the end of the line under way.
    fn push(&mut self, s: &Socket) -> Flow;
    /// Forget everything pushed so far: an interrupted netlink dump is about
    /// to be read again from the start, and must not be counted twice.
    fn restart(&mut self);
    /// Labels of the namespaces read (a socket's `netns` indexes them),
    /// before the first socket; not called when only the current one is.
    fn namespaces(&mut self, _labels: &[String]) {}
}

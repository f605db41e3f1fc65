//! Sockets held with their extras (tcp_info, socket memory), for `tw ls -i`
//! / `-m`: only these listings pay for the extras, boxed beside each row.

use crate::model::internals::{Extras, Wants};
use crate::model::{Consumer, Flow, Socket};

use super::aggregate::Order;

/// One socket and what sock_diag said about it beyond its row.
#[derive(Debug, Clone)]
pub struct Row {
    pub socket: Socket,
    /// `None` where the reader had nothing (TIME_WAIT, /proc, captures).
    pub extras: Option<Box<Extras>>,
}

/// Holds the rows of a listing with extras, in `order` (the reader's when
/// `None`), at most `limit` of them.
pub struct CollectExtras {
    pub rows: Vec<Row>,
    wants: Wants,
    order: Option<Order>,
    limit: Option<usize>,
}

impl CollectExtras {
    pub fn new(wants: Wants, order: Option<Order>, limit: Option<usize>) -> CollectExtras {
        CollectExtras {
            rows: Vec::new(),
            wants,
            order,
            limit,
        }
    }

    /// The rows, sorted stably and cut to the limit.
    pub fn finish(mut self) -> Vec<Row> {
        if let Some(order) = self.order {
            self.rows.sort_by(|a, b| order(&a.socket, &b.socket));
        }
        if let Some(n) = self.limit {
            self.rows.truncate(n);
        }
        self.rows
    }

    fn take(&mut self, row: Row) -> Flow {
        self.rows.push(row);
        match (self.order, self.limit) {
            // In the reader's order the first `n` are final.
            (None, Some(n)) if self.rows.len() >= n => Flow::Break(()),
            _ => Flow::Continue(()),
        }
    }
}

impl Consumer for CollectExtras {
    fn push(&mut self, s: &Socket) -> Flow {
        self.take(Row {
            socket: *s,
            extras: None,
        })
    }

    fn push_extras(&mut self, s: &Socket, extras: &Extras) -> Flow {
        self.take(Row {
            socket: *s,
            extras: (!extras.is_empty()).then(|| Box::new(extras.clone())),
        })
    }

    fn restart(&mut self) {
        self.rows.clear();
    }

    fn wants(&self) -> Wants {
        self.wants
    }
}

/// True when rows that could carry tcp_info (a full socket, not TIME_WAIT
/// or a request socket) came without any: the reader had none to give.
pub fn none_given(rows: &[Row]) -> bool {
    use crate::model::TcpState::{SynRecv, TimeWait};
    let eligible = rows
        .iter()
        .filter(|r| !matches!(r.socket.state, TimeWait | SynRecv));
    let mut any = false;
    for r in eligible {
        if r.extras.is_some() {
            return false;
        }
        any = true;
    }
    any
}

//! What the user asked for: states, family, direction and an expression in
//! ss's language, and the per-socket test that applies them.

pub mod direction;
pub mod expr;

use crate::model::{Cidr, Direction, Family, PortRange, Socket, StateSet};
use crate::query::expr::{Expr, Side};

/// Everything a command filters on: states and family (which the kernel
/// applies through the request), direction, and one expression in ss's
/// language built from the trailing words and the --sport/--dport/--src/--dst
/// flags.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub states: StateSet,
    /// `None`: both families.
    pub family: Option<Family>,
    /// `None`: both directions.
    pub direction: Option<Direction>,
    pub expr: Option<Expr>,
}

/// The flags' part of the expression: each list is an OR of its entries,
/// the lists AND together (None when no flag is given).
pub fn flags_expr(
    sport: &[PortRange],
    dport: &[PortRange],
    src: &[Cidr],
    dst: &[Cidr],
) -> Option<Expr> {
    let any = |items: Vec<Expr>| items.into_iter().reduce(Expr::or);
    let host = |side, c: &Cidr| Expr::Host {
        side,
        net: Some(*c),
        port: None,
    };
    [
        any(sport
            .iter()
            .map(|r| Expr::port_range(Side::Src, *r))
            .collect()),
        any(dport
            .iter()
            .map(|r| Expr::port_range(Side::Dst, *r))
            .collect()),
        any(src.iter().map(|c| host(Side::Src, c)).collect()),
        any(dst.iter().map(|c| host(Side::Dst, c)).collect()),
    ]
    .into_iter()
    .flatten()
    .reduce(Expr::and)
}

impl Filter {
    /// The families a reader must dump.
    pub fn families(&self) -> &'static [Family] {
        match self.family {
            None => &[Family::Inet, Family::Inet6],
            Some(Family::Inet) => &[Family::Inet],
            Some(Family::Inet6) => &[Family::Inet6],
        }
    }

    pub fn matches(&self, s: &Socket) -> bool {
        self.states.contains(s.state)
            && self.family.is_none_or(|f| f == s.family)
            && (self.direction.is_none() || self.direction == s.direction)
            && self.expr.as_ref().is_none_or(|e| e.matches(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Endpoint;
    use crate::model::TcpState::*;

    #[test]
    fn filter_combines_lists_with_and() {
        let sock = Socket::new(
            Family::Inet,
            TimeWait,
            Endpoint::new("127.0.0.1".parse().unwrap(), 40000),
            Endpoint::new("10.0.0.5".parse().unwrap(), 80),
        );
        let mut f = Filter::default();
        assert!(f.matches(&sock));
        let dport: Vec<PortRange> = vec!["80".parse().unwrap(), "443".parse().unwrap()];
        let dst: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap()];
        f.expr = flags_expr(&[], &dport, &[], &dst);
        assert!(f.matches(&sock));
        f.expr = flags_expr(&["1-1024".parse().unwrap()], &dport, &[], &dst);
        assert!(!f.matches(&sock));
        f.expr = flags_expr(&["40000-40001".parse().unwrap()], &dport, &[], &dst);
        assert!(f.matches(&sock));
        assert!(flags_expr(&[], &[], &[], &[]).is_none());
        f.expr = None;
        f.family = Some(Family::Inet6);
        assert!(!f.matches(&sock));
        f.family = None;
        f.states = StateSet::of(&[Established]);
        assert!(!f.matches(&sock));
    }
}

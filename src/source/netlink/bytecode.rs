//! Compiles a filter expression into an INET_DIAG_REQ_BYTECODE program
//! (include/uapi/linux/inet_diag.h), so the kernel drops what the filter
//! would (ss's ssfilter_bytecompile does the same), and runs one as the
//! kernel would (inet_diag_bc_run), to check the two agree.

use std::net::IpAddr;

use crate::model::abi::bc;
use crate::model::{Cidr, Socket};
use crate::query::expr::{Cmp, Expr, Side};

/// One `struct inet_diag_bc_op`: code, yes (u8), no (u16). Jumps are byte
/// offsets from this op.
fn op(code: u8, yes: u8, no: u16) -> [u8; 4] {
    let n = no.to_ne_bytes();
    [code, yes, n[0], n[1]]
}

/// A compiled fragment. Convention (as ss's ssfilter_bytecompile): when the
/// condition holds, execution runs to the fragment's end; when it does not,
/// it jumps 4 bytes past the end. The kernel (inet_diag_bc_run) accepts a
/// socket when execution ends exactly at the program's end.
struct Frag {
    code: Vec<u8>,
    /// Offsets of ops whose `no` jumps to end + 4 (to relocate in `and`).
    fails: Vec<usize>,
}

/// Compiles `e` to bytecode, or `None` when it would not fit the format's
/// 16-bit jumps (then the filter runs in user space only).
pub fn compile(e: &Expr) -> Option<Vec<u8>> {
    let f = frag(e)?;
    (f.code.len() <= usize::from(u16::MAX) - 8).then_some(f.code)
}

fn frag(e: &Expr) -> Option<Frag> {
    Some(match e {
        Expr::Port { side, cmp, port } => {
            // Equality as a hostcond with no address: valid on every
            // kernel (S_EQ/D_EQ came later).
            match cmp {
                Cmp::Eq => hostcond(*side, None, Some(*port)),
                Cmp::Ge | Cmp::Le => {
                    let code = match (side, cmp) {
                        (Side::Src, Cmp::Ge) => bc::S_GE,
                        (Side::Src, _) => bc::S_LE,
                        (Side::Dst, Cmp::Ge) => bc::D_GE,
                        (Side::Dst, _) => bc::D_LE,
                    };
                    let mut code_bytes = op(code, 8, 12).to_vec();
                    code_bytes.extend_from_slice(&op(0, 0, *port));
                    Frag {
                        code: code_bytes,
                        fails: vec![0],
                    }
                }
            }
        }
        Expr::Host { side, net, port } => hostcond(*side, *net, *port),
        // UNIX sockets' paths: never in an inet_diag request.
        Expr::Path { .. } => return None,
        Expr::And(a, b) => {
            let (mut a, b) = (frag(a)?, frag(b)?);
            let shift = b.code.len();
            for &at in &a.fails {
                relocate(&mut a.code, at, shift)?;
            }
            let base = a.code.len();
            a.fails.extend(b.fails.iter().map(|f| f + base));
            a.code.extend_from_slice(&b.code);
            a
        }
        Expr::Or(a, b) => {
            // a; JMP over b when a held; b. a's failures land on b.
            let (mut a, b) = (frag(a)?, frag(b)?);
            let over = u16::try_from(4 + b.code.len()).ok()?;
            a.code.extend_from_slice(&op(bc::JMP, 4, over));
            let base = a.code.len();
            Frag {
                fails: b.fails.iter().map(|f| f + base).collect(),
                code: [a.code, b.code].concat(),
            }
        }
        Expr::Not(a) => {
            // a; JMP to end + 4. a's failures (end of a + 4) fall on the
            // new end: success.
            let mut a = frag(a)?;
            let at = a.code.len();
            a.code.extend_from_slice(&op(bc::JMP, 4, 8));
            Frag {
                code: a.code,
                fails: vec![at],
            }
        }
    })
}

/// Moves the `no` jump of the op at `at` `shift` bytes further.
fn relocate(code: &mut [u8], at: usize, shift: usize) -> Option<()> {
    let no = u16::from_ne_bytes([code[at + 2], code[at + 3]]);
    let no = u16::try_from(usize::from(no) + shift).ok()?;
    code[at + 2..at + 4].copy_from_slice(&no.to_ne_bytes());
    Some(())
}

/// `struct inet_diag_hostcond { u8 family; u8 prefix_len; int port;
/// __be32 addr[]; }` after its op. Port -1 matches any port. An AF_INET
/// block also matches IPv4-mapped addresses of AF_INET6 sockets in the
/// kernel, as in [`Cidr::contains`].
fn hostcond(side: Side, net: Option<Cidr>, port: Option<u16>) -> Frag {
    let code = match side {
        Side::Src => bc::S_COND,
        Side::Dst => bc::D_COND,
    };
    let (family, prefix, addr): (u8, u8, Vec<u8>) = match net {
        None => (libc::AF_UNSPEC as u8, 0, Vec::new()),
        Some(Cidr {
            addr: IpAddr::V4(a),
            prefix,
        }) => (libc::AF_INET as u8, prefix, a.octets().to_vec()),
        Some(Cidr {
            addr: IpAddr::V6(a),
            prefix,
        }) => (libc::AF_INET6 as u8, prefix, a.octets().to_vec()),
    };
    let len = 4 + 8 + addr.len();
    let mut c = op(code, len as u8, (len + 4) as u16).to_vec();
    c.extend_from_slice(&[family, prefix, 0, 0]);
    c.extend_from_slice(&port.map_or(-1i32, i32::from).to_ne_bytes());
    c.extend_from_slice(&addr);
    Frag {
        code: c,
        fails: vec![0],
    }
}

/// Why [`run`] stopped: the offset of an op the kernel's audit
/// (inet_diag_bc_audit) would have refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadOp(pub usize);

/// Runs a program over a socket as the kernel does (inet_diag_bc_run):
/// `Ok(true)` when execution ends exactly at the program's end. Only the
/// ops [`compile`] emits are known; anything else, or an op or jump that
/// runs past the end, is a [`BadOp`].
pub fn run(code: &[u8], s: &Socket) -> Result<bool, BadOp> {
    let len = code.len();
    let mut at = 0usize;
    while at < len {
        let bad = BadOp(at);
        let op = code.get(at..at + 4).ok_or(bad)?;
        let (yes, no) = (
            usize::from(op[1]),
            usize::from(u16::from_ne_bytes([op[2], op[3]])),
        );
        let port_arg = || {
            code.get(at + 6..at + 8)
                .map(|b| u16::from_ne_bytes([b[0], b[1]]))
                .ok_or(bad)
        };
        let ok = match op[0] {
            bc::JMP => false,
            bc::S_GE => s.local.port >= port_arg()?,
            bc::S_LE => s.local.port <= port_arg()?,
            bc::D_GE => s.peer.port >= port_arg()?,
            bc::D_LE => s.peer.port <= port_arg()?,
            bc::S_COND | bc::D_COND => {
                let e = if op[0] == bc::S_COND { s.local } else { s.peer };
                let cond = code
                    .get(at + 4..at + yes)
                    .filter(|c| c.len() >= 8)
                    .ok_or(bad)?;
                let (family, prefix) = (cond[0], cond[1]);
                let port = i32::from_ne_bytes([cond[4], cond[5], cond[6], cond[7]]);
                let addr = &cond[8..];
                let net = match family {
                    f if f == libc::AF_INET as u8 => {
                        Some(IpAddr::from(<[u8; 4]>::try_from(addr).map_err(|_| bad)?))
                    }
                    f if f == libc::AF_INET6 as u8 => {
                        Some(IpAddr::from(<[u8; 16]>::try_from(addr).map_err(|_| bad)?))
                    }
                    _ => None,
                }
                .map(|addr| Cidr { addr, prefix });
                (port == -1 || port == i32::from(e.port)) && net.is_none_or(|n| n.contains(e.addr))
            }
            _ => return Err(bad),
        };
        let step = if ok { yes } else { no };
        if step == 0 {
            return Err(bad);
        }
        at += step;
    }
    Ok(at == len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::expr::tests::{e, samples, CASES};

    #[test]
    fn bytecode_agrees_with_user_space() {
        let socks = samples();
        for (src, _) in CASES {
            let ex = e(src);
            let bc = compile(&ex).expect("fits");
            assert_eq!(bc.len() % 4, 0, "{src}");
            for s in &socks {
                assert_eq!(run(&bc, s).unwrap(), ex.matches(s), "{src} on {s:?}");
            }
        }
    }

    #[test]
    fn bytecode_layout_matches_the_kernel_structs() {
        // dport >= 1024: D_GE {yes 8, no 12}, then {0, 0, 1024}.
        let bc = compile(&e("dport >= :1024")).unwrap();
        assert_eq!(bc.len(), 8);
        assert_eq!(&bc[..2], &[bc::D_GE, 8]);
        assert_eq!(u16::from_ne_bytes([bc[2], bc[3]]), 12);
        assert_eq!(u16::from_ne_bytes([bc[6], bc[7]]), 1024);
        // dst 10.0.0.0/8:443: D_COND {16, 20} + hostcond {AF_INET, 8, 443, 10.0.0.0}.
        let bc = compile(&e("dst 10.0.0.0/8:443")).unwrap();
        assert_eq!(bc.len(), 16);
        assert_eq!(&bc[..2], &[bc::D_COND, 16]);
        assert_eq!(&bc[4..6], &[libc::AF_INET as u8, 8]);
        assert_eq!(i32::from_ne_bytes([bc[8], bc[9], bc[10], bc[11]]), 443);
        assert_eq!(&bc[12..16], &[10, 0, 0, 0]);
        // IPv6: 4 + 8 + 16 bytes; any port is -1.
        let bc = compile(&e("src [::1]")).unwrap();
        assert_eq!(bc.len(), 28);
        assert_eq!(i32::from_ne_bytes([bc[8], bc[9], bc[10], bc[11]]), -1);
    }

    #[test]
    fn a_program_that_runs_off_its_end_is_a_bad_op() {
        let s = samples()[0];
        // A D_COND whose hostcond is cut short, and an unknown op.
        assert_eq!(run(&[bc::D_COND, 16, 20, 0, 2, 8], &s), Err(BadOp(0)));
        assert_eq!(run(&[200, 4, 8, 0], &s), Err(BadOp(0)));
        // A jump of 0 would loop for ever in a careless runner.
        assert_eq!(run(&[bc::JMP, 4, 0, 0], &s), Err(BadOp(0)));
    }
}

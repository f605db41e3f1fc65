//! Addresses: an endpoint (address and port) and its text, and address
//! blocks for `--src`/`--dst`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An address and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub addr: IpAddr,
    pub port: u16,
}

/// Room for the longest endpoint text,
/// `[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535` (53 bytes).
const ENDPOINT_TEXT_MAX: usize = 56;

impl Endpoint {
    pub fn new(addr: IpAddr, port: u16) -> Endpoint {
        Endpoint { addr, port }
    }

    /// Appends the text `Display` prints. Listings print a million of these,
    /// so this neither allocates nor goes through `fmt` for IPv4.
    pub fn push_text(&self, out: &mut Vec<u8>) {
        let mut buf = [0u8; ENDPOINT_TEXT_MAX];
        let n = self.text(&mut buf);
        out.extend_from_slice(&buf[..n]);
    }

    /// Writes the text into `buf`; returns its length.
    fn text(&self, buf: &mut [u8; ENDPOINT_TEXT_MAX]) -> usize {
        use std::io::Write;
        let mut digits = [0u8; 20];
        let mut w = &mut buf[..];
        // Writes to a slice fail only when it is full, which 56 bytes never is.
        match self.addr {
            IpAddr::V4(a) => {
                for (i, o) in a.octets().into_iter().enumerate() {
                    let [d0, d1, d2, len] = OCTET_TEXT[usize::from(o)];
                    let _ =
                        w.write_all(&[b'.', d0, d1, d2][usize::from(i == 0)..=usize::from(len)]);
                }
            }
            // The compressed form (RFC 5952) is std's; IPv6 is the rare case.
            IpAddr::V6(a) => {
                let _ = write!(w, "[{a}]");
            }
        }
        let _ = w.write_all(b":");
        let _ = match self.port {
            0 => w.write_all(b"*"),
            p => w.write_all(decimal(u64::from(p), &mut digits)),
        };
        ENDPOINT_TEXT_MAX - w.len()
    }
}

/// Each byte value in decimal, as up to three digits and their count.
const OCTET_TEXT: [[u8; 4]; 256] = {
    let mut t = [[0u8; 4]; 256];
    let mut i = 0;
    while i < 256 {
        let d = [
            b'0' + (i / 100) as u8,
            b'0' + (i / 10 % 10) as u8,
            b'0' + (i % 10) as u8,
        ];
        t[i] = match i {
            0..=9 => [d[2], 0, 0, 1],
            10..=99 => [d[1], d[2], 0, 2],
            _ => [d[0], d[1], d[2], 3],
        };
        i += 1;
    }
    t
};

/// `n` in decimal, written at the end of `buf`; returns the digits. Faster
/// than `fmt` where a listing prints millions of numbers.
pub fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

impl fmt::Display for Endpoint {
    /// `127.0.0.1:80`, `[::1]:80`, and port 0 (a listener's peer) as `*`,
    /// the forms ss and netstat print.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; ENDPOINT_TEXT_MAX];
        let n = self.text(&mut buf);
        f.pad(std::str::from_utf8(&buf[..n]).map_err(|_| fmt::Error)?)
    }
}

/// An address or a CIDR block, for `--src`/`--dst`. An IPv4 block also
/// matches IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`), since those are
/// the same peer seen through an AF_INET6 socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq32(net, ip, self.prefix),
            (IpAddr::V4(net), IpAddr::V6(ip)) => ip
                .to_ipv4_mapped()
                .is_some_and(|ip| prefix_eq32(net, ip, self.prefix)),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_eq128(net, ip, self.prefix),
            (IpAddr::V6(_), IpAddr::V4(_)) => false,
        }
    }
}

fn prefix_eq32(a: Ipv4Addr, b: Ipv4Addr, prefix: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    u32::from(a) & mask == u32::from(b) & mask
}

fn prefix_eq128(a: Ipv6Addr, b: Ipv6Addr, prefix: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    u128::from(a) & mask == u128::from(b) & mask
}

impl FromStr for Cidr {
    type Err = String;

    /// `10.0.0.0/8`, `127.0.0.1`, `::1`, `[::1]`, `fd00::/8`.
    fn from_str(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr = addr.trim_start_matches('[').trim_end_matches(']');
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("'{s}' is not an IP address or CIDR block (10.0.0.0/8, ::1)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => return Err(format!("'{s}': prefix length must be 0..={max}")),
            },
        };
        Ok(Cidr { addr, prefix })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_and_endpoint_text_match_fmt() {
        let mut buf = [0u8; 20];
        for n in [0, 7, 10, 99, 65535, 4_294_967_295, u64::MAX] {
            assert_eq!(decimal(n, &mut buf), n.to_string().as_bytes());
        }
        for (ip, port) in [
            ("255.255.255.255", 65535),
            ("0.0.0.0", 0),
            ("10.99.100.7", 80),
            ("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", 65535),
            ("::ffff:10.0.0.1", 1),
        ] {
            let addr: IpAddr = ip.parse().unwrap();
            // What std's formatting makes of it, as ss prints it.
            let want = match (addr, port) {
                (IpAddr::V4(a), 0) => format!("{a}:*"),
                (IpAddr::V4(a), p) => format!("{a}:{p}"),
                (IpAddr::V6(a), 0) => format!("[{a}]:*"),
                (IpAddr::V6(a), p) => format!("[{a}]:{p}"),
            };
            let e = Endpoint::new(addr, port);
            let mut v = Vec::new();
            e.push_text(&mut v);
            assert_eq!(String::from_utf8(v).unwrap(), want);
            assert_eq!(e.to_string(), want);
        }
    }

    #[test]
    fn endpoints_print_like_ss() {
        let v4 = Endpoint::new("127.0.0.1".parse().unwrap(), 80);
        let v6 = Endpoint::new("::1".parse().unwrap(), 443);
        let mapped = Endpoint::new("::ffff:127.0.0.1".parse().unwrap(), 8080);
        assert_eq!(v4.to_string(), "127.0.0.1:80");
        assert_eq!(v6.to_string(), "[::1]:443");
        assert_eq!(mapped.to_string(), "[::ffff:127.0.0.1]:8080");
        assert_eq!(format!("{v4:<14}|"), "127.0.0.1:80  |");
        let any = Endpoint::new("0.0.0.0".parse().unwrap(), 0);
        assert_eq!(any.to_string(), "0.0.0.0:*");
        assert_eq!(
            Endpoint::new("::".parse().unwrap(), 0).to_string(),
            "[::]:*"
        );
    }

    #[test]
    fn cidr_matching() {
        let cases: &[(&str, &str, bool)] = &[
            ("10.0.0.0/8", "10.1.2.3", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("10.0.0.0/8", "::ffff:10.9.9.9", true),
            ("127.0.0.1", "127.0.0.1", true),
            ("127.0.0.1", "127.0.0.2", false),
            ("0.0.0.0/0", "1.2.3.4", true),
            ("::/0", "::1", true),
            ("::/0", "1.2.3.4", false),
            ("[::1]", "::1", true),
            ("fd00::/8", "fd12::1", true),
            ("fd00::/8", "fe80::1", false),
            ("::1/128", "::2", false),
        ];
        for (cidr, ip, want) in cases {
            let c: Cidr = cidr.parse().unwrap();
            assert_eq!(c.contains(ip.parse().unwrap()), *want, "{cidr} ∋ {ip}");
        }
    }

    #[test]
    fn cidr_errors_name_the_input() {
        for bad in ["10.0.0.0/33", "::/129", "nope", "10.0.0.0/x", ""] {
            let err = bad.parse::<Cidr>().unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
    }
}

//! Ephemeral port arithmetic: how many ports connect() can hand out for one
//! (source IP, destination IP, destination port), and in which order.

use std::str::FromStr;

use serde::Serialize;

/// An inclusive port range; a single port is `lo == hi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    pub fn contains(&self, port: u16) -> bool {
        (self.lo..=self.hi).contains(&port)
    }

    /// Number of ports, 0 if `lo > hi`.
    pub fn len(&self) -> u32 {
        (u32::from(self.hi) + 1).saturating_sub(u32::from(self.lo))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl FromStr for PortRange {
    type Err = String;

    /// `80`, `:80` (ss's form), `1024-65535`.
    fn from_str(s: &str) -> Result<PortRange, String> {
        let t = s.trim().trim_start_matches(':');
        let port = |p: &str| {
            p.trim()
                .parse::<u16>()
                .map_err(|_| format!("'{s}' is not a port or range (80, 1024-65535)"))
        };
        let (lo, hi) = match t.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => (port(t)?, port(t)?),
        };
        if lo > hi {
            return Err(format!("'{s}': range start is above its end"));
        }
        Ok(PortRange { lo, hi })
    }
}

/// The kernel's default ip_local_port_range, assumed when a capture has none.
pub const DEFAULT_PORT_RANGE: PortRange = PortRange {
    lo: 32768,
    hi: 60999,
};

/// How many ephemeral ports the kernel can hand out automatically, and how
/// they split by parity. `available == preferred_parity + other_parity +
/// never_chosen`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PortCapacity {
    /// Ports in ip_local_port_range.
    pub range: u32,
    /// Reserved ports inside the range (reserved ports outside it do not count).
    pub reserved: u32,
    /// `range - reserved`.
    pub available: u32,
    /// Available ports of the range's low-end parity: connect()'s first pass.
    pub preferred_parity: u32,
    /// Available ports of the other parity: bind(0)'s first pass and
    /// connect()'s second.
    pub other_parity: u32,
    /// Available ports no automatic choice ever picks: the top port of a range
    /// with an odd number of ports (0 or 1).
    pub never_chosen: u32,
}

/// Counts the ports connect() and bind(0) can pick in `range`, skipping
/// `reserved` (which may overlap each other or lie outside the range).
///
/// How the kernel walks the range (__inet_hash_connect in
/// net/ipv4/inet_hashtables.c, inet_csk_find_open_port in
/// net/ipv4/inet_connection_sock.c), without a per-socket IP_LOCAL_PORT_RANGE:
/// - `remaining = high - low + 1`, rounded down to even when above 1, and only
///   ports `low .. low + remaining` are tried. So when the range holds an odd
///   number of ports (both ends of the same parity, which the kernel warns
///   about: "prefer different parity for start/end values"), its top port is
///   never chosen: counted in `never_chosen`, not in either half.
/// - Ports are stepped by 2. connect() starts at an even offset from `low`, so
///   tries ports with the parity of `low` first (`preferred_parity`), then the
///   other parity; bind(0) does the opposite (`other_parity` first).
/// - Reserved ports are skipped in both passes, so each reserved port inside
///   the range is taken out of the half its parity belongs to.
///
/// A range of one port has `remaining = 1`: that port is the preferred half.
///
/// Measured on 6.18 in a namespace with the range 40000-40002: connect() got
/// 40000 and 40001, then EADDRNOTAVAIL; bind(0) got 40001 and 40000, then
/// EADDRINUSE. 40002 was never chosen.
pub fn port_capacity(range: PortRange, reserved: &[PortRange]) -> PortCapacity {
    let len = range.len();
    let walked = if len > 1 { len & !1 } else { len };
    // Bitmap of the range's reserved ports, so overlapping entries count once.
    let mut is_reserved = vec![false; len as usize];
    for r in reserved {
        let lo = r.lo.max(range.lo);
        let hi = r.hi.min(range.hi);
        for port in u32::from(lo)..=u32::from(hi) {
            // lo >= range.lo here, so the offset cannot underflow.
            is_reserved[(port - u32::from(range.lo)) as usize] = true;
        }
    }
    let mut cap = PortCapacity {
        range: len,
        reserved: 0,
        available: 0,
        preferred_parity: 0,
        other_parity: 0,
        never_chosen: 0,
    };
    for (offset, reserved) in (0u32..).zip(is_reserved) {
        if reserved {
            cap.reserved += 1;
            continue;
        }
        cap.available += 1;
        if offset >= walked {
            cap.never_chosen += 1;
        } else if offset % 2 == 0 {
            cap.preferred_parity += 1;
        } else {
            cap.other_parity += 1;
        }
    }
    cap
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn r(lo: u16, hi: u16) -> PortRange {
        PortRange { lo, hi }
    }

    pub(crate) fn cap(
        range: u32,
        reserved: u32,
        pref: u32,
        other: u32,
        never: u32,
    ) -> PortCapacity {
        PortCapacity {
            range,
            reserved,
            available: range - reserved,
            preferred_parity: pref,
            other_parity: other,
            never_chosen: never,
        }
    }

    #[test]
    fn capacity_counts_parity_halves() {
        // cap(range, reserved, preferred parity, other parity, never chosen)
        #[rustfmt::skip]
        let cases: &[(&str, PortRange, &[PortRange], PortCapacity)] = &[
            ("default", r(32768, 60999), &[], cap(28232, 0, 14116, 14116, 0)),
            ("one port", r(40000, 40000), &[], cap(1, 0, 1, 0, 0)),
            ("one odd port", r(40001, 40001), &[], cap(1, 0, 1, 0, 0)),
            ("one port, reserved", r(40000, 40000), &[r(40000, 40000)], cap(1, 1, 0, 0, 0)),
            ("two ports", r(40000, 40001), &[], cap(2, 0, 1, 1, 0)),
            // Both ends even: 201 ports, the walk covers 200, 40200 is never chosen.
            ("even/even", r(40000, 40200), &[], cap(201, 0, 100, 100, 1)),
            ("odd/odd", r(40001, 40201), &[], cap(201, 0, 100, 100, 1)),
            ("odd/even", r(40001, 40200), &[], cap(200, 0, 100, 100, 0)),
            ("three ports", r(40000, 40002), &[], cap(3, 0, 1, 1, 1)),
            ("whole space", r(1, 65535), &[], cap(65535, 0, 32767, 32767, 1)),
            ("zero to max", r(0, 65535), &[], cap(65536, 0, 32768, 32768, 0)),
            // 40100-40109: five of each parity.
            ("reserved inside", r(40000, 40199), &[r(40100, 40109)], cap(200, 10, 95, 95, 0)),
            // Clipped to 40000-40004: 40000, 40002, 40004 preferred; 40001, 40003 other.
            ("reserved across low end", r(40000, 40199), &[r(39990, 40004)], cap(200, 5, 97, 98, 0)),
            // Clipped to 40195-40199: 40196, 40198 preferred; 40195, 40197, 40199 other.
            ("reserved across high end", r(40000, 40199), &[r(40195, 40300)], cap(200, 5, 98, 97, 0)),
            ("reserved outside", r(40000, 40199), &[r(8080, 8080), r(39000, 39999), r(40200, 41000)],
                cap(200, 0, 100, 100, 0)),
            // Union 40100-40120: 11 even, 10 odd.
            ("reserved overlapping", r(40000, 40199), &[r(40100, 40109), r(40105, 40120), r(40100, 40100)],
                cap(200, 21, 89, 90, 0)),
            ("reserved never-chosen top", r(40000, 40200), &[r(40200, 40200)], cap(201, 1, 100, 100, 0)),
            ("all reserved", r(40000, 40199), &[r(0, 65535)], cap(200, 200, 0, 0, 0)),
        ];
        for (name, range, reserved, want) in cases {
            let got = port_capacity(*range, reserved);
            assert_eq!(got, *want, "{name}");
            assert_eq!(
                got.available,
                got.preferred_parity + got.other_parity + got.never_chosen,
                "{name}"
            );
        }
        // A reversed range (only constructible by hand) counts as empty.
        assert_eq!(port_capacity(r(10, 5), &[r(0, 100)]), cap(0, 0, 0, 0, 0));
    }

    #[test]
    fn port_ranges() {
        assert_eq!("80".parse(), Ok(PortRange { lo: 80, hi: 80 }));
        assert_eq!(":443".parse(), Ok(PortRange { lo: 443, hi: 443 }));
        assert_eq!(
            "1024-65535".parse(),
            Ok(PortRange {
                lo: 1024,
                hi: 65535
            })
        );
        for bad in ["", "x", "70000", "90-80", "-1"] {
            assert!(bad.parse::<PortRange>().is_err(), "{bad}");
        }
    }
}

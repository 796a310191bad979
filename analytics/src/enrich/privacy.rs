//! IP truncation and the visitor hash: the only forms of a client address
//! that leave this process.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use xxhash_rust::xxh3::Xxh3;

/// The address with its host part zeroed: /24 for IPv4, /48 for IPv6.
/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, what a dual-stack socket
/// reports) are treated as the IPv4 address they carry.
pub fn truncate_ip(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::V4(Ipv4Addr::new(a, b, c, 0))
        }
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[6..].fill(0);
            IpAddr::V6(Ipv6Addr::from(octets))
        }
    }
}

/// The stored form of a truncated address: `81.2.69.0/24`, `2001:db8:1::/48`.
pub fn prefix_string(truncated: IpAddr) -> String {
    match truncated {
        IpAddr::V4(v4) => format!("{v4}/24"),
        IpAddr::V6(v6) => format!("{v6}/48"),
    }
}

/// The stored form written into `out` (at most 43 bytes: an IPv6 address
/// is at most 39 characters), returning how many bytes; no allocation, and
/// IPv4 (most clicks) without the formatting machinery.
pub fn write_prefix(truncated: IpAddr, out: &mut [u8; 48]) -> usize {
    match truncated {
        IpAddr::V4(v4) => {
            let mut n = 0;
            for octet in v4.octets() {
                n += write_decimal(octet, &mut out[n..]);
                out[n] = b'.';
                n += 1;
            }
            n -= 1; // the last octet's dot
            out[n..n + 3].copy_from_slice(b"/24");
            n + 3
        }
        IpAddr::V6(v6) => {
            let mut cursor = std::io::Cursor::new(&mut out[..]);
            let written = write!(cursor, "{v6}/48");
            debug_assert!(written.is_ok(), "an address prefix fits in 48 bytes");
            cursor.position() as usize
        }
    }
}

/// `v` in decimal at the start of `out`; returns the digits written.
fn write_decimal(v: u8, out: &mut [u8]) -> usize {
    if v >= 100 {
        out[..3].copy_from_slice(&[b'0' + v / 100, b'0' + v / 10 % 10, b'0' + v % 10]);
        3
    } else if v >= 10 {
        out[..2].copy_from_slice(&[b'0' + v / 10, b'0' + v % 10]);
        2
    } else {
        out[0] = b'0' + v;
        1
    }
}

/// Longest agent hashed in one go on the stack (the engines cut agents to
/// `MAX_USER_AGENT_LEN`, 512 bytes).
const ONE_SHOT: usize = 17 + snapshots::click::MAX_USER_AGENT_LEN;

/// A 64-bit visitor key: XXH3 of the truncated address and the user agent.
/// Unique-visitor counts come from it; it cannot be turned back into an
/// address because it never saw more than the /24 or /48.
///
/// The key is XXH3 of `address bytes, 0xff, agent`; hashed in one call
/// over a stack copy when it fits (cheaper than the streaming state), which
/// gives the same value as streaming it (a test checks).
pub fn visitor_hash(truncated: IpAddr, user_agent: &[u8]) -> u64 {
    let mut buf = [0u8; ONE_SHOT];
    let address_len = match truncated {
        IpAddr::V4(v4) => {
            buf[..4].copy_from_slice(&v4.octets());
            4
        }
        IpAddr::V6(v6) => {
            buf[..16].copy_from_slice(&v6.octets());
            16
        }
    };
    let len = address_len + 1 + user_agent.len();
    if len <= ONE_SHOT {
        buf[address_len] = 0xff;
        buf[address_len + 1..len].copy_from_slice(user_agent);
        return xxhash_rust::xxh3::xxh3_64(&buf[..len]);
    }
    streamed_visitor_hash(truncated, user_agent)
}

/// [`visitor_hash`] through XXH3's streaming state (any agent length).
fn streamed_visitor_hash(truncated: IpAddr, user_agent: &[u8]) -> u64 {
    let mut h = Xxh3::new();
    match truncated {
        IpAddr::V4(v4) => h.update(&v4.octets()),
        IpAddr::V6(v6) => h.update(&v6.octets()),
    }
    // A separator keeps (address, agent) pairs from colliding by shifting bytes.
    h.update(&[0xff]);
    h.update(user_agent);
    h.digest()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn truncation() {
        assert_eq!(truncate_ip(ip("81.2.69.142")), ip("81.2.69.0"));
        assert_eq!(
            truncate_ip(ip("2001:db8:1234:5678:9abc::1")),
            ip("2001:db8:1234::")
        );
        assert_eq!(truncate_ip(ip("::ffff:10.1.2.3")), ip("10.1.2.0"));
        assert_eq!(
            prefix_string(truncate_ip(ip("81.2.69.142"))),
            "81.2.69.0/24"
        );
        assert_eq!(
            prefix_string(truncate_ip(ip("2001:db8:1:2::9"))),
            "2001:db8:1::/48"
        );
    }

    #[test]
    fn visitor_hash_depends_on_prefix_and_agent_only() {
        let a = visitor_hash(truncate_ip(ip("81.2.69.142")), b"UA");
        let b = visitor_hash(truncate_ip(ip("81.2.69.7")), b"UA");
        assert_eq!(a, b, "same /24, same agent: same visitor");
        assert_ne!(a, visitor_hash(truncate_ip(ip("81.2.70.1")), b"UA"));
        assert_ne!(a, visitor_hash(truncate_ip(ip("81.2.69.142")), b"UA2"));
    }

    #[test]
    fn the_one_shot_hash_is_the_streamed_one() {
        let agent: Vec<u8> = (0..700u32).map(|i| (i * 7 % 251) as u8).collect();
        for address in ["81.2.69.0", "2001:db8:1::"] {
            for len in [0, 1, 15, 100, 239, 240, 241, 495, 496, 511, 512, 513, 700] {
                assert_eq!(
                    visitor_hash(ip(address), &agent[..len]),
                    streamed_visitor_hash(ip(address), &agent[..len]),
                    "{address}, {len} bytes"
                );
            }
        }
    }

    #[test]
    fn prefixes_written_in_place_match_the_strings() {
        let addresses = [
            "81.2.69.0",
            "0.0.0.0",
            "255.255.255.0",
            "10.100.9.0",
            "1.22.133.0",
            "2001:db8:1::",
            "::",
            "ffff:ffff:ffff::",
        ];
        for address in addresses {
            let mut buf = [0u8; 48];
            let n = write_prefix(ip(address), &mut buf);
            assert_eq!(&buf[..n], prefix_string(ip(address)).as_bytes());
        }
    }
}

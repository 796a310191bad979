//! IP truncation and the visitor hash: the only forms of a client address
//! that leave this process.

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

/// A 64-bit visitor key: XXH3 of the truncated address and the user agent.
/// Unique-visitor counts come from it; it cannot be turned back into an
/// address because it never saw more than the /24 or /48.
pub fn visitor_hash(truncated: IpAddr, user_agent: &[u8]) -> u64 {
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
}

//! The client address of a click: the peer, unless the peer is a trusted
//! proxy, in which case the one header the operator named
//! (`client_ip_header`) says who the client is; then cut to the prefix that
//! is kept ([`cut`]).
//!
//! One header, chosen: believing `Forwarded` first and `X-Forwarded-For`
//! otherwise let a client behind a proxy that only appends
//! `X-Forwarded-For` name itself anyone, by sending a `Forwarded` header the
//! proxy passed on untouched. The header is walked right to left (the right
//! end was written by the proxy nearest to us), skipping trusted proxies; the
//! first untrusted address is the client. Anyone can write the left end, so
//! it is only reached when every hop after it is trusted. `X-Real-IP` holds
//! one address, set by the proxy. Nothing here allocates.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// The `client_ip_header` setting: which header a trusted proxy writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ClientIpHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (appended by each proxy).
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1` (RFC 7239).
    Forwarded,
    /// `X-Real-IP: client` (one address, set by the proxy).
    XRealIp,
}

/// An address block, `10.0.0.0/8` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or CIDR block"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| format!("{text:?} has an invalid prefix length"))?,
            None => max,
        };
        Ok(Cidr { network, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

fn trusted(ip: IpAddr, proxies: &[Cidr]) -> bool {
    proxies.iter().any(|cidr| cidr.contains(ip))
}

/// The client address for a request from `peer` whose `header` (the
/// configured one) has `value` (empty when absent).
pub fn client_ip(peer: IpAddr, proxies: &[Cidr], header: ClientIpHeader, value: &[u8]) -> IpAddr {
    let peer = peer.to_canonical();
    if proxies.is_empty() || !trusted(peer, proxies) {
        return peer;
    }
    let mut client = peer;
    match header {
        ClientIpHeader::XRealIp => return parse_ip(trim(value)).unwrap_or(peer),
        ClientIpHeader::Forwarded => {
            // Elements are comma-separated; each has `;`-separated pairs.
            for element in value.rsplit(|&b| b == b',') {
                let Some(ip) = element.split(|&b| b == b';').find_map(forwarded_for) else {
                    // `for=unknown`, an obfuscated name or no `for`: stop here.
                    return client;
                };
                client = ip;
                if !trusted(ip, proxies) {
                    return ip;
                }
            }
            return client;
        }
        ClientIpHeader::XForwardedFor => {}
    }
    if value.is_empty() {
        return client;
    }
    for hop in value.rsplit(|&b| b == b',') {
        let Some(ip) = parse_ip(trim(hop)) else {
            return client;
        };
        client = ip;
        if !trusted(ip, proxies) {
            return ip;
        }
    }
    client
}

/// `ip` with all but its first `v4_bits` (IPv4) or `v6_bits` (IPv6) bits
/// zeroed: the part of an address a click record keeps.
#[inline]
pub fn cut(ip: IpAddr, v4_bits: u8, v6_bits: u8) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(v4_bits.min(32)))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(v6_bits.min(128)))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

/// The address of a `for=` pair: `for=1.2.3.4`, `for="1.2.3.4:80"`, `for="[::1]:80"`.
fn forwarded_for(pair: &[u8]) -> Option<IpAddr> {
    let pair = trim(pair);
    if pair.len() < 4 || !pair[..4].eq_ignore_ascii_case(b"for=") {
        return None;
    }
    let mut value = &pair[4..];
    if let [b'"', inner @ .., b'"'] = value {
        value = inner;
    }
    if let [b'[', rest @ ..] = value {
        let end = rest.iter().position(|&b| b == b']')?;
        return parse_ip(&rest[..end]);
    }
    // IPv4 with an optional port.
    let host = match value.iter().position(|&b| b == b':') {
        Some(colon) => &value[..colon],
        None => value,
    };
    parse_ip(host)
}

fn parse_ip(bytes: &[u8]) -> Option<IpAddr> {
    std::str::from_utf8(bytes)
        .ok()?
        .parse::<IpAddr>()
        .ok()
        .map(|ip| ip.to_canonical())
}

fn trim(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs() {
        let net: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains(ip("10.1.2.3")) && !net.contains(ip("11.0.0.1")));
        assert!(
            net.contains(ip("::ffff:10.0.0.1")),
            "mapped addresses are canonicalised"
        );
        let one: Cidr = "fd00::1".parse().unwrap();
        assert!(one.contains(ip("fd00::1")) && !one.contains(ip("fd00::2")));
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains(ip("1.2.3.4")));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nope".parse::<Cidr>().is_err());
    }

    #[test]
    fn forwarding_only_through_trusted_peers() {
        use ClientIpHeader::{Forwarded, XForwardedFor, XRealIp};
        let proxies = ["10.0.0.0/8".parse().unwrap()];
        let xff = b"6.6.6.6, 1.2.3.4, 10.0.0.9";
        let by_xff = |peer: &str, value: &[u8]| client_ip(ip(peer), &proxies, XForwardedFor, value);
        // Untrusted peer: headers ignored.
        assert_eq!(by_xff("8.8.8.8", xff), ip("8.8.8.8"));
        // Trusted peer: rightmost untrusted hop; the spoofable left end is never reached.
        assert_eq!(by_xff("10.0.0.1", xff), ip("1.2.3.4"));
        assert_eq!(by_xff("10.0.0.1", b""), ip("10.0.0.1"));
        assert_eq!(by_xff("10.0.0.1", b"garbage"), ip("10.0.0.1"));
        // No trusted proxies configured: the peer, always.
        assert_eq!(
            client_ip(ip("10.0.0.1"), &[], XForwardedFor, xff),
            ip("10.0.0.1")
        );
        let fwd = b"for=192.0.2.43, for=\"[2001:db8:cafe::17]:4711\";proto=https, for=10.1.1.1";
        let by_fwd = |value: &[u8]| client_ip(ip("10.0.0.1"), &proxies, Forwarded, value);
        assert_eq!(by_fwd(fwd), ip("2001:db8:cafe::17"));
        assert_eq!(by_fwd(b"for=\"198.51.100.17:80\""), ip("198.51.100.17"));
        assert_eq!(by_fwd(b"for=unknown"), ip("10.0.0.1"));
        let by_real = |value: &[u8]| client_ip(ip("10.0.0.1"), &proxies, XRealIp, value);
        assert_eq!(by_real(b" 198.51.100.7 "), ip("198.51.100.7"));
        assert_eq!(by_real(b"not an address"), ip("10.0.0.1"));
        assert_eq!(by_real(b""), ip("10.0.0.1"));
    }

    /// Behind a proxy that only appends `X-Forwarded-For`, a `Forwarded`
    /// header the client sent reaches the engine untouched; it must not be
    /// believed (nor, with `forwarded` chosen, an `X-Forwarded-For`).
    #[test]
    fn only_the_chosen_header_is_believed() {
        use ClientIpHeader::{Forwarded, XForwardedFor};
        let proxies = ["10.0.0.0/8".parse().unwrap()];
        // What the engine gets: the client's own Forwarded, and the XFF the
        // proxy appended the real client to.
        let spoofed_forwarded = b"for=6.6.6.6";
        let xff = b"203.0.113.9";
        let peer = ip("10.0.0.1");
        assert_eq!(
            client_ip(peer, &proxies, XForwardedFor, xff),
            ip("203.0.113.9")
        );
        assert_ne!(
            client_ip(peer, &proxies, XForwardedFor, xff),
            client_ip(peer, &proxies, Forwarded, spoofed_forwarded)
        );
        // The session hands over only the chosen header's value.
        assert_eq!(
            client_ip(peer, &proxies, Forwarded, b""),
            peer,
            "no Forwarded: the proxy itself"
        );
    }

    #[test]
    fn addresses_are_cut_to_their_prefix() {
        assert_eq!(cut(ip("203.0.113.77"), 24, 48), ip("203.0.113.0"));
        assert_eq!(cut(ip("::ffff:203.0.113.77"), 24, 48), ip("203.0.113.0"));
        assert_eq!(
            cut(ip("2001:db8:cafe:1:2:3:4:5"), 24, 48),
            ip("2001:db8:cafe::")
        );
        assert_eq!(cut(ip("203.0.113.77"), 16, 48), ip("203.0.0.0"));
        assert_eq!(cut(ip("203.0.113.77"), 32, 128), ip("203.0.113.77"));
        assert_eq!(cut(ip("203.0.113.77"), 0, 0), ip("0.0.0.0"));
    }
}

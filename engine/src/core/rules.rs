//! Redirect rules on the request path: which of a link's rules (or split
//! variants) serves a visit.
//!
//! Only links flagged with rules get here ([`super::lifecycle::Target`]'s
//! `has_rules`), so the others pay nothing. For those, each condition is
//! worked out from the request on demand and at most once ([`Facts`]): a rule
//! list that asks only for a query parameter never scans the user agent, and
//! a GeoIP lookup happens only when a rule asks for a country. Everything is
//! read in place from the archived rules (the memory-mapped snapshot or the
//! core's delta map); nothing is allocated.
//!
//! - Device and OS come from a few user-agent tokens (`iPhone`, `iPad`,
//!   `Android` with or without `Mobile`, `Windows`, `Macintosh`, `CrOS`,
//!   `Linux`): rules need only the classes the API offers, and a full
//!   user-agent parse costs microseconds. Bots count as what they claim.
//! - The language is the primary subtag of the Accept-Language entry with
//!   the highest q (ties: the first), `q=0` and `*` ignored.
//! - The country is the GeoIP database's for the visitor's full address
//!   (the one click capture reads, behind trusted proxies); an engine
//!   without a database matches no country rule and counts it.
//! - A split picks its variant by a hash of the link's code, the visitor's
//!   address prefix (as click records keep it) and user agent: one visitor
//!   gets one variant on every visit and every engine, with no state.

use crate::geoip::GeoIp;
use memchr::memmem::Finder;
use snapshots::RedirectStatus;
use snapshots::rules::{
    ArchivedRuleValue, ArchivedRulesValue, Device, MAX_QUERY_NAME, MAX_QUERY_VALUE, Os,
    QUERY_EQUALS, QUERY_PRESENT, VARIANT_RULE_BASE,
};
use std::cell::Cell;
use std::hash::Hasher;
use std::net::IpAddr;
use std::sync::LazyLock;

/// What rule evaluation reads of a request.
#[derive(Debug, Clone, Copy)]
pub struct Visit<'a> {
    pub code: &'a [u8],
    pub user_agent: &'a [u8],
    pub accept_language: &'a [u8],
    /// Without the `?`.
    pub query: &'a [u8],
    /// The visitor's full address (for GeoIP).
    pub client: IpAddr,
    /// The same cut to the prefix click records keep (for the split).
    pub client_prefix: IpAddr,
    /// Unix seconds.
    pub now: i64,
}

/// Where a rule or variant sends a visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chosen<'a> {
    pub location: &'a [u8],
    pub status: RedirectStatus,
    /// For the click record: rule index + 1, or
    /// [`VARIANT_RULE_BASE`] + variant index.
    pub rule: u8,
}

/// The visit's facts, each worked out on first use.
struct Facts<'v> {
    visit: &'v Visit<'v>,
    geoip: Option<&'v GeoIp>,
    agent: Cell<Option<(u8, u8)>>,
    language: Cell<Option<[u8; 3]>>,
    country: Cell<Option<Option<[u8; 2]>>>,
}

impl Facts<'_> {
    /// Device and OS bits.
    fn agent(&self) -> (u8, u8) {
        if let Some(known) = self.agent.get() {
            return known;
        }
        let known = classify(self.visit.user_agent);
        self.agent.set(Some(known));
        known
    }

    /// The preferred primary subtag, zero-padded; all zeros: none.
    fn language(&self) -> [u8; 3] {
        if let Some(known) = self.language.get() {
            return known;
        }
        let known = preferred_language(self.visit.accept_language);
        self.language.set(Some(known));
        known
    }

    /// The visitor's country; `None` when unknown or without a database.
    fn country(&self) -> Option<[u8; 2]> {
        if let Some(known) = self.country.get() {
            return known;
        }
        let known = self.geoip.and_then(|db| db.country(self.visit.client));
        self.country.set(Some(known));
        known
    }
}

/// The first of `rules` that holds for the visit, else the split's
/// variant, else `None` (the link's own target). `geoip`: the engine's
/// database, if it has one; `without_geoip` is called once when a country
/// rule could not be judged for the lack of one.
pub fn choose<'a>(
    rules: &'a ArchivedRulesValue,
    visit: &Visit<'_>,
    geoip: Option<&GeoIp>,
    without_geoip: impl FnOnce(),
) -> Option<Chosen<'a>> {
    let facts = Facts {
        visit,
        geoip,
        agent: Cell::new(None),
        language: Cell::new(None),
        country: Cell::new(None),
    };
    let mut missed_geoip = false;
    for (index, rule) in rules.rules.iter().enumerate() {
        if holds(rule, &facts, &mut missed_geoip) {
            return Some(Chosen {
                location: rule.target.as_bytes(),
                status: status(rule.status.to_native()),
                rule: index as u8 + 1,
            });
        }
    }
    if missed_geoip {
        without_geoip();
    }
    if rules.split.is_empty() {
        return None;
    }
    let bucket = (visitor_hash(visit) % 100) as u32;
    let mut upto = 0u32;
    for (index, variant) in rules.split.iter().enumerate() {
        upto += u32::from(variant.weight);
        if bucket < upto {
            return Some(Chosen {
                location: variant.target.as_bytes(),
                status: status(variant.status.to_native()),
                rule: VARIANT_RULE_BASE + index as u8,
            });
        }
    }
    None
}

fn status(code: u16) -> RedirectStatus {
    // The snapshot reader and delta decoding checked it.
    RedirectStatus::try_from(code).unwrap_or_default()
}

/// Whether every condition of `rule` holds; cheapest first.
fn holds(rule: &ArchivedRuleValue, facts: &Facts<'_>, missed_geoip: &mut bool) -> bool {
    let now = facts.visit.now;
    let from = rule.from.to_native();
    let until = rule.until.to_native();
    if (from != 0 && now < from) || (until != 0 && now >= until) {
        return false;
    }
    if rule.query != 0 && !query_holds(rule, facts.visit.query) {
        return false;
    }
    if rule.devices != 0 || rule.os != 0 {
        let (device, os) = facts.agent();
        if (rule.devices != 0 && rule.devices & device == 0) || (rule.os != 0 && rule.os & os == 0)
        {
            return false;
        }
    }
    if !rule.languages.is_empty() {
        let language = facts.language();
        if !rule.languages.contains(&language) {
            return false;
        }
    }
    if !rule.countries.is_empty() {
        if facts.geoip.is_none() {
            *missed_geoip = true;
            return false;
        }
        match facts.country() {
            Some(country) if rule.countries.contains(&country) => {}
            _ => return false,
        }
    }
    true
}

/// The user-agent tokens [`classify`] looks for, each searcher built once
/// per process (building one costs more than a search).
struct Tokens([Finder<'static>; 9]);

static TOKENS: LazyLock<Tokens> = LazyLock::new(|| {
    Tokens(
        [
            b"iPad".as_slice(),
            b"iPhone",
            b"iPod",
            b"Android",
            b"Mobile",
            b"Windows",
            b"CrOS",
            b"Mac",
            b"Linux",
        ]
        .map(|needle| Finder::new(needle).into_owned()),
    )
});

/// Device and OS bits of a user agent. The system is named in the first
/// parenthesised part (`Mozilla/5.0 (iPhone; CPU iPhone OS ...)`), so only
/// that part is searched, except for Android's `Mobile`, which comes after.
fn classify(agent: &[u8]) -> (u8, u8) {
    let platform = match memchr::memchr(b'(', agent) {
        Some(open) => {
            let rest = &agent[open + 1..];
            &rest[..memchr::memchr(b')', rest).unwrap_or(rest.len())]
        }
        None => agent,
    };
    let [
        ipad,
        iphone,
        ipod,
        android,
        mobile,
        windows,
        cros,
        mac,
        linux,
    ] = &TOKENS.0;
    let has = |finder: &Finder<'_>| finder.find(platform).is_some();
    let (os, device) = if has(ipad) {
        (Os::Ios, Device::Tablet)
    } else if has(iphone) || has(ipod) {
        (Os::Ios, Device::Mobile)
    } else if has(android) {
        // Android tablets leave `Mobile` out of their user agent.
        let device = if mobile.find(agent).is_some() {
            Device::Mobile
        } else {
            Device::Tablet
        };
        (Os::Android, device)
    } else if has(windows) {
        let device = if has(mobile) {
            // Windows Phone / Windows Mobile.
            Device::Mobile
        } else {
            Device::Desktop
        };
        (Os::Windows, device)
    } else if has(cros) {
        (Os::Chromeos, Device::Desktop)
    } else if has(mac) {
        (Os::Macos, Device::Desktop)
    } else if has(linux) {
        (Os::Linux, Device::Desktop)
    } else {
        // Unknown system: a desktop of no known family.
        return (Device::Desktop.bit(), 0);
    };
    (device.bit(), os.bit())
}

/// The primary subtag of the Accept-Language entry with the highest q.
fn preferred_language(header: &[u8]) -> [u8; 3] {
    let mut best = [0u8; 3];
    let mut best_q = 0u16;
    for entry in header.split(|&b| b == b',') {
        let mut parts = entry.split(|&b| b == b';');
        let tag = trim(parts.next().unwrap_or_default());
        let mut q = 1000u16;
        for param in parts {
            let param = trim(param);
            if let Some(value) = param
                .strip_prefix(b"q=")
                .or_else(|| param.strip_prefix(b"Q="))
            {
                q = quality(value);
            }
        }
        if q <= best_q {
            continue;
        }
        let primary = tag.split(|&b| b == b'-').next().unwrap_or_default();
        if !(2..=3).contains(&primary.len()) || !primary.iter().all(u8::is_ascii_alphabetic) {
            continue;
        }
        let mut code = [0u8; 3];
        for (to, from) in code.iter_mut().zip(primary) {
            *to = from.to_ascii_lowercase();
        }
        best = code;
        best_q = q;
    }
    best
}

/// An HTTP quality value in thousandths; malformed ones count as 0.
fn quality(value: &[u8]) -> u16 {
    match value {
        [b'1', rest @ ..] if rest.iter().all(|&b| b == b'.' || b == b'0') => 1000,
        [b'0'] => 0,
        [b'0', b'.', digits @ ..] if digits.len() <= 3 && digits.iter().all(u8::is_ascii_digit) => {
            let mut thousandths = 0u16;
            for place in 0..3 {
                let digit = digits.get(place).map_or(0, |d| u16::from(d - b'0'));
                thousandths = thousandths * 10 + digit;
            }
            thousandths
        }
        _ => 0,
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |at| at + 1);
    &bytes[start..end.max(start)]
}

/// Whether the query condition of `rule` holds for the request's query.
fn query_holds(rule: &ArchivedRuleValue, query: &[u8]) -> bool {
    let name = rule.query_name.as_bytes();
    let mut name_buf = [0u8; MAX_QUERY_NAME];
    let mut value_buf = [0u8; MAX_QUERY_VALUE];
    for pair in query.split(|&b| b == b'&') {
        let (raw_name, raw_value) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &b""[..]),
        };
        if decode(raw_name, &mut name_buf) != Some(name) {
            continue;
        }
        match rule.query {
            QUERY_PRESENT => return true,
            QUERY_EQUALS => {
                if decode(raw_value, &mut value_buf) == Some(rule.query_value.as_bytes()) {
                    return true;
                }
            }
            _ => return false,
        }
    }
    false
}

/// Percent-decodes a query component (`+` reads as a space) into `buf`;
/// `None` when it does not fit or has a broken escape.
fn decode<'b>(raw: &[u8], buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let mut len = 0;
    let mut at = 0;
    while at < raw.len() {
        let byte = match raw[at] {
            b'+' => b' ',
            b'%' => {
                let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
                let high = hex(*raw.get(at + 1)?)?;
                let low = hex(*raw.get(at + 2)?)?;
                at += 2;
                high << 4 | low
            }
            other => other,
        };
        *buf.get_mut(len)? = byte;
        len += 1;
        at += 1;
    }
    Some(&buf[..len])
}

/// A stable 64-bit hash of the split's key: FxHash (eight bytes a step)
/// over code, address prefix and user agent, each with its length, then
/// SplitMix64's finaliser so the low bits the modulo reads are well mixed.
/// Stable across processes, so every engine gives a visitor the same
/// variant (changing it reshuffles visitors: a version note).
fn visitor_hash(visit: &Visit<'_>) -> u64 {
    let mut hasher = super::fxhash::FxHasher::default();
    let mut eat = |bytes: &[u8]| {
        // The length, so ("ab", "c") and ("a", "bc") differ.
        hasher.write_u64(bytes.len() as u64);
        hasher.write(bytes);
    };
    eat(visit.code);
    match visit.client_prefix {
        IpAddr::V4(ip) => eat(&ip.octets()),
        IpAddr::V6(ip) => eat(&ip.octets()),
    }
    eat(visit.user_agent);
    let hash = hasher.finish();
    let mut z = hash.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use snapshots::rules::{Conditions, QueryCondition, Rule, RulesBytes, Variant};

    const IPHONE: &[u8] = b"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148";
    const IPAD: &[u8] = b"Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15";
    const PIXEL: &[u8] = b"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36";
    const GALAXY_TAB: &[u8] =
        b"Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 Chrome/120.0 Safari/537.36";
    const WINDOWS: &[u8] =
        b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0";
    const MAC: &[u8] =
        b"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Safari/605.1.15";
    const CROS: &[u8] =
        b"Mozilla/5.0 (X11; CrOS x86_64 15633.69.0) AppleWebKit/537.36 Chrome/120.0";
    const LINUX: &[u8] = b"Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";

    #[test]
    fn user_agents_sort_into_device_and_os() {
        let cases = [
            (IPHONE, Device::Mobile, Os::Ios),
            (IPAD, Device::Tablet, Os::Ios),
            (PIXEL, Device::Mobile, Os::Android),
            (GALAXY_TAB, Device::Tablet, Os::Android),
            (WINDOWS, Device::Desktop, Os::Windows),
            (MAC, Device::Desktop, Os::Macos),
            (CROS, Device::Desktop, Os::Chromeos),
            (LINUX, Device::Desktop, Os::Linux),
        ];
        for (agent, device, os) in cases {
            assert_eq!(
                classify(agent),
                (device.bit(), os.bit()),
                "{}",
                String::from_utf8_lossy(agent)
            );
        }
        assert_eq!(classify(b"curl/8.5.0"), (Device::Desktop.bit(), 0));
    }

    #[test]
    fn the_highest_quality_language_wins() {
        assert_eq!(&preferred_language(b"fr-CH, fr;q=0.9, en;q=0.8"), b"fr\0");
        assert_eq!(&preferred_language(b"en;q=0.5, de-AT;q=0.7"), b"de\0");
        assert_eq!(&preferred_language(b"de;q=0.7, en;q=0.7"), b"de\0");
        assert_eq!(&preferred_language(b"*, es;q=0.2"), b"es\0");
        assert_eq!(&preferred_language(b"it;q=0, gsw"), b"gsw");
        assert_eq!(&preferred_language(b"EN-us"), b"en\0");
        assert_eq!(preferred_language(b""), [0; 3]);
        assert_eq!(preferred_language(b"x-klingon;q=bad"), [0; 3]);
    }

    fn visit<'a>(agent: &'a [u8], language: &'a [u8], query: &'a [u8]) -> Visit<'a> {
        let client: IpAddr = "192.0.2.77".parse().unwrap();
        Visit {
            code: b"abc",
            user_agent: agent,
            accept_language: language,
            query,
            client,
            client_prefix: client,
            now: 1_000,
        }
    }

    fn rule(when: Conditions, target: &str) -> Rule {
        Rule {
            when,
            target: target.into(),
            status: None,
        }
    }

    fn rules() -> RulesBytes {
        RulesBytes::new(
            &[
                rule(
                    Conditions {
                        device: vec![Device::Mobile],
                        os: vec![Os::Ios],
                        ..Conditions::default()
                    },
                    "https://t/ios",
                ),
                rule(
                    Conditions {
                        query: Some(QueryCondition {
                            name: "ref".into(),
                            equals: Some("mail list".into()),
                        }),
                        ..Conditions::default()
                    },
                    "https://t/mail",
                ),
                rule(
                    Conditions {
                        language: vec!["fr".into()],
                        from: Some(500),
                        until: Some(2_000),
                        ..Conditions::default()
                    },
                    "https://t/fr",
                ),
                rule(
                    Conditions {
                        country: vec!["DE".into()],
                        ..Conditions::default()
                    },
                    "https://t/de",
                ),
            ],
            &[
                Variant {
                    target: "https://t/a".into(),
                    weight: 50,
                    status: None,
                },
                Variant {
                    target: "https://t/b".into(),
                    weight: 50,
                    status: Some(RedirectStatus::Found),
                },
            ],
            RedirectStatus::TemporaryRedirect,
        )
    }

    fn target(visit: &Visit<'_>) -> (String, u8) {
        let bytes = rules();
        let chosen = choose(bytes.get(), visit, None, || {}).unwrap();
        (
            String::from_utf8(chosen.location.to_vec()).unwrap(),
            chosen.rule,
        )
    }

    #[test]
    fn the_first_rule_that_holds_serves() {
        assert_eq!(
            target(&visit(IPHONE, b"fr", b"")),
            ("https://t/ios".into(), 1)
        );
        assert_eq!(
            target(&visit(WINDOWS, b"fr", b"x=1&ref=mail+list")),
            ("https://t/mail".into(), 2)
        );
        assert_eq!(
            target(&visit(WINDOWS, b"fr", b"ref=mail%20list")),
            ("https://t/mail".into(), 2)
        );
        assert_eq!(
            target(&visit(WINDOWS, b"en, fr;q=0.9", b"ref=other")),
            (
                String::from_utf8(split_of(WINDOWS)).unwrap(),
                split_rule(WINDOWS)
            )
        );
        assert_eq!(
            target(&visit(WINDOWS, b"fr", b"")),
            ("https://t/fr".into(), 3)
        );
        let mut late = visit(WINDOWS, b"fr", b"");
        late.now = 2_000;
        assert_ne!(target(&late).1, 3);
    }

    fn split_of(agent: &[u8]) -> Vec<u8> {
        let bytes = rules();
        let v = visit(agent, b"", b"");
        choose(bytes.get(), &v, None, || {})
            .unwrap()
            .location
            .to_vec()
    }

    fn split_rule(agent: &[u8]) -> u8 {
        let bytes = rules();
        choose(bytes.get(), &visit(agent, b"", b""), None, || {})
            .unwrap()
            .rule
    }

    #[test]
    fn a_country_rule_without_a_database_matches_nothing_and_says_so() {
        let bytes = rules();
        let missed = Cell::new(0);
        let chosen = choose(bytes.get(), &visit(LINUX, b"", b""), None, || {
            missed.set(missed.get() + 1)
        })
        .unwrap();
        assert!(chosen.rule >= VARIANT_RULE_BASE);
        assert_eq!(missed.get(), 1);
    }

    #[test]
    fn the_split_is_sticky_and_follows_its_weights() {
        let bytes = rules();
        let mut counts = [0u32; 2];
        for i in 0..10_000u32 {
            let ip = IpAddr::from([10, (i >> 8) as u8, i as u8, 0]);
            let v = Visit {
                client: ip,
                client_prefix: ip,
                ..visit(LINUX, b"", b"")
            };
            let first = choose(bytes.get(), &v, None, || {}).unwrap();
            let again = choose(bytes.get(), &v, None, || {}).unwrap();
            assert_eq!(first, again);
            counts[usize::from(first.rule - VARIANT_RULE_BASE)] += 1;
            let expected = if first.rule == VARIANT_RULE_BASE {
                RedirectStatus::TemporaryRedirect
            } else {
                RedirectStatus::Found
            };
            assert_eq!(first.status, expected);
        }
        // Within 2 % of 50/50 over 10,000 visitors.
        assert!((4_800..=5_200).contains(&counts[0]), "{counts:?}");
    }

    #[test]
    fn query_decoding() {
        let mut buf = [0u8; 8];
        assert_eq!(decode(b"a%2Bb+c", &mut buf), Some(&b"a+b c"[..]));
        assert_eq!(decode(b"%zz", &mut buf), None);
        assert_eq!(decode(b"123456789", &mut buf), None);
    }
}

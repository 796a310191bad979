//! Browser, OS and device families from uap-core's regexes (vendored as
//! `analytics/data/uap-regexes.json`, refreshed by `analytics/data/refresh.sh`)
//! through the `ua-parser` crate, the ua-parser project's own Rust port.
//!
//! The compiled regexes are built once per process (about a megabyte of
//! automata, tens of milliseconds) and shared: every [`super::AgentCache`]
//! uses the same [`families`].

use std::sync::LazyLock;

/// uap-core's regexes.yaml, converted to JSON by the refresh script.
const REGEXES: &str = include_str!("../../data/uap-regexes.json");

static EXTRACTOR: LazyLock<ua_parser::Extractor<'static>> = LazyLock::new(|| {
    let regexes: ua_parser::Regexes<'static> =
        serde_json::from_str(REGEXES).expect("analytics/data/uap-regexes.json");
    ua_parser::Extractor::try_from(regexes).expect("uap-core regexes compile")
});

/// What uap-core says about an agent; empty where it says `Other`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Families {
    /// `Chrome`, `Chrome Mobile`, `Mobile Safari`, `Firefox`, `Facebook`...
    pub browser: String,
    /// `Windows`, `Mac OS X`, `iOS`, `Android`, `Linux`, `KaiOS`...
    pub os: String,
    /// `iPhone`, `iPad`, `Mac`, `Samsung SM-G991B`, `Spider`, `Generic Feature Phone`...
    pub device: String,
    /// The device's brand, when a device regex names one (`Samsung`, `Apple`...).
    pub brand: String,
}

/// Builds the shared extractor now rather than on the first click.
pub fn warm_up() {
    LazyLock::force(&EXTRACTOR);
}

/// Parses one agent (no cache: see [`super::AgentCache`]).
pub fn families(user_agent: &str) -> Families {
    let (ua, os, device) = EXTRACTOR.extract(user_agent);
    Families {
        browser: ua.map(|v| known(&v.family)).unwrap_or_default(),
        os: os.map(|v| known(&v.os)).unwrap_or_default(),
        brand: device
            .as_ref()
            .and_then(|v| v.brand.as_deref().map(known))
            .unwrap_or_default(),
        device: device.map(|v| known(&v.device)).unwrap_or_default(),
    }
}

fn known(family: &str) -> String {
    if family == "Other" {
        String::new()
    } else {
        family.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mainstream_agents() {
        let f = families(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
        );
        assert_eq!(
            (f.browser.as_str(), f.os.as_str(), f.device.as_str()),
            ("Mobile Safari", "iOS", "iPhone")
        );
        let f = families(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
        );
        assert_eq!((f.browser.as_str(), f.os.as_str()), ("Firefox", "Windows"));
        assert_eq!(families("no such agent"), Families::default());
    }
}

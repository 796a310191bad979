//! The device class of a phone, tablet or TV model, from Matomo
//! device-detector's device database (`regexes/device/mobiles.yml`,
//! vendored as `analytics/data/device-models.json` by
//! `analytics/data/refresh.sh`; LGPL-3.0-or-later).
//!
//! uap-core names a model but says nothing of its class, and Android agents
//! often break the `Mobile` token convention (tablets that say `Mobile`,
//! foldables and WebViews that do not). Matomo's database knows the hardware:
//! about 2,000 brands, each a regex over the agent with a default type, and
//! their models, each a regex with a type of its own. It is read the way
//! Matomo reads it: the first brand whose regex matches, then the first of
//! its models that matches, else the brand's type.
//!
//! Cost: the brand regexes sit behind one Aho-Corasick prefilter of their
//! literals (`regex-filtered`, as the `ua-parser` crate does for uap-core),
//! so an agent runs only the few whose literals it contains. A brand's model
//! regexes are compiled the first time an agent of that brand is seen. The
//! few patterns with lookarounds (which the `regex` crate lacks) are
//! prefiltered without them (a superset) and confirmed by `fancy-regex`.
//! All this happens once per distinct agent: [`super::agent::AgentCache`].

use std::sync::{LazyLock, OnceLock};

use serde::Deserialize;

use super::bots::strip_lookarounds;

/// Matomo's device database, brands in its order (refresh script's output).
const DATABASE: &str = include_str!("../../data/device-models.json");

/// Matomo matches every pattern after this one (`BOUNDED_REGEX` in the
/// Python port, `createUserAgentRegex` in PHP), case-insensitively: a model
/// name starts at the start of the agent or after a separator.
const BOUNDARY: &str = r"(?:^|[^A-Z0-9_-]|[^A-Z0-9-]_|sprd-|MZ-)";

#[derive(Deserialize)]
struct BrandEntry {
    regex: String,
    device: String,
    /// `[regex, type]`, the type resolved (the model's, else the brand's).
    models: Vec<(String, String)>,
}

/// A list of patterns of which the first that matches decides.
struct FirstMatch {
    set: regex_filtered::Regexes,
    /// The exact pattern, for those whose entry in `set` is a superset.
    exact: Vec<Option<fancy_regex::Regex>>,
}

impl FirstMatch {
    /// Compiles `patterns`. Panics on one that does not compile: the
    /// vendored file is checked by this module's tests, like isbot's list.
    fn new<'a>(patterns: impl Iterator<Item = &'a str>) -> FirstMatch {
        let mut builder = regex_filtered::Builder::new();
        let mut exact = Vec::new();
        let mut opts = regex_filtered::Options::new();
        opts.case_insensitive(true);
        for p in patterns {
            let full = format!("{BOUNDARY}(?:{p})");
            let stripped = strip_lookarounds(&full);
            exact.push((stripped != full).then(|| {
                fancy_regex::RegexBuilder::new(&format!("(?i){full}"))
                    .build()
                    .unwrap_or_else(|e| panic!("device database pattern {p:?}: {e}"))
            }));
            builder = builder
                .push_opt(&stripped, &opts)
                .unwrap_or_else(|e| panic!("device database pattern {p:?}: {e}"));
        }
        let set = builder.build().expect("prefilter of the device database");
        FirstMatch { set, exact }
    }

    /// The position of the first pattern matching `lower`. `matching`
    /// yields candidates in ascending order and runs each regex only when
    /// asked, so the first confirmed one is the answer and the rest are
    /// never run.
    fn first(&self, lower: &str) -> Option<usize> {
        self.set.matching(lower).map(|(i, _)| i).find(|&i| {
            self.exact[i]
                .as_ref()
                .is_none_or(|r| r.is_match(lower).unwrap_or(false))
        })
    }
}

struct Brand {
    class: Option<&'static str>,
    /// `(regex, class)` of its models, compiled on first use.
    models: Vec<(String, Option<&'static str>)>,
    compiled: OnceLock<FirstMatch>,
}

/// The compiled database.
pub struct Models {
    brands: FirstMatch,
    /// In the order of `brands`.
    entries: Vec<Brand>,
}

static MODELS: LazyLock<Models> = LazyLock::new(Models::load);

/// The process's database, compiled on first use.
pub fn models() -> &'static Models {
    &MODELS
}

impl Models {
    fn load() -> Models {
        let raw: Vec<BrandEntry> =
            serde_json::from_str(DATABASE).expect("analytics/data/device-models.json");
        let brands = FirstMatch::new(raw.iter().map(|b| b.regex.as_str()));
        let entries = raw
            .into_iter()
            .map(|b| Brand {
                class: class_of(&b.device),
                models: b
                    .models
                    .into_iter()
                    .map(|(r, d)| (r, class_of(&d)))
                    .collect(),
                compiled: OnceLock::new(),
            })
            .collect();
        Models { brands, entries }
    }

    /// The class Matomo's database gives the device in `lower` (the agent in
    /// ASCII lowercase), if it knows the brand.
    pub fn class(&self, lower: &str) -> Option<&'static str> {
        let brand = &self.entries[self.brands.first(lower)?];
        if brand.models.is_empty() {
            return brand.class;
        }
        let set = brand
            .compiled
            .get_or_init(|| FirstMatch::new(brand.models.iter().map(|(r, _)| r.as_str())));
        match set.first(lower) {
            Some(i) => brand.models[i].1,
            None => brand.class,
        }
    }
}

/// Matomo's device type as this crate's class (`None`: no type given).
fn class_of(matomo: &str) -> Option<&'static str> {
    Some(match matomo {
        "smartphone" | "phablet" | "wearable" | "camera" | "portable media player" => "mobile",
        "tablet" => "tablet",
        "feature phone" => "feature_phone",
        "desktop" => "desktop",
        "tv" | "console" | "car browser" | "smart display" | "smart speaker" | "peripheral" => {
            "appliance"
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(ua: &str) -> Option<&'static str> {
        models().class(&ua.to_ascii_lowercase())
    }

    #[test]
    fn every_pattern_compiles() {
        let m = models();
        assert!(m.entries.len() > 1500, "{} brands", m.entries.len());
        for brand in &m.entries {
            let set = FirstMatch::new(brand.models.iter().map(|(r, _)| r.as_str()));
            assert_eq!(set.exact.len(), brand.models.len());
        }
    }

    #[test]
    fn tablets_and_phones_by_model() {
        // A Galaxy Tab that says `Mobile`, and a phone that does not.
        assert_eq!(
            c(
                "Mozilla/5.0 (Linux; Android 13; SM-X205) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36"
            ),
            Some("tablet")
        );
        assert_eq!(
            c(
                "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
            ),
            Some("mobile")
        );
        assert_eq!(
            c("Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"),
            None
        );
    }
}

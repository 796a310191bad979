//! Scores an agent parser on the committed corpora (`analytics/corpora`,
//! see its README): shared by the accuracy test, which asserts the goals, and
//! the `accuracy` example, which prints the table for the README.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use analytics::enrich::agent::Agent;

/// Hits out of a total, with every miss kept for reading.
#[derive(Debug, Default, Clone)]
pub struct Score {
    pub hits: usize,
    pub total: usize,
    pub misses: Vec<String>,
}

impl Score {
    fn add(&mut self, hit: bool, what: impl FnOnce() -> String) {
        self.total += 1;
        if hit {
            self.hits += 1;
        } else {
            self.misses.push(what());
        }
    }

    /// Hits as a percentage (100 for an empty score).
    pub fn percent(&self) -> f64 {
        if self.total == 0 {
            100.0
        } else {
            100.0 * self.hits as f64 / self.total as f64
        }
    }
}

/// Every measure of one parser.
#[derive(Debug, Default)]
pub struct Measured {
    /// crawler-user-agents' instances flagged `is_bot`.
    pub crawler_recall: Score,
    /// Matomo's bot fixtures flagged `is_bot`.
    pub matomo_bot_recall: Score,
    /// People's browsers and apps *not* flagged (so `100 - percent` is the
    /// share of people flagged as bots).
    pub humans_kept: Score,
    /// Device class on people's agents labelled desktop, smartphone, phablet,
    /// tablet or feature phone.
    pub device: Score,
    /// The same, per expected class.
    pub device_by_class: BTreeMap<&'static str, Score>,
    /// Device class on `devices-heldout.tsv`: other smartphones, tablets
    /// and TVs of the same fixtures, never read while tuning the rules.
    pub heldout_device: Score,
    /// The same, per expected class.
    pub heldout_by_class: BTreeMap<&'static str, Score>,
    /// TVs, consoles, cars, smart displays: `appliance` expected.
    pub appliances: Score,
    /// Browser family where the reference names a mainstream one.
    pub browser: Score,
    /// OS family where the reference names a mainstream one.
    pub os: Score,
}

/// `analytics/corpora`.
pub fn corpora() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpora")
}

/// Runs `parse` over every corpus.
pub fn measure(parse: &dyn Fn(&[u8]) -> Agent) -> Measured {
    let mut m = Measured::default();
    for [_pattern, ua] in rows::<2>("crawlers.tsv") {
        m.crawler_recall
            .add(parse(ua.as_bytes()).is_bot, || ua.clone());
    }
    for [_bot, _category, ua] in rows::<3>("matomo-bots.tsv") {
        m.matomo_bot_recall
            .add(parse(ua.as_bytes()).is_bot, || ua.clone());
    }
    for [device_type, client_type, client, os, ua] in rows::<5>("devices.tsv") {
        if !is_person(&client_type, &ua) {
            continue;
        }
        let agent = parse(ua.as_bytes());
        m.humans_kept
            .add(!agent.is_bot, || format!("{client}\t{ua}"));
        if let Some(expected) = expected_class(&device_type) {
            let what = || format!("{expected}->{}\t{ua}", agent.device);
            let hit = agent.device == expected;
            m.device.add(hit, what);
            m.device_by_class
                .entry(expected)
                .or_default()
                .add(hit, what);
        } else if matches!(
            device_type.as_str(),
            "tv" | "console" | "car browser" | "smart display"
        ) {
            m.appliances.add(agent.device == "appliance", || {
                format!("{device_type}->{}\t{ua}", agent.device)
            });
        }
        if let Some(family) = browser_family(&client) {
            let ours = browser_family(&agent.browser);
            m.browser.add(ours == Some(family), || {
                format!("{family}->{:?}\t{ua}", agent.browser)
            });
        }
        if let Some(family) = os_family(&os) {
            let ours = os_family(&agent.os);
            m.os.add(ours == Some(family), || {
                format!("{family}->{:?}\t{ua}", agent.os)
            });
        }
    }
    for [device_type, client_type, _client, _os, ua] in rows::<5>("devices-heldout.tsv") {
        let Some(expected) = expected_class(&device_type) else {
            continue;
        };
        if !is_person(&client_type, &ua) {
            continue;
        }
        let agent = parse(ua.as_bytes());
        let what = || format!("{expected}->{}\t{ua}", agent.device);
        let hit = agent.device == expected;
        m.heldout_device.add(hit, what);
        m.heldout_by_class
            .entry(expected)
            .or_default()
            .add(hit, what);
    }
    m
}

/// The class the sidecar should give a person's device of Matomo's type
/// (`None`: TVs and other appliances, scored apart, and the rest).
fn expected_class(device_type: &str) -> Option<&'static str> {
    match device_type {
        "desktop" => Some("desktop"),
        "smartphone" | "phablet" => Some("mobile"),
        "tablet" => Some("tablet"),
        "feature phone" => Some("feature_phone"),
        _ => None,
    }
}

/// People: browsers, and apps' in-app browsers (a `Mozilla/` agent). Podcast
/// and feed clients, download managers, media players and libraries fetch
/// on their own schedule, not when a person clicks, and are not counted
/// either way.
fn is_person(client_type: &str, ua: &str) -> bool {
    client_type == "browser" || (client_type == "mobile app" && ua.starts_with("Mozilla/"))
}

/// People's agents of `devices.tsv` (browsers and apps), as [`measure`] counts them.
#[allow(dead_code)] // used by the example only
pub fn people() -> Vec<String> {
    rows::<5>("devices.tsv")
        .into_iter()
        .filter(|[_, client_type, .., ua]| is_person(client_type, ua))
        .map(|[.., ua]| ua)
        .collect()
}

/// A mainstream browser family, from Matomo's or uap-core's name.
pub fn browser_family(name: &str) -> Option<&'static str> {
    Some(match name {
        "Chrome" | "Chrome Mobile" | "Chrome Mobile iOS" => "Chrome",
        "Safari" | "Mobile Safari" => "Safari",
        "Firefox" | "Firefox Mobile" | "Firefox iOS" => "Firefox",
        "Microsoft Edge" | "Edge" | "Edge Mobile" => "Edge",
        "Opera" | "Opera Mobile" => "Opera",
        "Samsung Browser" | "Samsung Internet" => "Samsung Internet",
        _ => return None,
    })
}

/// A mainstream OS family, from Matomo's or uap-core's name.
pub fn os_family(name: &str) -> Option<&'static str> {
    Some(match name {
        "Windows" => "Windows",
        "Mac" | "Mac OS X" | "macOS" => "macOS",
        "iOS" | "iPadOS" => "iOS",
        "Android" => "Android",
        "GNU/Linux" | "Linux" | "Ubuntu" | "Fedora" | "Debian" => "Linux",
        "Chrome OS" => "Chrome OS",
        _ => return None,
    })
}

fn rows<const N: usize>(file: &str) -> Vec<[String; N]> {
    let path = corpora().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .skip(1)
        .map(|line| {
            let mut fields = line.splitn(N, '\t').map(str::to_owned);
            std::array::from_fn(|_| fields.next().unwrap_or_default())
        })
        .collect()
}

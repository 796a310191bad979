//! Browser, OS, device class and traffic kind (person, bot, link preview)
//! from the User-Agent header, cached by the exact header bytes.
//!
//! A parse runs the bot rules ([`super::bots`]) and uap-core's regexes
//! ([`super::uap`]), a few microseconds per agent and more for long unusual
//! ones; real traffic repeats a few thousand agents, so a bounded cache turns
//! almost every parse into a hash lookup. The cache has two generations:
//! lookups hit the young one, then the old one (promoting the entry); when
//! the young one is full it becomes the old one and the previous old one is
//! dropped. That keeps the hot agents with no per-entry bookkeeping and never
//! more than `2 × capacity / 2` entries.
//!
//! An entry also holds the agent's three consecutive `clicks` columns
//! (device, browser, OS) already in RowBinary, so a hit costs one hash
//! lookup and one copy into the row ([`CachedAgent::columns`]).

use std::collections::HashMap;
use std::sync::Arc;

use super::bots::{self, Traffic};
use super::{device, models, uap};
use crate::encoded;
use crate::hash::SeededXxh3;

/// What the sidecar stores about an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// uap-core's browser family (`Chrome`, `Mobile Safari`, `Firefox`,
    /// `Facebook`...), empty if unknown.
    pub browser: String,
    /// uap-core's OS family (`Windows`, `Mac OS X`, `iOS`, `Android`...), empty if unknown.
    pub os: String,
    /// `desktop`, `mobile`, `tablet`, `feature_phone`, `appliance` or `other`
    /// for people; `bot` for everything else (crawlers, scripts, previews).
    pub device: &'static str,
    /// Not a person: a crawler, a script, a link-preview fetcher or no agent at all.
    pub is_bot: bool,
    /// A link-preview fetcher (chat and social apps drawing a card); also `is_bot`.
    pub is_preview: bool,
}

/// A parsed agent as the cache holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedAgent {
    pub agent: Agent,
    /// `device`, `browser` and `os` as RowBinary `String` columns, in the
    /// order `clicks` has them.
    pub columns: Box<[u8]>,
}

impl CachedAgent {
    fn new(agent: Agent) -> CachedAgent {
        let mut columns = Vec::new();
        encoded::put_string(&mut columns, agent.device.as_bytes());
        encoded::put_string(&mut columns, agent.browser.as_bytes());
        encoded::put_string(&mut columns, agent.os.as_bytes());
        CachedAgent {
            agent,
            columns: columns.into(),
        }
    }
}

/// Parses agents through a bounded two-generation cache.
pub struct AgentCache {
    young: HashMap<Box<[u8]>, Arc<CachedAgent>, SeededXxh3>,
    old: HashMap<Box<[u8]>, Arc<CachedAgent>, SeededXxh3>,
    generation_size: usize,
    hits: u64,
    misses: u64,
}

impl std::fmt::Debug for AgentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentCache")
            .field("entries", &self.len())
            .field("generation_size", &self.generation_size)
            .finish()
    }
}

impl AgentCache {
    /// A cache of about `capacity` agents. Compiles the shared rules now
    /// (once per process) rather than on the first click.
    pub fn new(capacity: usize) -> AgentCache {
        bots::rules();
        uap::warm_up();
        models::models();
        let generation_size = capacity.div_ceil(2).max(1);
        AgentCache {
            young: HashMap::with_capacity_and_hasher(generation_size, SeededXxh3::default()),
            old: HashMap::default(),
            generation_size,
            hits: 0,
            misses: 0,
        }
    }

    /// The agent for these header bytes.
    pub fn get(&mut self, user_agent: &[u8]) -> Arc<CachedAgent> {
        if let Some(agent) = self.young.get(user_agent) {
            self.hits += 1;
            return agent.clone();
        }
        let agent = match self.old.remove(user_agent) {
            Some(agent) => {
                self.hits += 1;
                agent
            }
            None => {
                self.misses += 1;
                Arc::new(CachedAgent::new(parse(user_agent)))
            }
        };
        if self.young.len() >= self.generation_size {
            self.old = std::mem::take(&mut self.young);
            self.young.reserve(self.generation_size);
        }
        self.young.insert(user_agent.into(), agent.clone());
        agent
    }

    /// Cache hits and misses since the last call (for metrics).
    pub fn take_counts(&mut self) -> (u64, u64) {
        (
            std::mem::take(&mut self.hits),
            std::mem::take(&mut self.misses),
        )
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Parses one agent without the cache.
pub fn parse(user_agent: &[u8]) -> Agent {
    let text = String::from_utf8_lossy(user_agent);
    let text = text.trim();
    let lower = text.to_ascii_lowercase();
    let families = if text.is_empty() {
        uap::Families::default()
    } else {
        uap::families(text)
    };
    let class = device::class(&lower, &families);
    // A recognised device: uap-core names one, or the agent's own tokens
    // say phone, tablet or appliance (a bare desktop OS proves little).
    let device_known = (!families.device.is_empty() && families.device != "Spider")
        || matches!(class, "mobile" | "tablet" | "feature_phone" | "appliance");
    let traffic = bots::rules().classify(&lower, device_known);
    let device = match traffic {
        Traffic::Human => class,
        Traffic::Bot | Traffic::Preview => "bot",
    };
    Agent {
        browser: families.browser,
        os: families.os,
        device,
        is_bot: traffic != Traffic::Human,
        is_preview: traffic == Traffic::Preview,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
    const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
    const SAFARI_IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";

    fn p(ua: &str) -> Agent {
        parse(ua.as_bytes())
    }

    #[test]
    fn browsers_and_devices() {
        let a = p(CHROME_WINDOWS);
        assert_eq!(
            (a.browser.as_str(), a.os.as_str(), a.device, a.is_bot),
            ("Chrome", "Windows", "desktop", false)
        );
        let a = p(SAFARI_IPHONE);
        assert_eq!(
            (a.browser.as_str(), a.os.as_str(), a.device),
            ("Mobile Safari", "iOS", "mobile")
        );
        assert_eq!(p(SAFARI_IPAD).device, "tablet");
    }

    #[test]
    fn bots_and_previews() {
        let a = p("Twitterbot/1.0");
        assert!(a.is_preview && a.is_bot, "{a:?}");
        assert!(!p("curl/8.5.0").is_preview);
        for ua in [
            "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
            "Twitterbot/1.0",
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
            "TelegramBot (like TwitterBot)",
            "WhatsApp/2.23.20.0 A",
            "http.rb/5.1.1 (Mastodon/4.2.0; +https://mastodon.social/)",
            "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            "curl/8.5.0",
            "Wget/1.21",
            "",
        ] {
            let a = p(ua);
            assert!(a.is_bot, "{ua:?} should be a bot");
            assert_eq!(a.device, "bot", "{ua:?}");
        }
    }

    #[test]
    fn cache_hits_and_stays_bounded() {
        let mut cache = AgentCache::new(4);
        let first = cache.get(CHROME_WINDOWS.as_bytes());
        assert_eq!(cache.get(CHROME_WINDOWS.as_bytes()), first);
        assert_eq!(cache.take_counts(), (1, 1));
        for i in 0..100 {
            cache.get(format!("agent {i}").as_bytes());
            assert!(cache.len() <= 4, "{} entries", cache.len());
        }
        assert_eq!(cache.take_counts(), (0, 100));
        // A hot agent survives generations because each hit promotes it.
        for i in 0..10 {
            cache.get(SAFARI_IPHONE.as_bytes());
            cache.get(format!("other {i}").as_bytes());
        }
        assert_eq!(cache.take_counts(), (9, 11));
    }
}

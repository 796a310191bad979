//! Who sent a request: a person, an automated client, or a link-preview
//! fetcher, from the User-Agent header alone.
//!
//! * Automated clients: the pattern list of the npm `isbot` package
//!   (vendored as `analytics/data/isbot-patterns.json`, refreshed by
//!   `analytics/data/refresh.sh`), plus the rules below for what it misses: a
//!   URL or an e-mail address in the agent (a crawler naming its operator), and
//!   HTTP libraries and archivers.
//! * Link-preview fetchers ([`PREVIEW_MARKERS`]): chat and social apps that
//!   fetch a link once per post or per app to draw a card, not once per reader.
//!   They are counted apart from crawlers so a link shared in a busy channel
//!   does not look like a crawl, and kept out of human counts.
//!
//! isbot's list is JavaScript regex syntax; all but a handful of its patterns
//! are plain and go into one [`regex::bytes::Regex`] (one automaton, linear time).
//! The few with lookarounds are matched by `fancy-regex`, and only after the
//! pattern without its lookarounds (a superset) matched: a browser agent
//! rarely gets that far, so the backtracking engine stays off the common path.

use std::sync::LazyLock;

// Bytes regexes: with Unicode off (ASCII classes, a far smaller automaton)
// a `[^g]` may match a lone byte of a UTF-8 sequence, which only they allow.
use regex::bytes::{Regex, RegexBuilder};

static RULES: LazyLock<BotRules> = LazyLock::new(BotRules::new);

/// The process's compiled rules, built on first use.
pub fn rules() -> &'static BotRules {
    &RULES
}

/// What sent a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Traffic {
    /// A browser or app driven by a person.
    Human,
    /// A crawler, monitor, script or HTTP library.
    Bot,
    /// A chat or social app fetching the link to draw a preview card.
    Preview,
}

/// Substrings (lowercase) of link-preview fetchers' agents. Checked before
/// the bot patterns: most of these also match isbot, and the finer answer wins.
///
/// In-app browsers of the same apps are people (`Pinterest for Android`,
/// `Snapchat/12.…`, `[FBAN/…]`), so the markers name the fetchers exactly.
pub const PREVIEW_MARKERS: &[&str] = &[
    "slackbot",
    "slack-imgproxy",
    "twitterbot",
    "facebookexternalhit",
    "facebookcatalog",
    "facebot",
    "meta-externalagent",
    "meta-externalfetcher",
    "whatsapp/",
    "discordbot",
    "telegrambot",
    "linkedinbot",
    "skypeuripreview",
    "microsoftpreview",
    "redditbot",
    "pinterestbot",
    "pinterest/0.",
    "snap url preview",
    "embedly",
    "iframely",
    "vkshare",
    "line-poker",
    "kakaotalk-scrap",
    "mastodon/",
    "pleroma",
    "akkoma",
    "misskey",
    "bluesky cardyb",
    "cardyb",
    "bitlybot",
    "tumblr/",
    "google-pagerenderer",
    "googleproducer",
    "applebot",
    "imessage",
    "quora link preview",
    "nuzzel",
    "yahoo link preview",
];

/// Markers of automated clients isbot's list does not cover (lowercase
/// substrings): HTTP libraries, archivers and crawlers measured as misses on
/// the committed corpora (`analytics/corpora`).
const EXTRA_BOT_MARKERS: &[&str] = &[
    "python-httpx",
    "httpx/",
    "scrapy",
    "httrack",
    "heritrix",
    "ia_archiver",
    "slurp",
    "yandex.com/bots",
    "go-http-client",
    "okhttp",
    "curl/",
    "wget/",
    "libwww",
    "lwp::",
    "apache-httpclient",
    "java/",
    "node-fetch",
    "undici",
    "axios/",
    "guzzlehttp",
    "aiohttp",
    "httpie",
    "headlesschrome",
    "phantomjs",
    "google-inspectiontool",
    "googleother",
    "apis-google",
    "storebot-google",
    "google-extended",
    "feedfetcher",
    "mediapartners-google",
    "adsbot",
];

/// The compiled rules.
#[derive(Debug)]
pub struct BotRules {
    /// isbot's plain patterns that name something (a bot, a tool, a word),
    /// as one automaton.
    named: Regex,
    /// isbot's patterns that describe only an agent's shape ([`is_shape`]).
    shape: Regex,
    /// isbot's lookaround patterns: the pattern without its lookarounds (a
    /// superset, cheap), the exact one, and whether it is decisive (names
    /// bots or scanners) rather than a common word (`google`, `http`, `java`,
    /// `news`).
    lookaround: Vec<(Regex, fancy_regex::Regex, bool)>,
    /// Lowercase substrings checked with `contains`.
    extra: &'static [&'static str],
    /// The URL / e-mail rules and bot words: decisive even when a device is
    /// recognised.
    strong: Regex,
}

/// isbot's patterns as the package exports them.
const ISBOT_PATTERNS: &str = include_str!("../../data/isbot-patterns.json");

/// A URL or an e-mail address: crawlers name their operator's page or inbox;
/// browsers never carry either.
const CONTACT_RULES: &[&str] = &[
    r"https?://",
    r"\bwww\.[a-z0-9-]+\.[a-z]{2,}",
    r"[a-z0-9._%+-]+@[a-z0-9-]+\.[a-z0-9.-]*[a-z]{2,}",
    r"\+https?",
    r"\(\+?[a-z0-9.-]+\.(?:com|org|net|io|ru|de|fr|jp|cn)/?[^)]*\)",
];

/// Words no person's browser or app puts in its agent.
const BOT_WORDS: &[&str] = &[
    r"\bbots?\b",
    r"bot[/_;-]",
    r"crawl",
    r"spider",
    r"scrap",
    r"archiv",
    r"fetcher",
    r"monitor",
    r"checker",
    r"validator",
    r"headless",
    r"python",
    r"^java",
    r"http[-_ ]?client",
    r"^mozilla/\d\.\d \(compatible; [a-z0-9 ._-]+/[0-9.]+\)$",
];

impl BotRules {
    /// Compiles the vendored list; panics only if the vendored file is broken,
    /// which the crate's own tests would show first.
    pub fn new() -> BotRules {
        let patterns: Vec<String> =
            serde_json::from_str(ISBOT_PATTERNS).expect("analytics/data/isbot-patterns.json");
        let mut named = Vec::new();
        let mut shape = Vec::new();
        let mut lookaround = Vec::new();
        for p in &patterns {
            let p = &from_javascript(p);
            let stripped = strip_lookarounds(p);
            if stripped == *p {
                if is_shape(p) {
                    shape.push(format!("(?:{p})"));
                } else {
                    named.push(format!("(?:{p})"));
                }
            } else {
                let superset = case_insensitive(&stripped);
                let exact = fancy_regex::RegexBuilder::new(&format!("(?i){p}"))
                    .build()
                    .unwrap_or_else(|e| panic!("isbot pattern {p:?}: {e}"));
                let decisive = stripped.contains("bot") || stripped.contains("scan");
                lookaround.push((superset, exact, decisive));
            }
        }
        let strong: Vec<String> = CONTACT_RULES
            .iter()
            .chain(BOT_WORDS)
            .map(|r| format!("(?:{r})"))
            .collect();
        BotRules {
            named: case_insensitive(&named.join("|")),
            shape: case_insensitive(&shape.join("|")),
            lookaround,
            extra: EXTRA_BOT_MARKERS,
            strong: case_insensitive(&strong.join("|")),
        }
    }

    /// Which rule classifies `lower` (ASCII lowercase) as not a person, for
    /// diagnostics: slow, never on the hot path.
    pub fn explain(&self, lower: &str) -> Option<String> {
        if let Some(m) = PREVIEW_MARKERS.iter().find(|m| lower.contains(*m)) {
            return Some(format!("preview marker {m:?}"));
        }
        if let Some(m) = self.extra.iter().find(|m| lower.contains(*m)) {
            return Some(format!("marker {m:?}"));
        }
        if let Some(m) = self.strong.find(lower.as_bytes()) {
            return Some(format!(
                "strong rule at {:?}",
                String::from_utf8_lossy(m.as_bytes())
            ));
        }
        let patterns: Vec<String> = serde_json::from_str(ISBOT_PATTERNS).ok()?;
        for p in patterns
            .iter()
            .map(|p| from_javascript(p))
            .chain(CONTACT_RULES.iter().map(|r| r.to_string()))
        {
            let superset = case_insensitive(&strip_lookarounds(&p));
            if superset.is_match(lower.as_bytes()) {
                let exact = fancy_regex::Regex::new(&format!("(?i){p}")).ok()?;
                if exact.is_match(lower).unwrap_or(true) {
                    return Some(format!("pattern {p:?}"));
                }
            }
        }
        None
    }

    /// Classifies one agent. `lower` is the trimmed agent in ASCII lowercase
    /// (the caller needs it too, so it is made once). `device_known`: uap-core
    /// recognised a real device (a phone model, a feature phone, a Mac...).
    ///
    /// isbot's list also flags agents by their shape (no `Mozilla/`, a bare
    /// `name/1.0`, ...), which is how many feature phones and apps look; when
    /// uap-core recognised the device and nothing decisive (a bot word, a URL
    /// or e-mail, a known client library) is there, the agent is a person's.
    pub fn classify(&self, lower: &str, device_known: bool) -> Traffic {
        if lower.is_empty() {
            return Traffic::Bot;
        }
        if PREVIEW_MARKERS.iter().any(|m| lower.contains(m)) {
            return Traffic::Preview;
        }
        if self.extra.iter().any(|m| lower.contains(m)) || self.strong.is_match(lower.as_bytes()) {
            return Traffic::Bot;
        }
        if self.named.is_match(lower.as_bytes()) || self.lookaround_match(lower, true) {
            return Traffic::Bot;
        }
        if device_known {
            return Traffic::Human;
        }
        if self.shape.is_match(lower.as_bytes()) || self.lookaround_match(lower, false) {
            return Traffic::Bot;
        }
        Traffic::Human
    }

    fn lookaround_match(&self, lower: &str, decisive: bool) -> bool {
        self.lookaround.iter().any(|(superset, exact, d)| {
            *d == decisive
                && superset.is_match(lower.as_bytes())
                && exact.is_match(lower).unwrap_or(true)
        })
    }
}

impl Default for BotRules {
    fn default() -> BotRules {
        BotRules::new()
    }
}

fn case_insensitive(pattern: &str) -> Regex {
    RegexBuilder::new(pattern)
        .case_insensitive(true)
        // Unicode classes would grow the automaton tenfold; agents are ASCII.
        .unicode(false)
        .size_limit(64 << 20)
        .build()
        .unwrap_or_else(|e| panic!("bot pattern {pattern:?}: {e}"))
}

/// Whether an isbot pattern describes only an agent's shape: it names no
/// word of four letters or more outside character classes and escapes
/// (`mozilla` and `compatible`, which every browser carries, do not count).
pub fn is_shape(pattern: &str) -> bool {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_class = false;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
                words.push(std::mem::take(&mut word));
            }
            '[' => in_class = true,
            ']' => in_class = false,
            c if c.is_ascii_alphabetic() && !in_class => word.push(c),
            _ => words.push(std::mem::take(&mut word)),
        }
    }
    words.push(word);
    !words
        .iter()
        .any(|w| w.len() >= 4 && !matches!(w.as_str(), "mozilla" | "compatible"))
}

/// Rewrites what JavaScript's regex syntax allows and Rust's does not: a `-`
/// next to a class escape inside `[...]` (`[\w\d-.]`) is a literal there.
pub fn from_javascript(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut in_class = false;
    let mut prev_was_class_escape = false;
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let next = chars.next().unwrap_or('\\');
                out.push('\\');
                out.push(next);
                prev_was_class_escape = in_class && "wWdDsS".contains(next);
                continue;
            }
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '-' if in_class => {
                let next_is_class_escape = {
                    let mut ahead = chars.clone();
                    ahead.next() == Some('\\') && ahead.next().is_some_and(|n| "wWdDsS".contains(n))
                };
                if prev_was_class_escape || next_is_class_escape {
                    out.push_str("\\-");
                    prev_was_class_escape = false;
                    continue;
                }
            }
            _ => {}
        }
        prev_was_class_escape = false;
        out.push(c);
    }
    out
}

/// The pattern with its lookahead and lookbehind groups removed: it matches
/// wherever the original does (and more).
pub fn strip_lookarounds(pattern: &str) -> String {
    let bytes = pattern.as_bytes();
    let mut out = String::with_capacity(pattern.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &pattern[i..];
        if ["(?=", "(?!", "(?<=", "(?<!"]
            .iter()
            .any(|open| rest.starts_with(open))
        {
            // Skip to the matching close paren, minding escapes and nesting.
            let mut depth = 0;
            let mut j = i;
            while j < bytes.len() {
                match bytes[j] {
                    b'\\' => j += 1,
                    b'(' => depth += 1,
                    b')' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            i = j + 1;
            continue;
        }
        let c = rest.chars().next().expect("not at the end");
        if c == '\\' {
            out.push('\\');
            if let Some(next) = rest[1..].chars().next() {
                out.push(next);
                i += 1 + next.len_utf8();
                continue;
            }
        } else {
            out.push(c);
        }
        i += c.len_utf8();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(ua: &str) -> Traffic {
        BotRules::new().classify(&ua.trim().to_ascii_lowercase(), false)
    }

    #[test]
    fn shape_patterns_name_no_word() {
        assert!(is_shape(
            r"^[\w \.\-\(?:\):%]+(?:/v?\d+(?:\.\d+)?(?:\.\d{1,10})*?)?(?:,|$)"
        ));
        assert!(is_shape(r"^[^ ]{50,}$"));
        assert!(is_shape(r"^mozilla/\d\.\d\s[\w\.-]+$"));
        assert!(!is_shape("httrack"));
        assert!(!is_shape(r"^yandex"));
        assert!(!is_shape(r"ptst[ /]\d"));
    }

    #[test]
    fn javascript_class_ranges_become_literals() {
        assert_eq!(from_javascript(r"[\w\d-.]+"), r"[\w\d\-.]+");
        assert_eq!(from_javascript(r"[a-z\-]"), r"[a-z\-]");
        assert_eq!(from_javascript(r"[.-\d]"), r"[.\-\d]");
        assert_eq!(from_javascript(r"a-b"), r"a-b");
    }

    #[test]
    fn lookarounds_are_stripped_to_a_superset() {
        assert_eq!(strip_lookarounds("(?<!cam)scan"), "scan");
        assert_eq!(
            strip_lookarounds("(?<! channel/|google/)google(?!(?:wv|app|/google| pixel))"),
            "google"
        );
        assert_eq!(strip_lookarounds(r"java(?!;)\b"), r"java\b");
        assert_eq!(strip_lookarounds(r"a\(b"), r"a\(b");
    }

    #[test]
    fn previews_crawlers_scripts_and_people() {
        for ua in [
            "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
            "Twitterbot/1.0",
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
            "TelegramBot (like TwitterBot)",
            "WhatsApp/2.23.20.0 A",
            "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
            "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5",
            "http.rb/5.1.1 (Mastodon/4.2.0; +https://mastodon.social/)",
        ] {
            assert_eq!(class(ua), Traffic::Preview, "{ua}");
        }
        for ua in [
            "Mozilla/5.0 (compatible; Google-InspectionTool/1.0)",
            "GoogleOther",
            "APIs-Google (+https://developers.google.com/webmasters/APIs-Google.html)",
            "Mozilla/5.0 (X11; Linux x86_64; Storebot-Google/1.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/79.0.3945.88 Safari/537.36",
            "python-httpx/0.27.0",
            "Mozilla/4.5 (compatible; HTTrack 3.0x; Windows 98)",
            "Scrapy/2.11.0 (+https://scrapy.org)",
            "Mozilla/5.0 (compatible; heritrix/3.4.0 +http://archive.org)",
            "Mozilla/5.0 (compatible; Yahoo! Slurp; http://help.yahoo.com/help/us/ysearch/slurp)",
            "ia_archiver (+http://www.alexa.com/site/help/webmasters; crawler@alexa.com)",
            "Mozilla/5.0 (compatible; YandexMetrika/2.0; +http://yandex.com/bots)",
            "Mozilla/5.0 (compatible; SomeFetcher/1.0; contact: ops@example.org)",
            "curl/8.5.0",
            "Wget/1.21",
            "Go-http-client/2.0",
            "okhttp/4.12.0",
            "",
        ] {
            assert_eq!(class(ua), Traffic::Bot, "{ua:?}");
        }
        for ua in [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/116.0.0.0 Mobile Safari/537.36 [Pinterest/Android]",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Snapchat/12.60.0.42 (like Safari/8617.1.17.10.6, panda)",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/440.0.0.30.107;FBBV/544405486;FBDV/iPhone14,5;FBMD/iPhone;FBSN/iOS;FBSV/17.1;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]",
        ] {
            assert_eq!(class(ua), Traffic::Human, "{ua}");
        }
    }
}

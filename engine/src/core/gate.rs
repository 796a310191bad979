//! Password gates: what a core does for a password-protected link.
//!
//! A visit to a protected link gets a small HTML form (no external assets,
//! a content security policy that allows nothing else) instead of its
//! redirect. The form posts the password back to the same URL; the core
//! checks it against the link's argon2id verifier (made by control,
//! `snapshots::password`), and on a match answers `303 See Other` to the
//! link's target (rules and split apply as usual) with a pass cookie, and
//! records the click. A visit carrying a valid pass goes straight to the
//! redirect, so the form is asked for once per visitor and link.
//!
//! **The pass**: `sl_pass=<expiry>.<tag>` on `Path=/<code>`, `HttpOnly`,
//! `SameSite=Lax` (`Secure` on TLS), for [`PASS_SECS`]. The tag is
//! HMAC-SHA-256 over the domain, the code and the expiry, keyed by the
//! link's own argon2 hash: every engine holding the link can check it with
//! no shared key to distribute, a pass can't be moved to another link, and
//! changing the password voids every pass at once.
//!
//! **Guessing can't burn a core.** argon2 is CPU work the core does itself
//! (about [`VERIFY_COST_NOTE`] with control's parameters), so every check
//! is bounded three ways, all per core, in fixed memory, with no lock:
//! - at most [`CHECKS_PER_SECOND`] checks a second (a token bucket), which
//!   caps the share of a core passwords can take whatever the traffic;
//! - at most [`FAILURES_PER_VISITOR`] wrong passwords per link and client
//!   address prefix (/24 or /56) in a [`WINDOW_SECS`] window;
//! - at most [`FAILURES_PER_LINK`] wrong passwords per link in that window,
//!   which bounds guessing from many addresses.
//!
//! A refused attempt is answered `429` with `Retry-After` before any argon2
//! work. The failure counts are count-min sketches keyed by a per-process
//! random seed: a collision can only over-count (refuse early), never let
//! a guess through. With N cores and M engines the guess rate a link can see
//! is at most N × M × [`FAILURES_PER_LINK`] per window; a visitor who
//! already holds a pass is not affected by a link's exhausted budget.

use super::fxhash::FxHasher;
use crate::clicks::client_ip::cut;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use aws_lc_rs::{constant_time, hmac};
use snapshots::password::{HASH_LEN, MAX_PASSWORD_LEN};
use std::hash::Hasher;
use std::net::IpAddr;

/// The pass cookie's name.
pub const PASS_COOKIE: &[u8] = b"sl_pass";
/// How long a pass lasts, in seconds.
pub const PASS_SECS: i64 = 3600;
/// Password checks a core does per second at most.
pub const CHECKS_PER_SECOND: u32 = 16;
/// Wrong passwords per link and client prefix per window.
pub const FAILURES_PER_VISITOR: u16 = 10;
/// Wrong passwords per link per window (per core).
pub const FAILURES_PER_LINK: u16 = 100;
/// The failure counters' window, in seconds.
pub const WINDOW_SECS: i64 = 300;
/// What one check costs, for the docs (measured: `cargo bench -p bench
/// --bench password`).
pub const VERIFY_COST_NOTE: &str = "2.4 ms";
/// The longest form body read, in bytes; larger ones are refused (`413`).
pub const MAX_FORM_BODY: usize = 1024;

/// The form page around one message (static: nothing from the request is
/// ever written into it).
macro_rules! page {
    ($message:literal) => {
        concat!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">",
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">",
            "<meta name=\"robots\" content=\"noindex\"><title>Password required</title>",
            "<style>body{font:16px/1.4 system-ui,sans-serif;margin:0;min-height:100vh;",
            "display:flex;align-items:center;justify-content:center;background:#f4f5f7;color:#222}",
            "form{background:#fff;padding:2em;border-radius:8px;box-shadow:0 1px 4px #0003;",
            "width:18em}h1{font-size:1.2em;margin:0 0 .5em}input{display:block;width:100%;",
            "box-sizing:border-box;margin:.8em 0;padding:.5em;font:inherit}",
            "button{padding:.5em 1.2em;font:inherit}.e{color:#b00020}</style></head><body>",
            "<form method=\"post\"><h1>Password required</h1>",
            "<label for=\"password\">This link is protected by a password.</label>",
            $message,
            "<input id=\"password\" name=\"password\" type=\"password\" required autofocus ",
            "autocomplete=\"current-password\"><button type=\"submit\">Continue</button>",
            "</form></body></html>\n"
        )
        .as_bytes()
    };
}

/// The form, first shown.
pub const PAGE_PROMPT: &[u8] = page!("");
/// The form after a wrong (or empty) password.
pub const PAGE_WRONG: &[u8] = page!("<p class=\"e\" role=\"alert\">Wrong password.</p>");
/// The form while attempts are refused.
pub const PAGE_LIMITED: &[u8] =
    page!("<p class=\"e\" role=\"alert\">Too many attempts. Try again in a few minutes.</p>");

/// A link's verifier as a core reads it (snapshot or delta).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verifier<'a> {
    pub m_cost: u32,
    pub t_cost: u32,
    pub salt: &'a [u8],
    pub hash: &'a [u8],
}

/// What the gate decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A valid pass came with the request: redirect.
    Pass,
    /// The right password was posted: redirect with a new pass.
    Admitted,
    /// Show the form (a `GET` or `HEAD` without a pass): `200`.
    Form,
    /// The posted password was wrong, or missing: `403` with the form.
    Wrong,
    /// Too many attempts: `429`, retry after this many seconds.
    Limited { retry_after: u32 },
}

/// One core's gate state: the argon2 memory and the limits.
pub struct Gate {
    /// argon2's working memory, grown once to the largest `m_cost` seen
    /// (at most `snapshots::password::MAX_M_COST_KIB` KiB), then reused.
    memory: Vec<Block>,
    seed: u64,
    tokens: TokenBucket,
    visitors: Sketch,
    links: Sketch,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("memory_kib", &self.memory.len())
            .finish_non_exhaustive()
    }
}

impl Default for Gate {
    fn default() -> Self {
        let mut seed = [0u8; 8];
        // A fixed seed only makes collisions predictable, which can only
        // refuse early; never a reason not to start.
        let _ = getrandom::fill(&mut seed);
        Gate {
            memory: Vec::new(),
            seed: u64::from_le_bytes(seed),
            tokens: TokenBucket::default(),
            visitors: Sketch::default(),
            links: Sketch::default(),
        }
    }
}

/// Who is asking, for the gate.
#[derive(Debug, Clone, Copy)]
pub struct Visitor<'a> {
    pub domain: u32,
    pub code: &'a [u8],
    pub client: IpAddr,
    /// Whether the request came with a form body (a `POST`); `None`: no
    /// body could be read (too large, or chunked).
    pub form: Option<&'a [u8]>,
    pub post: bool,
    pub cookie: &'a [u8],
    pub now: i64,
    pub now_ms: u64,
}

impl Gate {
    /// Decides a request for a protected link.
    pub fn decide(&mut self, verifier: Verifier<'_>, visitor: &Visitor<'_>) -> Decision {
        if !visitor.post {
            return match has_pass(verifier, visitor) {
                true => Decision::Pass,
                false => Decision::Form,
            };
        }
        let mut buf = [0u8; MAX_PASSWORD_LEN];
        let Some(password) = visitor.form.and_then(|body| form_password(body, &mut buf)) else {
            return Decision::Wrong;
        };
        let link_key = self.key(visitor.domain, visitor.code, None);
        let visitor_key = self.key(visitor.domain, visitor.code, Some(visitor.client));
        let window = visitor.now.div_euclid(WINDOW_SECS);
        let retry_window = (WINDOW_SECS - visitor.now.rem_euclid(WINDOW_SECS)) as u32;
        if self.visitors.count(window, visitor_key) >= FAILURES_PER_VISITOR
            || self.links.count(window, link_key) >= FAILURES_PER_LINK
        {
            return Decision::Limited {
                retry_after: retry_window,
            };
        }
        if !self.tokens.take(visitor.now_ms) {
            return Decision::Limited { retry_after: 1 };
        }
        if self.verify(verifier, password) {
            return Decision::Admitted;
        }
        self.visitors.add(window, visitor_key);
        self.links.add(window, link_key);
        Decision::Wrong
    }

    /// Whether `password` matches: argon2id with the verifier's parameters,
    /// in the core's reused memory, compared in constant time.
    pub fn verify(&mut self, verifier: Verifier<'_>, password: &[u8]) -> bool {
        let Ok(params) = Params::new(verifier.m_cost, verifier.t_cost, 1, Some(HASH_LEN)) else {
            return false;
        };
        let blocks = verifier.m_cost as usize;
        if self.memory.len() < blocks {
            self.memory.resize(blocks, Block::default());
        }
        let mut out = [0u8; HASH_LEN];
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into_with_memory(
                password,
                verifier.salt,
                &mut out,
                &mut self.memory[..blocks],
            )
            .is_ok()
            && constant_time::verify_slices_are_equal(&out, verifier.hash).is_ok()
    }

    /// The counters' key: the link, and the client's /24 or /56 if given.
    fn key(&self, domain: u32, code: &[u8], client: Option<IpAddr>) -> u64 {
        let mut hasher = FxHasher::default();
        hasher.write_u64(self.seed);
        hasher.write_u32(domain);
        hasher.write_u64(code.len() as u64);
        hasher.write(code);
        match client.map(|ip| cut(ip, 24, 56)) {
            Some(IpAddr::V4(v4)) => hasher.write(&v4.octets()),
            Some(IpAddr::V6(v6)) => hasher.write(&v6.octets()),
            None => {}
        }
        // SplitMix64's finaliser: the sketch reads both halves.
        let mut z = hasher.finish();
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Writes the `Set-Cookie` line of a new pass for `visitor` into `line`.
pub fn pass_cookie(
    verifier: Verifier<'_>,
    visitor: &Visitor<'_>,
    path: &[u8],
    secure: bool,
    line: &mut Vec<u8>,
) {
    let expiry = visitor.now + PASS_SECS;
    line.extend_from_slice(b"Set-Cookie: ");
    line.extend_from_slice(PASS_COOKIE);
    line.push(b'=');
    crate::http::response::push_decimal(line, expiry as u64);
    line.push(b'.');
    push_hex(line, &tag(verifier, visitor.domain, visitor.code, expiry));
    line.extend_from_slice(b"; Path=");
    line.extend_from_slice(path);
    line.extend_from_slice(b"; Max-Age=");
    crate::http::response::push_decimal(line, PASS_SECS as u64);
    line.extend_from_slice(b"; HttpOnly; SameSite=Lax");
    if secure {
        line.extend_from_slice(b"; Secure");
    }
    line.extend_from_slice(b"\r\n");
}

/// Whether the request's cookies hold a valid, unexpired pass.
fn has_pass(verifier: Verifier<'_>, visitor: &Visitor<'_>) -> bool {
    // Several `sl_pass` cookies may come (one per path that matches).
    visitor.cookie.split(|&b| b == b';').any(|pair| {
        let pair = pair.trim_ascii();
        let Some(value) = pair
            .strip_prefix(PASS_COOKIE)
            .and_then(|rest| rest.strip_prefix(b"="))
        else {
            return false;
        };
        let Some(dot) = value.iter().position(|&b| b == b'.') else {
            return false;
        };
        let Some(expiry) = parse_decimal(&value[..dot]) else {
            return false;
        };
        if expiry <= visitor.now || expiry > visitor.now + PASS_SECS {
            return false;
        }
        let mut given = [0u8; TAG_LEN];
        decode_hex(&value[dot + 1..], &mut given)
            && constant_time::verify_slices_are_equal(
                &given,
                &tag(verifier, visitor.domain, visitor.code, expiry),
            )
            .is_ok()
    })
}

/// Bytes of the pass's tag (a truncated HMAC-SHA-256: 128 bits).
const TAG_LEN: usize = 16;

fn tag(verifier: Verifier<'_>, domain: u32, code: &[u8], expiry: i64) -> [u8; TAG_LEN] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, verifier.hash);
    let mut context = hmac::Context::with_key(&key);
    context.update(b"sl_pass v1\0");
    context.update(&domain.to_le_bytes());
    context.update(&(code.len() as u64).to_le_bytes());
    context.update(code);
    context.update(&expiry.to_le_bytes());
    let full = context.sign();
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&full.as_ref()[..TAG_LEN]);
    tag
}

/// The `password` field of an `application/x-www-form-urlencoded` body,
/// decoded (`+` is a space, `%XX` a byte) into `buf`; `None` when it is
/// missing, empty, malformed or too long.
fn form_password<'b>(body: &[u8], buf: &'b mut [u8; MAX_PASSWORD_LEN]) -> Option<&'b [u8]> {
    let value = body
        .split(|&b| b == b'&')
        .find_map(|pair| pair.strip_prefix(b"password="))?;
    let mut len = 0;
    let mut i = 0;
    while i < value.len() {
        let byte = match value[i] {
            b'+' => {
                i += 1;
                b' '
            }
            b'%' => {
                let hi = hex_value(*value.get(i + 1)?)?;
                let lo = hex_value(*value.get(i + 2)?)?;
                i += 3;
                hi << 4 | lo
            }
            other => {
                i += 1;
                other
            }
        };
        *buf.get_mut(len)? = byte;
        len += 1;
    }
    (len > 0).then_some(&buf[..len])
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.extend_from_slice(&[HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
    }
}

fn decode_hex(text: &[u8], out: &mut [u8]) -> bool {
    if text.len() != out.len() * 2 {
        return false;
    }
    for (slot, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        match (hex_value(pair[0]), hex_value(pair[1])) {
            (Some(hi), Some(lo)) => *slot = hi << 4 | lo,
            _ => return false,
        }
    }
    true
}

fn parse_decimal(text: &[u8]) -> Option<i64> {
    if text.is_empty() || text.len() > 12 {
        return None;
    }
    text.iter().try_fold(0i64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
    })
}

/// Checks per second, refilled continuously.
#[derive(Debug)]
struct TokenBucket {
    /// Thousandths of a token, so the refill needs no division per ms.
    milli_tokens: u64,
    last_ms: u64,
}

impl Default for TokenBucket {
    fn default() -> Self {
        TokenBucket {
            milli_tokens: u64::from(CHECKS_PER_SECOND) * 1000,
            last_ms: 0,
        }
    }
}

impl TokenBucket {
    fn take(&mut self, now_ms: u64) -> bool {
        let full = u64::from(CHECKS_PER_SECOND) * 1000;
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.last_ms = self.last_ms.max(now_ms);
        self.milli_tokens = full.min(
            self.milli_tokens
                .saturating_add(elapsed.saturating_mul(u64::from(CHECKS_PER_SECOND))),
        );
        if self.milli_tokens < 1000 {
            return false;
        }
        self.milli_tokens -= 1000;
        true
    }
}

/// Counters per sketch row.
const WIDTH: usize = 1024;

/// A count-min sketch of failures in the current window: two rows of
/// counters, each key counted at one place per row, its count the smaller.
#[derive(Debug)]
struct Sketch {
    window: i64,
    rows: Box<[[u16; WIDTH]; 2]>,
}

impl Default for Sketch {
    fn default() -> Self {
        Sketch {
            window: i64::MIN,
            rows: Box::new([[0; WIDTH]; 2]),
        }
    }
}

impl Sketch {
    fn slots(key: u64) -> (usize, usize) {
        ((key as usize) % WIDTH, ((key >> 32) as usize) % WIDTH)
    }

    fn roll(&mut self, window: i64) {
        if self.window != window {
            self.window = window;
            for row in self.rows.iter_mut() {
                row.fill(0);
            }
        }
    }

    fn count(&mut self, window: i64, key: u64) -> u16 {
        self.roll(window);
        let (a, b) = Self::slots(key);
        self.rows[0][a].min(self.rows[1][b])
    }

    fn add(&mut self, window: i64, key: u64) {
        self.roll(window);
        let (a, b) = Self::slots(key);
        self.rows[0][a] = self.rows[0][a].saturating_add(1);
        self.rows[1][b] = self.rows[1][b].saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordHasher;
    use snapshots::password::PasswordValue;

    fn verifier_of(password: &str) -> PasswordValue {
        let params = Params::new(64, 1, 1, Some(HASH_LEN)).unwrap();
        let phc = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_with_salt(password.as_bytes(), b"somesaltsomesalt")
            .unwrap()
            .to_string();
        PasswordValue::from_phc(&phc).unwrap()
    }

    fn view(value: &PasswordValue) -> Verifier<'_> {
        Verifier {
            m_cost: value.m_cost,
            t_cost: value.t_cost,
            salt: &value.salt,
            hash: &value.hash,
        }
    }

    fn visitor<'a>(form: Option<&'a [u8]>, cookie: &'a [u8], client: &str) -> Visitor<'a> {
        Visitor {
            domain: 0,
            code: b"secret",
            client: client.parse().unwrap(),
            form,
            post: form.is_some(),
            cookie,
            now: 1_800_000_000,
            now_ms: 1_800_000_000_000,
        }
    }

    #[test]
    fn the_right_password_passes_and_a_wrong_one_does_not() {
        let value = verifier_of("open sesame");
        let mut gate = Gate::default();
        let right = visitor(Some(b"password=open+sesame"), b"", "192.0.2.1");
        assert_eq!(gate.decide(view(&value), &right), Decision::Admitted);
        let escaped = visitor(Some(b"x=1&password=open%20sesame"), b"", "192.0.2.1");
        assert_eq!(gate.decide(view(&value), &escaped), Decision::Admitted);
        for body in [
            &b"password=open"[..],
            b"password=",
            b"pass=open+sesame",
            b"password=%zz",
        ] {
            let wrong = visitor(Some(body), b"", "192.0.2.1");
            assert_eq!(
                gate.decide(view(&value), &wrong),
                Decision::Wrong,
                "{body:?}"
            );
        }
        let get = visitor(None, b"", "192.0.2.1");
        assert_eq!(gate.decide(view(&value), &get), Decision::Form);
    }

    #[test]
    fn a_pass_lets_the_same_link_through_until_it_expires() {
        let value = verifier_of("pw");
        let other = verifier_of("changed");
        let admitted = visitor(Some(b"password=pw"), b"", "192.0.2.1");
        let mut line = Vec::new();
        pass_cookie(view(&value), &admitted, b"/secret", true, &mut line);
        let text = String::from_utf8(line.clone()).unwrap();
        assert!(text.starts_with("Set-Cookie: sl_pass="), "{text}");
        assert!(
            text.ends_with("; Path=/secret; Max-Age=3600; HttpOnly; SameSite=Lax; Secure\r\n"),
            "{text}"
        );
        let value_of_cookie = text["Set-Cookie: ".len()..].split(';').next().unwrap();
        let cookie = format!("theme=dark; {value_of_cookie}");
        let mut gate = Gate::default();
        let back = visitor(None, cookie.as_bytes(), "198.51.100.9");
        assert_eq!(gate.decide(view(&value), &back), Decision::Pass);
        // Another link, a changed password, a later time, a forged tag.
        let elsewhere = Visitor {
            code: b"other",
            ..back
        };
        assert_eq!(gate.decide(view(&value), &elsewhere), Decision::Form);
        assert_eq!(gate.decide(view(&other), &back), Decision::Form);
        let later = Visitor {
            now: back.now + PASS_SECS,
            ..back
        };
        assert_eq!(gate.decide(view(&value), &later), Decision::Form);
        let forged = cookie.replace("sl_pass=", "sl_pass=1").into_bytes();
        let forged = visitor(None, &forged, "198.51.100.9");
        assert_eq!(gate.decide(view(&value), &forged), Decision::Form);
    }

    #[test]
    fn guessing_is_limited_per_visitor_then_per_link() {
        let value = verifier_of("pw");
        let mut gate = Gate::default();
        let mut now_ms = 1_800_000_000_000u64;
        let mut attempt = |gate: &mut Gate, body: &'static [u8], client: &str| {
            // Spread out so the per-second budget is not what refuses.
            now_ms += 1000;
            let v = Visitor {
                now_ms,
                ..visitor(Some(body), b"", client)
            };
            gate.decide(view(&value), &v)
        };
        for _ in 0..FAILURES_PER_VISITOR {
            assert_eq!(
                attempt(&mut gate, b"password=x", "192.0.2.1"),
                Decision::Wrong
            );
        }
        // The same /24 is refused, even with the right password.
        assert!(matches!(
            attempt(&mut gate, b"password=pw", "192.0.2.200"),
            Decision::Limited { .. }
        ));
        assert_eq!(
            attempt(&mut gate, b"password=pw", "203.0.113.1"),
            Decision::Admitted
        );
        // Many prefixes: the link's own limit.
        let mut refused = false;
        for i in 0..(FAILURES_PER_LINK as u32) {
            let client = format!("10.{}.{}.1", i / 256, i % 256);
            refused |= matches!(
                attempt(&mut gate, b"password=x", &client),
                Decision::Limited { .. }
            );
        }
        assert!(refused, "the link's limit never refused");
    }

    #[test]
    fn checks_per_second_are_capped() {
        let value = verifier_of("pw");
        let mut gate = Gate::default();
        let mut limited = 0;
        for i in 0..(CHECKS_PER_SECOND * 2) {
            let client = format!("10.0.{i}.1");
            let v = visitor(Some(b"password=x"), b"", &client);
            limited += matches!(
                gate.decide(view(&value), &v),
                Decision::Limited { retry_after: 1 }
            ) as u32;
        }
        assert_eq!(limited, CHECKS_PER_SECOND);
    }
}

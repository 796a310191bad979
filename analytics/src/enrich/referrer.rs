//! The host of a Referer URL, as the URL standard (the `url` crate) reads it.
//!
//! Nearly every Referer is `http(s)://` and a plain host name, and for
//! those the standard's answer is the name itself (lowercased, which the
//! caller does while copying it into the row): [`fast_host`] returns it as
//! a slice of the header without parsing a whole `Url` (an allocation and
//! a full parse per event). Anything else — a port, user info,
//! escapes, IP addresses, IDNA, whitespace — goes to the `url` crate, and a
//! test checks that the two agree wherever the fast path answers.

use std::borrow::Cow;

/// The host of a Referer, not yet lowercased, without trailing dots; empty
/// when absent or not a URL.
pub fn host(referrer: &[u8]) -> Cow<'_, str> {
    let Ok(text) = std::str::from_utf8(referrer) else {
        return Cow::Borrowed("");
    };
    let text = text.trim();
    match fast_host(text) {
        Some(host) => Cow::Borrowed(host),
        None => Cow::Owned(url_host(text)),
    }
}

/// The host through a full URL parse, lowercased.
pub fn url_host(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(u) => u
            .host_str()
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
            .unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// `http://` or `https://` (any case) then a host of ASCII letters, digits,
/// `-` and single dots, up to `/`, `?`, `#` or the end; `None` for anything
/// the standard might read otherwise. One pass over the bytes.
fn fast_host(text: &str) -> Option<&str> {
    let b = text.as_bytes();
    let start = if b.len() >= 8 && b[..8].eq_ignore_ascii_case(b"https://") {
        8
    } else if b.len() >= 7 && b[..7].eq_ignore_ascii_case(b"http://") {
        7
    } else {
        return None;
    };
    let mut end = b.len();
    let mut label = start; // where the current label starts
    let mut last_label = start; // ...and the last complete one
    for (i, &c) in b.iter().enumerate().skip(start) {
        match c {
            b'/' | b'?' | b'#' => {
                end = i;
                break;
            }
            // Empty labels (`..`, a leading dot) are the standard's to judge.
            b'.' if i == label => return None,
            b'.' => {
                last_label = label;
                label = i + 1;
            }
            // Punycode labels are checked by IDNA: the standard's too.
            b'x' | b'X'
                if i == label && b.len() >= i + 4 && b[i..i + 4].eq_ignore_ascii_case(b"xn--") =>
            {
                return None;
            }
            c if c.is_ascii_alphanumeric() || c == b'-' => {}
            _ => return None,
        }
    }
    if end == start || end - start > 253 {
        return None;
    }
    // The last label, or the one before a trailing dot.
    let last = if label == end { last_label } else { label };
    // A name whose last label is numeric (`1.2.3.4`, `1.2.3.010`,
    // `0x7f.1`) is an IPv4 address to the standard, normalised.
    if b[last].is_ascii_digit() {
        return None;
    }
    let host_end = if b[end - 1] == b'.' { end - 1 } else { end };
    Some(&text[start..host_end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_path_agrees_with_the_url_crate_wherever_it_answers() {
        let cases = [
            "https://news.example.com/story?id=1",
            "HTTPS://News.Example.COM/a?b=c",
            "http://t.co/x",
            "http://t.co",
            "https://example.com?x",
            "https://example.com#frag",
            "https://example.com.",
            "https://example.com./",
            "https://example.com../",
            "https://.example.com/",
            "https://-a-.b-/",
            "https://a_b.example/",
            "https://1.2.3.4/",
            "https://1.2.3.010/",
            "https://0x7f.1/",
            "https://123/",
            "https://a.123/",
            "https://a.1b/",
            "https://xn--nxasmq6b.com/",
            "https://XN--abc.com/",
            "https://xn--a.com/",
            "https://user:pw@example.com/",
            "https://example.com:8080/",
            "https://example.com:99999/",
            "https://ex%41mple.com/",
            "https://[::1]/",
            "https://exa\tmple.com/",
            "https://example.com\\path",
            "https:example.com",
            "http:/example.com",
            "https:///example.com",
            "https://",
            "https:///",
            "https://bücher.example/",
            "ftp://example.com/",
            "android-app://com.slack/",
            "  https://Example.com/  ",
            "https://a.b.c.d.e.f.g.h.example.museum/",
        ];
        let mut fast = 0;
        for case in cases {
            let text = case.trim();
            let slow = url_host(text);
            if let Some(h) = fast_host(text) {
                fast += 1;
                assert_eq!(h.to_ascii_lowercase(), slow, "{case:?}");
            }
            assert_eq!(host(case.as_bytes()).to_ascii_lowercase(), slow, "{case:?}");
        }
        assert!(fast >= 10, "the fast path answered {fast} cases");
    }

    #[test]
    fn hosts() {
        let h = |r: &[u8]| host(r).to_ascii_lowercase();
        assert_eq!(h(b"https://News.Example.COM/a?b=c"), "news.example.com");
        assert_eq!(h(b"android-app://com.slack/"), "com.slack");
        assert_eq!(h(b""), "");
        assert_eq!(h(b"not a url"), "");
        assert_eq!(h(b"/relative/path"), "");
        assert_eq!(h(&[0xff, 0xfe]), "");
        assert!(matches!(host(b"https://t.co/x"), Cow::Borrowed("t.co")));
    }
}

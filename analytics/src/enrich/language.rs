//! The visitor's language: the primary subtag of the language they prefer
//! most in `Accept-Language` (`en-GB,en;q=0.9,fr;q=0.8` → `en`), so stats
//! can break clicks down by a handful of values rather than by every header
//! a browser sends.

/// The lowercase primary subtag (two or three ASCII letters) of the range
/// with the highest quality, the first of equals; empty when the header is
/// absent, `*` only, or not made of language tags.
pub fn primary_language(header: &[u8]) -> String {
    primary_subtag(header).to_ascii_lowercase()
}

/// [`primary_language`] before lowercasing, borrowed from the header (the
/// sidecar lowercases it while copying it into the row).
pub fn primary_subtag(header: &[u8]) -> &str {
    let Ok(text) = std::str::from_utf8(header) else {
        return "";
    };
    let mut best: Option<(&str, f32)> = None;
    for item in text.split(',') {
        let mut params = item.split(';');
        let tag = params.next().unwrap_or("").trim();
        let quality = params
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let primary = tag.split(['-', '_']).next().unwrap_or("");
        let is_language =
            (2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_alphabetic());
        if is_language && quality > 0.0 && best.is_none_or(|(_, q)| quality > q) {
            best = Some((primary, quality));
        }
    }
    best.map_or("", |(p, _)| p)
}

#[cfg(test)]
mod tests {
    use super::primary_language as lang;

    #[test]
    fn the_most_preferred_language() {
        assert_eq!(lang(b"en-GB,en;q=0.9,fr;q=0.8"), "en");
        assert_eq!(lang(b"fr;q=0.5, DE-ch;q=0.9"), "de");
        assert_eq!(lang(b"pt_BR"), "pt");
        assert_eq!(lang(b"*;q=1, es;q=0.2"), "es");
        assert_eq!(lang(b"zh-Hant-TW;q=0.8,zh;q=0.8"), "zh", "first of equals");
        assert_eq!(lang(b"haw, en;q=0.1"), "haw");
        assert_eq!(lang(b"en;q=0, it;q=0.1"), "it", "q=0 means not acceptable");
    }

    #[test]
    fn nothing_usable() {
        for header in [&b""[..], b"*", b"12, x", b"english", b"\xff\xfe", b";q=1"] {
            assert_eq!(lang(header), "", "{header:?}");
        }
    }
}

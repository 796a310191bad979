//! E-mail addresses: normalised once, on the way in.
//!
//! Trimmed, the domain lowercased (domains are case-insensitive; the local
//! part belongs to the mail server, so it is kept as typed and matched
//! without regard to case instead: the `users_email` index is on
//! `lower(email)`). The check is deliberately plain: one `@`, a local part
//! of visible characters (no quotes, no spaces), a domain of at least two
//! dot-separated labels of letters, digits and hyphens (or non-ASCII
//! letters), and the RFC 5321 lengths. What it lets through that cannot
//! receive mail fails at delivery, which is the only real test.

use crate::error::{ApiError, ApiResult};

/// Longest address (RFC 5321: a 256-octet path less the angle brackets).
pub const MAX_EMAIL_LEN: usize = 254;

/// The normalised address, or a 400 naming `field`.
pub fn normalize(field: &str, raw: &str) -> ApiResult<String> {
    let bad = |why: &str| ApiError::invalid_field(field, why);
    let email = raw.trim();
    if email.is_empty() {
        return Err(bad("is empty"));
    }
    if email.len() > MAX_EMAIL_LEN {
        return Err(bad(&format!(
            "{} bytes; an address has at most {MAX_EMAIL_LEN}",
            email.len()
        )));
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Err(bad("is not an e-mail address (no @)"));
    };
    if local.is_empty() || local.len() > 64 {
        return Err(bad("the part before @ must be 1 to 64 bytes"));
    }
    if local.chars().any(|c| {
        c.is_whitespace() || c.is_control() || matches!(c, '@' | '"' | '<' | '>' | ',' | ';' | '\\')
    }) || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
    {
        return Err(bad(
            "the part before @ holds a character addresses here may not",
        ));
    }
    let domain = domain.to_lowercase();
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c == '-' || c.is_alphanumeric())
    };
    if labels.len() < 2 || !labels.iter().all(label_ok) {
        return Err(bad(
            "the domain after @ is not a domain name such as example.com",
        ));
    }
    Ok(format!("{local}@{domain}"))
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn normalised_and_checked() {
        assert_eq!(
            normalize("email", "  Bob.Smith@Example.COM ").unwrap(),
            "Bob.Smith@example.com"
        );
        assert_eq!(
            normalize("email", "a+tag@mail.example.org").unwrap(),
            "a+tag@mail.example.org"
        );
        assert_eq!(
            normalize("email", "jö@bücher.Example").unwrap(),
            "jö@bücher.example"
        );
        for bad in [
            "",
            "bob",
            "@example.com",
            "bob@",
            "bob@localhost",
            "bob@exa mple.com",
            "b ob@example.com",
            "bob@-x.com",
            "bob@x..com",
            "\"bob\"@x.com",
            "bob\0@x.com",
            ".bob@x.com",
        ] {
            let e = normalize("email", bad).unwrap_err().to_string();
            assert!(e.starts_with("email:"), "{bad:?}: {e}");
        }
        assert!(normalize("email", &format!("{}@x.com", "a".repeat(65))).is_err());
        assert!(normalize("email", &format!("a@{}.com", "b".repeat(260))).is_err());
    }
}

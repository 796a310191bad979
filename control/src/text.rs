//! Free text that reaches PostgreSQL, checked first.
//!
//! PostgreSQL refuses a NUL character in `text` (SQLSTATE 22021); unchecked,
//! `"\u0000"` in a title or `%00` in a query parameter became a 500. Every
//! text input goes through [`check`] (or a stricter rule of its own, like
//! short codes) so it is a 400 that names the field instead. Control
//! characters are refused with NUL: nothing this API stores needs them, and
//! they would end up in listings, CSV exports and logs.
//! [`crate::error`] still maps any data error the database raises to a 400, as
//! a backstop.

use crate::error::{ApiError, ApiResult};

/// Refuses `value` if it is longer than `max` bytes or holds a control
/// character.
pub fn check(field: &str, value: &str, max: usize) -> ApiResult<()> {
    if value.len() > max {
        return Err(ApiError::invalid_field(
            field,
            format!("{} bytes; the limit is {max}", value.len()),
        ));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(ApiError::invalid_field(
            field,
            format!(
                "contains the control character U+{:04X}, which is not allowed",
                c as u32
            ),
        ));
    }
    Ok(())
}

/// A short code from a path: a code that breaks the code rules cannot exist,
/// and must not reach SQL (it may hold NUL or be megabytes long).
pub fn check_code(code: &str) -> ApiResult<()> {
    snapshots::link::validate_code(code.as_bytes()).map_err(|e| ApiError::invalid_field("code", e))
}

#[cfg(test)]
mod tests {
    #[test]
    fn nul_control_and_length() {
        assert!(super::check("title", "fine – ünïcode", 64).is_ok());
        let e = super::check("title", "a\0b", 64).unwrap_err().to_string();
        assert!(e.starts_with("title:") && e.contains("U+0000"), "{e}");
        assert!(super::check("name", "a\nb", 64).is_err());
        assert!(super::check("name", &"x".repeat(65), 64).is_err());
        assert!(super::check_code("abc-1_2").is_ok());
        assert!(super::check_code("a\0b").is_err());
        assert!(super::check_code(&"a".repeat(10_000)).is_err());
    }
}

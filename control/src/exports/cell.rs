//! One value of an export row, as every file format takes it.

/// One cell: text, or a number (unquoted in NDJSON).
#[derive(Debug, Clone)]
pub enum Cell<'a> {
    Text(&'a str),
    Owned(String),
    Number(u64),
}

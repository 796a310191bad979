//! Reading link lists for the `snapshot build` tool: CSV with a header row, or
//! JSON lines. Rows stream through a callback, so a 10-million-row file is
//! never held as text.

use crate::link::{Link, RedirectStatus};
use serde::Deserialize;
use std::io::{BufRead, Read};
use thiserror::Error;

/// The two accepted input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// `code,target` with optional `status`, `expires_at`, `forward_query`,
    /// `disabled` columns, in any order, named by a header row.
    Csv,
    /// One JSON object per line with the [`Link`] field names.
    JsonLines,
}

impl InputFormat {
    /// Guesses from a file name: `.jsonl`/`.ndjson`/`.json` are JSON lines,
    /// anything else is CSV.
    pub fn from_path(path: &std::path::Path) -> InputFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some("jsonl" | "ndjson" | "json") => InputFormat::JsonLines,
            _ => InputFormat::Csv,
        }
    }
}

/// A bad row, named by its line number (1-based, counting the header).
#[derive(Debug, Error)]
#[error("line {line}: {message}")]
pub struct InputError {
    pub line: u64,
    pub message: String,
}

/// A row's position, handed to the callback with the link.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    /// Line number of the row's start (1-based).
    pub line: u64,
    /// Bytes of input consumed so far, for progress.
    pub offset: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CsvRow {
    code: String,
    target: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    forward_query: Option<String>,
    #[serde(default)]
    disabled: Option<String>,
}

/// Reads every row, calling `each` with the link and its position. Stops at
/// the first bad row, or the first error `each` returns (as an [`InputError`]).
pub fn read_links<R, F>(reader: R, format: InputFormat, each: F) -> Result<u64, InputError>
where
    R: Read,
    F: FnMut(Link, Row) -> Result<(), String>,
{
    match format {
        InputFormat::Csv => read_csv(reader, each),
        InputFormat::JsonLines => read_json_lines(reader, each),
    }
}

fn read_csv<R: Read, F>(reader: R, mut each: F) -> Result<u64, InputError>
where
    F: FnMut(Link, Row) -> Result<(), String>,
{
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let headers = csv.headers().map_err(|e| InputError {
        line: 1,
        message: format!("cannot read the header row: {e}"),
    })?;
    for required in ["code", "target"] {
        if !headers.iter().any(|h| h == required) {
            return Err(InputError {
                line: 1,
                message: format!(
                    "header row has no {required:?} column (found: {})",
                    headers.iter().collect::<Vec<_>>().join(",")
                ),
            });
        }
    }
    let headers = headers.clone();
    let mut record = csv::StringRecord::new();
    let mut rows = 0u64;
    loop {
        let line = csv.position().line();
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                return Err(InputError {
                    line: e.position().map_or(line, |p| p.line()),
                    message: e.to_string(),
                });
            }
        }
        let line = record.position().map_or(line, |p| p.line());
        let fail = |message: String| InputError { line, message };
        let row: CsvRow = record
            .deserialize(Some(&headers))
            .map_err(|e| fail(e.to_string()))?;
        let link = csv_link(row).map_err(fail)?;
        let offset = csv.position().byte();
        each(link, Row { line, offset }).map_err(fail)?;
        rows += 1;
    }
    Ok(rows)
}

fn csv_link(row: CsvRow) -> Result<Link, String> {
    let mut link = Link::new(row.code, row.target);
    if let Some(status) = non_empty(&row.status) {
        let number: u16 = status
            .parse()
            .map_err(|_| format!("status {status:?} is not a number"))?;
        link.status = RedirectStatus::try_from(number).map_err(|e| e.to_string())?;
    }
    if let Some(at) = non_empty(&row.expires_at) {
        link.expires_at = Some(
            at.parse()
                .map_err(|_| format!("expires_at {at:?} is not unix seconds"))?,
        );
    }
    if let Some(flag) = non_empty(&row.forward_query) {
        link.forward_query = parse_bool("forward_query", flag)?;
    }
    if let Some(flag) = non_empty(&row.disabled) {
        link.disabled = parse_bool("disabled", flag)?;
    }
    link.validate().map_err(|e| e.to_string())?;
    Ok(link)
}

fn non_empty(field: &Option<String>) -> Option<&str> {
    field.as_deref().filter(|s| !s.is_empty())
}

fn parse_bool(column: &str, value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!("{column} {value:?} is not true/false/1/0/yes/no")),
    }
}

fn read_json_lines<R: Read, F>(reader: R, mut each: F) -> Result<u64, InputError>
where
    F: FnMut(Link, Row) -> Result<(), String>,
{
    let mut reader = std::io::BufReader::with_capacity(1 << 16, reader);
    let mut text = String::new();
    let (mut line, mut offset, mut rows) = (0u64, 0u64, 0u64);
    loop {
        text.clear();
        let n = reader.read_line(&mut text).map_err(|e| InputError {
            line: line + 1,
            message: e.to_string(),
        })?;
        if n == 0 {
            break;
        }
        line += 1;
        offset += n as u64;
        if text.trim().is_empty() {
            continue;
        }
        let fail = |message: String| InputError { line, message };
        let link: Link = serde_json::from_str(&text).map_err(|e| fail(e.to_string()))?;
        link.validate().map_err(|e| fail(e.to_string()))?;
        each(link, Row { line, offset }).map_err(fail)?;
        rows += 1;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(text: &str, format: InputFormat) -> Result<Vec<(Link, u64)>, InputError> {
        let mut out = Vec::new();
        read_links(text.as_bytes(), format, |link, row| {
            out.push((link, row.line));
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn csv_with_optional_columns_in_any_order() {
        let rows = collect(
            "target,code,status,expires_at,forward_query\n\
             https://a.example/,a,,,\n\
             https://b.example/,b,307,1900000000,true\n",
            InputFormat::Csv,
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].0, Link::new("a", "https://a.example/"));
        assert_eq!(rows[1].1, 3);
        let b = &rows[1].0;
        assert_eq!(b.status, RedirectStatus::TemporaryRedirect);
        assert_eq!(b.expires_at, Some(1_900_000_000));
        assert!(b.forward_query);
    }

    #[test]
    fn csv_errors_name_the_line() {
        let err = collect(
            "code,target\na,https://a.example/\nb c,https://b.example/\n",
            InputFormat::Csv,
        )
        .unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("0x20"), "{err}");

        let err = collect("code,target,status\na,https://a/,200\n", InputFormat::Csv).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("200"), "{err}");

        let err = collect("id,url\n", InputFormat::Csv).unwrap_err();
        assert_eq!(err.line, 1);

        let err = collect("code,target\na\n", InputFormat::Csv).unwrap_err();
        assert_eq!(err.line, 2, "{err}");
    }

    #[test]
    fn json_lines() {
        let rows = collect(
            "{\"code\":\"a\",\"target\":\"https://a.example/\"}\n\n{\"code\":\"b\",\"target\":\"https://b/\",\"status\":302}\n",
            InputFormat::JsonLines,
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].1, 3);
        let err = collect("{\"code\":\"a\"}\n", InputFormat::JsonLines).unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.message.contains("target"), "{err}");
    }
}

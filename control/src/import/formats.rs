//! Reading other shorteners' exports, one record at a time (flat memory):
//! Bitly, YOURLS, Shlink and our own CSV are CSV files with a header row;
//! Kutt's is JSON lines of its API's link objects. `docs/IMPORT.md` names
//! each format's fields.
//!
//! A record that cannot be read (a broken CSV row, a line that is not JSON,
//! a header without the long-URL column) is a [`ReadError`] and stops the
//! import at its line: the file is not in the format it was said to be.
//! A record that reads but holds a bad value (an invalid URL or code) is
//! returned as is; the writer reports it as an invalid row and goes on.

use std::io::{BufRead, Read};

/// The formats `control import --from` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Bitly,
    Yourls,
    Shlink,
    Kutt,
    Csv,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Bitly => "bitly",
            Format::Yourls => "yourls",
            Format::Shlink => "shlink",
            Format::Kutt => "kutt",
            Format::Csv => "csv",
        }
    }

    /// The CSV columns of each field (header names compared lowercased,
    /// without spaces, `_` and `-`): target, code, a short URL the code is
    /// the last path segment of, title, tags. Kutt is JSON: its names are
    /// the API's fields.
    fn columns(self) -> Columns {
        match self {
            Format::Bitly => Columns {
                target: &["longurl"],
                code: &["custombacklink"],
                short_url: &["link", "bitlink", "id"],
                title: &["title"],
                tags: &["tags"],
                expires_at: &[],
                valid_since: &[],
                expired_url: &[],
                utm: NO_UTM,
            },
            Format::Yourls => Columns {
                target: &["url"],
                code: &["keyword"],
                short_url: &["shorturl"],
                title: &["title"],
                tags: &[],
                expires_at: &[],
                valid_since: &[],
                expired_url: &[],
                utm: NO_UTM,
            },
            Format::Shlink => Columns {
                target: &["longurl"],
                code: &["shortcode"],
                short_url: &["shorturl"],
                title: &["title"],
                tags: &["tags"],
                expires_at: &["validuntil"],
                valid_since: &["validsince"],
                expired_url: &[],
                utm: NO_UTM,
            },
            Format::Kutt => Columns {
                target: &["target"],
                code: &["address"],
                short_url: &["link"],
                title: &["description"],
                tags: &[],
                expires_at: &["expirein"],
                valid_since: &[],
                expired_url: &[],
                utm: NO_UTM,
            },
            Format::Csv => Columns {
                target: &["target", "longurl", "url"],
                code: &["code", "shortcode", "customalias", "alias"],
                short_url: &["shorturl"],
                title: &["title"],
                tags: &["tags"],
                expires_at: &["expiresat", "validuntil"],
                valid_since: &["validsince"],
                expired_url: &["expiredurl"],
                utm: [
                    &["utmsource"],
                    &["utmmedium"],
                    &["utmcampaign"],
                    &["utmterm"],
                    &["utmcontent"],
                ],
            },
        }
    }
}

struct Columns {
    target: &'static [&'static str],
    code: &'static [&'static str],
    short_url: &'static [&'static str],
    title: &'static [&'static str],
    tags: &'static [&'static str],
    /// Lifecycle (RFC 3339 times and a URL), where the product has them.
    expires_at: &'static [&'static str],
    valid_since: &'static [&'static str],
    expired_url: &'static [&'static str],
    /// UTM values, source to content (our CSV only).
    utm: [&'static [&'static str]; 5],
}

const NO_UTM: [&[&str]; 5] = [&[]; 5];

/// One link as the file has it, unchecked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The line it starts on (from 1; the header is line 1 of a CSV file).
    pub line: u64,
    pub target: String,
    /// The code to keep, if the file has one.
    pub code: Option<String>,
    pub title: Option<String>,
    pub tags: Vec<String>,
    /// When it stops redirecting, as the file writes it (checked later).
    pub expires_at: Option<String>,
    /// When it starts redirecting, as the file writes it.
    pub valid_since: Option<String>,
    /// Redirect rules and the split as JSON, as the API takes them (our
    /// CSV's `rules` and `split` columns; checked later).
    pub rules: Option<String>,
    pub split: Option<String>,
    /// The visit limit, as the file writes it (our CSV's `max_visits`
    /// column; checked later).
    pub max_visits: Option<String>,
    /// Where it redirects once expired.
    pub expired_url: Option<String>,
    /// UTM values, source to content, as the file writes them (empty
    /// cells: none).
    pub utm: [Option<String>; 5],
}

/// A record that cannot be read: the import stops here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ReadError {
    pub line: u64,
    pub message: String,
}

/// Records of one file in one format.
pub enum Reader<R: Read> {
    Csv {
        csv: csv::Reader<R>,
        /// Boxed: the column indexes are most of the variant's size.
        fields: Box<FieldIndex>,
        record: csv::StringRecord,
    },
    Kutt {
        lines: std::io::Lines<std::io::BufReader<R>>,
        line: u64,
        pending: std::vec::IntoIter<Record>,
    },
}

/// Where each field is in a CSV row.
pub struct FieldIndex {
    target: usize,
    code: Option<usize>,
    short_url: Option<usize>,
    title: Option<usize>,
    tags: Option<usize>,
    expires_at: Option<usize>,
    valid_since: Option<usize>,
    expired_url: Option<usize>,
    utm: [Option<usize>; 5],
    /// Our CSV only: JSON columns, and the visit limit.
    rules: Option<usize>,
    split: Option<usize>,
    max_visits: Option<usize>,
}

fn normalize(header: &str) -> String {
    header
        .trim_start_matches('\u{feff}')
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect()
}

impl<R: Read> Reader<R> {
    /// Starts reading `input` as `format`; a CSV header without the
    /// long-URL column is a [`ReadError`] on line 1.
    pub fn new(format: Format, input: R) -> Result<Self, ReadError> {
        if format == Format::Kutt {
            return Ok(Reader::Kutt {
                lines: std::io::BufReader::new(input).lines(),
                line: 0,
                pending: Vec::new().into_iter(),
            });
        }
        let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(input);
        let headers = csv.headers().map_err(|e| ReadError {
            line: 1,
            message: format!("cannot read the header row: {e}"),
        })?;
        let names: Vec<String> = headers.iter().map(normalize).collect();
        let find = |wanted: &[&str]| {
            wanted
                .iter()
                .find_map(|w| names.iter().position(|n| n == w))
        };
        let columns = format.columns();
        let target = find(columns.target).ok_or_else(|| ReadError {
            line: 1,
            message: format!(
                "not a {} export: the header row has no {} column (it has: {})",
                format.name(),
                columns.target[0],
                headers.iter().collect::<Vec<_>>().join(", ")
            ),
        })?;
        let fields = FieldIndex {
            target,
            code: find(columns.code),
            short_url: find(columns.short_url),
            title: find(columns.title),
            tags: find(columns.tags),
            expires_at: find(columns.expires_at),
            valid_since: find(columns.valid_since),
            expired_url: find(columns.expired_url),
            utm: columns.utm.map(find),
            rules: (format == Format::Csv).then(|| find(&["rules"])).flatten(),
            split: (format == Format::Csv).then(|| find(&["split"])).flatten(),
            max_visits: (format == Format::Csv)
                .then(|| find(&["maxvisits"]))
                .flatten(),
        };
        Ok(Reader::Csv {
            csv,
            fields: Box::new(fields),
            record: csv::StringRecord::new(),
        })
    }

    /// The next record, `None` at the end.
    pub fn next_record(&mut self) -> Option<Result<Record, ReadError>> {
        match self {
            Reader::Csv {
                csv,
                fields,
                record,
            } => {
                let line = csv.position().line().max(1);
                match csv.read_record(record) {
                    Ok(false) => None,
                    Ok(true) => {
                        let line = record.position().map_or(line, |p| p.line());
                        Some(Ok(csv_record(fields, record, line)))
                    }
                    Err(e) => Some(Err(ReadError {
                        line: e.position().map_or(line, |p| p.line()),
                        message: format!("cannot read the row: {e}"),
                    })),
                }
            }
            Reader::Kutt {
                lines,
                line,
                pending,
            } => loop {
                if let Some(r) = pending.next() {
                    return Some(Ok(r));
                }
                let text = match lines.next()? {
                    Ok(t) => t,
                    Err(e) => {
                        return Some(Err(ReadError {
                            line: *line + 1,
                            message: format!("cannot read the line: {e}"),
                        }));
                    }
                };
                *line += 1;
                if text.trim().is_empty() {
                    continue;
                }
                match kutt_records(&text, *line) {
                    Ok(records) => *pending = records.into_iter(),
                    Err(message) => {
                        return Some(Err(ReadError {
                            line: *line,
                            message,
                        }));
                    }
                }
            },
        }
    }
}

fn cell(record: &csv::StringRecord, at: Option<usize>) -> Option<String> {
    at.and_then(|i| record.get(i))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The code in a short URL: its path's last segment (`https://bit.ly/abc`,
/// `bit.ly/abc` → `abc`).
fn code_of_short_url(url: &str) -> Option<String> {
    let path = url.split(['?', '#']).next().unwrap_or("");
    let path = path.split_once("://").map_or(path, |(_, rest)| rest);
    let (_, path) = path.split_once('/')?;
    let last = path.trim_end_matches('/').rsplit('/').next()?;
    (!last.is_empty()).then(|| last.to_owned())
}

/// Tags in one cell: `|`-separated when a `|` is there (Shlink, ours),
/// else comma-separated (Bitly).
pub fn split_tags(cell: &str) -> Vec<String> {
    let sep = if cell.contains('|') { '|' } else { ',' };
    cell.split(sep)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

fn csv_record(fields: &FieldIndex, record: &csv::StringRecord, line: u64) -> Record {
    let code = cell(record, fields.code)
        .or_else(|| cell(record, fields.short_url).and_then(|u| code_of_short_url(&u)));
    Record {
        line,
        target: cell(record, Some(fields.target)).unwrap_or_default(),
        code,
        title: cell(record, fields.title),
        tags: cell(record, fields.tags)
            .map(|t| split_tags(&t))
            .unwrap_or_default(),
        expires_at: cell(record, fields.expires_at),
        valid_since: cell(record, fields.valid_since),
        expired_url: cell(record, fields.expired_url),
        utm: fields.utm.map(|at| cell(record, at)),
        rules: cell(record, fields.rules),
        split: cell(record, fields.split),
        max_visits: cell(record, fields.max_visits),
    }
}

/// A Kutt line: one link object of its API, or a whole page of them
/// (`{"data": [...]}`, as `GET /api/v2/links` answers).
fn kutt_records(text: &str, line: u64) -> Result<Vec<Record>, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not a JSON object: {e}"))?;
    let objects = match value.get("data") {
        Some(serde_json::Value::Array(items)) => items.clone(),
        Some(_) => return Err("\"data\" is not a list of links".into()),
        None => vec![value],
    };
    objects
        .iter()
        .map(|o| {
            let o = o
                .as_object()
                .ok_or_else(|| "a link is not a JSON object".to_string())?;
            let text = |k: &str| {
                o.get(k)
                    .and_then(|v| v.as_str())
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
            };
            if !o.contains_key("target") {
                return Err("not a Kutt link: no \"target\" field".into());
            }
            Ok(Record {
                line,
                target: text("target").unwrap_or_default(),
                code: text("address").or_else(|| text("link").and_then(|l| code_of_short_url(&l))),
                title: text("description"),
                tags: Vec::new(),
                expires_at: text("expire_in"),
                valid_since: None,
                expired_url: None,
                utm: Default::default(),
                rules: None,
                split: None,
                max_visits: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(format: Format, text: &str) -> Result<Vec<Record>, ReadError> {
        let mut r = Reader::new(format, text.as_bytes())?;
        let mut out = Vec::new();
        while let Some(rec) = r.next_record() {
            out.push(rec?);
        }
        Ok(out)
    }

    #[test]
    fn csv_headers_are_matched_loosely_and_codes_come_from_short_urls() {
        let recs = all(
            Format::Bitly,
            "\u{feff}Title,Link,Long URL,Tags\nT,https://bit.ly/abc,https://a.example/,\"x, y\"\n",
        )
        .unwrap();
        assert_eq!(recs[0].line, 2);
        assert_eq!(recs[0].code.as_deref(), Some("abc"));
        assert_eq!(recs[0].target, "https://a.example/");
        assert_eq!(recs[0].tags, vec!["x", "y"]);
        assert_eq!(code_of_short_url("bit.ly/q1"), Some("q1".into()));
        assert_eq!(code_of_short_url("https://s.example/"), None);
    }

    #[test]
    fn a_file_in_another_format_stops_at_its_first_line() {
        let e = all(Format::Csv, "{\"target\":\"https://a.example\"}\n").unwrap_err();
        assert_eq!(e.line, 1, "{e}");
        let e = all(
            Format::Kutt,
            "{\"target\":\"https://a.example\",\"address\":\"a\"}\nlong_url,code\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 2, "{e}");
    }

    #[test]
    fn kutt_lines_may_be_links_or_pages() {
        let recs = all(
            Format::Kutt,
            "{\"data\":[{\"target\":\"https://a.example\",\"address\":\"a\"},{\"target\":\"https://b.example\",\"address\":\"b\"}]}\n\n{\"target\":\"https://c.example\",\"link\":\"https://kutt.it/c\"}\n",
        )
        .unwrap();
        let got: Vec<_> = recs
            .iter()
            .map(|r| (r.line, r.code.clone().unwrap()))
            .collect();
        assert_eq!(got, vec![(1, "a".into()), (1, "b".into()), (3, "c".into())]);
    }
}

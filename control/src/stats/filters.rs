//! The stats routes' filters: `country`, `device`, `referrer`, `language`
//! and `rule` query parameters, each a comma-separated list of values a
//! click must have one of. Every filtered column is a dimension of the sidecar's
//! rollups, so a filtered query reads them like any other; the values are
//! bound, never spliced into the SQL.

use crate::error::{ApiError, ApiResult};

/// The filter parameters and the columns they test.
pub const FILTERS: &[(&str, &str)] = &[
    ("country", "country"),
    ("device", "device"),
    ("referrer", "referrer_host"),
    ("language", "language"),
    // A number column, compared as text so every filter binds strings.
    ("rule", "toString(rule)"),
];

/// The device classes the sidecar stores.
pub const DEVICE_CLASSES: &[&str] = &[
    "desktop",
    "mobile",
    "tablet",
    "feature_phone",
    "appliance",
    "bot",
    "other",
];

/// Most values one filter may list.
const MAX_VALUES: usize = 100;
/// The longest value (a host name is at most 253 bytes).
const MAX_VALUE_LEN: usize = 253;
/// Most bytes of all filters' values together: a query repeats them per
/// rollup it reads (up to five times), well inside ClickHouse's
/// `max_query_size` (256 KiB).
const MAX_TOTAL_LEN: usize = 8192;

/// The filters a request asked for: `(column, values)`.
#[derive(Debug, Default, Clone)]
pub struct Filters(Vec<(&'static str, Vec<String>)>);

impl Filters {
    /// Parses the filter parameters, by name (`None`: not given). An empty
    /// list is refused rather than read as "match nothing".
    pub fn parse(given: &[(&'static str, Option<&str>)]) -> ApiResult<Filters> {
        let mut out = Vec::new();
        for &(name, value) in given {
            let Some(list) = value else { continue };
            let column = FILTERS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, c)| *c)
                .expect("a filter of FILTERS");
            let values: Vec<String> = list
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| match name {
                    // Stored as ISO codes in capitals and lowercase hosts,
                    // classes and languages: match either way.
                    "country" => v.to_ascii_uppercase(),
                    _ => v.to_ascii_lowercase(),
                })
                .collect();
            let values = if name == "rule" {
                values
                    .iter()
                    .map(|v| {
                        let number = v
                            .bytes()
                            .all(|b| b.is_ascii_digit())
                            .then(|| v.parse::<u16>().ok())
                            .flatten();
                        number.map(|n| n.to_string()).ok_or_else(|| {
                            ApiError::invalid_field(
                                name,
                                format!(
                                    "{:?} is not a rule number (0: the link's target, 1.. its rules, 100.. its split's variants)",
                                    v.chars().take(16).collect::<String>()
                                ),
                            )
                        })
                    })
                    .collect::<ApiResult<Vec<String>>>()?
            } else {
                values
            };
            if values.is_empty() {
                return Err(ApiError::invalid_field(name, "lists no value"));
            }
            if values.len() > MAX_VALUES {
                return Err(ApiError::invalid_field(
                    name,
                    format!("lists more than {MAX_VALUES} values"),
                ));
            }
            if let Some(v) = values.iter().find(|v| v.len() > MAX_VALUE_LEN) {
                return Err(ApiError::invalid_field(
                    name,
                    format!(
                        "{:?}... is longer than {MAX_VALUE_LEN} bytes",
                        v.chars().take(16).collect::<String>()
                    ),
                ));
            }
            if name == "device"
                && let Some(v) = values
                    .iter()
                    .find(|v| !DEVICE_CLASSES.contains(&v.as_str()))
            {
                return Err(ApiError::invalid_field(
                    name,
                    format!("{v:?} is not one of {}", DEVICE_CLASSES.join(", ")),
                ));
            }
            out.push((column, values));
        }
        let total: usize = out.iter().flat_map(|(_, v)| v).map(String::len).sum();
        if total > MAX_TOTAL_LEN {
            return Err(ApiError::bad_request(format!(
                "the filters list more than {MAX_TOTAL_LEN} bytes of values"
            )));
        }
        Ok(Filters(out))
    }

    /// Whether no filter was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The values of filter `name` (`country`, ...), if it was given.
    pub fn values(&self, name: &str) -> Option<&[String]> {
        let column = FILTERS.iter().find(|(n, _)| *n == name)?.1;
        self.0
            .iter()
            .find(|(c, _)| *c == column)
            .map(|(_, v)| v.as_slice())
    }

    /// ` AND has(?, column)` per filter, in the order [`Filters::bind`]
    /// binds their values.
    pub fn sql(&self) -> String {
        self.0
            .iter()
            .map(|(column, _)| format!(" AND has(?, {column})"))
            .collect()
    }

    /// Binds each filter's values, for [`Filters::sql`].
    pub fn bind(&self, mut query: clickhouse::query::Query) -> clickhouse::query::Query {
        for (_, values) in &self.0 {
            query = query.bind(values);
        }
        query
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_values_together_are_bounded() {
        let many = vec!["a".repeat(200); 50].join(",");
        assert!(Filters::parse(&[("referrer", Some(&many))]).is_err());
    }

    #[test]
    fn lists_are_normalised_and_checked() {
        let f = Filters::parse(&[
            ("country", Some("gb, US,,")),
            ("device", Some("Mobile")),
            ("referrer", None),
        ])
        .unwrap();
        assert_eq!(f.sql(), " AND has(?, country) AND has(?, device)");
        assert_eq!(f.0[0].1, ["GB", "US"]);
        assert_eq!(f.0[1].1, ["mobile"]);
        let f = Filters::parse(&[("rule", Some("0, 01,101"))]).unwrap();
        assert_eq!(f.sql(), " AND has(?, toString(rule))");
        assert_eq!(f.values("rule").unwrap(), ["0", "1", "101"]);
        for (name, value) in [
            ("rule", "x"),
            ("rule", "70000"),
            ("rule", "+1"),
            ("country", ","),
            ("device", "phone"),
            ("language", &*"x,".repeat(101)),
            ("referrer", &*"a".repeat(254)),
        ] {
            let e = Filters::parse(&[(name, Some(value))]).unwrap_err();
            assert!(e.to_string().starts_with(name), "{e}");
        }
    }
}

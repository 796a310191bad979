//! `POST /v1/exports`'s body and its checks: what the caller asked for
//! becomes an [`ExportSpec`], the job's checked and complete description,
//! stored with the job and answered by `GET /v1/jobs/{id}`.
//!
//! A body whose shape the schema forbids (a missing `kind`, an unknown
//! format or dimension, a wrong type) is a 400 `invalid_json` like every
//! other body; values the schema cannot judge (a range backwards or too
//! long, a filter list that is empty, a code that is not one of the
//! organization's live links) are a 422 `invalid_export` naming the field.

use crate::error::{ApiError, ApiResult};
use crate::stats::filters::Filters;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What is exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportKind {
    /// One row per click (redirects only, as the stats count).
    Clicks,
    /// Clicks and unique visitors per time bucket, link and the chosen
    /// dimensions, from the rollups the stats read (visitors are estimates,
    /// as in the stats).
    Rollup,
}

/// The file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// RFC 4180 CSV with a header line.
    #[default]
    Csv,
    /// One JSON object per line.
    Ndjson,
    /// Apache Parquet (Snappy), written by the service: text columns UTF-8,
    /// counts and times in milliseconds unsigned 64-bit integers.
    Parquet,
}

impl ExportFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Ndjson => "ndjson",
            ExportFormat::Parquet => "parquet",
        }
    }

    pub fn parse(s: &str) -> Option<ExportFormat> {
        match s {
            "csv" => Some(ExportFormat::Csv),
            "ndjson" => Some(ExportFormat::Ndjson),
            "parquet" => Some(ExportFormat::Parquet),
            _ => None,
        }
    }

    /// The download's `Content-Type`.
    pub fn media_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Ndjson => "application/x-ndjson",
            ExportFormat::Parquet => "application/vnd.apache.parquet",
        }
    }
}

/// A rollup export's time bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportBucket {
    Minute,
    Hour,
    Day,
}

/// Who clicked: people, crawlers and scripts, or link-preview fetchers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Traffic {
    Human,
    Bot,
    Preview,
}

impl Traffic {
    pub fn as_str(self) -> &'static str {
        match self {
            Traffic::Human => "human",
            Traffic::Bot => "bot",
            Traffic::Preview => "preview",
        }
    }
}

/// A dimension of rollup rows (the stats' breakdowns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportDimension {
    Country,
    City,
    Device,
    Browser,
    Os,
    Referrer,
    Language,
    Traffic,
}

impl ExportDimension {
    /// The column's name in the file.
    pub fn name(self) -> &'static str {
        match self {
            ExportDimension::Country => "country",
            ExportDimension::City => "city",
            ExportDimension::Device => "device",
            ExportDimension::Browser => "browser",
            ExportDimension::Os => "os",
            ExportDimension::Referrer => "referrer",
            ExportDimension::Language => "language",
            ExportDimension::Traffic => "traffic",
        }
    }
}

/// `POST /v1/exports`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateExport {
    pub kind: ExportKind,
    /// Start of the range, inclusive (RFC 3339). Rollup exports round it
    /// down to a whole minute.
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    /// End of the range, exclusive (RFC 3339). Rollup exports round it up
    /// to a whole minute. At most `export_max_range_days` after `from`.
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    /// Default `csv`.
    pub format: Option<ExportFormat>,
    /// Rollup exports only (default `day`).
    pub bucket: Option<ExportBucket>,
    /// Rollup exports only: a column and a row per value of each (default
    /// none: per bucket and link).
    pub dimensions: Option<Vec<ExportDimension>>,
    /// Only this link's clicks (a live link of the organization).
    pub code: Option<String>,
    /// The link's domain, with `code` (default: the deployment's default
    /// domain).
    pub domain: Option<String>,
    /// Only clicks from these countries (ISO codes).
    pub country: Option<Vec<String>>,
    /// Only clicks from these device classes (desktop, mobile, tablet,
    /// feature_phone, appliance, bot, other).
    pub device: Option<Vec<String>>,
    /// Only clicks referred by these hosts.
    pub referrer: Option<Vec<String>>,
    /// Only clicks whose preferred language is one of these (`en`, ...).
    pub language: Option<Vec<String>>,
    /// Which traffic (default `["human"]`, as the stats count by default).
    pub traffic: Option<Vec<Traffic>>,
}

/// An export, checked and complete: what the job runs and what
/// `GET /v1/jobs/{id}` answers as its `request`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
pub struct ExportSpec {
    pub kind: ExportKind,
    /// Inclusive.
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    /// Exclusive.
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    pub format: ExportFormat,
    /// Rollup exports: the bucket (`null` for click exports).
    pub bucket: Option<ExportBucket>,
    /// Rollup exports: the dimensions, in the file's column order.
    pub dimensions: Vec<ExportDimension>,
    /// One link only: its code and its domain's name (empty: the unnamed
    /// default domain).
    pub code: Option<String>,
    pub domain: Option<String>,
    pub country: Vec<String>,
    pub device: Vec<String>,
    pub referrer: Vec<String>,
    pub language: Vec<String>,
    pub traffic: Vec<Traffic>,
}

/// A value the schema allows that the export cannot take: 422
/// `invalid_export`, naming `field`.
pub fn invalid(field: &str, message: impl std::fmt::Display) -> ApiError {
    ApiError::InvalidExport {
        field: field.to_owned(),
        message: format!("{field}: {message}"),
    }
}

/// ClickHouse `DateTime` is an unsigned 32-bit Unix time.
const MAX_TIME: i64 = u32::MAX as i64;

impl CreateExport {
    /// Checks everything but the link (which needs the database): the
    /// range against `max_range_days`, the kind's own fields, the filters.
    pub fn check(self, max_range_days: u64) -> ApiResult<ExportSpec> {
        let rollup = self.kind == ExportKind::Rollup;
        let (mut from, mut to) = (self.from, self.to);
        if rollup {
            // The rollups' finest bucket is a minute (as the stats round).
            from = minute(from.unix_timestamp(), false)?;
            to = minute(to.unix_timestamp(), true)?;
        }
        if from.unix_timestamp() < 0 {
            return Err(invalid("from", "is before 1970"));
        }
        if to.unix_timestamp() > MAX_TIME {
            return Err(invalid("to", "is after 2106"));
        }
        if from >= to {
            return Err(invalid("from", "must be before to"));
        }
        let max = i64::try_from(max_range_days)
            .unwrap_or(i64::MAX / 86_400)
            .saturating_mul(86_400);
        if (to - from).whole_seconds() > max {
            return Err(invalid(
                "to",
                format!("the range is longer than {max_range_days} days; export it in parts"),
            ));
        }
        if !rollup {
            if self.bucket.is_some() {
                return Err(invalid("bucket", "is for rollup exports"));
            }
            if self.dimensions.is_some() {
                return Err(invalid("dimensions", "is for rollup exports"));
            }
        }
        let dimensions = self.dimensions.unwrap_or_default();
        if dimensions
            .iter()
            .enumerate()
            .any(|(i, d)| dimensions[..i].contains(d))
        {
            return Err(invalid("dimensions", "names a dimension twice"));
        }
        if self.domain.is_some() && self.code.is_none() {
            return Err(invalid("domain", "goes with code (the link's domain)"));
        }
        if let Some(code) = &self.code {
            crate::text::check_code(code).map_err(|e| invalid("code", e))?;
        }
        let traffic = self.traffic.unwrap_or_else(|| vec![Traffic::Human]);
        if traffic.is_empty() {
            return Err(invalid("traffic", "lists no value"));
        }
        let lists = [
            ("country", self.country),
            ("device", self.device),
            ("referrer", self.referrer),
            ("language", self.language),
        ];
        // The stats' filter checks (and normalisation), on the lists.
        let joined: Vec<(&'static str, Option<String>)> = lists
            .iter()
            .map(|(name, values)| (*name, values.as_ref().map(|v| v.join(","))))
            .collect();
        for (name, values) in &lists {
            if values
                .as_ref()
                .is_some_and(|v| v.iter().any(|x| x.contains(',')))
            {
                return Err(invalid(name, "a value holds a comma"));
            }
        }
        let parsed: Vec<(&'static str, Option<&str>)> =
            joined.iter().map(|(n, v)| (*n, v.as_deref())).collect();
        let filters = Filters::parse(&parsed).map_err(|e| match e {
            ApiError::BadRequest { message, details } => ApiError::InvalidExport {
                field: details["field"].as_str().unwrap_or("filters").to_owned(),
                message,
            },
            e => e,
        })?;
        let value = |name: &str| filters.values(name).map(<[String]>::to_vec);
        Ok(ExportSpec {
            kind: self.kind,
            from,
            to,
            format: self.format.unwrap_or_default(),
            bucket: rollup.then(|| self.bucket.unwrap_or(ExportBucket::Day)),
            dimensions,
            code: self.code,
            domain: self.domain,
            country: value("country").unwrap_or_default(),
            device: value("device").unwrap_or_default(),
            referrer: value("referrer").unwrap_or_default(),
            language: value("language").unwrap_or_default(),
            traffic,
        })
    }
}

/// `t` (Unix seconds) as a whole minute, rounded down or up.
fn minute(t: i64, up: bool) -> ApiResult<OffsetDateTime> {
    let t = if up {
        crate::stats::rollups::minute_ceil(t)
    } else {
        crate::stats::rollups::minute_floor(t)
    };
    OffsetDateTime::from_unix_timestamp(t).map_err(|e| invalid("to", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: serde_json::Value) -> CreateExport {
        serde_json::from_value(v).unwrap()
    }

    fn field(r: ApiResult<ExportSpec>) -> String {
        match r.unwrap_err() {
            ApiError::InvalidExport { field, .. } => field,
            e => panic!("not invalid_export: {e}"),
        }
    }

    #[test]
    fn defaults_and_normalised_filters() {
        let spec = body(json!({"kind": "rollup", "from": "2026-01-01T10:00:30Z",
            "to": "2026-01-02T00:00:01Z", "country": ["gb"], "device": ["Mobile"]}))
        .check(366)
        .unwrap();
        assert_eq!(spec.format, ExportFormat::Csv);
        assert_eq!(spec.bucket, Some(ExportBucket::Day));
        assert_eq!(spec.traffic, [Traffic::Human]);
        assert_eq!(spec.country, ["GB"]);
        assert_eq!(spec.device, ["mobile"]);
        assert_eq!(spec.from.unix_timestamp() % 60, 0, "rounded down");
        assert_eq!(spec.to.unix_timestamp() % 60, 0, "rounded up");
        let clicks = body(json!({"kind": "clicks", "from": "2026-01-01T10:00:30Z",
            "to": "2026-01-02T00:00:01Z"}))
        .check(366)
        .unwrap();
        assert_eq!(clicks.bucket, None);
        assert_eq!(clicks.from.unix_timestamp() % 60, 30, "exact");
    }

    #[test]
    fn refusals_name_the_field() {
        let range = |from: &str, to: &str| {
            body(json!({"kind": "clicks", "from": from, "to": to})).check(31)
        };
        assert_eq!(
            field(range("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z")),
            "from"
        );
        assert_eq!(
            field(range("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z")),
            "from"
        );
        assert_eq!(
            field(range("2026-01-01T00:00:00Z", "2026-03-01T00:00:00Z")),
            "to"
        );
        assert_eq!(
            field(range("1969-12-31T00:00:00Z", "1970-01-02T00:00:00Z")),
            "from"
        );
        let with = |extra: serde_json::Value| {
            let mut v = json!({"kind": "clicks", "from": "2026-01-01T00:00:00Z",
                "to": "2026-01-02T00:00:00Z"});
            for (k, x) in extra.as_object().unwrap() {
                v[k] = x.clone();
            }
            field(body(v).check(31))
        };
        assert_eq!(with(json!({"bucket": "hour"})), "bucket");
        assert_eq!(with(json!({"dimensions": ["country"]})), "dimensions");
        assert_eq!(with(json!({"device": ["phone"]})), "device");
        assert_eq!(with(json!({"country": []})), "country");
        assert_eq!(with(json!({"traffic": []})), "traffic");
        assert_eq!(with(json!({"domain": "go.example"})), "domain");
        assert_eq!(with(json!({"code": "a/b"})), "code");
        assert_eq!(
            with(json!({"kind": "rollup", "dimensions": ["os", "os"]})),
            "dimensions"
        );
    }
}

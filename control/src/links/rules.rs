//! Redirect rules and A/B splits in the API (docs/redirect-rules.md).
//!
//! **Types.** The model is `snapshots::rules`' ([`Rule`], [`Conditions`],
//! [`Device`], [`Os`], [`QueryCondition`], [`Variant`]): links store it
//! (`links.rules`, `links.split`, jsonb, NULL: none) and engines get it.
//! The API differs in one place only: a rule's `when.from` / `when.until`
//! are RFC 3339 times (whole seconds), like the link's `expires_at`, where
//! the model keeps unix seconds. [`RuleJson`] and [`ConditionsJson`] are
//! that shape, converted at the edge; splits are [`Variant`]s as they are.
//!
//! **Reading a request.** `rules` and `split` reach the handlers as JSON
//! values and are read here piece by piece ([`parse_rules`],
//! [`parse_split`]), so that every refusal is a 400 naming its place the
//! way [`snapshots::rules::RulesError::field`] does (`rules[1].when.country`,
//! `split[0].weight`), an unknown condition (`rules[0].when`) and an
//! unknown device included, rather than serde's whole-body message.
//!
//! **Checks** ([`check_rules`], [`check_split`]): each target goes through
//! the link target's policy ([`crate::target::TargetPolicy`]: normalised,
//! no private hosts, not the service's own host; its host is checked
//! against the blocklist in the write's transaction), then the lists
//! through [`validate_rules`], the very check the snapshot builder and the
//! engines apply: a list the API accepts always makes a valid record.
//!
//! The link's UTM values are merged into rule and variant targets as into
//! its own target, in the records engines get (`LinkRow::served_rules`); the
//! API shows every target as written.

use crate::error::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use snapshots::RedirectStatus;
use snapshots::rules::{
    Conditions, Device, MAX_QUERY_NAME, MAX_QUERY_VALUE, MAX_RULES, MAX_VALUES, MAX_VARIANTS, Os,
    QueryCondition, Rule, RulesError, Variant, validate_rules,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{RefOr, SchemaFormat};

/// The conditions of a rule as the API shows them: the model's, with the
/// time window in RFC 3339. A rule matches when every condition given
/// holds; a list holds when one of its values does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConditionsJson {
    /// Device classes (desktop, mobile, tablet), read from the user agent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(schema_with = device_list_schema)]
    pub device: Vec<Device>,
    /// Operating systems (ios, android, windows, macos, linux, chromeos).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(schema_with = os_list_schema)]
    pub os: Vec<Os>,
    /// Primary language subtags (`en`, `fr`, `gsw`), lower case, matched
    /// against the visitor's preferred language (Accept-Language).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(schema_with = language_list_schema)]
    pub language: Vec<String>,
    /// ISO 3166-1 alpha-2 country codes in capitals (`DE`), matched against
    /// the visitor's address.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(schema_with = country_list_schema)]
    pub country: Vec<String>,
    /// A query parameter of the short URL: present (no `equals`) or equal
    /// to `equals` (both compared percent-decoded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = query_schema)]
    pub query: Option<QueryCondition>,
    /// From this time on (inclusive; RFC 3339, whole seconds).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub from: Option<OffsetDateTime>,
    /// Until this time (exclusive; RFC 3339, whole seconds); after `from`.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub until: Option<OffsetDateTime>,
}

/// A redirect rule as the API shows it: the first rule whose conditions
/// all hold sends the visit to its target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleJson {
    /// At least one condition.
    pub when: ConditionsJson,
    /// Where a visit that meets the conditions goes: an absolute http(s)
    /// URL, checked like the link's target.
    #[schema(format = "uri")]
    pub target: String,
    /// The rule's redirect status (301, 302, 307, 308); absent: the link's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = status_schema)]
    pub status: Option<RedirectStatus>,
}

impl RuleJson {
    /// The API form of a stored rule.
    pub fn from_rule(rule: &Rule) -> RuleJson {
        let time = |at: Option<i64>| at.and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok());
        let when = &rule.when;
        RuleJson {
            when: ConditionsJson {
                device: when.device.clone(),
                os: when.os.clone(),
                language: when.language.clone(),
                country: when.country.clone(),
                query: when.query.clone(),
                from: time(when.from),
                until: time(when.until),
            },
            target: rule.target.clone(),
            status: rule.status,
        }
    }
}

/// The JSON names of enum values (`mobile`, `ios`), as serde writes them.
fn json_names<T: Serialize>(values: &[T]) -> Vec<String> {
    values
        .iter()
        .filter_map(|v| match serde_json::to_value(v) {
            Ok(Value::String(name)) => Some(name),
            _ => None,
        })
        .collect()
}

/// A rule's conditions in words, for the dashboard
/// (`country DE or AT, and from 2026-12-24T00:00:00Z`).
pub fn describe(when: &Conditions) -> String {
    let list = |name: &str, values: Vec<String>| {
        (!values.is_empty()).then(|| format!("{name} {}", values.join(" or ")))
    };
    let time = |at: i64| {
        OffsetDateTime::from_unix_timestamp(at)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| at.to_string())
    };
    let parts: Vec<String> = [
        list("device", json_names(&when.device)),
        list("os", json_names(&when.os)),
        list("language", when.language.clone()),
        list("country", when.country.clone()),
        when.query.as_ref().map(|q| match &q.equals {
            Some(value) => format!("query {}={value}", q.name),
            None => format!("query has {}", q.name),
        }),
        when.from.map(|at| format!("from {}", time(at))),
        when.until.map(|at| format!("until {}", time(at))),
    ]
    .into_iter()
    .flatten()
    .collect();
    parts.join(", and ")
}

/// The API form of stored rules.
pub fn rules_json(rules: &[Rule]) -> Vec<RuleJson> {
    rules.iter().map(RuleJson::from_rule).collect()
}

// ---------------------------------------------------------------------------
// Reading requests.

fn bad(field: &str, message: impl std::fmt::Display) -> ApiError {
    ApiError::invalid_field(field, message)
}

/// The conditions a rule may have, for messages.
const CONDITIONS: &str = "device, os, language, country, query, from and until";

/// Reads a request's `rules` (`null`: none) into the model, naming the
/// place of the first thing wrong with its shape. The values themselves
/// are checked by [`check_rules`].
pub fn parse_rules(value: &Value) -> ApiResult<Vec<Rule>> {
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        _ => return Err(bad("rules", "must be a list of rules, or null")),
    };
    if items.len() > MAX_RULES {
        return Err(bad(
            "rules",
            format!("{} rules; the limit is {MAX_RULES}", items.len()),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(index, item)| parse_rule(index, item))
        .collect()
}

fn parse_rule(index: usize, item: &Value) -> ApiResult<Rule> {
    let place = format!("rules[{index}]");
    let Value::Object(map) = item else {
        return Err(bad(&place, "must be an object with when and target"));
    };
    if let Some(key) = map
        .keys()
        .find(|k| !matches!(k.as_str(), "when" | "target" | "status"))
    {
        return Err(bad(
            &place,
            format!("unknown field {key:?}; a rule has when, target and status"),
        ));
    }
    let when = match map.get("when") {
        None => return Err(bad(&format!("{place}.when"), "is required")),
        Some(Value::Object(when)) => parse_conditions(index, when)?,
        Some(_) => {
            return Err(bad(
                &format!("{place}.when"),
                format!("must be an object of conditions ({CONDITIONS})"),
            ));
        }
    };
    Ok(Rule {
        when,
        target: parse_target(&place, map)?,
        status: parse_status(&place, map)?,
    })
}

fn parse_target(place: &str, map: &Map<String, Value>) -> ApiResult<String> {
    match map.get("target") {
        Some(Value::String(target)) => Ok(target.clone()),
        None => Err(bad(&format!("{place}.target"), "is required")),
        Some(_) => Err(bad(&format!("{place}.target"), "must be a URL string")),
    }
}

fn parse_status(place: &str, map: &Map<String, Value>) -> ApiResult<Option<RedirectStatus>> {
    match map.get("status") {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .and_then(|s| RedirectStatus::try_from(s).ok())
            .map(Some)
            .ok_or_else(|| {
                bad(
                    &format!("{place}.status"),
                    format!("{value} is not 301, 302, 307 or 308"),
                )
            }),
    }
}

fn parse_conditions(index: usize, when: &Map<String, Value>) -> ApiResult<Conditions> {
    let mut out = Conditions::default();
    for (key, value) in when {
        let field = format!("rules[{index}].when.{key}");
        match key.as_str() {
            "device" => out.device = parse_list(&field, value, "desktop, mobile, tablet")?,
            "os" => {
                out.os = parse_list(
                    &field,
                    value,
                    "ios, android, windows, macos, linux, chromeos",
                )?
            }
            "language" => out.language = parse_list(&field, value, "a language subtag string")?,
            "country" => out.country = parse_list(&field, value, "a country code string")?,
            "query" => {
                out.query = match value {
                    Value::Null => None,
                    Value::Object(_) => Some(
                        serde_json::from_value::<QueryCondition>(value.clone()).map_err(|e| {
                            bad(
                                &field,
                                format!("{e} (an object with name and, optionally, equals)"),
                            )
                        })?,
                    ),
                    _ => {
                        return Err(bad(
                            &field,
                            "must be an object with name and, optionally, equals",
                        ));
                    }
                }
            }
            "from" => out.from = parse_time(&field, value)?,
            "until" => out.until = parse_time(&field, value)?,
            other => {
                return Err(bad(
                    &format!("rules[{index}].when"),
                    format!("unknown condition {other:?}; the conditions are {CONDITIONS}"),
                ));
            }
        }
    }
    Ok(out)
}

/// A list condition: an array whose items are each one of `expected`.
fn parse_list<T: serde::de::DeserializeOwned>(
    field: &str,
    value: &Value,
    expected: &str,
) -> ApiResult<Vec<T>> {
    let Value::Array(items) = value else {
        return Err(bad(field, format!("must be a list (of {expected})")));
    };
    if items.len() > MAX_VALUES {
        return Err(bad(
            field,
            format!("{} values; the limit is {MAX_VALUES}", items.len()),
        ));
    }
    items
        .iter()
        .map(|item| {
            serde_json::from_value::<T>(item.clone())
                .map_err(|_| bad(field, format!("{item} is not one of {expected}")))
        })
        .collect()
}

/// An RFC 3339 time in whole seconds (`null`: none), as unix seconds.
fn parse_time(field: &str, value: &Value) -> ApiResult<Option<i64>> {
    let text = match value {
        Value::Null => return Ok(None),
        Value::String(text) => text,
        _ => return Err(bad(field, "must be an RFC 3339 time string")),
    };
    let at = OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| bad(field, format!("{text:?} is not an RFC 3339 time: {e}")))?;
    // The API shows it in UTC, which RFC 3339 writes with four-digit years.
    // (9999-12-31T23:59:59Z; converting there would overflow.)
    if at.unix_timestamp() > super::times::LAST_SHOWN_UNIX {
        return Err(bad(
            field,
            format!("{text:?} is after the year 9999 in UTC"),
        ));
    }
    if at.nanosecond() != 0 {
        return Err(bad(
            field,
            format!("{text:?} has a fraction of a second; give whole seconds"),
        ));
    }
    Ok(Some(at.unix_timestamp()))
}

/// Reads a request's `split` (`null`: none) into the model, naming the
/// place of the first thing wrong with its shape.
pub fn parse_split(value: &Value) -> ApiResult<Vec<Variant>> {
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        _ => return Err(bad("split", "must be a list of variants, or null")),
    };
    if items.len() > MAX_VARIANTS {
        return Err(bad(
            "split",
            format!("{} variants; the limit is {MAX_VARIANTS}", items.len()),
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let place = format!("split[{index}]");
        let Value::Object(map) = item else {
            return Err(bad(&place, "must be an object with target and weight"));
        };
        if let Some(key) = map
            .keys()
            .find(|k| !matches!(k.as_str(), "target" | "weight" | "status"))
        {
            return Err(bad(
                &place,
                format!("unknown field {key:?}; a variant has target, weight and status"),
            ));
        }
        let weight = match map.get("weight") {
            None => return Err(bad(&format!("{place}.weight"), "is required")),
            Some(w) => w
                .as_u64()
                .filter(|w| (1..=100).contains(w))
                .ok_or_else(|| {
                    bad(
                        &format!("{place}.weight"),
                        format!("{w} is not from 1 to 100"),
                    )
                })?,
        };
        out.push(Variant {
            target: parse_target(&place, map)?,
            weight: weight as u8,
            status: parse_status(&place, map)?,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Checks.

/// A [`RulesError`] as the API's 400: the field it names and its message.
pub fn rules_error(e: &RulesError) -> ApiError {
    let field = e.field();
    let message = e.to_string();
    let message = message
        .strip_prefix(&format!("{field}: "))
        .unwrap_or(&message);
    bad(&field, message)
}

/// Checks a target of a rule or variant (`place`: `rules[0]`) with the link
/// target's policy: its normalised URL and host.
fn check_target(
    policy: &crate::target::TargetPolicy,
    place: &str,
    target: &mut String,
    hosts: &mut Vec<String>,
) -> ApiResult<()> {
    let checked = policy.check(target).map_err(|e| match e {
        ApiError::InvalidUrl(message) => bad(&format!("{place}.target"), message),
        other => other,
    })?;
    *target = checked.url;
    if !hosts.contains(&checked.host) {
        hosts.push(checked.host);
    }
    Ok(())
}

/// Checks rules as [`parse_rules`] read them: their targets (normalised in
/// place; their hosts added to `hosts`, for the blocklist) and everything
/// [`validate_rules`] checks.
pub fn check_rules(
    policy: &crate::target::TargetPolicy,
    rules: &mut [Rule],
    hosts: &mut Vec<String>,
) -> ApiResult<()> {
    // The conditions first, rule by rule, so an empty `when` is named
    // before a target of a later rule.
    validate_rules(
        &rules
            .iter()
            .map(|r| Rule {
                when: r.when.clone(),
                target: "https://placeholder.invalid/".into(),
                status: r.status,
            })
            .collect::<Vec<_>>(),
        &[],
    )
    .map_err(|e| rules_error(&e))?;
    for (index, rule) in rules.iter_mut().enumerate() {
        check_target(policy, &format!("rules[{index}]"), &mut rule.target, hosts)?;
    }
    validate_rules(rules, &[]).map_err(|e| rules_error(&e))
}

/// Checks a split as [`parse_split`] read it, as [`check_rules`] does rules.
pub fn check_split(
    policy: &crate::target::TargetPolicy,
    split: &mut [Variant],
    hosts: &mut Vec<String>,
) -> ApiResult<()> {
    for (index, variant) in split.iter_mut().enumerate() {
        check_target(
            policy,
            &format!("split[{index}]"),
            &mut variant.target,
            hosts,
        )?;
    }
    validate_rules(&[], split).map_err(|e| rules_error(&e))
}

// ---------------------------------------------------------------------------
// Storage.

/// `links.rules` as a row holds it: the model's rules (none for NULL).
/// A value that does not read as rules (written around the API) is logged
/// and read as none, so it cannot fail the reads of its link.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredRules(pub Vec<Rule>);

/// `links.split` as a row holds it, as [`StoredRules`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredSplit(pub Vec<Variant>);

fn read_column<T: serde::de::DeserializeOwned>(column: &str, value: Option<Value>) -> Vec<T> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(value) => serde_json::from_value(value).unwrap_or_else(|e| {
            tracing::warn!(column, error = %e, "a stored value does not read; taken as none");
            Vec::new()
        }),
    }
}

/// What the row's `try_from` reads the column through.
impl From<Option<Value>> for StoredRules {
    fn from(value: Option<Value>) -> Self {
        StoredRules(read_column("links.rules", value))
    }
}

/// What the row's `try_from` reads the column through.
impl From<Option<Value>> for StoredSplit {
    fn from(value: Option<Value>) -> Self {
        StoredSplit(read_column("links.split", value))
    }
}

/// The column value of a list: NULL when empty.
pub fn column<T: Serialize>(list: &[T]) -> Option<Value> {
    if list.is_empty() {
        return None;
    }
    serde_json::to_value(list).ok()
}

// ---------------------------------------------------------------------------
// OpenAPI schemas of the model's types (they live in `snapshots`, which
// knows nothing of utoipa).

fn string_enum(values: &[&str]) -> Schema {
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(values.iter().copied()))
            .build(),
    )
}

fn string_list(items: Schema, description: &str) -> ArrayBuilder {
    ArrayBuilder::new()
        .items(RefOr::T(items))
        .max_items(Some(MAX_VALUES))
        .description(Some(description))
}

fn device_list_schema() -> utoipa::openapi::Array {
    let names = json_names(&Device::ALL);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    string_list(string_enum(&names), "Device classes; any of them matches.").build()
}

fn os_list_schema() -> utoipa::openapi::Array {
    let names = json_names(&Os::ALL);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    string_list(
        string_enum(&names),
        "Operating systems; any of them matches.",
    )
    .build()
}

fn pattern_string(pattern: &str) -> Schema {
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(pattern))
            .build(),
    )
}

fn language_list_schema() -> utoipa::openapi::Array {
    string_list(
        pattern_string("^[a-z]{2,3}$"),
        "Primary language subtags (`en`, `fr`); any of them matches.",
    )
    .build()
}

fn country_list_schema() -> utoipa::openapi::Array {
    string_list(
        pattern_string("^[A-Z]{2}$"),
        "ISO 3166-1 alpha-2 codes (`DE`); any of them matches.",
    )
    .build()
}

fn query_schema() -> utoipa::openapi::Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .description(Some(
            "A query parameter: present (no `equals`) or equal to `equals`.",
        ))
        .property(
            "name",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(MAX_QUERY_NAME)),
        )
        .required("name")
        .property(
            "equals",
            ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                .max_length(Some(MAX_QUERY_VALUE)),
        )
        .additional_properties(Some(
            utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
        ))
        .build()
}

/// A rule's or variant's status: 301, 302, 307, 308, or null (the link's).
fn status_schema() -> utoipa::openapi::Object {
    let statuses = (100..600u16)
        .filter(|s| RedirectStatus::try_from(*s).is_ok())
        .map(Value::from)
        .chain([Value::Null]);
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .enum_values(Some(statuses))
        .build()
}

fn variant_schema() -> Schema {
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("One arm of an A/B split."))
            .property(
                "target",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::Custom("uri".into())))
                    .description(Some(
                        "An absolute http(s) URL, checked like the link's target.",
                    )),
            )
            .required("target")
            .property(
                "weight",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1))
                    .maximum(Some(100))
                    .description(Some("Percent of visitors; a split's weights sum to 100.")),
            )
            .required("weight")
            .property("status", status_schema())
            .additional_properties(Some(
                utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
            ))
            .build(),
    )
}

fn split_array(nullable: bool) -> utoipa::openapi::Array {
    let mut array = ArrayBuilder::new()
        .items(RefOr::T(variant_schema()))
        .max_items(Some(MAX_VARIANTS))
        .description(Some(
            "An A/B split for visits no rule takes: two to eight variants whose weights sum \
             to 100, chosen per visitor (sticky).",
        ));
    if nullable {
        array = array.schema_type(SchemaType::from_iter([Type::Array, Type::Null]));
    }
    array.build()
}

/// `split` in the link JSON.
pub fn split_schema() -> utoipa::openapi::Array {
    split_array(false)
}

/// `split` in a create or a patch: `null` (or `[]`) is none.
pub fn split_input_schema() -> utoipa::openapi::Array {
    split_array(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(e: ApiError) -> String {
        match e {
            ApiError::BadRequest { details, .. } => details["field"].as_str().unwrap().to_owned(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_condition_reads_and_shows_back() {
        let value = json!([
            {"when": {"device": ["mobile", "tablet"], "os": ["ios"]}, "target": "https://a.example/app", "status": 302},
            {"when": {"country": ["DE"], "language": ["fr"]}, "target": "https://a.example/de"},
            {"when": {"query": {"name": "ref", "equals": "mail"}}, "target": "https://a.example/m"},
            {"when": {"from": "2026-12-24T00:00:00Z", "until": "2026-12-27T01:00:00+01:00"}, "target": "https://a.example/x"}
        ]);
        let rules = parse_rules(&value).unwrap();
        assert_eq!(rules[3].when.from, Some(1_798_070_400));
        assert_eq!(rules[3].when.until, Some(1_798_070_400 + 3 * 86_400));
        assert_eq!(rules[0].status, Some(RedirectStatus::Found));
        let shown = serde_json::to_value(rules_json(&rules)).unwrap();
        assert_eq!(shown[3]["when"]["until"], "2026-12-27T00:00:00Z");
        assert_eq!(shown[0]["when"]["device"], json!(["mobile", "tablet"]));
        assert_eq!(shown[1]["when"].as_object().unwrap().len(), 2);
    }

    #[test]
    fn shape_errors_name_their_place() {
        let cases = [
            (
                json!([{"when": {"planet": ["mars"]}, "target": "https://a.example/"}]),
                "rules[0].when",
            ),
            (
                json!([{"when": {"device": ["watch"]}, "target": "https://a.example/"}]),
                "rules[0].when.device",
            ),
            (
                json!([{"when": {"os": "ios"}, "target": "https://a.example/"}]),
                "rules[0].when.os",
            ),
            (
                json!([{"when": {"from": "2026-12-24T00:00:00.5Z"}, "target": "https://a.example/"}]),
                "rules[0].when.from",
            ),
            (
                json!([{"when": {"from": "yesterday"}, "target": "https://a.example/"}]),
                "rules[0].when.from",
            ),
            (
                json!([{"when": {"until": "9999-12-31T23:59:59-01:00"}, "target": "https://a.example/"}]),
                "rules[0].when.until",
            ),
            (
                json!([{"when": {"query": {"nam": "x"}}, "target": "https://a.example/"}]),
                "rules[0].when.query",
            ),
            (json!([{"when": {"os": ["ios"]}}]), "rules[0].target"),
            (
                json!([{"when": {"os": ["ios"]}, "target": "https://a.example/", "status": 200}]),
                "rules[0].status",
            ),
            (
                json!([{"when": {"os": ["ios"]}, "target": "https://a.example/", "x": 1}]),
                "rules[0]",
            ),
            (json!({"when": {}}), "rules"),
        ];
        for (value, expected) in cases {
            assert_eq!(field(parse_rules(&value).unwrap_err()), expected, "{value}");
        }
        let split = [
            (
                json!([{"target": "https://a.example/", "weight": 300}]),
                "split[0].weight",
            ),
            (json!([{"target": "https://a.example/"}]), "split[0].weight"),
            (json!([{"weight": 50}]), "split[0].target"),
            (json!(5), "split"),
        ];
        for (value, expected) in split {
            assert_eq!(field(parse_split(&value).unwrap_err()), expected, "{value}");
        }
    }

    #[test]
    fn validation_errors_keep_the_model_field() {
        let policy = crate::target::TargetPolicy::new("https://sho.rt", false);
        let mut hosts = Vec::new();
        let mut rules = parse_rules(&json!([
            {"when": {"os": ["ios"]}, "target": "https://a.example/"},
            {"when": {"country": ["XX1"]}, "target": "https://a.example/"}
        ]))
        .unwrap();
        let e = check_rules(&policy, &mut rules, &mut hosts).unwrap_err();
        assert!(
            e.to_string().starts_with("rules[1].when.country: \"XX1\""),
            "{e}"
        );
        assert_eq!(field(e), "rules[1].when.country");

        let mut rules = parse_rules(&json!([{"when": {}, "target": "ftp://x"}])).unwrap();
        assert_eq!(
            field(check_rules(&policy, &mut rules, &mut hosts).unwrap_err()),
            "rules[0].when"
        );
        let mut rules =
            parse_rules(&json!([{"when": {"os": ["ios"]}, "target": "http://127.0.0.1/"}]))
                .unwrap();
        assert_eq!(
            field(check_rules(&policy, &mut rules, &mut hosts).unwrap_err()),
            "rules[0].target"
        );
        let mut split = parse_split(&json!([
            {"target": "https://a.example/", "weight": 50},
            {"target": "https://b.example/", "weight": 40}
        ]))
        .unwrap();
        let e = check_split(&policy, &mut split, &mut hosts).unwrap_err();
        assert_eq!(e.to_string(), "split: weights sum to 90, not 100");
        let mut split = parse_split(&json!([
            {"target": "https://Bücher.example/", "weight": 50},
            {"target": "https://b.example/", "weight": 50}
        ]))
        .unwrap();
        let mut hosts = Vec::new();
        check_split(&policy, &mut split, &mut hosts).unwrap();
        assert_eq!(split[0].target, "https://xn--bcher-kva.example/");
        assert_eq!(hosts, ["xn--bcher-kva.example", "b.example"]);
    }
}

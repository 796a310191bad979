//! UTM parameters per link: `utm_source`, `utm_medium`, `utm_campaign`,
//! `utm_term` and `utm_content`, merged into the target control gives the
//! engines.
//!
//! **Where the merge happens.** In control only, when a link row becomes
//! the record engines serve ([`super::model::LinkRow::to_snapshot_link`]:
//! snapshot builds and outbox deltas alike). Engines receive one target
//! string as before, so they know nothing of UTM and a link without it
//! costs nothing more on the redirect path. The API keeps `target` as the
//! user wrote it and `utm` apart: editing either one never has to take the
//! other back out of a URL.
//!
//! **The merge** ([`merge`]): the target's query keeps every parameter as it
//! is (byte for byte, in order) except a parameter named like one the link
//! sets (`utm_source` when `utm.source` is set), which is removed; the
//! link's values follow at the end of the query, in the order source,
//! medium, campaign, term, content, percent-encoded (`form_urlencoded`'s
//! set, with a space as `%20`); the fragment stays after the query. A
//! parameter the link does not set stays as the target has it.
//!
//! **Checks.** Each value: at most [`MAX_LEN`] characters, no control
//! characters; empty (or only spaces) means none. The merged target must
//! still be a target snapshots accept (`snapshots::link::validate_target`:
//! at most 8 KiB, printable ASCII): otherwise the write is a 400 naming the
//! `utm.<field>` whose value takes it over ([`check_merged`]), so no link
//! row can hold a target engines would refuse.

use crate::error::{ApiError, ApiResult};
use serde::{Deserialize, Deserializer, Serialize};

/// Longest value, in characters (Unicode scalar values, as JSON Schema's
/// `maxLength` counts).
pub const MAX_LEN: usize = 200;

/// The five fields, in merge order, with their query parameter names.
pub const FIELDS: [(&str, &str); 5] = [
    ("source", "utm_source"),
    ("medium", "utm_medium"),
    ("campaign", "utm_campaign"),
    ("term", "utm_term"),
    ("content", "utm_content"),
];

/// A link's UTM values as stored (`links.utm_*`) and shown (`utm` in the
/// link JSON). Each `null` when not set.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema,
)]
pub struct Utm {
    /// `utm_source`: where the visit comes from (`newsletter`, `twitter`).
    #[sqlx(rename = "utm_source")]
    #[schema(max_length = 200)]
    pub source: Option<String>,
    /// `utm_medium`: the kind of channel (`email`, `social`, `cpc`).
    #[sqlx(rename = "utm_medium")]
    #[schema(max_length = 200)]
    pub medium: Option<String>,
    /// `utm_campaign`: the campaign's name.
    #[sqlx(rename = "utm_campaign")]
    #[schema(max_length = 200)]
    pub campaign: Option<String>,
    /// `utm_term`: a paid search's keywords.
    #[sqlx(rename = "utm_term")]
    #[schema(max_length = 200)]
    pub term: Option<String>,
    /// `utm_content`: which of several links or ads in one place.
    #[sqlx(rename = "utm_content")]
    #[schema(max_length = 200)]
    pub content: Option<String>,
}

impl Utm {
    /// No value set.
    pub fn is_empty(&self) -> bool {
        self.values().iter().all(|(_, v)| v.is_none())
    }

    /// `(query parameter, value)` of every field, in merge order.
    pub fn values(&self) -> [(&'static str, Option<&str>); 5] {
        [
            (FIELDS[0].1, self.source.as_deref()),
            (FIELDS[1].1, self.medium.as_deref()),
            (FIELDS[2].1, self.campaign.as_deref()),
            (FIELDS[3].1, self.term.as_deref()),
            (FIELDS[4].1, self.content.as_deref()),
        ]
    }

    fn slot(&mut self, i: usize) -> &mut Option<String> {
        match i {
            0 => &mut self.source,
            1 => &mut self.medium,
            2 => &mut self.campaign,
            3 => &mut self.term,
            _ => &mut self.content,
        }
    }

    /// `Some(self)` when a value is set, for the JSON (`utm: null` else).
    pub fn to_json(&self) -> Option<Utm> {
        (!self.is_empty()).then(|| self.clone())
    }
}

/// The `utm` object of a create or a patch. Each field: absent, the value,
/// or `""`/`null` (on a patch: clears that one; on a create: none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UtmInput {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, max_length = 200)]
    pub source: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, max_length = 200)]
    pub medium: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, max_length = 200)]
    pub campaign: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, max_length = 200)]
    pub term: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, max_length = 200)]
    pub content: Option<Option<String>>,
}

fn nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl UtmInput {
    fn given(&self) -> [&Option<Option<String>>; 5] {
        [
            &self.source,
            &self.medium,
            &self.campaign,
            &self.term,
            &self.content,
        ]
    }

    /// Checks every value given (the field named `utm.<field>` in the
    /// error): what a patch does to each field.
    pub fn check(&self) -> ApiResult<UtmPatch> {
        let mut patch = UtmPatch::default();
        for (i, given) in self.given().into_iter().enumerate() {
            patch.0[i] = match given {
                None => None,
                Some(None) => Some(None),
                Some(Some(v)) => Some(check_value(FIELDS[i].0, v)?),
            };
        }
        Ok(patch)
    }

    /// The values of a create: [`UtmInput::check`] applied to none.
    pub fn checked(&self) -> ApiResult<Utm> {
        let mut utm = Utm::default();
        self.check()?.apply(&mut utm);
        Ok(utm)
    }

    /// The first value that breaks the rules a schema states (length), as
    /// `(field, message)`: bulk requests refuse those whole.
    pub fn shape_error(&self) -> Option<(&'static str, String)> {
        self.given()
            .into_iter()
            .enumerate()
            .find_map(|(i, given)| match given {
                Some(Some(v)) if v.chars().count() > MAX_LEN => {
                    Some((FIELDS[i].0, format!("is longer than {MAX_LEN} characters")))
                }
                _ => None,
            })
    }
}

/// A checked `utm` of a patch, per field in [`FIELDS`] order: `None`
/// stays, `Some(None)` clears, `Some(Some(v))` sets. The default changes
/// nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UtmPatch([Option<Option<String>>; 5]);

impl UtmPatch {
    /// `"utm": null`: every value cleared.
    pub fn clear_all() -> UtmPatch {
        UtmPatch(std::array::from_fn(|_| Some(None)))
    }

    pub fn apply(self, utm: &mut Utm) {
        for (i, change) in self.0.into_iter().enumerate() {
            if let Some(value) = change {
                *utm.slot(i) = value;
            }
        }
    }
}

/// `utm.<field>`: how errors name a UTM field.
pub fn field_name(field: &str) -> String {
    format!("utm.{field}")
}

/// Checks one value: `None` when it is empty or only spaces (none), else
/// the value without surrounding spaces.
pub fn check_value(field: &str, value: &str) -> ApiResult<Option<String>> {
    let n = value.chars().count();
    if n > MAX_LEN {
        return Err(ApiError::invalid_field(
            &field_name(field),
            format!("{n} characters; the limit is {MAX_LEN}"),
        ));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(ApiError::invalid_field(
            &field_name(field),
            format!(
                "contains the control character U+{:04X}, which is not allowed",
                c as u32
            ),
        ));
    }
    let value = value.trim();
    Ok((!value.is_empty()).then(|| value.to_owned()))
}

/// One value as a query parameter's value: `form_urlencoded`'s set, a
/// space as `%20` rather than `+` (so every byte outside `A-Za-z0-9*-._`
/// is a percent escape).
fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// The target engines redirect to: `target` with `utm`'s values in its
/// query (see the module doc). A link without UTM values gets its target
/// unchanged, byte for byte.
pub fn merge(target: &str, utm: &Utm) -> String {
    if utm.is_empty() {
        return target.to_owned();
    }
    let (base, fragment) = match target.find('#') {
        Some(at) => target.split_at(at),
        None => (target, ""),
    };
    let (path, query) = match base.find('?') {
        Some(at) => (&base[..at], &base[at + 1..]),
        None => (base, ""),
    };
    let set: Vec<(&str, &str)> = utm
        .values()
        .into_iter()
        .filter_map(|(name, v)| v.map(|v| (name, v)))
        .collect();
    let mut out = String::with_capacity(target.len() + 64);
    out.push_str(path);
    let mut sep = '?';
    for piece in query.split('&').filter(|p| !p.is_empty()) {
        let key = url::form_urlencoded::parse(piece.as_bytes())
            .next()
            .map(|(k, _)| k.into_owned())
            .unwrap_or_default();
        if set.iter().any(|(name, _)| *name == key) {
            continue;
        }
        out.push(sep);
        out.push_str(piece);
        sep = '&';
    }
    for (name, value) in set {
        out.push(sep);
        out.push_str(name);
        out.push('=');
        out.push_str(&encode(value));
        sep = '&';
    }
    out.push_str(fragment);
    out
}

/// Fails with a 400 naming `utm.<field>` when `target` with `utm` merged is
/// not a target snapshots accept: the field whose value, added in merge
/// order, first takes it over.
pub fn check_merged(target: &str, utm: &Utm) -> ApiResult<()> {
    if utm.is_empty() || snapshots::link::validate_target(&merge(target, utm)).is_ok() {
        return Ok(());
    }
    let mut partial = Utm::default();
    let mut culprit = None;
    for i in 0..FIELDS.len() {
        let Some(value) = utm.values()[i].1 else {
            continue;
        };
        *partial.slot(i) = Some(value.to_owned());
        culprit = Some(i);
        if let Err(e) = snapshots::link::validate_target(&merge(target, &partial)) {
            return Err(merged_error(i, &e.to_string()));
        }
    }
    let i = culprit.unwrap_or(0);
    let e = snapshots::link::validate_target(&merge(target, utm))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    Err(merged_error(i, &e))
}

fn merged_error(i: usize, why: &str) -> ApiError {
    ApiError::invalid_field(
        &field_name(FIELDS[i].0),
        format!("the target with the UTM parameters merged is refused: {why}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utm(source: &str, medium: &str) -> Utm {
        Utm {
            source: (!source.is_empty()).then(|| source.to_owned()),
            medium: (!medium.is_empty()).then(|| medium.to_owned()),
            ..Utm::default()
        }
    }

    #[test]
    fn no_values_leave_the_target_byte_for_byte() {
        for t in ["https://a.example/", "https://a.example/p?x=a+b&&y#f?g"] {
            assert_eq!(merge(t, &Utm::default()), t);
        }
    }

    #[test]
    fn values_go_at_the_end_of_the_query_in_order() {
        let all = Utm {
            source: Some("news".into()),
            medium: Some("email".into()),
            campaign: Some("spring".into()),
            term: Some("shoes".into()),
            content: Some("top".into()),
        };
        assert_eq!(
            merge("https://a.example/p", &all),
            "https://a.example/p?utm_source=news&utm_medium=email&utm_campaign=spring&utm_term=shoes&utm_content=top"
        );
        assert_eq!(
            merge("https://a.example/p?x=1", &utm("", "email")),
            "https://a.example/p?x=1&utm_medium=email"
        );
        // An empty query (`?` alone) gets no `&` before the first value.
        assert_eq!(
            merge("https://a.example/?", &utm("s", "")),
            "https://a.example/?utm_source=s"
        );
    }

    #[test]
    fn a_same_named_parameter_is_replaced_and_others_stay_as_they_are() {
        assert_eq!(
            merge(
                "https://a.example/p?utm_source=old&a=b%20c&utm_source=older&flag&utm_medium=kept",
                &utm("new", "")
            ),
            "https://a.example/p?a=b%20c&flag&utm_medium=kept&utm_source=new"
        );
        // Compared decoded: an escaped name is the same parameter.
        assert_eq!(
            merge("https://a.example/?utm%5Fsource=x", &utm("y", "")),
            "https://a.example/?utm_source=y"
        );
        // Only exact names: `UTM_SOURCE` and `utm_sourcex` stay.
        assert_eq!(
            merge(
                "https://a.example/?UTM_SOURCE=x&utm_sourcex=1",
                &utm("y", "")
            ),
            "https://a.example/?UTM_SOURCE=x&utm_sourcex=1&utm_source=y"
        );
    }

    #[test]
    fn the_fragment_stays_after_the_query() {
        assert_eq!(
            merge("https://a.example/p#sec", &utm("s", "m")),
            "https://a.example/p?utm_source=s&utm_medium=m#sec"
        );
        assert_eq!(
            merge("https://a.example/p?x=1#sec?not=query", &utm("s", "")),
            "https://a.example/p?x=1&utm_source=s#sec?not=query"
        );
    }

    #[test]
    fn values_are_percent_encoded() {
        assert_eq!(
            merge("https://a.example/", &utm("a b&c=d#e+f/ü", "")),
            "https://a.example/?utm_source=a%20b%26c%3Dd%23e%2Bf%2F%C3%BC"
        );
        let merged = merge("https://a.example/", &utm("日本 語", "x?y"));
        assert!(
            snapshots::link::validate_target(&merged).is_ok(),
            "{merged}"
        );
        assert_eq!(
            merged,
            "https://a.example/?utm_source=%E6%97%A5%E6%9C%AC%20%E8%AA%9E&utm_medium=x%3Fy"
        );
    }

    #[test]
    fn value_checks() {
        assert_eq!(check_value("source", "  x ").unwrap().as_deref(), Some("x"));
        assert_eq!(check_value("source", "").unwrap(), None);
        assert_eq!(check_value("source", "   ").unwrap(), None);
        assert!(check_value("source", &"é".repeat(200)).unwrap().is_some());
        let e = check_value("term", &"é".repeat(201)).unwrap_err();
        assert!(e.to_string().starts_with("utm.term:"), "{e}");
        let e = check_value("medium", "a\u{7}b").unwrap_err();
        assert!(e.to_string().contains("U+0007"), "{e}");
    }

    #[test]
    fn input_sets_clears_and_keeps() {
        let mut stored = utm("s", "m");
        stored.term = Some("t".into());
        let input: UtmInput =
            serde_json::from_str(r#"{"source": "", "campaign": "c", "term": null}"#).unwrap();
        input.check().unwrap().apply(&mut stored);
        assert_eq!(
            stored,
            Utm {
                medium: Some("m".into()),
                campaign: Some("c".into()),
                ..Utm::default()
            }
        );
        assert!(serde_json::from_str::<UtmInput>(r#"{"sauce": "x"}"#).is_err());
        assert!(UtmInput::default().checked().unwrap().is_empty());
        UtmPatch::clear_all().apply(&mut stored);
        assert!(stored.is_empty());
        let bad: UtmInput = serde_json::from_str(r#"{"content": "a\u0000"}"#).unwrap();
        let e = bad.check().unwrap_err().to_string();
        assert!(e.starts_with("utm.content:"), "{e}");
    }

    #[test]
    fn a_merge_past_the_target_limit_names_its_field() {
        let max = snapshots::link::MAX_TARGET_LEN;
        let target = format!("https://a.example/{}", "x".repeat(max - 200));
        let ok = utm("short", "");
        assert!(check_merged(&target, &ok).is_ok());
        // Each value fits; together with the target, the medium's does not.
        let long = Utm {
            source: Some("s".into()),
            medium: Some("ü".repeat(200)),
            ..Utm::default()
        };
        let e = check_merged(&target, &long).unwrap_err();
        assert!(e.to_string().starts_with("utm.medium:"), "{e}");
        match e {
            ApiError::BadRequest { details, .. } => assert_eq!(details["field"], "utm.medium"),
            other => panic!("{other:?}"),
        }
    }
}

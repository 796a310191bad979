//! Redirect rules and A/B splits: the owned records (API, deltas, snapshot
//! input), their validation, and the compact archived form the snapshot and
//! the engine's delta map hold.
//!
//! A link may carry an ordered list of [`Rule`]s, each a set of conditions
//! (all must hold) and its own target, and a [`Variant`] split whose weights
//! sum to 100. An engine serves the first rule that matches, else a variant
//! chosen by a hash of the visitor, else the link's target. Links without
//! either keep the layout and lookup path they had before (format 5 keeps
//! rules in their own map, found through [`crate::archive::FLAG_RULES`]).
//!
//! The archived form ([`RulesValue`]) trades the owned form's enums and
//! strings for bit masks and fixed arrays, so an engine evaluates it in place
//! without allocating. Converting back ([`RulesValue::to_owned_rules`]) is
//! how the snapshot reader re-checks a file's rules with the same
//! [`validate_rules`] the writers use.

use crate::link::{LinkError, RedirectStatus, validate_target};
use rkyv::rancor;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Serialize as RkyvSerialize};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Most rules a link may have.
pub const MAX_RULES: usize = 16;
/// Most variants a split may have.
pub const MAX_VARIANTS: usize = 8;
/// Most values in one list condition (languages, countries).
pub const MAX_VALUES: usize = 32;
/// Longest query parameter name a condition names, in bytes.
pub const MAX_QUERY_NAME: usize = 128;
/// Longest query parameter value a condition compares, in bytes.
pub const MAX_QUERY_VALUE: usize = 512;
/// The `rule` a click records for the variant at index `i` of a split is
/// `VARIANT_RULE_BASE + i`; a rule at index `i` records `i + 1`; 0 is the
/// link's own target.
pub const VARIANT_RULE_BASE: u8 = 100;

/// A device class, as the engine reads it from the user agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    Desktop,
    Mobile,
    Tablet,
}

impl Device {
    /// Every device class, in bit order.
    pub const ALL: [Device; 3] = [Device::Desktop, Device::Mobile, Device::Tablet];

    /// This class's bit in [`RuleValue::devices`].
    pub const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// An operating system family, as the engine reads it from the user agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Os {
    Ios,
    Android,
    Windows,
    Macos,
    Linux,
    Chromeos,
}

impl Os {
    /// Every family, in bit order.
    pub const ALL: [Os; 6] = [
        Os::Ios,
        Os::Android,
        Os::Windows,
        Os::Macos,
        Os::Linux,
        Os::Chromeos,
    ];

    /// This family's bit in [`RuleValue::os`].
    pub const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A query parameter condition: present (`equals` absent) or equal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryCondition {
    /// The parameter's name, as it reads once percent-decoded.
    pub name: String,
    /// The value it must have once percent-decoded (`+` reads as a space);
    /// absent: any value, or none (`?ref`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<String>,
}

/// What a rule asks of a visit; every condition given must hold, and a list
/// holds when any of its values does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device: Vec<Device>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub os: Vec<Os>,
    /// Primary language subtags (`en`, `fr`, `gsw`), lower case, matched
    /// against the visitor's preferred language (Accept-Language).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub language: Vec<String>,
    /// ISO 3166-1 alpha-2 codes in capitals, matched against the country of
    /// the visitor's address (GeoIP on the engine).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub country: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<QueryCondition>,
    /// Unix seconds from which the rule holds (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<i64>,
    /// Unix seconds until which the rule holds (exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
}

impl Conditions {
    /// Whether no condition is given (such a rule is refused).
    pub fn is_empty(&self) -> bool {
        self.device.is_empty()
            && self.os.is_empty()
            && self.language.is_empty()
            && self.country.is_empty()
            && self.query.is_none()
            && self.from.is_none()
            && self.until.is_none()
    }
}

/// One rule: conditions and where a visit that meets them goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub when: Conditions,
    /// Same checks as a link's target.
    pub target: String,
    /// The status served for this rule; absent: the link's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RedirectStatus>,
}

/// One arm of an A/B split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub target: String,
    /// Percent of visitors, 1 to 100; a split's weights sum to 100.
    pub weight: u8,
    /// The status served for this variant; absent: the link's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RedirectStatus>,
}

/// Why a link's rules or split were refused; the message names the place
/// (`rules[2].when.country`) as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RulesError {
    #[error("rules: {count} rules; the limit is {MAX_RULES}")]
    TooManyRules { count: usize },
    #[error("split: {count} variants; the limit is {MAX_VARIANTS}")]
    TooManyVariants { count: usize },
    #[error(
        "rules[{index}].when: no condition (a rule that always matches would hide the rules after it and the link's target)"
    )]
    NoCondition { index: usize },
    #[error("rules[{index}].when.{field}: {reason}")]
    Condition {
        index: usize,
        field: &'static str,
        reason: String,
    },
    #[error("rules[{index}].target: {reason}")]
    RuleTarget {
        index: usize,
        reason: Box<LinkError>,
    },
    #[error("split[{index}].target: {reason}")]
    VariantTarget {
        index: usize,
        reason: Box<LinkError>,
    },
    #[error("split[{index}].weight: {weight} is not from 1 to 100")]
    Weight { index: usize, weight: u8 },
    #[error("split: weights sum to {sum}, not 100")]
    WeightSum { sum: u32 },
    #[error("split: a single variant is the link's target; give two or more")]
    SingleVariant,
}

impl RulesError {
    /// The place in a link's JSON the error is about (`rules[2].when.country`).
    pub fn field(&self) -> String {
        match self {
            RulesError::TooManyRules { .. } => "rules".into(),
            RulesError::NoCondition { index } => format!("rules[{index}].when"),
            RulesError::Condition { index, field, .. } => format!("rules[{index}].when.{field}"),
            RulesError::RuleTarget { index, .. } => format!("rules[{index}].target"),
            RulesError::VariantTarget { index, .. } => format!("split[{index}].target"),
            RulesError::Weight { index, .. } => format!("split[{index}].weight"),
            RulesError::TooManyVariants { .. }
            | RulesError::WeightSum { .. }
            | RulesError::SingleVariant => "split".into(),
        }
    }
}

/// Checks a link's rules and split (empty lists are valid: none).
pub fn validate_rules(rules: &[Rule], split: &[Variant]) -> Result<(), RulesError> {
    if rules.len() > MAX_RULES {
        return Err(RulesError::TooManyRules { count: rules.len() });
    }
    for (index, rule) in rules.iter().enumerate() {
        validate_conditions(index, &rule.when)?;
        validate_target(&rule.target).map_err(|reason| RulesError::RuleTarget {
            index,
            reason: Box::new(reason),
        })?;
    }
    if split.is_empty() {
        return Ok(());
    }
    if split.len() > MAX_VARIANTS {
        return Err(RulesError::TooManyVariants { count: split.len() });
    }
    if split.len() == 1 {
        return Err(RulesError::SingleVariant);
    }
    let mut sum = 0u32;
    for (index, variant) in split.iter().enumerate() {
        if !(1..=100).contains(&variant.weight) {
            return Err(RulesError::Weight {
                index,
                weight: variant.weight,
            });
        }
        sum += u32::from(variant.weight);
        validate_target(&variant.target).map_err(|reason| RulesError::VariantTarget {
            index,
            reason: Box::new(reason),
        })?;
    }
    if sum != 100 {
        return Err(RulesError::WeightSum { sum });
    }
    Ok(())
}

fn validate_conditions(index: usize, when: &Conditions) -> Result<(), RulesError> {
    let bad = |field: &'static str, reason: String| RulesError::Condition {
        index,
        field,
        reason,
    };
    if when.is_empty() {
        return Err(RulesError::NoCondition { index });
    }
    for (field, len) in [
        ("device", when.device.len()),
        ("os", when.os.len()),
        ("language", when.language.len()),
        ("country", when.country.len()),
    ] {
        if len > MAX_VALUES {
            return Err(bad(
                field,
                format!("{len} values; the limit is {MAX_VALUES}"),
            ));
        }
    }
    for language in &when.language {
        let ok =
            (2..=3).contains(&language.len()) && language.bytes().all(|b| b.is_ascii_lowercase());
        if !ok {
            return Err(bad(
                "language",
                format!(
                    "{language:?} is not a primary language subtag (2 or 3 lower-case letters, e.g. \"en\")"
                ),
            ));
        }
    }
    for country in &when.country {
        let ok = country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase());
        if !ok {
            return Err(bad(
                "country",
                format!(
                    "{country:?} is not an ISO 3166-1 alpha-2 country code (two capitals, e.g. \"DE\")"
                ),
            ));
        }
    }
    if let Some(query) = &when.query {
        let name = query.name.as_bytes();
        if name.is_empty() || name.len() > MAX_QUERY_NAME {
            return Err(bad(
                "query.name",
                format!("must be 1 to {MAX_QUERY_NAME} bytes"),
            ));
        }
        if let Some(position) = name.iter().position(|&b| !query_byte(b) || b == b'=') {
            return Err(bad(
                "query.name",
                format!(
                    "byte 0x{:02x} at position {position} is not allowed (printable ASCII without space, '&', '=', '#')",
                    name[position]
                ),
            ));
        }
        if let Some(value) = &query.equals {
            let value = value.as_bytes();
            if value.len() > MAX_QUERY_VALUE {
                return Err(bad(
                    "query.equals",
                    format!("{} bytes; the limit is {MAX_QUERY_VALUE}", value.len()),
                ));
            }
            if let Some(position) = value.iter().position(|&b| !query_byte(b) && b != b' ') {
                return Err(bad(
                    "query.equals",
                    format!(
                        "byte 0x{:02x} at position {position} is not allowed (printable ASCII without '&' and '#')",
                        value[position]
                    ),
                ));
            }
        }
    }
    for (field, at) in [("from", when.from), ("until", when.until)] {
        if let Some(at) = at
            && at <= 0
        {
            return Err(bad(field, format!("{at} is not a positive unix time")));
        }
    }
    if let (Some(from), Some(until)) = (when.from, when.until)
        && from >= until
    {
        return Err(bad("until", format!("{until} is not after from {from}")));
    }
    Ok(())
}

/// Bytes a query condition's name or value may hold, as decoded: printable
/// ASCII except the separators `&` and `#` (and the space, which only a
/// value may hold, written `+` or `%20` in a URL).
fn query_byte(byte: u8) -> bool {
    byte.is_ascii_graphic() && byte != b'&' && byte != b'#'
}

// ---------------------------------------------------------------------------
// The archived form.

/// A rule as the snapshot and the engine hold it.
#[derive(Archive, RkyvSerialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct RuleValue {
    /// Unix seconds; 0: no lower bound.
    pub from: i64,
    /// Unix seconds; 0: no upper bound.
    pub until: i64,
    /// The redirect status served (the link's when the rule gives none).
    pub status: u16,
    /// [`Device::bit`]s; 0: any device.
    pub devices: u8,
    /// [`Os::bit`]s; 0: any system.
    pub os: u8,
    /// 0: no query condition; 1: the parameter is present; 2: it equals
    /// `query_value`.
    pub query: u8,
    /// Primary subtags, zero-padded to three bytes (`en\0`).
    pub languages: Vec<[u8; 3]>,
    pub countries: Vec<[u8; 2]>,
    pub query_name: String,
    pub query_value: String,
    pub target: String,
}

/// A split's variant as the snapshot and the engine hold it.
#[derive(Archive, RkyvSerialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct VariantValue {
    pub status: u16,
    pub weight: u8,
    pub target: String,
}

/// A link's rules and split, archived.
#[derive(Archive, RkyvSerialize, Debug, Clone, PartialEq, Eq, Default)]
#[rkyv(derive(Debug))]
pub struct RulesValue {
    pub rules: Vec<RuleValue>,
    pub split: Vec<VariantValue>,
}

/// [`RuleValue::query`]: no query condition.
pub const QUERY_NONE: u8 = 0;
/// [`RuleValue::query`]: the parameter is present.
pub const QUERY_PRESENT: u8 = 1;
/// [`RuleValue::query`]: the parameter equals `query_value`.
pub const QUERY_EQUALS: u8 = 2;

impl RulesValue {
    /// The archived form of valid rules; `status`: the link's, for rules and
    /// variants that give none.
    pub fn new(rules: &[Rule], split: &[Variant], status: RedirectStatus) -> Self {
        let status_of = |own: Option<RedirectStatus>| own.unwrap_or(status).code();
        RulesValue {
            rules: rules
                .iter()
                .map(|rule| {
                    let when = &rule.when;
                    let (query, query_name, query_value) = match &when.query {
                        None => (QUERY_NONE, String::new(), String::new()),
                        Some(QueryCondition { name, equals: None }) => {
                            (QUERY_PRESENT, name.clone(), String::new())
                        }
                        Some(QueryCondition {
                            name,
                            equals: Some(value),
                        }) => (QUERY_EQUALS, name.clone(), value.clone()),
                    };
                    RuleValue {
                        from: when.from.unwrap_or(0),
                        until: when.until.unwrap_or(0),
                        status: status_of(rule.status),
                        devices: when.device.iter().fold(0, |bits, d| bits | d.bit()),
                        os: when.os.iter().fold(0, |bits, o| bits | o.bit()),
                        query,
                        languages: when
                            .language
                            .iter()
                            .map(|language| {
                                let mut code = [0u8; 3];
                                let bytes = language.as_bytes();
                                let len = bytes.len().min(3);
                                code[..len].copy_from_slice(&bytes[..len]);
                                code
                            })
                            .collect(),
                        countries: when
                            .country
                            .iter()
                            .map(|country| {
                                let bytes = country.as_bytes();
                                [
                                    bytes.first().copied().unwrap_or(0),
                                    bytes.get(1).copied().unwrap_or(0),
                                ]
                            })
                            .collect(),
                        query_name,
                        query_value,
                        target: rule.target.clone(),
                    }
                })
                .collect(),
            split: split
                .iter()
                .map(|variant| VariantValue {
                    status: status_of(variant.status),
                    weight: variant.weight,
                    target: variant.target.clone(),
                })
                .collect(),
        }
    }

    /// The archived bytes, for the engine's delta map (aligned for
    /// [`access_rules`]).
    pub fn to_bytes(&self) -> AlignedVec {
        rkyv::to_bytes::<rancor::Error>(self).expect("archiving rules into memory cannot fail")
    }
}

/// The archived rules in `bytes` from [`RulesValue::to_bytes`], checked.
pub fn access_rules(bytes: &[u8]) -> Result<&ArchivedRulesValue, rancor::Error> {
    rkyv::access::<ArchivedRulesValue, rancor::Error>(bytes)
}

/// A link's rules archived in memory, for a process that holds them outside
/// a snapshot (the engine's delta map): made once, read in place as often
/// as needed without checking again.
#[derive(Debug)]
pub struct RulesBytes(AlignedVec);

impl RulesBytes {
    /// Archives valid rules; `status`: the link's.
    pub fn new(rules: &[Rule], split: &[Variant], status: RedirectStatus) -> Self {
        RulesBytes(RulesValue::new(rules, split, status).to_bytes())
    }

    /// The archived rules.
    #[inline]
    pub fn get(&self) -> &ArchivedRulesValue {
        // SAFETY: the bytes were written by `RulesValue::to_bytes` in `new`
        // and are never changed, so they hold a valid archived root.
        unsafe { rkyv::access_unchecked::<ArchivedRulesValue>(&self.0) }
    }
}

/// Why archived rules do not read back as valid owned ones.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ArchivedRulesError {
    #[error("{0}")]
    Rules(#[from] RulesError),
    #[error("rules[{index}]: status {status} is not a redirect status")]
    RuleStatus { index: usize, status: u16 },
    #[error("split[{index}]: status {status} is not a redirect status")]
    VariantStatus { index: usize, status: u16 },
    #[error("rules[{index}]: unknown bits 0x{bits:02x} in {field}")]
    Bits {
        index: usize,
        field: &'static str,
        bits: u8,
    },
}

impl ArchivedRulesValue {
    /// The owned rules and split these were made from (allocates; for the
    /// snapshot reader's checks and for tools), checked with
    /// [`validate_rules`].
    pub fn to_owned_rules(&self) -> Result<(Vec<Rule>, Vec<Variant>), ArchivedRulesError> {
        let status = |code: u16| RedirectStatus::try_from(code).ok();
        let mut rules = Vec::with_capacity(self.rules.len());
        for (index, rule) in self.rules.iter().enumerate() {
            let devices: Vec<Device> = Device::ALL
                .into_iter()
                .filter(|d| rule.devices & d.bit() != 0)
                .collect();
            let known_devices = Device::ALL.iter().fold(0, |bits, d| bits | d.bit());
            if rule.devices & !known_devices != 0 {
                return Err(ArchivedRulesError::Bits {
                    index,
                    field: "devices",
                    bits: rule.devices,
                });
            }
            let known_os = Os::ALL.iter().fold(0, |bits, o| bits | o.bit());
            if rule.os & !known_os != 0 {
                return Err(ArchivedRulesError::Bits {
                    index,
                    field: "os",
                    bits: rule.os,
                });
            }
            let query = match rule.query {
                QUERY_NONE => None,
                QUERY_PRESENT => Some(QueryCondition {
                    name: rule.query_name.to_string(),
                    equals: None,
                }),
                QUERY_EQUALS => Some(QueryCondition {
                    name: rule.query_name.to_string(),
                    equals: Some(rule.query_value.to_string()),
                }),
                bits => {
                    return Err(ArchivedRulesError::Bits {
                        index,
                        field: "query",
                        bits,
                    });
                }
            };
            let code = rule.status.to_native();
            let Some(own_status) = status(code) else {
                return Err(ArchivedRulesError::RuleStatus {
                    index,
                    status: code,
                });
            };
            let nonzero = |at: i64| (at != 0).then_some(at);
            rules.push(Rule {
                when: Conditions {
                    device: devices,
                    os: Os::ALL
                        .into_iter()
                        .filter(|o| rule.os & o.bit() != 0)
                        .collect(),
                    language: rule
                        .languages
                        .iter()
                        .map(|code| {
                            let len = code.iter().position(|&b| b == 0).unwrap_or(3);
                            String::from_utf8_lossy(&code[..len]).into_owned()
                        })
                        .collect(),
                    country: rule
                        .countries
                        .iter()
                        .map(|code| String::from_utf8_lossy(code).into_owned())
                        .collect(),
                    query,
                    from: nonzero(rule.from.to_native()),
                    until: nonzero(rule.until.to_native()),
                },
                target: rule.target.to_string(),
                status: Some(own_status),
            });
        }
        let mut split = Vec::with_capacity(self.split.len());
        for (index, variant) in self.split.iter().enumerate() {
            let code = variant.status.to_native();
            let Some(own_status) = status(code) else {
                return Err(ArchivedRulesError::VariantStatus {
                    index,
                    status: code,
                });
            };
            split.push(Variant {
                target: variant.target.to_string(),
                weight: variant.weight,
                status: Some(own_status),
            });
        }
        validate_rules(&rules, &split)?;
        Ok((rules, split))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(when: Conditions) -> Rule {
        Rule {
            when,
            target: "https://brand.example/r".into(),
            status: None,
        }
    }

    fn variant(weight: u8) -> Variant {
        Variant {
            target: "https://brand.example/v".into(),
            weight,
            status: None,
        }
    }

    fn every_kind() -> Vec<Rule> {
        vec![
            rule(Conditions {
                device: vec![Device::Mobile, Device::Tablet],
                os: vec![Os::Ios],
                ..Conditions::default()
            }),
            rule(Conditions {
                country: vec!["DE".into(), "AT".into()],
                ..Conditions::default()
            }),
            rule(Conditions {
                language: vec!["fr".into(), "gsw".into()],
                ..Conditions::default()
            }),
            rule(Conditions {
                query: Some(QueryCondition {
                    name: "ref".into(),
                    equals: Some("mail list".into()),
                }),
                ..Conditions::default()
            }),
            rule(Conditions {
                query: Some(QueryCondition {
                    name: "promo".into(),
                    equals: None,
                }),
                from: Some(100),
                until: Some(200),
                ..Conditions::default()
            }),
        ]
    }

    #[test]
    fn every_kind_round_trips_through_the_archive() {
        let rules = every_kind();
        let split = vec![variant(30), variant(70)];
        validate_rules(&rules, &split).unwrap();
        let bytes = RulesValue::new(&rules, &split, RedirectStatus::Found).to_bytes();
        let archived = access_rules(&bytes).unwrap();
        let (back, back_split) = archived.to_owned_rules().unwrap();
        // Statuses come back resolved to the link's.
        let resolved: Vec<Rule> = rules
            .into_iter()
            .map(|r| Rule {
                status: Some(RedirectStatus::Found),
                ..r
            })
            .collect();
        assert_eq!(back, resolved);
        assert_eq!(back_split[1].weight, 70);
        assert_eq!(back_split[0].status, Some(RedirectStatus::Found));
    }

    #[test]
    fn refusals_name_the_place() {
        let country = rule(Conditions {
            country: vec!["DE".into(), "XX1".into()],
            ..Conditions::default()
        });
        let error = validate_rules(&[every_kind()[0].clone(), country], &[]).unwrap_err();
        assert_eq!(error.field(), "rules[1].when.country");
        assert!(error.to_string().contains("\"XX1\""), "{error}");

        let error = validate_rules(&[rule(Conditions::default())], &[]).unwrap_err();
        assert_eq!(error, RulesError::NoCondition { index: 0 });

        let language = rule(Conditions {
            language: vec!["EN".into()],
            ..Conditions::default()
        });
        assert_eq!(
            validate_rules(&[language], &[]).unwrap_err().field(),
            "rules[0].when.language"
        );

        let window = rule(Conditions {
            from: Some(200),
            until: Some(200),
            ..Conditions::default()
        });
        assert_eq!(
            validate_rules(&[window], &[]).unwrap_err().field(),
            "rules[0].when.until"
        );

        let mut bad_target = every_kind()[0].clone();
        bad_target.target = "ftp://x".into();
        assert_eq!(
            validate_rules(&[bad_target], &[]).unwrap_err().field(),
            "rules[0].target"
        );

        let query = rule(Conditions {
            query: Some(QueryCondition {
                name: "a&b".into(),
                equals: None,
            }),
            ..Conditions::default()
        });
        assert_eq!(
            validate_rules(&[query], &[]).unwrap_err().field(),
            "rules[0].when.query.name"
        );

        assert_eq!(
            validate_rules(&[], &[variant(50), variant(40)]).unwrap_err(),
            RulesError::WeightSum { sum: 90 }
        );
        assert_eq!(
            validate_rules(&[], &[variant(0), variant(100)])
                .unwrap_err()
                .field(),
            "split[0].weight"
        );
        assert_eq!(
            validate_rules(&[], &[variant(100)]).unwrap_err(),
            RulesError::SingleVariant
        );
        let many = vec![every_kind()[0].clone(); MAX_RULES + 1];
        assert_eq!(validate_rules(&many, &[]).unwrap_err().field(), "rules");
    }

    #[test]
    fn unknown_condition_is_refused_by_the_json() {
        let error = serde_json::from_str::<Rule>(
            r#"{"when": {"planet": ["mars"]}, "target": "https://x.example/"}"#,
        )
        .unwrap_err();
        assert!(error.to_string().contains("planet"), "{error}");
        let error = serde_json::from_str::<Rule>(
            r#"{"when": {"device": ["watch"]}, "target": "https://x.example/"}"#,
        )
        .unwrap_err();
        assert!(error.to_string().contains("watch"), "{error}");
    }
}

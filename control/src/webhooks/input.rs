//! What a client sends to create or change an endpoint, and its checks
//! (each refusal a 400 naming the field).

use super::EVENT_TYPES;
use crate::error::{ApiError, ApiResult};
use serde::Deserialize;

/// Most endpoints an organization may have.
pub const MAX_ENDPOINTS: i64 = 20;

/// `POST /v1/webhooks`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where deliveries are POSTed: https, on a public host.
    #[schema(max_length = 2048)]
    pub url: String,
    /// One or more of `link.created`, `link.updated`, `link.deleted`,
    /// `link.clicked`.
    #[schema(schema_with = events_schema)]
    pub events: Vec<String>,
    /// Whether deliveries are sent (default true). An inactive endpoint gets
    /// no new deliveries; ones already queued wait until it is active again.
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// `PATCH /v1/webhooks/{id}`: the fields to change.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchWebhook {
    #[schema(max_length = 2048)]
    pub url: Option<String>,
    #[schema(schema_with = events_schema)]
    pub events: Option<Vec<String>>,
    pub active: Option<bool>,
}

/// A non-empty list of event types.
fn events_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(EVENT_TYPES)),
        )
        .min_items(Some(1))
        .unique_items(true)
        .build()
}

/// The events, checked, in the documented order without repeats.
pub fn check_events(events: &[String]) -> ApiResult<Vec<String>> {
    if events.is_empty() {
        return Err(ApiError::invalid_field(
            "events",
            format!("is empty; name one or more of {}", EVENT_TYPES.join(", ")),
        ));
    }
    for e in events {
        if !EVENT_TYPES.contains(&e.as_str()) {
            return Err(ApiError::invalid_field(
                "events",
                format!(
                    "{:?} is not an event type; they are {}",
                    e.chars().take(64).collect::<String>(),
                    EVENT_TYPES.join(", ")
                ),
            ));
        }
    }
    Ok(EVENT_TYPES
        .iter()
        .filter(|t| events.iter().any(|e| e == *t))
        .map(|t| t.to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_checked_and_ordered() {
        let ok = check_events(&[
            "link.deleted".into(),
            "link.created".into(),
            "link.deleted".into(),
        ])
        .unwrap();
        assert_eq!(ok, ["link.created", "link.deleted"]);
        for bad in [vec![], vec!["link.exploded".to_string()]] {
            let e = check_events(&bad).unwrap_err();
            assert!(e.to_string().starts_with("events: "), "{e}");
        }
    }
}

//! Forms: the extractor, the link form's fields and how an API error lands
//! beside the field it is about.

use crate::dashboard::error::PageError;
use crate::error::ApiError;
use crate::links::input::{CreateLink, PatchLink};
use crate::links::model::LinkRow;
use crate::links::utm::UtmInput;
use axum::extract::{Form, FromRequest, Request};
use maud::{Markup, html};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// A form body (`application/x-www-form-urlencoded`); a body that is not
/// one is a 400 page.
#[derive(Debug)]
pub struct PageForm<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for PageForm<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, PageError> {
        Form::<T>::from_request(req, state)
            .await
            .map(|Form(v)| PageForm(v))
            .map_err(|r| PageError::Api(ApiError::bad_request(r.body_text())))
    }
}

/// An error to show in a form: beside `field`, or above the form.
#[derive(Debug, Clone)]
pub struct FormError {
    pub field: Option<String>,
    pub message: String,
}

impl FormError {
    /// Which field an API error is about, if it is about one the form has.
    pub fn from_api(e: &ApiError) -> FormError {
        let field = match e {
            // `utm.source` is the form's `utm_source`.
            ApiError::BadRequest { details, .. } => details
                .get("field")
                .and_then(|f| f.as_str())
                .map(|f| match f.strip_prefix("utm.") {
                    Some(name) => format!("utm_{name}"),
                    // `rules[1].when.country` is about the form's `rules`
                    // (the message names the place).
                    None if f == "rules" || f.starts_with("rules[") => "rules".into(),
                    None if f == "split" || f.starts_with("split[") => "split".into(),
                    None => f.to_owned(),
                }),
            ApiError::InvalidUrl(_) | ApiError::BlockedHost { .. } => Some("target".into()),
            ApiError::AliasTaken { .. } => Some("custom_alias".into()),
            ApiError::DomainExists { .. } | ApiError::DomainTaken { .. } => Some("name".into()),
            _ => None,
        };
        FormError {
            field,
            message: e.to_string(),
        }
    }

    pub fn field(field: &str, message: impl Into<String>) -> FormError {
        FormError {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// Whether a failed write should show the form again (the request's
    /// fault, fixable in the form) rather than an error page.
    pub fn shows_in_form(e: &ApiError) -> bool {
        matches!(
            e,
            ApiError::BadRequest { .. }
                | ApiError::InvalidUrl(_)
                | ApiError::BlockedHost { .. }
                | ApiError::AliasTaken { .. }
                | ApiError::DomainExists { .. }
                | ApiError::DomainTaken { .. }
                | ApiError::PreconditionFailed { .. }
                | ApiError::Conflict(_)
                | ApiError::RoleNotAllowed(_)
                | ApiError::LastOwner
        )
    }
}

/// The message for `name`, if the error is about it.
pub fn error_for<'a>(error: Option<&'a FormError>, name: &str) -> Option<&'a str> {
    error
        .filter(|e| e.field.as_deref() == Some(name))
        .map(|e| e.message.as_str())
}

/// The error above the form: one about no field of it.
pub fn form_level(error: Option<&FormError>, fields: &[&str]) -> Markup {
    html! {
        @if let Some(e) = error.filter(|e| e.field.as_deref().is_none_or(|f| !fields.contains(&f))) {
            p.form-error role="alert" { (e.message) }
        }
    }
}

/// A labelled text input with its error beneath.
pub fn text_field(
    name: &str,
    label: &str,
    kind: &str,
    value: &str,
    hint: Option<&str>,
    error: Option<&FormError>,
) -> Markup {
    let err = error_for(error, name);
    html! {
        div.field {
            label for=(name) { (label) }
            input #(name) type=(kind) name=(name) value=(value) .invalid[err.is_some()]
                aria-invalid=[err.map(|_| "true")];
            @if let Some(h) = hint { div.hint { (h) } }
            @if let Some(m) = err { div.error id=(format!("{name}-error")) { (m) } }
        }
    }
}

/// A labelled text area (JSON), with its error beneath.
pub fn text_area(
    name: &str,
    label: &str,
    value: &str,
    hint: Option<&str>,
    error: Option<&FormError>,
) -> Markup {
    let err = error_for(error, name);
    html! {
        div.field {
            label for=(name) { (label) }
            textarea #(name) name=(name) rows="6" spellcheck="false" .invalid[err.is_some()]
                aria-invalid=[err.map(|_| "true")] { (value) }
            @if let Some(h) = hint { div.hint { (h) } }
            @if let Some(m) = err { div.error id=(format!("{name}-error")) { (m) } }
        }
    }
}

/// The redirect statuses a link may have.
pub const STATUSES: [(u16, &str); 4] = [
    (301, "301 Moved Permanently"),
    (302, "302 Found"),
    (307, "307 Temporary Redirect"),
    (308, "308 Permanent Redirect"),
];

/// The link form as typed: every option of the API's create and patch.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LinkForm {
    pub csrf: String,
    pub target: String,
    /// Create only: the code wanted, or empty for a random one.
    pub custom_alias: String,
    pub title: String,
    /// Comma-separated.
    pub tags: String,
    pub status: String,
    /// `YYYY-MM-DDTHH:MM` in UTC (a `datetime-local` input), or empty.
    pub expires_at: String,
    /// `YYYY-MM-DDTHH:MM` in UTC, or empty: when the link starts answering.
    pub valid_since: String,
    /// Where an expired link redirects, or empty (410).
    pub expired_url: String,
    /// The visit limit, or empty for none.
    pub max_visits: String,
    /// UTM values, each empty for none.
    pub utm_source: String,
    pub utm_medium: String,
    pub utm_campaign: String,
    pub utm_term: String,
    pub utm_content: String,
    /// Redirect rules as the API's JSON list; empty: none.
    pub rules: String,
    /// The A/B split as the API's JSON list; empty: none.
    pub split: String,
    /// A new password visitors must enter; empty: none on create, the
    /// current one kept on edit. Never filled back into a form.
    pub password: crate::links::password::LinkPassword,
    /// Edit only: remove the link's password.
    pub remove_password: Option<String>,
    /// Edit only, shown not sent: whether the link has a password now.
    #[serde(skip)]
    pub password_protected: bool,
    pub forward_query: Option<String>,
    /// Edit only.
    pub disabled: Option<String>,
    /// Edit only: the ETag of the version the form showed.
    pub etag: String,
    /// Edit only: `expires_at` as the form showed it; the same value sent
    /// back leaves the expiry alone (a past one can then stay as it is).
    pub expires_was: String,
    /// Edit only: `valid_since` as the form showed it (unchanged: left
    /// alone, so its seconds are not cut to the input's minutes).
    pub valid_since_was: String,
    /// The link's domain: one of the organization's names, or empty for the
    /// deployment's default domain. Chosen on create, fixed after.
    pub domain: String,
}

const MINUTES: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]");
const SECONDS: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");

impl LinkForm {
    /// The form filled from a stored link (for editing).
    pub fn from_row(row: &LinkRow) -> LinkForm {
        LinkForm {
            target: row.target.clone(),
            title: row.title.clone().unwrap_or_default(),
            tags: row.tags.join(", "),
            status: row.status.to_string(),
            expires_at: row
                .expires_at
                .and_then(|t| t.format(MINUTES).ok())
                .unwrap_or_default(),
            valid_since: row
                .valid_since
                .and_then(|t| t.format(MINUTES).ok())
                .unwrap_or_default(),
            expired_url: row.expired_url.clone().unwrap_or_default(),
            max_visits: row.max_visits.map(|m| m.to_string()).unwrap_or_default(),
            utm_source: row.utm.source.clone().unwrap_or_default(),
            utm_medium: row.utm.medium.clone().unwrap_or_default(),
            utm_campaign: row.utm.campaign.clone().unwrap_or_default(),
            utm_term: row.utm.term.clone().unwrap_or_default(),
            utm_content: row.utm.content.clone().unwrap_or_default(),
            rules: json_text(&crate::links::rules::rules_json(&row.rules.0)),
            split: json_text(&row.split.0),
            password_protected: row.password_hash.is_some(),
            forward_query: row.forward_query.then(|| "on".into()),
            disabled: row.disabled.then(|| "on".into()),
            etag: row.etag(),
            domain: link_domain(row).to_owned(),
            ..LinkForm::default()
        }
        .with_expires_was()
    }

    fn with_expires_was(mut self) -> LinkForm {
        self.expires_was = self.expires_at.clone();
        self.valid_since_was = self.valid_since.clone();
        self
    }

    fn valid_since(&self) -> Result<Option<OffsetDateTime>, FormError> {
        utc_time_field("valid_since", &self.valid_since)
    }

    fn status(&self) -> Result<u16, FormError> {
        self.status
            .trim()
            .parse()
            .map_err(|_| FormError::field("status", "choose one of the redirect statuses"))
    }

    /// The visit limit: empty for none, else a whole number (its range is
    /// the API's to check, which names the field).
    fn max_visits(&self) -> Result<Option<i64>, FormError> {
        match self.max_visits.trim() {
            "" => Ok(None),
            text => text.parse().map(Some).map_err(|_| {
                FormError::field(
                    "max_visits",
                    "a whole number of visits, or empty for no limit",
                )
            }),
        }
    }

    fn expires_at(&self) -> Result<Option<OffsetDateTime>, FormError> {
        utc_time_field("expires_at", &self.expires_at)
    }

    /// The `utm` object as the form has it: every field, empty ones
    /// clearing theirs (on a create: none).
    fn utm(&self) -> UtmInput {
        let value = |v: &str| Some(Some(v.to_owned()));
        UtmInput {
            source: value(&self.utm_source),
            medium: value(&self.utm_medium),
            campaign: value(&self.utm_campaign),
            term: value(&self.utm_term),
            content: value(&self.utm_content),
        }
    }

    /// A JSON text area (`rules`, `split`): empty is none, else the JSON
    /// value as the API takes it (the API names what is wrong in it).
    fn json_field(&self, name: &str, text: &str) -> Result<Option<serde_json::Value>, FormError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        serde_json::from_str(text)
            .map(Some)
            .map_err(|e| FormError::field(name, format!("{name}: not JSON: {e}")))
    }

    fn tags(&self) -> Vec<String> {
        self.tags
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The domain `?domain=` names for the API (`None`: the default one).
    pub fn domain(&self) -> Option<&str> {
        let d = self.domain.trim();
        (!d.is_empty()).then_some(d)
    }

    fn title(&self) -> Option<String> {
        let t = self.title.trim();
        (!t.is_empty()).then(|| t.to_owned())
    }

    /// The API's create request.
    pub fn to_create(&self) -> Result<CreateLink, FormError> {
        let alias = self.custom_alias.trim();
        Ok(CreateLink {
            target: Some(self.target.trim().to_owned()).filter(|t| !t.is_empty()),
            custom_alias: (!alias.is_empty()).then(|| alias.to_owned()),
            status: Some(self.status()?),
            expires_at: self.expires_at()?,
            valid_since: self.valid_since()?,
            expired_url: non_empty(&self.expired_url),
            utm: Some(self.utm()),
            rules: self.json_field("rules", &self.rules)?,
            split: self.json_field("split", &self.split)?,
            password: (!self.password.is_empty()).then(|| self.password.clone()),
            max_visits: self.max_visits()?,
            forward_query: Some(self.forward_query.is_some()),
            tags: Some(self.tags()),
            title: self.title(),
            domain: self.domain().map(str::to_owned),
        })
    }

    /// The API's patch, setting every field the form has.
    pub fn to_patch(&self) -> Result<PatchLink, FormError> {
        if self.target.trim().is_empty() {
            return Err(FormError::field("target", "is required"));
        }
        Ok(PatchLink {
            target: Some(self.target.trim().to_owned()),
            status: Some(self.status()?),
            expires_at: if self.expires_at.trim() == self.expires_was.trim()
                && !self.expires_was.trim().is_empty()
            {
                None
            } else {
                Some(self.expires_at()?)
            },
            valid_since: if self.valid_since.trim() == self.valid_since_was.trim()
                && !self.valid_since_was.trim().is_empty()
            {
                None
            } else {
                Some(self.valid_since()?)
            },
            expired_url: Some(non_empty(&self.expired_url)),
            utm: Some(Some(self.utm())),
            rules: Some(self.json_field("rules", &self.rules)?),
            split: Some(self.json_field("split", &self.split)?),
            password: match (&self.remove_password, self.password.is_empty()) {
                (Some(_), _) => Some(None),
                (None, false) => Some(Some(self.password.clone())),
                (None, true) => None,
            },
            max_visits: Some(self.max_visits()?),
            disabled: Some(self.disabled.is_some()),
            forward_query: Some(self.forward_query.is_some()),
            tags: Some(self.tags()),
            title: Some(self.title()),
        })
    }
}

/// A list as the form's JSON text areas show it: pretty JSON, or empty
/// for none.
fn json_text<T: serde::Serialize>(list: &[T]) -> String {
    if list.is_empty() {
        return String::new();
    }
    serde_json::to_string_pretty(list).unwrap_or_default()
}

/// A query string; one that does not fit is a 400 page.
#[derive(Debug)]
pub struct PageQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequestParts<S> for PageQuery<T> {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, PageError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| PageQuery(q.0))
            .map_err(|r| PageError::Api(ApiError::bad_request(r.body_text())))
    }
}

/// `Some` of a trimmed, non-empty text.
pub fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// The name of a link's domain as the dashboard's URLs and forms carry it:
/// empty for the deployment's default domain.
pub fn link_domain(row: &LinkRow) -> &str {
    if row.domain_id == 0 { "" } else { &row.domain }
}

/// A link's dashboard page (`suffix`: `""`, `"/edit"`, `"/qr.svg"`...),
/// with `?domain=` when the link is not on the default domain (codes are
/// unique per domain only).
pub fn link_path(base: &str, code: &str, domain: &str, suffix: &str) -> String {
    let path = format!("{base}/links/{code}{suffix}");
    if domain.is_empty() {
        path
    } else {
        with_query(&path, "domain", domain)
    }
}

/// `url` with `key=value` added to its query string.
pub fn with_query(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    let value: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
    format!("{url}{sep}{key}={value}")
}

/// A `datetime-local` input read as UTC (`YYYY-MM-DDTHH:MM`, seconds
/// allowed); empty is `None`; anything else an error beside `field`.
pub fn utc_time_field(field: &str, value: &str) -> Result<Option<OffsetDateTime>, FormError> {
    let s = value.trim();
    if s.is_empty() {
        return Ok(None);
    }
    PrimitiveDateTime::parse(s, MINUTES)
        .or_else(|_| PrimitiveDateTime::parse(s, SECONDS))
        .map(|t| Some(t.assume_utc()))
        .map_err(|_| FormError::field(field, "is not a date and time (YYYY-MM-DDTHH:MM, UTC)"))
}

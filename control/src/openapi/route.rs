//! What one entry of [`super::ROUTES`] says about an operation, and the
//! helpers that fill in its query parameters from the handler's types.

use utoipa::openapi::path::{Parameter, ParameterIn};

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health, metrics, this document).
    Public,
    /// An organization's key with this scope (or `admin`), or a signed-in
    /// member whose role grants it.
    Scope(&'static str),
    /// The operator's key (or a signed-in operator).
    Operator,
    // accounts
    /// A signed-in user (the session cookie).
    Session,
    /// A member of the organization (the path's `{org}`, else `X-Org`) with
    /// this role or higher, or an `admin` key of it; for `/v1/audit` the
    /// operator too.
    Role(&'static str),
}

/// Headers an operation reads or answers beyond the ones every operation
/// has (credentials, `X-Org`, `X-RateLimit-*`, `Retry-After`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// Reads `Idempotency-Key`: a repeat answers the first response.
    IdempotencyKey,
    /// Reads `If-Match`: 412 when it names another version.
    IfMatch,
    /// Reads `If-None-Match`: 304 when it names the current version.
    IfNoneMatch,
    /// Answers the resource's `ETag` with success.
    ETag,
    /// Answers `Location` with 201.
    Location,
}

/// The media types of the success body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// JSON of the route's `response` schema (none: no body).
    Json,
    /// JSON, or CSV with `format=csv`.
    JsonOrCsv,
    /// An SVG (default) or, with `format=png`, a PNG image.
    Image,
    /// Prometheus text exposition.
    Prometheus,
    /// An export's file: CSV or NDJSON, as the export asked.
    Export,
}

/// An OpenAPI link from an operation's success to another operation: the
/// target (method, path) and its parameters as runtime expressions, e.g.
/// `("code", "$response.body#/code")`.
#[derive(Debug, Clone, Copy)]
pub struct Link {
    pub name: &'static str,
    pub method: &'static str,
    pub path: &'static str,
    pub parameters: &'static [(&'static str, &'static str)],
}

/// One operation: method, path, who may call it, summary, success status,
/// the schemas of its JSON request and response bodies, and the error
/// statuses particular to it (the ones every authenticated route or every
/// route with a body can answer are added by [`document`]); then what the
/// builder methods add: its query parameters, headers, media, links.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    pub summary: &'static str,
    pub success: u16,
    pub request: Option<&'static str>,
    pub response: Option<&'static str>,
    pub errors: &'static [u16],
    /// The query parameters, from the handler's query type.
    pub query: fn() -> Vec<Parameter>,
    pub headers: &'static [Header],
    pub media: Media,
    pub links: &'static [Link],
    /// The schema of the error bodies when not the API's `Error` (readiness
    /// answers its own shape with 503).
    pub error_body: Option<&'static str>,
}

impl Route {
    /// The query parameters: `params::<T>` for the handler's `Query<T>`.
    pub const fn query(mut self, query: fn() -> Vec<Parameter>) -> Self {
        self.query = query;
        self
    }

    pub const fn headers(mut self, headers: &'static [Header]) -> Self {
        self.headers = headers;
        self
    }

    pub const fn media(mut self, media: Media) -> Self {
        self.media = media;
        self
    }

    pub const fn links(mut self, links: &'static [Link]) -> Self {
        self.links = links;
        self
    }

    pub const fn error_body(mut self, schema: &'static str) -> Self {
        self.error_body = Some(schema);
        self
    }

    /// The operation's id: method and path, e.g. `get_v1_links_code`.
    pub fn operation_id(&self) -> String {
        operation_id(self.method, self.path)
    }

    pub(super) fn writes(&self) -> bool {
        !matches!(self.method, "get" | "head")
    }
}

pub(super) fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_owned();
    for part in path.split(|c: char| !c.is_ascii_alphanumeric()) {
        if !part.is_empty() {
            id.push('_');
            id.push_str(part);
        }
    }
    id
}

/// The query parameters of a handler's query type.
pub fn params<T: utoipa::IntoParams>() -> Vec<Parameter> {
    T::into_params(|| Some(ParameterIn::Query))
}

/// No query parameters.
pub fn no_params() -> Vec<Parameter> {
    Vec::new()
}

/// The parameters of `T` named in `names` (a query type two routes share).
pub fn only<T: utoipa::IntoParams>(names: &[&str]) -> Vec<Parameter> {
    params::<T>()
        .into_iter()
        .filter(|p| names.contains(&p.name.as_str()))
        .collect()
}

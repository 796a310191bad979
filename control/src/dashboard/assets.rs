//! The dashboard's static files, compiled into the binary and served under
//! `/assets/{hash}/{name}`: the hash is of the content, so a new build's
//! file has a new URL and every URL can be cached for a year.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const FILES: &[Asset] = &[
    Asset {
        name: "dashboard.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/dashboard.css"),
    },
    Asset {
        name: "dashboard.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/dashboard.js"),
    },
    // Vendored from npm by assets/vendor/fetch.sh (version in the name).
    Asset {
        name: "htmx-2.0.4.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/vendor/htmx-2.0.4.min.js"),
    },
];

/// The first 16 hex digits of each file's SHA-256, in [`FILES`] order.
static HASHES: LazyLock<Vec<String>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|f| hex::encode(&Sha256::digest(f.bytes)[..8]))
        .collect()
});

/// The URL of the asset `name` (one of [`FILES`]).
pub fn url(name: &str) -> String {
    let i = FILES
        .iter()
        .position(|f| f.name == name)
        .expect("a known asset");
    format!("/assets/{}/{}", HASHES[i], name)
}

/// `GET /assets/{hash}/{name}`: the file when both match, else 404.
pub async fn serve(Path((hash, name)): Path<(String, String)>) -> Response {
    let Some(i) = FILES.iter().position(|f| f.name == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if HASHES[i] != hash {
        return StatusCode::NOT_FOUND.into_response();
    }
    let mut r = FILES[i].bytes.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(FILES[i].content_type),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    r
}

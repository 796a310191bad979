//! QR codes of short URLs: `GET /v1/links/{code}/qr?format=svg|png&size=`.
//! PNG is drawn straight from the QR module matrix with the small `png`
//! encoder, which avoids the `image` crate and its codecs.

use crate::auth::{Auth, Scope};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Path, Query};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use qrcode::{Color, QrCode};
use serde::Deserialize;

const QUIET_ZONE: usize = 4;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QrQuery {
    /// `svg` (default) or `png`.
    #[param(schema_with = format_schema)]
    pub format: Option<String>,
    /// Requested width and height in pixels (64 to 2048; default 256).
    #[param(minimum = 64, maximum = 2048)]
    pub size: Option<u32>,
    /// The link's domain (default: the deployment's default domain).
    pub domain: Option<String>,
}

fn format_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["svg", "png"]))
        .build()
}

/// A PNG at least `size` pixels wide: whole pixels per module, quiet zone included.
pub fn render_png(code: &QrCode, size: u32) -> anyhow::Result<Vec<u8>> {
    let modules = code.width() + 2 * QUIET_ZONE;
    let scale = (size as usize).div_ceil(modules).max(1);
    let side = modules * scale;
    let colors = code.to_colors();
    let mut pixels = vec![255u8; side * side];
    for y in 0..code.width() {
        for x in 0..code.width() {
            if colors[y * code.width() + x] == Color::Dark {
                for dy in 0..scale {
                    let row = (y + QUIET_ZONE) * scale + dy;
                    let start = row * side + (x + QUIET_ZONE) * scale;
                    pixels[start..start + scale].fill(0);
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side as u32, side as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header()?.write_image_data(&pixels)?;
    Ok(out)
}

pub fn render_svg(code: &QrCode, size: u32) -> String {
    code.render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(size, size)
        .build()
}

/// The QR code of a live link of `org_id` as `format` (`svg` or `png`),
/// `size` pixels wide: the body and its content type. The one renderer,
/// for the API and the dashboard's downloads.
pub async fn qr_image(
    state: &AppState,
    org_id: i64,
    domain: Option<&str>,
    code: &str,
    format: &str,
    size: u32,
) -> ApiResult<(Vec<u8>, &'static str)> {
    if !(64..=2048).contains(&size) {
        return Err(ApiError::invalid_field("size", "must be 64 to 2048 pixels"));
    }
    if !matches!(format, "svg" | "png") {
        return Err(ApiError::invalid_field(
            "format",
            format!("{format:?} is not svg or png"),
        ));
    }
    let row = crate::links::api::fetch_in(state, org_id, domain, code).await?;
    let url = row.to_json(state.short_base()).short_url;
    let qr = QrCode::new(url.as_bytes()).map_err(|e| anyhow::anyhow!("QR encoding: {e}"))?;
    Ok(if format == "png" {
        (render_png(&qr, size)?, "image/png")
    } else {
        (render_svg(&qr, size).into_bytes(), "image/svg+xml")
    })
}

pub async fn qr(
    State(state): State<AppState>,
    auth: Auth,
    Path(code): Path<String>,
    Query(q): Query<QrQuery>,
) -> ApiResult<Response> {
    let org_id = auth.org(Scope::LinksRead)?;
    let (body, content_type) = qr_image(
        &state,
        org_id,
        q.domain.as_deref(),
        &code,
        q.format.as_deref().unwrap_or("svg"),
        q.size.unwrap_or(256),
    )
    .await?;
    let mut resp = body.into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_has_signature_and_size() {
        let code = QrCode::new(b"https://sho.rt/abc1234").unwrap();
        let png = render_png(&code, 256).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
        assert!(width >= 256, "{width}");
        assert!(render_svg(&code, 128).contains("<svg"));
    }
}

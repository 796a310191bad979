//! Data files tests of several crates share, kept once in `testkit/fixtures/`.

use std::path::PathBuf;

/// `testkit/fixtures/<name>`.
pub fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// MaxMind's GeoIP2 City test database (`fixtures/geoip/README.md`):
/// 81.2.69.142 is London, GB; 2001:218:: is Japan.
pub fn geoip_city() -> PathBuf {
    path("geoip/GeoIP2-City-Test.mmdb")
}

/// A GeoIP file in a directory of the test fixtures (`GeoIP2-Country-Test.mmdb`,
/// `GeoLite2-City-Test.mmdb`, `flat-city-test.mmdb`...).
pub fn geoip(file: &str) -> PathBuf {
    path(&format!("geoip/{file}"))
}

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

/// The statements of the SQL file `fixtures/clickhouse/<file>` for database
/// `db` (written in for `{db}`), each ending with a semicolon at the end of a
/// line; `--` comment lines left out. `schema-uniq-states.sql` is the
/// analytics sidecar's schema before its rollups had fixed-size visitor
/// states, for tests of the upgrade.
pub fn clickhouse_statements(file: &str, db: &str) -> Vec<String> {
    let path = path(&format!("clickhouse/{file}"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let text: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .map(|l| l.replace("{db}", db) + "\n")
        .collect();
    text.split(";\n")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

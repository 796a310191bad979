//! Country and city from a MaxMind-format database.
//!
//! Two record shapes exist in the wild and both are read:
//! * MaxMind GeoIP2/GeoLite2 (and DB-IP's own downloads):
//!   `{"country": {"iso_code": "GB"}, "city": {"names": {"en": "London"}}}`;
//! * the flat shape of the `@ip-location-db` packages (DB-IP lite, CC BY 4.0):
//!   `{"country_code": "GB", "city": "London"}`.

use std::net::IpAddr;
use std::path::Path;

use maxminddb::{Reader, path};

/// One or more open databases, asked in order. Lookups take the full
/// address, in memory only: the test databases (and real ones) hold networks
/// smaller than a /24, so looking up the truncated address would give wrong
/// answers.
pub struct GeoIp {
    readers: Vec<Reader<Vec<u8>>>,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp")
            .field("database_types", &self.database_types())
            .finish()
    }
}

/// Country (ISO 3166-1 alpha-2) and English city name; empty when unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    pub country: String,
    pub city: String,
}

impl GeoIp {
    /// Opens a `.mmdb` file (read into memory once).
    pub fn open(path: &Path) -> Result<GeoIp, maxminddb::MaxMindDbError> {
        GeoIp::open_all(&[path])
    }

    /// Opens several files, asked in this order.
    pub fn open_all<P: AsRef<Path>>(paths: &[P]) -> Result<GeoIp, maxminddb::MaxMindDbError> {
        let readers = paths
            .iter()
            .map(Reader::open_readfile)
            .collect::<Result<_, _>>()?;
        Ok(GeoIp { readers })
    }

    /// The databases' own type names, e.g. `GeoIP2-City`.
    pub fn database_types(&self) -> Vec<&str> {
        self.readers
            .iter()
            .map(|r| r.metadata().database_type.as_str())
            .collect()
    }

    /// Looks an address up in each database until one has a record; unknown
    /// addresses and unreadable records give an empty place (enrichment never
    /// fails a click).
    pub fn lookup(&self, ip: IpAddr) -> Place {
        let place = self.lookup_ref(ip);
        Place {
            country: place.country.to_owned(),
            city: place.city.to_owned(),
        }
    }

    /// [`lookup`](Self::lookup) with the names borrowed from the database
    /// (what the sidecar copies straight into a row).
    pub fn lookup_ref(&self, ip: IpAddr) -> PlaceRef<'_> {
        self.readers
            .iter()
            .find_map(|reader| match reader.lookup(ip) {
                Ok(result) if result.has_data() => Some(place(&result)),
                _ => None,
            })
            .unwrap_or_default()
    }
}

/// [`Place`] borrowed from the database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlaceRef<'a> {
    pub country: &'a str,
    pub city: &'a str,
}

/// Reads only the fields needed, by path: decoding whole GeoIP2 records
/// (names in eight languages, subdivisions, location...) cost more than the
/// rest of a click's enrichment together.
fn place<'a, S: AsRef<[u8]>>(result: &maxminddb::LookupResult<'a, S>) -> PlaceRef<'a> {
    fn text<'a, S: AsRef<[u8]>>(
        result: &maxminddb::LookupResult<'a, S>,
        path: &[maxminddb::PathElement<'_>],
    ) -> Option<&'a str> {
        result.decode_path::<&'a str>(path).ok().flatten()
    }
    // Flat shape first: one key, absent from GeoIP2 records.
    if let Some(country) = text(result, &path!["country_code"]) {
        let city = text(result, &path!["city"]).unwrap_or_default();
        return PlaceRef { country, city };
    }
    let country = text(result, &path!["country", "iso_code"])
        .or_else(|| text(result, &path!["registered_country", "iso_code"]))
        .unwrap_or_default();
    let city = text(result, &path!["city", "names", "en"]).unwrap_or_default();
    PlaceRef { country, city }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> GeoIp {
        GeoIp::open(&testkit::fixtures::geoip(name)).unwrap()
    }

    #[test]
    fn maxmind_city_test_database() {
        let db = fixture("GeoIP2-City-Test.mmdb");
        assert_eq!(db.database_types(), ["GeoIP2-City"]);
        let place = db.lookup("81.2.69.142".parse().unwrap());
        assert_eq!(place.country, "GB");
        assert_eq!(place.city, "London");
        // Not in the database: empty, not an error.
        assert_eq!(db.lookup("10.0.0.1".parse().unwrap()), Place::default());
    }

    #[test]
    fn maxmind_country_test_database_has_no_city() {
        let db = fixture("GeoIP2-Country-Test.mmdb");
        let place = db.lookup("81.2.69.160".parse().unwrap());
        assert_eq!(place.country, "GB");
        assert_eq!(place.city, "");
    }

    #[test]
    fn several_databases_are_asked_in_order() {
        let dir = testkit::fixtures::path("geoip");
        let db = GeoIp::open_all(&[
            dir.join("GeoIP2-Country-Test.mmdb"),
            dir.join("GeoIP2-City-Test.mmdb"),
        ])
        .unwrap();
        // The country database knows the address first: no city.
        assert_eq!(db.lookup("81.2.69.160".parse().unwrap()).city, "");
        let db = GeoIp::open_all(&[
            dir.join("GeoIP2-City-Test.mmdb"),
            dir.join("GeoIP2-Country-Test.mmdb"),
        ])
        .unwrap();
        assert_eq!(db.lookup("81.2.69.160".parse().unwrap()).city, "London");
        // Unknown to the first, known to the second.
        let db = GeoIp::open_all(&[
            dir.join("GeoIP2-City-Test.mmdb"),
            dir.join("GeoLite2-City-Test.mmdb"),
        ])
        .unwrap();
        assert_eq!(db.lookup("10.0.0.1".parse().unwrap()), Place::default());
    }

    #[test]
    fn flat_dbip_shape_database() {
        let db = fixture("flat-city-test.mmdb");
        let berlin = db.lookup("192.0.2.77".parse().unwrap());
        assert_eq!(
            (berlin.country.as_str(), berlin.city.as_str()),
            ("DE", "Berlin")
        );
        let tokyo = db.lookup("2001:db8:1::5".parse().unwrap());
        assert_eq!(
            (tokyo.country.as_str(), tokyo.city.as_str()),
            ("JP", "Tokyo")
        );
        let france = db.lookup("198.51.100.1".parse().unwrap());
        assert_eq!((france.country.as_str(), france.city.as_str()), ("FR", ""));
    }
}

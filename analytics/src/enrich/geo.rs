//! Country and city from a MaxMind-format database.
//!
//! Two record shapes exist in the wild and both are read:
//! * MaxMind GeoIP2/GeoLite2 (and DB-IP's own downloads):
//!   `{"country": {"iso_code": "GB"}, "city": {"names": {"en": "London"}}}`;
//! * the flat shape of the `@ip-location-db` packages (DB-IP lite, CC BY 4.0):
//!   `{"country_code": "GB", "city": "London"}`.

use std::net::IpAddr;
use std::path::Path;

use maxminddb::Reader;
use serde::Deserialize;

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
        self.readers
            .iter()
            .find_map(|reader| match reader.lookup(ip) {
                Ok(result) if result.has_data() => result.decode::<Record>().ok().flatten(),
                _ => None,
            })
            .map(Record::into_place)
            .unwrap_or_default()
    }
}

/// The union of both shapes; everything else in a record is ignored.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Record {
    #[serde(default)]
    country: Option<Country>,
    /// GeoIP2's fallback when `country` is missing (e.g. satellite providers).
    #[serde(default)]
    registered_country: Option<Country>,
    #[serde(default)]
    city: Option<City>,
    /// Flat shape.
    #[serde(default)]
    country_code: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Country {
    #[serde(default)]
    iso_code: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum City {
    Flat(String),
    Named {
        #[serde(default)]
        names: Names,
    },
}

#[derive(Debug, Default, Deserialize)]
struct Names {
    #[serde(default)]
    en: Option<String>,
}

impl Record {
    pub(crate) fn into_place(self) -> Place {
        let country = self
            .country_code
            .or_else(|| self.country.and_then(|c| c.iso_code))
            .or_else(|| self.registered_country.and_then(|c| c.iso_code))
            .unwrap_or_default();
        let city = match self.city {
            Some(City::Flat(name)) => name,
            Some(City::Named { names }) => names.en.unwrap_or_default(),
            None => String::new(),
        };
        Place { country, city }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> GeoIp {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/geoip")
            .join(name);
        GeoIp::open(&path).unwrap()
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
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/geoip");
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

    #[test]
    fn both_shapes_from_any_serde_source() {
        let r: Record =
            serde_json::from_str(r#"{"country_code":"DE","city":"Berlin","state1":"Berlin"}"#)
                .unwrap();
        assert_eq!(
            r.into_place(),
            Place {
                country: "DE".into(),
                city: "Berlin".into()
            }
        );
        let r: Record = serde_json::from_str(
            r#"{"registered_country":{"iso_code":"US"},"city":{"geoname_id":1}}"#,
        )
        .unwrap();
        assert_eq!(r.into_place().country, "US");
    }
}

//! The country of a visitor's address, for redirect rules that ask for one.
//!
//! A MaxMind-format database (`.mmdb`, the same file the analytics sidecar
//! reads) is memory-mapped once and shared read-only by every core; a lookup
//! walks the file's search tree in place and decodes only the country code,
//! borrowed from the map, so it allocates nothing. Two record shapes are
//! read: GeoIP2/GeoLite2 (`country.iso_code`, else
//! `registered_country.iso_code`) and the flat `country_code` of the
//! ip-location-db files.

use maxminddb::{Reader, path};
use memmap2::Mmap;
use std::fs::File;
use std::net::IpAddr;
use std::path::Path;

/// An open GeoIP database.
pub struct GeoIp {
    reader: Reader<Mmap>,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp")
            .field("database_type", &self.reader.metadata().database_type)
            .finish()
    }
}

/// Why a database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum GeoIpError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a MaxMind database: {source}")]
    Format {
        path: String,
        source: maxminddb::MaxMindDbError,
    },
}

impl GeoIp {
    /// Maps `path` and checks it is a MaxMind database.
    pub fn open(path: &Path) -> Result<GeoIp, GeoIpError> {
        let shown = path.display().to_string();
        let file = File::open(path).map_err(|source| GeoIpError::Io {
            path: shown.clone(),
            source,
        })?;
        // SAFETY: the file is only read; replacing it means writing a new
        // file and renaming it over this one (as the engine's documentation
        // says), which leaves this mapping intact.
        let map = unsafe { Mmap::map(&file) }.map_err(|source| GeoIpError::Io {
            path: shown.clone(),
            source,
        })?;
        let reader = Reader::from_source(map).map_err(|source| GeoIpError::Format {
            path: shown,
            source,
        })?;
        Ok(GeoIp { reader })
    }

    /// The ISO 3166-1 alpha-2 country of `ip`; `None` when the database
    /// has none or the record is unreadable (rules then do not match).
    pub fn country(&self, ip: IpAddr) -> Option<[u8; 2]> {
        let result = self.reader.lookup(ip).ok()?;
        if !result.has_data() {
            return None;
        }
        let code = |p: &[maxminddb::PathElement<'_>]| {
            result
                .decode_path::<&str>(p)
                .ok()
                .flatten()
                .and_then(|code| <[u8; 2]>::try_from(code.as_bytes()).ok())
        };
        // GeoIP2's shape first: the common one, and the flat key is absent
        // from its records (a miss there costs a full map scan).
        code(&path!["country", "iso_code"])
            .or_else(|| code(&path!["country_code"]))
            .or_else(|| code(&path!["registered_country", "iso_code"]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_record_shapes() {
        let city = GeoIp::open(&testkit::fixtures::geoip_city()).unwrap();
        assert_eq!(city.country("81.2.69.142".parse().unwrap()), Some(*b"GB"));
        assert_eq!(city.country("10.0.0.1".parse().unwrap()), None);
        let flat = GeoIp::open(&testkit::fixtures::geoip("flat-city-test.mmdb")).unwrap();
        assert_eq!(flat.country("192.0.2.77".parse().unwrap()), Some(*b"DE"));
        assert_eq!(flat.country("198.51.100.1".parse().unwrap()), Some(*b"FR"));
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.mmdb");
        std::fs::write(&path, b"not a database").unwrap();
        let error = GeoIp::open(&path).unwrap_err();
        assert!(
            error.to_string().contains("not a MaxMind database"),
            "{error}"
        );
        assert!(GeoIp::open(&dir.path().join("missing")).is_err());
    }
}

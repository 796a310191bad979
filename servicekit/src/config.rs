//! One way to configure a service: defaults, then a TOML file, then flags,
//! then one validation.
//!
//! ```
//! use serde::Deserialize;
//! use servicekit::{ConfigError, ServiceConfig};
//!
//! /// Settings of an example service.
//! #[derive(Debug, Deserialize)]
//! #[serde(default, deny_unknown_fields)]
//! struct Config {
//!     /// Requests per second. Default 50.
//!     rate: u32,
//! }
//! impl Default for Config {
//!     fn default() -> Self { Config { rate: 50 } }
//! }
//! impl ServiceConfig for Config {
//!     fn validate(&self) -> Result<(), ConfigError> {
//!         if self.rate == 0 {
//!             return Err(ConfigError::invalid("rate", "must be at least 1"));
//!         }
//!         Ok(())
//!     }
//! }
//!
//! /// The flags: `None` leaves the file's (or the default) value.
//! struct Flags { rate: Option<u32> }
//!
//! let flags = Flags { rate: Some(7) };
//! let config: Config = servicekit::config::load(None, |c: &mut Config| {
//!     servicekit::override_fields!(flags => c; rate);
//! })?;
//! assert_eq!(config.rate, 7);
//! # Ok::<(), ConfigError>(())
//! ```

use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// A service's settings struct.
pub trait ServiceConfig: DeserializeOwned + Default {
    /// Checks what can be checked without connecting anywhere. Runs once,
    /// after the file and the flags are applied, before anything starts.
    fn validate(&self) -> Result<(), ConfigError>;
}

/// A configuration that cannot work, said before anything connects.
///
/// The cause is part of the message (and deliberately not a `source`), so
/// `{e}` and anyhow's `{e:#}` both print it exactly once.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("reading config file {path}: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("config file {path}: {cause}")]
    Parse {
        path: PathBuf,
        cause: Box<toml::de::Error>,
    },
    #[error("{field}: {problem}")]
    Invalid {
        /// The setting's name, as in the file (flags use the same name with `-`).
        field: &'static str,
        problem: String,
    },
}

impl ConfigError {
    /// A setting whose value cannot work.
    pub fn invalid(field: &'static str, problem: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            field,
            problem: problem.into(),
        }
    }

    /// The field an [`Invalid`](ConfigError::Invalid) error names.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ConfigError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// Reads a TOML file: missing keys take their defaults, unknown keys are refused.
pub fn from_file<C: ServiceConfig>(path: &Path) -> Result<C, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
        path: path.to_owned(),
        cause,
    })?;
    from_toml(&text).map_err(|error| match error {
        ConfigError::Parse { cause, .. } => ConfigError::Parse {
            path: path.to_owned(),
            cause,
        },
        other => other,
    })
}

/// Parses TOML text (an empty text is the defaults).
pub fn from_toml<C: ServiceConfig>(text: &str) -> Result<C, ConfigError> {
    toml::from_str(text).map_err(|cause| ConfigError::Parse {
        path: PathBuf::new(),
        cause: Box::new(cause),
    })
}

/// Defaults, then `file` if given, then `flags`, then validation.
pub fn load<C: ServiceConfig>(
    file: Option<&Path>,
    flags: impl FnOnce(&mut C),
) -> Result<C, ConfigError> {
    let mut config = match file {
        Some(path) => from_file(path)?,
        None => C::default(),
    };
    flags(&mut config);
    config.validate()?;
    Ok(config)
}

/// Copies every given flag over the config:
/// `override_fields!(flags => config; a, b; optional: c, d)`.
///
/// Fields before `optional:` are `Option<T>` flags over a `T` setting (`Some`
/// replaces it, via `Into`). Fields after are `Option<T>` flags over an
/// `Option<T>` setting (`Some` replaces it; `None` keeps the file's value).
#[macro_export]
macro_rules! override_fields {
    ($flags:expr => $config:expr; $($field:ident),* $(,)? $(; optional: $($opt:ident),* $(,)?)?) => {{
        $( if let Some(value) = $flags.$field.clone() { $config.$field = value.into(); } )*
        $($( if $flags.$opt.is_some() { $config.$opt = $flags.$opt.clone(); } )*)?
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The message and every source below it, as anyhow's `{:#}` prints them.
    fn anyhow_like(err: &dyn std::error::Error) -> String {
        let mut text = err.to_string();
        let mut next = err.source();
        while let Some(cause) = next {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            next = cause.source();
        }
        text
    }
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Example {
        rate: u32,
        name: String,
        token: Option<String>,
    }

    impl Default for Example {
        fn default() -> Self {
            Example {
                rate: 50,
                name: "x".into(),
                token: None,
            }
        }
    }

    impl ServiceConfig for Example {
        fn validate(&self) -> Result<(), ConfigError> {
            if self.rate == 0 {
                return Err(ConfigError::invalid("rate", "must be at least 1"));
            }
            Ok(())
        }
    }

    struct Flags {
        rate: Option<u32>,
        name: Option<&'static str>,
        token: Option<String>,
    }

    fn write(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
        file
    }

    #[test]
    fn defaults_then_file_then_flags() {
        let file = write("rate = 5\ntoken = \"file\"\n");
        let flags = Flags {
            rate: None,
            name: Some("flag"),
            token: None,
        };
        let c: Example = load(Some(file.path()), |c: &mut Example| {
            override_fields!(flags => c; rate, name; optional: token);
        })
        .unwrap();
        assert_eq!(
            c,
            Example {
                rate: 5,
                name: "flag".into(),
                token: Some("file".into())
            }
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let file = write("raet = 5\n");
        let err = load::<Example>(Some(file.path()), |_| {}).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("unknown field") && text.contains(&*file.path().to_string_lossy()),
            "{text}"
        );
        let err = load::<Example>(None, |c| c.rate = 0).unwrap_err();
        assert_eq!(err.field(), Some("rate"));
        let err = load::<Example>(Some(Path::new("/nonexistent/x.toml")), |_| {}).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err}");
        // The cause is printed once, also by anyhow's alternate form.
        let text = format!("{:#}", anyhow_like(&err));
        assert_eq!(text.matches("No such file").count(), 1, "{text}");
    }
}

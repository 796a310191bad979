//! How a service reaches NATS: one or more servers, and its own credentials.
//!
//! Every process connects as its role's user (`control`, `analytics`, and
//! for an engine its node's, `engine-<node id>`), whose permissions on the
//! server allow only what that role does (deploy's `nats-server`
//! configuration, `deploy/nats/auth.conf.template`, lists them). The password comes from a file (mode 0600, the deploy
//! scripts write one per role) or from the `NATS_PASSWORD` environment
//! variable, never from a flag, where `ps` would show it.
//!
//! Each client also takes a private inbox prefix, `_INBOX_<user>`, so the
//! server can let a role subscribe to its own replies (`_INBOX_control.>`) and
//! nobody else's: with the shared `_INBOX.>`, any role could read the replies
//! to every other role's requests.
//!
//! Several servers (a cluster) are given as a comma-separated list; the
//! client picks one and fails over to the others.

use crate::ConfigError;
use async_nats::{ConnectOptions, ServerAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The environment variable read when no password file is set.
pub const PASSWORD_ENV: &str = "NATS_PASSWORD";

/// Where NATS is and who this process is there, as given in a service's
/// settings (`nats`, `nats_user`, `nats_password_file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsSettings {
    /// `nats://host:port`, or several separated by commas.
    pub servers: String,
    /// The role's user; `None` connects anonymously (a server without
    /// authorization, such as a development one).
    pub user: Option<String>,
    /// A file holding the user's password; `None` reads `NATS_PASSWORD`.
    pub password_file: Option<PathBuf>,
}

/// The servers of a comma-separated list, checked.
pub fn servers(list: &str) -> Result<Vec<ServerAddr>, ConfigError> {
    let servers: Vec<ServerAddr> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ServerAddr>().map_err(|e| {
                ConfigError::invalid("nats", format!("{s:?} is not a NATS server address: {e}"))
            })
        })
        .collect::<Result<_, _>>()?;
    if servers.is_empty() {
        return Err(ConfigError::invalid("nats", "names no server"));
    }
    Ok(servers)
}

impl NatsSettings {
    /// Checks the servers and the user name, and that a password can be read
    /// when a user is set.
    pub fn validate(&self) -> Result<(), ConfigError> {
        servers(&self.servers)?;
        if let Some(user) = &self.user {
            if user.is_empty()
                || !user
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(ConfigError::invalid(
                    "nats_user",
                    "must be letters, digits, '_' or '-' (it names the inbox prefix too)",
                ));
            }
            self.password()?;
        } else if self.password_file.is_some() {
            return Err(ConfigError::invalid(
                "nats_password_file",
                "needs nats_user",
            ));
        }
        Ok(())
    }

    /// The password: the file's first line, or `NATS_PASSWORD`.
    fn password(&self) -> Result<String, ConfigError> {
        match &self.password_file {
            Some(path) => read_password(path),
            None => std::env::var(PASSWORD_ENV).map_err(|_| {
                ConfigError::invalid(
                    "nats_password_file",
                    format!("nats_user is set but neither a password file nor {PASSWORD_ENV} is"),
                )
            }),
        }
    }

    /// Client options for this identity; `name` shows in the server's
    /// connection list (`engine`, `control relay`, ...).
    pub fn options(&self, name: &str) -> Result<ConnectOptions, ConfigError> {
        let mut options = ConnectOptions::new()
            .name(name)
            .connection_timeout(Duration::from_secs(3));
        if let Some(user) = &self.user {
            options = options
                .user_and_password(user.clone(), self.password()?)
                .custom_inbox_prefix(format!("_INBOX_{user}"));
        }
        Ok(options)
    }

    /// Connects with [`options`](Self::options) plus `tune` (retries, callbacks).
    pub async fn connect(
        &self,
        name: &str,
        tune: impl FnOnce(ConnectOptions) -> ConnectOptions,
    ) -> Result<async_nats::Client, ConnectError> {
        let options = tune(self.options(name)?);
        Ok(options.connect(servers(&self.servers)?).await?)
    }
}

fn read_password(path: &Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::invalid(
            "nats_password_file",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let password = text.lines().next().unwrap_or("").trim().to_owned();
    if password.is_empty() {
        return Err(ConfigError::invalid(
            "nats_password_file",
            format!("{} is empty", path.display()),
        ));
    }
    Ok(password)
}

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Settings(#[from] ConfigError),
    #[error(transparent)]
    Nats(#[from] async_nats::ConnectError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(servers: &str) -> NatsSettings {
        NatsSettings {
            servers: servers.into(),
            user: None,
            password_file: None,
        }
    }

    #[test]
    fn one_or_several_servers() {
        assert_eq!(servers("nats://127.0.0.1:4222").unwrap().len(), 1);
        assert_eq!(
            servers("nats://10.0.0.1:4222, nats://10.0.0.2:4222,nats://10.0.0.3:4222")
                .unwrap()
                .len(),
            3
        );
        assert_eq!(servers(" , ").unwrap_err().field(), Some("nats"));
        assert_eq!(servers("http://x:1").unwrap_err().field(), Some("nats"));
    }

    #[test]
    fn credentials_are_checked_before_connecting() {
        let mut s = settings("nats://127.0.0.1:4222");
        s.validate().unwrap();
        s.password_file = Some("/nonexistent".into());
        assert_eq!(
            s.validate().unwrap_err().field(),
            Some("nats_password_file")
        );
        s.user = Some("engine".into());
        let err = s.validate().unwrap_err();
        assert!(err.to_string().contains("/nonexistent"), "{err}");
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, b"s3cret\n").unwrap();
        s.password_file = Some(file.path().into());
        s.validate().unwrap();
        assert_eq!(s.password().unwrap(), "s3cret");
        s.user = Some("en gine".into());
        assert_eq!(s.validate().unwrap_err().field(), Some("nats_user"));
    }
}

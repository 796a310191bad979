//! A headless Chromium driven over WebDriver ([`fantoccini`]) for browser
//! tests: Debian's `chromium` and `chromium-driver` (`chromedriver`),
//! which `deploy/services.sh` installs. Tests install nothing themselves.
//!
//! Without the two binaries, [`Browser::start`] prints a loud message and
//! answers `None` so the test can return early, unless `CI` is set: then a
//! missing browser is a failure, never a silent pass.
//!
//! Each browser has its own `chromedriver` on a free loopback port and its
//! own temporary profile; both go when the [`Browser`] is dropped.

use anyhow::{Context as _, bail};
use fantoccini::{Client, ClientBuilder};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running headless browser and its driver.
#[derive(Debug)]
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The browser and its driver, when both are installed.
pub fn binaries() -> Option<(PathBuf, PathBuf)> {
    let chromium = on_path("chromium").or_else(|| on_path("chromium-browser"))?;
    let driver = on_path("chromedriver")?;
    Some((chromium, driver))
}

impl Browser {
    /// Starts a headless browser with a `width` x `height` window; `None`
    /// (after a loud message) when the binaries are missing and `CI` is unset.
    pub async fn start(width: u32, height: u32) -> anyhow::Result<Option<Browser>> {
        let Some((chromium, driver)) = binaries() else {
            if std::env::var_os("CI").is_some() {
                bail!(
                    "chromium and chromedriver are required under CI: apt-get install chromium chromium-driver (deploy/services.sh does)"
                );
            }
            eprintln!(
                "\n==================== BROWSER TEST SKIPPED ====================\n\
                 chromium and/or chromedriver are not installed; install them with\n\
                 `apt-get install chromium chromium-driver` (deploy/services.sh does).\n\
                 ===============================================================\n"
            );
            return Ok(None);
        };
        Self::launch(&chromium, &driver, width, height)
            .await
            .map(Some)
    }

    async fn launch(
        chromium: &Path,
        driver: &Path,
        width: u32,
        height: u32,
    ) -> anyhow::Result<Browser> {
        let port = crate::free_port();
        let mut driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", driver.display()))?;
        let url = format!("http://127.0.0.1:{port}");
        // The driver answers /status once it listens.
        let status = format!("{url}/status");
        let up = crate::wait_for(Duration::from_secs(20), Duration::from_millis(50), || {
            let status = status.clone();
            async move {
                reqwest::get(&status)
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        })
        .await;
        if let Err(e) = up {
            let _ = driver.kill();
            return Err(e.context("chromedriver did not start"));
        }
        let profile = tempfile::tempdir()?;
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": [
                    "--headless=new",
                    // Tests run as root in containers, where the sandbox cannot start.
                    "--no-sandbox",
                    "--disable-dev-shm-usage",
                    "--disable-gpu",
                    "--no-first-run",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&url)
            .await;
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                let _ = driver.kill();
                bail!("starting a chromium session through chromedriver: {e}");
            }
        };
        Ok(Browser {
            client,
            driver,
            _profile: profile,
        })
    }

    /// Ends the session and the driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

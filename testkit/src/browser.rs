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
//!
//! [`BrowserOptions`] can make it trust a test CA's root (imported with
//! `certutil`, Debian's libnss3-tools, into an NSS database under a HOME of
//! its own, where Chromium on Linux looks: the chain is verified as a real
//! browser verifies it, nothing ignored), send names to loopback addresses
//! (`--host-resolver-rules`, no DNS) and ask for a language.

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

/// How a browser differs from a plain one.
#[derive(Debug, Clone, Default)]
pub struct BrowserOptions {
    pub width: u32,
    pub height: u32,
    /// PEM roots the browser trusts besides the system's.
    pub trust_roots: Vec<String>,
    /// `(name, ip)`: the name resolves to the address (the URL keeps its port).
    pub hosts: Vec<(String, std::net::IpAddr)>,
    /// `Accept-Language`'s first language (`--lang`).
    pub lang: Option<String>,
}

/// `name` found on `PATH`.
pub(crate) fn on_path(name: &str) -> Option<PathBuf> {
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
        Self::start_with(BrowserOptions {
            width,
            height,
            ..BrowserOptions::default()
        })
        .await
    }

    /// [`Browser::start`] with `options`.
    pub async fn start_with(options: BrowserOptions) -> anyhow::Result<Option<Browser>> {
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
        Self::launch(&chromium, &driver, &options).await.map(Some)
    }

    async fn launch(
        chromium: &Path,
        driver: &Path,
        options: &BrowserOptions,
    ) -> anyhow::Result<Browser> {
        let profile = tempfile::tempdir()?;
        // Chromium reads its NSS database from $HOME/.pki/nssdb; the
        // driver's environment is the browser's.
        let home = profile.path().join("home");
        trust(&home, &options.trust_roots)?;
        let port = crate::free_port();
        let mut driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .env("HOME", &home)
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
        let mut args = vec![
            "--headless=new".to_owned(),
            // Tests run as root in containers, where the sandbox cannot start.
            "--no-sandbox".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-gpu".to_owned(),
            "--no-first-run".to_owned(),
            format!("--window-size={},{}", options.width, options.height),
            format!("--user-data-dir={}", profile.path().join("data").display()),
        ];
        if !options.hosts.is_empty() {
            let rules: Vec<String> = options
                .hosts
                .iter()
                .map(|(name, ip)| format!("MAP {name} {ip}"))
                .collect();
            args.push(format!("--host-resolver-rules={}", rules.join(",")));
        }
        if let Some(lang) = &options.lang {
            args.push(format!("--lang={lang}"));
            args.push(format!("--accept-lang={lang}"));
        }
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": chromium, "args": args }),
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

/// An NSS database under `home` trusting `roots` as CAs for servers.
fn trust(home: &Path, roots: &[String]) -> anyhow::Result<()> {
    std::fs::create_dir_all(home)?;
    if roots.is_empty() {
        return Ok(());
    }
    let Some(certutil) = on_path("certutil") else {
        bail!("certutil is not installed: apt-get install libnss3-tools (deploy/services.sh does)");
    };
    let db = home.join(".pki/nssdb");
    std::fs::create_dir_all(&db)?;
    let db = format!("sql:{}", db.display());
    let run = |args: &[&str]| -> anyhow::Result<()> {
        let out = Command::new(&certutil).args(args).output()?;
        if !out.status.success() {
            bail!(
                "certutil {args:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    };
    run(&["-N", "-d", &db, "--empty-password"])?;
    for (i, root) in roots.iter().enumerate() {
        let file = home.join(format!("root-{i}.pem"));
        std::fs::write(&file, root)?;
        let name = format!("test root {i}");
        run(&[
            "-A",
            "-d",
            &db,
            "-t",
            "C,,",
            "-n",
            &name,
            "-i",
            file.to_str().unwrap_or_default(),
        ])?;
    }
    Ok(())
}

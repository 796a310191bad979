//! The link stack on the real binaries: control (API, outbox relay,
//! snapshot push) and one engine following its changes, on a fresh
//! PostgreSQL database and a JetStream stream and subject of the test's own,
//! with signed changes, and the waits that make a test start from a stack
//! that serves. Tests that need more (click capture into ClickHouse through
//! the analytics sidecar, TLS, ACME, domains resolved to the engine) say so
//! in [`StackOptions`].

use crate::{Proc, run};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// How the stack differs from the plain one.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Prefix of the test database's name.
    pub prefix: &'static str,
    /// Control's API port (`127.0.0.1:0`: a free one).
    pub control_listen: String,
    /// The engine's redirect port (`127.0.0.1:0`: a free one).
    pub engine_listen: String,
    /// The engine's admin port; fixed when the engine is restarted and
    /// control must find it again.
    pub engine_admin: String,
    /// More `engine serve` flags.
    pub engine_args: Vec<String>,
    /// More `control serve` flags.
    pub control_args: Vec<String>,
    /// Names whose verification control fetches from the engine
    /// (`--verify-resolve NAME=ENGINE`); with any, control proves domains by
    /// that fetch (`--domain-verification http`: the tests have no DNS
    /// zone; control/tests/domain_dns.rs covers the TXT proof).
    pub resolve_to_engine: Vec<String>,
    /// Click capture on: a ClickHouse database of the test's own, the
    /// analytics sidecar (GeoIP from the test database) on a click stream of
    /// the test's own, the engine publishing to it (20 ms batches), control
    /// reading stats from it.
    pub clicks: bool,
    /// Control runs the outbox relay (`--nats`, signing changes); without
    /// it, changes reach the engine only in snapshots.
    pub relay: bool,
    /// More engines control pushes snapshots to (they may start later).
    pub extra_engine_admins: Vec<String>,
    /// The deployment's default domain (`--default-domain`, which control
    /// announces on the change stream at start); `None`: unnamed.
    pub default_domain: Option<&'static str>,
    /// The NATS servers every process is given (comma-separated, e.g. a
    /// `testkit::NatsCluster`'s); `None`: the shared server. The stream
    /// names stay the scope's own either way.
    pub nats_servers: Option<String>,
    /// Copies of the links and clicks streams (`--links-stream-replicas`,
    /// `--clicks-replicas`); `None`: the services' default (1).
    pub stream_replicas: Option<usize>,
}

impl StackOptions {
    pub fn new(prefix: &'static str) -> StackOptions {
        StackOptions {
            prefix,
            control_listen: "127.0.0.1:0".into(),
            engine_listen: "127.0.0.1:0".into(),
            engine_admin: "127.0.0.1:0".into(),
            engine_args: Vec::new(),
            control_args: Vec::new(),
            resolve_to_engine: Vec::new(),
            clicks: false,
            relay: true,
            extra_engine_admins: Vec::new(),
            default_domain: Some("sho.rt"),
            nats_servers: None,
            stream_replicas: None,
        }
    }
}

/// A running stack; everything is stopped and removed on drop.
pub struct Stack {
    /// `None` only inside [`Stack::restart_engine`].
    engine: Option<Proc>,
    pub control: Proc,
    pub http: reqwest::Client,
    pub pg: testkit::PgDatabase,
    pub nats: testkit::JetStreamScope,
    pub stream: String,
    pub subject: String,
    /// Visit lease requests go to `<lease_subject>.<node>` (the test's own).
    pub lease_subject: String,
    /// Control signs link changes with it; engines trust its public half.
    pub keys: testkit::LinkKeys,
    pub engine_dir: tempfile::TempDir,
    pub control_dir: tempfile::TempDir,
    /// With [`StackOptions::clicks`]: the clicks' database and the sidecar.
    pub clickhouse: Option<testkit::ClickHouseDatabase>,
    pub analytics: Option<Proc>,
    options: StackOptions,
    /// `engine serve` flags after the common ones (for restarts).
    engine_args: Vec<String>,
}

impl Stack {
    pub async fn start(options: StackOptions) -> Stack {
        testkit::require_services().await.unwrap();
        let pg = testkit::PgDatabase::create_with_prefix(options.prefix)
            .await
            .unwrap();
        let nats = testkit::JetStreamScope::connect().await.unwrap();
        let stream = nats.stream_name("LINKS");
        let subject = nats.subject("links.changes");
        let lease_subject = nats.subject("links.lease");
        let keys = testkit::LinkKeys::new().unwrap();
        let (engine_dir, control_dir) =
            (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let url = options
            .nats_servers
            .clone()
            .unwrap_or_else(testkit::nats_url);
        let replicas = options.stream_replicas.map(|n| n.to_string());
        let (mut engine_args, mut control_clicks) = (Vec::new(), Vec::new());
        let (clickhouse, analytics) = if options.clicks {
            let ch = testkit::ClickHouseDatabase::create_with_prefix(options.prefix)
                .await
                .unwrap();
            let (clicks_stream, prefix) = (nats.stream_name("CLICKS"), nats.subject("clicks"));
            let geoip = crate::clicks::geoip_fixture();
            let mut analytics_args = Vec::new();
            if let Some(n) = &replicas {
                analytics_args.extend(["--clicks-replicas", n.as_str()]);
            }
            let analytics = Proc::spawn(
                "analytics",
                &[
                    &[
                        "run",
                        "--nats",
                        &url,
                        "--clickhouse",
                        ch.url(),
                        "--database",
                        ch.name(),
                        "--metrics",
                        "127.0.0.1:0",
                        "--stream",
                        &clicks_stream,
                        "--subjects",
                        &format!("{prefix}.>"),
                        "--geoip",
                        geoip.to_str().unwrap(),
                    ][..],
                    &analytics_args,
                ]
                .concat(),
            )
            .await
            .unwrap();
            engine_args.extend(
                [
                    "--clicks-stream",
                    &clicks_stream,
                    "--clicks-subject-prefix",
                    &prefix,
                    "--node-id",
                    "e2e",
                    "--click-batch-age-ms",
                    "20",
                ]
                .map(str::to_owned),
            );
            control_clicks.extend(
                ["--clickhouse", ch.url(), "--clickhouse-database", ch.name()].map(str::to_owned),
            );
            (Some(ch), Some(analytics))
        } else {
            engine_args.push("--no-clicks".to_owned());
            (None, None)
        };
        engine_args.extend(["--lease-subject".to_owned(), lease_subject.clone()]);
        engine_args.extend(options.engine_args.iter().cloned());
        let engine = spawn_follower(
            None,
            &url,
            &options.engine_listen,
            &options.engine_admin,
            &stream,
            &subject,
            &keys,
            engine_dir.path(),
            &engine_args,
        )
        .await;
        let engine_admin = engine.ready["admin"].as_str().unwrap().to_owned();
        let signing_key = keys.signing_key();
        let mut args: Vec<String> = [
            "serve",
            "--listen",
            &options.control_listen,
            "--database-url",
            pg.url(),
            "--links-stream",
            &stream,
            "--links-subject",
            &subject,
            "--lease-subject",
            &lease_subject,
            // Control owns the stream (the engine never creates it).
            "--links-stream-adopt",
            "--short-base",
            "https://sho.rt",
            "--engine-admin",
            &engine_admin,
            "--snapshot-dir",
            control_dir.path().to_str().unwrap(),
            "--reconcile-interval-secs",
            "1",
            // Tests make bursts of calls with one key from one address.
            "--rate-per-key",
            "100000",
            "--burst-per-key",
            "100000",
            "--rate-per-ip",
            "100000",
            "--burst-per-ip",
            "100000",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        if let Some(domain) = options.default_domain {
            args.extend(["--default-domain".to_owned(), domain.to_owned()]);
        }
        if options.relay {
            args.extend(
                [
                    "--nats",
                    &url,
                    "--links-signing-key",
                    signing_key.to_str().unwrap(),
                ]
                .map(str::to_owned),
            );
            if let Some(n) = &replicas {
                args.extend(["--links-stream-replicas".to_owned(), n.clone()]);
            }
        }
        for admin in &options.extra_engine_admins {
            args.extend(["--engine-admin".to_owned(), admin.clone()]);
        }
        if !options.resolve_to_engine.is_empty() {
            args.extend(["--domain-verification".to_owned(), "http".to_owned()]);
        }
        for name in &options.resolve_to_engine {
            args.push("--verify-resolve".into());
            args.push(format!("{name}={}", engine.listen()));
        }
        args.extend(control_clicks);
        args.extend(options.control_args.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let control = Proc::spawn("control", &args).await.unwrap();
        let stack = Stack {
            engine: Some(engine),
            control,
            http,
            pg,
            nats,
            stream,
            subject,
            lease_subject,
            keys,
            engine_dir,
            control_dir,
            clickhouse,
            analytics,
            options,
            engine_args,
        };
        stack.wait_following(&engine_admin).await;
        stack
    }

    /// The NATS servers the processes were given.
    pub fn nats_url(&self) -> String {
        self.options
            .nats_servers
            .clone()
            .unwrap_or_else(testkit::nats_url)
    }

    /// The running engine.
    pub fn engine(&self) -> &Proc {
        self.engine.as_ref().expect("an engine runs between calls")
    }

    /// The engine's admin address.
    pub fn engine_admin(&self) -> String {
        self.engine().ready["admin"].as_str().unwrap().to_owned()
    }

    /// Waits until the engine at `admin` serves a snapshot and, with the
    /// relay, follows the change stream.
    pub async fn wait_following(&self, admin: &str) {
        let relay = self.options.relay;
        let readyz = format!("http://{admin}/readyz");
        testkit::wait_for(
            Duration::from_secs(15),
            Duration::from_millis(20),
            || async {
                match self.http.get(&readyz).send().await {
                    Ok(r) => r.json::<Value>().await.is_ok_and(|v| {
                        v["ready"] == true && (!relay || v["nats_connected"] == true)
                    }),
                    Err(_) => false,
                }
            },
        )
        .await
        .unwrap_or_else(|_| panic!("the engine at {admin} never served and followed"));
    }

    /// Kills the engine and starts it again on the same addresses (the
    /// admin one must be fixed in the options, so control finds it again),
    /// with its state in `state_dir` (the old one, or a fresh one: an engine
    /// that lost its state), and waits until it follows the stream again.
    pub async fn restart_engine(&mut self, state_dir: &Path) {
        let admin = self.options.engine_admin.clone();
        assert!(
            !admin.ends_with(":0"),
            "restart_engine needs StackOptions::engine_admin fixed"
        );
        if let Some(old) = self.engine.take() {
            old.kill().await.unwrap();
        }
        self.engine = Some(
            spawn_follower(
                None,
                &self.nats_url(),
                &self.options.engine_listen,
                &admin,
                &self.stream,
                &self.subject,
                &self.keys,
                state_dir,
                &self.engine_args,
            )
            .await,
        );
        self.wait_following(&admin).await;
    }

    /// Another engine following the stack's stream (with the stack's engine
    /// flags), its admin port at `admin`, its state in `state_dir`. Control
    /// pushes it snapshots only if its address is in
    /// [`StackOptions::extra_engine_admins`].
    pub async fn spawn_engine(&self, admin: &str, state_dir: &Path) -> Proc {
        self.spawn_engine_with(admin, state_dir, &[]).await
    }

    /// [`Stack::spawn_engine`] with more flags after the stack's.
    pub async fn spawn_engine_with(&self, admin: &str, state_dir: &Path, more: &[&str]) -> Proc {
        let mut args = self.engine_args.clone();
        args.extend(more.iter().map(|s| (*s).to_owned()));
        spawn_follower(
            None,
            &self.nats_url(),
            "127.0.0.1:0",
            admin,
            &self.stream,
            &self.subject,
            &self.keys,
            state_dir,
            &args,
        )
        .await
    }

    /// Another engine following the stack's stream from inside network
    /// namespace `ns`, as an edge node on a host of its own: redirects on
    /// port 80 and admin on [`NODE_ADMIN_PORT`] of the namespace's address,
    /// the stack's engine flags, then `more` (an admin address off loopback
    /// needs `--admin-token`). The stack's NATS servers and control must
    /// listen where the namespace reaches them (a host-side address).
    pub async fn spawn_engine_in(
        &self,
        ns: &testkit::NetNs,
        state_dir: &Path,
        more: &[&str],
    ) -> Proc {
        let mut args = self.engine_args.clone();
        args.extend(more.iter().map(|s| (*s).to_owned()));
        spawn_follower(
            Some(ns),
            &self.nats_url(),
            &format!("{}:80", ns.ip()),
            &node_admin(ns),
            &self.stream,
            &self.subject,
            &self.keys,
            state_dir,
            &args,
        )
        .await
    }

    /// `control keys create ARGS` on the stack's database: the key.
    pub async fn create_key(&self, args: &[&str]) -> String {
        let mut all = vec!["keys", "create"];
        all.extend_from_slice(args);
        all.extend(["--database-url", self.pg.url()]);
        run("control", &all).await.unwrap().trim().to_owned()
    }

    /// A call to control's API with `key`: the status and the JSON body
    /// (`Null` when the body is not JSON).
    pub async fn call(
        &self,
        key: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("http://{}{path}", self.control.listen()))
            .bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let r = request.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// What the engine answers for `path` under `host`: status, Location, body.
    pub async fn engine_get(&self, host: &str, path: &str) -> (u16, Option<String>, String) {
        self.get_from(&self.engine().listen(), host, path).await
    }

    /// What the engine at `addr` (any engine, e.g. one in a namespace)
    /// answers for `path` under `host`: status, Location, body.
    pub async fn get_from(
        &self,
        addr: &str,
        host: &str,
        path: &str,
    ) -> (u16, Option<String>, String) {
        let r = self
            .http
            .get(format!("http://{addr}{path}"))
            .header("host", host)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, location, r.text().await.unwrap_or_default())
    }
}

/// The admin port of an engine in a network namespace
/// ([`Stack::spawn_engine_in`]): fixed, since each namespace has its own
/// ports, so control can be told the address before the engine starts.
pub const NODE_ADMIN_PORT: u16 = 9100;

/// The admin address of the engine [`Stack::spawn_engine_in`] starts in `ns`.
pub fn node_admin(ns: &testkit::NetNs) -> String {
    format!("{}:{NODE_ADMIN_PORT}", ns.ip())
}

/// `engine serve` on one core following the stack's stream on `url` with
/// the stack's verify key, its state in `state_dir`, then `extra`.
#[allow(clippy::too_many_arguments)]
async fn spawn_follower(
    ns: Option<&testkit::NetNs>,
    url: &str,
    listen: &str,
    admin: &str,
    stream: &str,
    subject: &str,
    keys: &testkit::LinkKeys,
    state_dir: &Path,
    extra: &[String],
) -> Proc {
    let verify_key = keys.verify_key();
    let mut args: Vec<&str> = vec![
        "serve",
        "--listen",
        listen,
        "--admin",
        admin,
        "--nats",
        url,
        "--links-stream",
        stream,
        "--links-subject",
        subject,
        "--links-verify-key",
        verify_key.to_str().unwrap(),
        "--state-dir",
        state_dir.to_str().unwrap(),
    ];
    // One core unless the test asks for more.
    if !extra.iter().any(|a| a == "--cores") {
        args.extend(["--cores", "1"]);
    }
    args.extend(extra.iter().map(String::as_str));
    match ns {
        None => Proc::spawn("engine", &args).await.unwrap(),
        Some(ns) => Proc::spawn_in(ns, "engine", &args).await.unwrap(),
    }
}

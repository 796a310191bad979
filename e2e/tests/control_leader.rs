//! Several control instances on one PostgreSQL database: exactly one leads
//! (runs the outbox relay), all serve the API. The leader is SIGKILLed while
//! a client keeps creating links through another instance; another takes
//! over, and the links stream holds every change exactly once, in outbox
//! order, with no gap and no duplicate.

use e2e::{Proc, run};
use serde_json::{Value, json};
use snapshots::delta::{LinkChange, LinkDelta};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const INSTANCES: usize = 3;

struct Cluster {
    pg: testkit::PgDatabase,
    scope: testkit::JetStreamScope,
    stream: String,
    http: reqwest::Client,
    controls: Vec<Option<Proc>>,
    _dirs: Vec<tempfile::TempDir>,
    _keys: testkit::LinkKeys,
}

impl Cluster {
    async fn start() -> Cluster {
        testkit::require_services().await.unwrap();
        let pg = testkit::PgDatabase::create_with_prefix("e2e_leader")
            .await
            .unwrap();
        let scope = testkit::JetStreamScope::connect().await.unwrap();
        let stream = scope.stream_name("LINKS");
        let subject = scope.subject("links.changes");
        let keys = testkit::LinkKeys::new().unwrap();
        let signing_key = keys.signing_key();
        let url = testkit::nats_url();
        let mut controls = Vec::new();
        let mut dirs = Vec::new();
        for _ in 0..INSTANCES {
            let dir = tempfile::tempdir().unwrap();
            let control = Proc::spawn(
                "control",
                &[
                    "serve",
                    "--listen",
                    "127.0.0.1:0",
                    "--database-url",
                    pg.url(),
                    "--nats",
                    &url,
                    "--links-signing-key",
                    signing_key.to_str().unwrap(),
                    "--links-stream",
                    &stream,
                    "--links-subject",
                    &subject,
                    "--links-stream-adopt",
                    "--snapshot-dir",
                    dir.path().to_str().unwrap(),
                    "--leader-retry-ms",
                    "200",
                    "--rate-per-key",
                    "100000",
                    "--burst-per-key",
                    "100000",
                    "--rate-per-ip",
                    "100000",
                    "--burst-per-ip",
                    "100000",
                ],
            )
            .await
            .unwrap();
            controls.push(Some(control));
            dirs.push(dir);
        }
        Cluster {
            pg,
            scope,
            stream,
            http: reqwest::Client::new(),
            controls,
            _dirs: dirs,
            _keys: keys,
        }
    }

    fn listen(&self, i: usize) -> String {
        self.controls[i].as_ref().unwrap().listen()
    }

    /// Which running instances say they lead, from `/readyz`.
    async fn leaders(&self) -> Vec<usize> {
        let mut out = Vec::new();
        for i in 0..INSTANCES {
            if self.controls[i].is_none() {
                continue;
            }
            let readyz = self
                .http
                .get(format!("http://{}/readyz", self.listen(i)))
                .send()
                .await;
            if let Ok(r) = readyz
                && let Ok(v) = r.json::<Value>().await
                && v["leader"] == true
            {
                out.push(i);
            }
        }
        out
    }

    /// Waits until exactly one running instance leads; returns it.
    async fn the_leader(&self) -> usize {
        testkit::wait_for_some(
            Duration::from_secs(30),
            Duration::from_millis(50),
            || async {
                let leaders = self.leaders().await;
                (leaders.len() == 1).then(|| leaders[0])
            },
        )
        .await
        .expect("exactly one leader")
    }

    /// Every message of the stream: (stream sequence, Nats-Msg-Id, delta).
    async fn stream_messages(&self) -> Vec<(u64, String, LinkDelta)> {
        let mut stream = self
            .scope
            .jetstream()
            .get_stream(&self.stream)
            .await
            .unwrap();
        let state = stream.info().await.unwrap().state.clone();
        let mut out = Vec::new();
        for seq in state.first_sequence.max(1)..=state.last_sequence {
            let m = stream.get_raw_message(seq).await.unwrap();
            let id = m
                .headers
                .get(async_nats::header::NATS_MESSAGE_ID)
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default();
            out.push((seq, id, LinkDelta::decode(&m.payload).unwrap()));
        }
        out
    }
}

/// Creates links through `listen` until `stop`: every answer must be 201
/// (an instance that does not lead serves writes like the leader: the
/// outbox is in PostgreSQL). Returns the codes created.
async fn create_until(
    http: reqwest::Client,
    listen: String,
    key: String,
    stop: Arc<AtomicBool>,
) -> Vec<String> {
    let mut codes = Vec::new();
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        let r = http
            .post(format!("http://{listen}/v1/links"))
            .bearer_auth(&key)
            .json(&json!({ "target": format!("https://example.com/leader/{i}") }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("create {i}: {e}"));
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 201, "create {i}: {body}");
        codes.push(body["code"].as_str().unwrap().to_owned());
        i += 1;
    }
    codes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_hands_over_with_no_gap_and_no_duplicate_on_the_links_stream() {
    let mut cluster = Cluster::start().await;
    let leader = cluster.the_leader().await;
    let key = run(
        "control",
        &[
            "keys",
            "create",
            "--org",
            "acme",
            "--database-url",
            cluster.pg.url(),
        ],
    )
    .await
    .unwrap()
    .trim()
    .to_owned();
    // The client writes through an instance that does not lead (and
    // survives the kill).
    let writer = (leader + 1) % INSTANCES;
    let stop = Arc::new(AtomicBool::new(false));
    let client = tokio::spawn(create_until(
        cluster.http.clone(),
        cluster.listen(writer),
        key.clone(),
        stop.clone(),
    ));

    // Mid-stream: the leader has relayed some changes, more are coming.
    let pool = cluster.pg.pool().await.unwrap();
    let head = || async {
        sqlx::query_scalar::<_, i64>("SELECT seq FROM outbox_counter")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    testkit::wait_for(
        Duration::from_secs(30),
        Duration::from_millis(20),
        || async { head().await >= 40 },
    )
    .await
    .expect("40 changes written before the kill");
    let killed_at = Instant::now();
    cluster.controls[leader]
        .take()
        .unwrap()
        .kill()
        .await
        .unwrap();
    let successor = cluster.the_leader().await;
    let handover = killed_at.elapsed();
    assert_ne!(successor, leader);
    eprintln!("handover from instance {leader} to {successor} took {handover:?}");

    // Keep writing after the handover, then stop.
    let head_at_handover = head().await;
    testkit::wait_for(
        Duration::from_secs(30),
        Duration::from_millis(20),
        || async { head().await >= head_at_handover + 40 },
    )
    .await
    .expect("40 more changes after the handover");
    stop.store(true, Ordering::Relaxed);
    let codes = client.await.unwrap();

    // The new leader relays everything: the stream reaches the outbox head.
    let head = head().await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM link_outbox")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, head, "the outbox has every sequence 1..=head");
    testkit::wait_for_ok(
        Duration::from_secs(30),
        Duration::from_millis(50),
        || async {
            let mut stream = cluster
                .scope
                .jetstream()
                .get_stream(&cluster.stream)
                .await
                .map_err(|e| e.to_string())?;
            let last = stream
                .info()
                .await
                .map_err(|e| e.to_string())?
                .state
                .messages;
            if last >= head as u64 {
                Ok(())
            } else {
                Err(format!("{last} of {head} messages"))
            }
        },
    )
    .await
    .unwrap();

    // Exactly the outbox, in order: message n carries change n, once.
    let messages = cluster.stream_messages().await;
    assert_eq!(messages.len() as i64, head, "one message per change");
    for (n, (stream_seq, id, delta)) in messages.iter().enumerate() {
        let want = n as u64 + 1;
        assert_eq!(
            (delta.seq, id.as_str()),
            (want, want.to_string().as_str()),
            "stream message {stream_seq}"
        );
    }
    // Every link the client created is in it.
    let published: BTreeSet<&str> = messages
        .iter()
        .filter_map(|(_, _, d)| match &d.change {
            LinkChange::Upsert { link } => Some(link.code.as_str()),
            _ => None,
        })
        .collect();
    for code in &codes {
        assert!(published.contains(code.as_str()), "{code} not published");
    }
    assert!(codes.len() >= 80, "{} links created", codes.len());
    // Still exactly one leader among the survivors.
    assert_eq!(cluster.leaders().await, vec![successor]);
}

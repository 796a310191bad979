//! The sidecar owns the click stream's settings: an existing stream without
//! limits, or with other ones, stops it at start with the differences named,
//! unless `--adopt-stream` says to update the stream.

mod common;

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use async_nats::jetstream::stream;
use common::*;

/// Runs the sidecar to its exit (killed after 60 s); status code, stdout, stderr.
async fn run_to_exit(args: &[String]) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_analytics"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn analytics");
    let exited = testkit::wait_for_some(Duration::from_secs(60), Duration::from_millis(50), || {
        let status = child.try_wait().unwrap();
        async move { status }
    })
    .await;
    if exited.is_err() {
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code(), out, err)
}

async fn stream_config(env: &Env) -> stream::Config {
    let mut s = env.nats.jetstream().get_stream(&env.stream).await.unwrap();
    s.info().await.unwrap().config.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_without_limits_is_refused_unless_adopted() {
    let env = Env::new().await;
    // What a publisher creating the stream on its own would make: no max
    // age, no max bytes.
    env.nats
        .create_stream(stream::Config {
            name: env.stream.clone(),
            subjects: vec![env.subjects.clone()],
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .unwrap();
    env.publish("node-a", "before", batch("node-a", 1, 30))
        .await;

    let (code, out, err) = run_to_exit(&env.sidecar_args(env.ch.url())).await;
    assert_eq!(code, Some(1), "{err}");
    assert!(out.is_empty(), "no readiness line: {out}");
    assert!(
        err.contains(&format!(
            "stream {} exists with settings other than this sidecar's",
            env.stream
        )) && err.contains("it has no limits (max_age 0, max_bytes -1)")
            && err.contains("max_age 0s, want 259200s")
            && err.contains("--adopt-stream"),
        "{err}"
    );
    let untouched = stream_config(&env).await;
    assert_eq!(
        (untouched.max_age, untouched.max_bytes),
        (Duration::ZERO, -1)
    );

    let args = [
        env.sidecar_args(env.ch.url()),
        vec!["--adopt-stream".into()],
    ]
    .concat();
    let sidecar = Sidecar::start(&args, &[]);
    let adopted = stream_config(&env).await;
    assert_eq!(adopted.max_age, Duration::from_secs(72 * 3600));
    assert_eq!(adopted.max_bytes, TEST_MAX_BYTES);
    // Adopting keeps what was on the stream.
    env.publish("node-a", "after", batch("node-a", 2, 20)).await;
    env.settle_exactly(&sidecar, 50).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_with_other_limits_is_refused_and_its_own_is_kept() {
    let env = Env::new().await;
    // The sidecar's previous default: 7 days, no max bytes.
    let week = analytics::Config {
        clicks_max_age_secs: 7 * 24 * 3600,
        ..env.config()
    };
    let mut config = analytics::nats::stream_config(&week);
    config.max_bytes = -1;
    env.nats.create_stream(config).await.unwrap();
    let (code, _, err) = run_to_exit(&env.sidecar_args(env.ch.url())).await;
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("max_age 604800s, want 259200s")
            && err.contains(&format!("max_bytes -1, want {TEST_MAX_BYTES}"))
            && !err.contains("no limits"),
        "{err}"
    );

    // A stream the sidecar made itself is accepted as it is on restart.
    env.nats
        .jetstream()
        .delete_stream(&env.stream)
        .await
        .unwrap();
    let first = env.start_sidecar();
    drop(first);
    let second = env.start_sidecar();
    env.publish("node-a", "m", batch("node-a", 1, 10)).await;
    env.settle_exactly(&second, 10).await;
}

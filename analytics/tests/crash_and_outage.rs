//! The sidecar killed mid-run, and ClickHouse unreachable for a while: every
//! event is stored exactly once in the end.
//!
//! ClickHouse is shared with other tests, so it is never stopped: the sidecar
//! reaches it through a TCP proxy owned by the test, and the proxy is what
//! goes down.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_run_then_restart_counts_exactly_n() {
    let env = Env::new().await;
    env.create_stream().await;
    let (batches, per_batch) = (200u32, 500u32);
    for seed in 0..batches {
        env.publish(
            "node-a",
            &format!("m{seed}"),
            batch("node-a", seed, per_batch),
        )
        .await;
    }
    let n = u64::from(batches * per_batch);

    // A short ack_wait: the batches the killed sidecar held come back in
    // seconds instead of the default 30.
    let args = [
        env.sidecar_args(env.ch.url()),
        vec!["--ack-wait-secs".into(), "3".into()],
    ]
    .concat();
    let mut first = Sidecar::start(&args, &[]);
    testkit::wait_for(
        Duration::from_secs(30),
        Duration::from_millis(2),
        || async { env.rows().await > 0 },
    )
    .await
    .expect("first rows");
    first.kill();
    let at_kill = env.rows().await;
    eprintln!("killed with {at_kill} of {n} rows stored");
    assert!(
        at_kill < n,
        "the sidecar finished before it was killed; raise the event count"
    );

    let second = Sidecar::start(&args, &[]);
    env.settle_exactly(&second, n).await;
}

/// A TCP proxy that can be switched off (listener closed, connections cut)
/// and on again at the same address.
struct Proxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy {
            addr: listener.local_addr().unwrap(),
            upstream,
            tasks: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let tasks = self.tasks.clone();
        let upstream = self.upstream;
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let conn = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tasks.lock().unwrap().push(conn);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    fn stop(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    async fn restart(&self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_unreachable_then_back_loses_and_duplicates_nothing() {
    let env = Env::new().await;
    let upstream: SocketAddr = env
        .ch
        .url()
        .trim_start_matches("http://")
        .parse()
        .expect("TEST_CLICKHOUSE_URL as http://ip:port");
    let proxy = Proxy::start(upstream).await;
    let sidecar = Sidecar::start(&env.sidecar_args(&format!("http://{}", proxy.addr)), &[]);

    env.publish("node-a", "before", batch("node-a", 1, 100))
        .await;
    env.settle_exactly(&sidecar, 100).await;

    proxy.stop();
    env.publish("node-a", "during-1", batch("node-a", 2, 100))
        .await;
    env.publish("node-a", "during-2", batch("node-a", 3, 100))
        .await;
    testkit::wait_for(
        Duration::from_secs(30),
        Duration::from_millis(20),
        || async { sidecar.metric("analytics_batches_retried_total").await >= 1.0 },
    )
    .await
    .expect("the sidecar noticed ClickHouse was gone");
    // Nothing is acked while ClickHouse is away.
    sidecar
        .expect_metric("analytics_batches_acked_total", 1.0)
        .await;
    assert_eq!(env.rows().await, 100);

    proxy.restart().await;
    env.settle_exactly(&sidecar, 300).await;
    sidecar
        .expect_metric("analytics_batches_acked_total", 3.0)
        .await;
}

//! `NatsCluster`: three nodes that form one JetStream cluster, a stream on
//! three replicas that keeps its messages and takes new ones with its
//! leader killed, the node back in the cluster after a restart, and
//! nothing left running or on disk after the drop.

use async_nats::jetstream::{self, stream};
use std::net::TcpStream;
use std::time::Duration;
use testkit::{CLUSTER_SIZE, NatsCluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicated_stream_survives_its_leader_and_the_node_comes_back() {
    let mut cluster = tokio::task::block_in_place(NatsCluster::start).unwrap();
    assert_eq!(cluster.urls().split(',').count(), CLUSTER_SIZE);
    let js = jetstream::new(cluster.connect().await.unwrap());
    let mut stream = js
        .create_stream(stream::Config {
            name: "R3".into(),
            subjects: vec!["r3.>".into()],
            num_replicas: 3,
            ..Default::default()
        })
        .await
        .unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(info.config.num_replicas, 3);
    assert_eq!(info.cluster.as_ref().unwrap().replicas.len(), 2);
    js.publish("r3.a", "before".into())
        .await
        .unwrap()
        .await
        .unwrap();

    let leader = NatsCluster::stream_leader(&js, "R3")
        .await
        .unwrap()
        .expect("a leader");
    tokio::task::block_in_place(|| cluster.kill(leader));
    assert!(!cluster.is_running(leader));
    // A publish is acknowledged once the survivors have elected a leader.
    testkit::wait_for_ok(
        Duration::from_secs(60),
        Duration::from_millis(100),
        || async {
            let ack = js.publish("r3.a", "during".into()).await?;
            ack.await.map(drop).map_err(anyhow::Error::from)
        },
    )
    .await
    .unwrap();
    let new_leader = NatsCluster::stream_leader(&js, "R3").await.unwrap();
    assert!(new_leader.is_some_and(|n| n != leader), "{new_leader:?}");

    tokio::task::block_in_place(|| cluster.restart(leader)).unwrap();
    assert!(cluster.is_running(leader));
    // The restarted node catches up: every replica current again.
    testkit::wait_for_ok(
        Duration::from_secs(60),
        Duration::from_millis(100),
        || async {
            let mut stream = js.get_stream("R3").await.map_err(|e| e.to_string())?;
            let info = stream.info().await.map_err(|e| e.to_string())?;
            let peers = &info.cluster.as_ref().ok_or("no cluster info")?.replicas;
            match (
                info.state.messages,
                peers.iter().all(|p| p.current && !p.offline),
            ) {
                (n, true) if n >= 2 && peers.len() == 2 => Ok(()),
                other => Err(format!("{other:?} {peers:?}")),
            }
        },
    )
    .await
    .unwrap();

    let (dir, url) = (cluster.dir().to_owned(), cluster.url(leader));
    drop(cluster);
    assert!(!dir.exists(), "{} left behind", dir.display());
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

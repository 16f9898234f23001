//! Redis Cluster (3 masters on loopback): the store through `redis+cluster://`,
//! including rotation, which cannot RENAME across slots and takes the
//! take-then-write path instead.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use std::process::Command;
use std::time::Duration;

use stackd_session::{open_store, Op, SessionId, Ttl, WriteMode, Written};
use stackd_testkit::http::Browser;
use stackd_testkit::redis::{command as raw, RedisProc};
use support::backend::{config, Backend};
use tokio::time::Instant;

fn ttl() -> Ttl {
    Ttl::new(Duration::from_secs(60)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_and_demo_work_on_a_cluster() {
    let nodes: Vec<RedisProc> = (0..3).map(|_| RedisProc::cluster_node()).collect();
    let addrs: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port))
        .collect();
    let out = Command::new("redis-cli")
        .arg("--cluster")
        .arg("create")
        .args(&addrs)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("redis-cli (apt-get install redis-tools)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !nodes.iter().all(|n| {
        let mut c = n.client();
        redis::cmd("CLUSTER")
            .arg("INFO")
            .query::<String>(&mut c)
            .is_ok_and(|i| i.contains("cluster_state:ok"))
    }) {
        assert!(Instant::now() < deadline, "cluster not ok after 20s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(raw(nodes[0].port, "PING").unwrap(), "+PONG");

    let url = format!("redis+cluster://{}", addrs.join(","));
    let store = open_store(&url, "stackd:session:", Duration::from_secs(2)).unwrap();
    store.ping().await.unwrap();

    // Ids spread over slots on all three masters; increments still add up.
    let ids: Vec<SessionId> = (0..12).map(|_| SessionId::generate()).collect();
    for id in &ids {
        let w = store
            .write(
                id,
                &[Op::Incr {
                    field: "n".into(),
                    by: 2,
                }],
                WriteMode::Create,
                ttl(),
            )
            .await
            .unwrap();
        assert!(matches!(w, Written::Saved(_)));
        store
            .write(
                id,
                &[Op::Incr {
                    field: "n".into(),
                    by: 1,
                }],
                WriteMode::Update,
                ttl(),
            )
            .await
            .unwrap();
        assert_eq!(store.load(id, ttl()).await.unwrap().unwrap()["n"], "3");
    }
    let keys_per_node: Vec<i64> = nodes
        .iter()
        .map(|n| redis::cmd("DBSIZE").query(&mut n.client()).unwrap())
        .collect();
    println!("keys per cluster node: {keys_per_node:?}");
    assert!(
        keys_per_node.iter().filter(|k| **k > 0).count() >= 2,
        "{keys_per_node:?}"
    );

    // Rotation across slots.
    let (from, to) = (&ids[0], SessionId::generate());
    let w = store
        .rotate(
            from,
            &to,
            &[Op::Set {
                field: "user".into(),
                value: "\"ann\"".into(),
            }],
            ttl(),
        )
        .await
        .unwrap();
    let Written::Saved(r) = w else {
        panic!("{w:?}")
    };
    assert_eq!((r["n"].as_str(), r["user"].as_str()), ("3", "\"ann\""));
    assert_eq!(store.load(from, ttl()).await.unwrap(), None);
    assert_eq!(
        store
            .rotate(from, &SessionId::generate(), &[], ttl())
            .await
            .unwrap(),
        Written::Missing
    );

    // The demo backend end to end on the cluster.
    let be = Backend::start(config(
        "nodeA",
        &url,
        Duration::from_secs(60),
        Duration::from_secs(2),
    ))
    .await;
    let mut b = Browser::new();
    for i in 1..=3 {
        assert_eq!(
            b.get(be.addr, "/session").await.unwrap().json()["visits"],
            i
        );
    }
    let v = b
        .post_json(be.addr, "/login", r#"{"user":"ann"}"#)
        .await
        .unwrap()
        .json();
    assert_eq!(
        (v["visits"].as_i64(), v["user"].as_str()),
        (Some(3), Some("ann"))
    );
    assert_eq!(b.get(be.addr, "/healthz").await.unwrap().status, 200);
}

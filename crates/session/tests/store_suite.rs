//! One suite of store semantics, run on [`MemoryStore`] and on a real
//! `redis-server` started by the harness (not optional, not env-gated).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod support;

use std::sync::Arc;
use std::time::Duration;

use stackd_session::{
    open_store, Op, SessionId, SessionStore, StoreError, Ttl, WriteMode, Written,
};

fn ttl(secs: u64) -> Ttl {
    Ttl::new(Duration::from_secs(secs)).unwrap()
}

fn set(f: &str, v: &str) -> Op {
    Op::Set {
        field: f.into(),
        value: v.into(),
    }
}

fn incr(f: &str, by: i64) -> Op {
    Op::Incr {
        field: f.into(),
        by,
    }
}

fn saved(w: Written) -> stackd_session::Record {
    match w {
        Written::Saved(r) => r,
        other => panic!("expected Saved, got {other:?}"),
    }
}

async fn create_and_update_modes(s: Arc<dyn SessionStore>) {
    let id = SessionId::generate();
    assert_eq!(s.load(&id, ttl(60)).await.unwrap(), None);
    assert_eq!(
        s.write(&id, &[set("a", "1")], WriteMode::Update, ttl(60))
            .await
            .unwrap(),
        Written::Missing
    );
    let r = saved(
        s.write(
            &id,
            &[set("a", "1"), set("b", "\"x\"")],
            WriteMode::Create,
            ttl(60),
        )
        .await
        .unwrap(),
    );
    assert_eq!(r.get("b").map(String::as_str), Some("\"x\""));
    assert_eq!(
        s.write(&id, &[set("a", "2")], WriteMode::Create, ttl(60))
            .await
            .unwrap(),
        Written::Exists
    );
    let r = saved(
        s.write(
            &id,
            &[Op::Del { field: "b".into() }, incr("a", 5)],
            WriteMode::Update,
            ttl(60),
        )
        .await
        .unwrap(),
    );
    assert_eq!(r.len(), 1);
    assert_eq!(r["a"], "6");
    assert_eq!(s.load(&id, ttl(60)).await.unwrap(), Some(r));
}

async fn failed_increment_writes_nothing(s: Arc<dyn SessionStore>) {
    let id = SessionId::generate();
    saved(
        s.write(&id, &[set("word", "\"hi\"")], WriteMode::Create, ttl(60))
            .await
            .unwrap(),
    );
    let e = s
        .write(
            &id,
            &[set("other", "1"), incr("word", 1)],
            WriteMode::Update,
            ttl(60),
        )
        .await;
    assert!(matches!(e, Err(StoreError::Command(_))), "{e:?}");
    let r = s.load(&id, ttl(60)).await.unwrap().unwrap();
    assert!(!r.contains_key("other"), "all or nothing: {r:?}");
}

async fn ttl_is_set_slid_and_expires(s: Arc<dyn SessionStore>) {
    let id = SessionId::generate();
    assert!(!s.touch(&id, ttl(60)).await.unwrap());
    saved(
        s.write(&id, &[set("a", "1")], WriteMode::Create, ttl(100))
            .await
            .unwrap(),
    );
    let left = s.ttl(&id).await.unwrap().unwrap();
    assert!(
        left > Duration::from_secs(95) && left <= Duration::from_secs(100),
        "{left:?}"
    );
    assert!(s.touch(&id, ttl(1)).await.unwrap());
    assert!(s.ttl(&id).await.unwrap().unwrap() <= Duration::from_secs(1));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(s.ttl(&id).await.unwrap(), None);
    assert_eq!(s.load(&id, ttl(60)).await.unwrap(), None);
}

async fn rotation_moves_atomically(s: Arc<dyn SessionStore>) {
    let (a, b, c) = (
        SessionId::generate(),
        SessionId::generate(),
        SessionId::generate(),
    );
    assert_eq!(
        s.rotate(&a, &b, &[], ttl(60)).await.unwrap(),
        Written::Missing
    );
    saved(
        s.write(&a, &[set("u", "1")], WriteMode::Create, ttl(60))
            .await
            .unwrap(),
    );
    saved(
        s.write(&c, &[set("u", "2")], WriteMode::Create, ttl(60))
            .await
            .unwrap(),
    );
    assert_eq!(
        s.rotate(&a, &c, &[], ttl(60)).await.unwrap(),
        Written::Exists
    );
    let r = saved(
        s.rotate(&a, &b, &[set("user", "\"ann\"")], ttl(30))
            .await
            .unwrap(),
    );
    assert_eq!((r["u"].as_str(), r["user"].as_str()), ("1", "\"ann\""));
    assert_eq!(s.load(&a, ttl(60)).await.unwrap(), None);
    assert!(s.ttl(&b).await.unwrap().unwrap() <= Duration::from_secs(30));
}

async fn destroy_and_ping(s: Arc<dyn SessionStore>) {
    s.ping().await.unwrap();
    let id = SessionId::generate();
    saved(
        s.write(&id, &[set("a", "1")], WriteMode::Create, ttl(60))
            .await
            .unwrap(),
    );
    assert!(s.destroy(&id).await.unwrap());
    assert!(!s.destroy(&id).await.unwrap());
    assert_eq!(s.load(&id, ttl(60)).await.unwrap(), None);
}

async fn concurrent_writers_lose_nothing(s: Arc<dyn SessionStore>) {
    let id = SessionId::generate();
    saved(
        s.write(&id, &[incr("n", 0)], WriteMode::Create, ttl(60))
            .await
            .unwrap(),
    );
    let tasks: Vec<_> = (0..4)
        .map(|t| {
            let (s, id) = (s.clone(), id.clone());
            tokio::spawn(async move {
                for i in 0..50 {
                    let ops = [incr("n", 1), set(&format!("t{t}"), &i.to_string())];
                    saved(
                        s.write(&id, &ops, WriteMode::Update, ttl(60))
                            .await
                            .unwrap(),
                    );
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let r = s.load(&id, ttl(60)).await.unwrap().unwrap();
    assert_eq!(r["n"], "200");
    assert!((0..4).all(|t| r[&format!("t{t}")] == "49"), "{r:?}");
}

macro_rules! store_suite {
    ($($test:ident),*) => {
        mod memory {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                super::$test(open_store("memory://", "t:", Duration::from_secs(2)).unwrap()).await;
            })*
        }
        mod redis {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                let server = stackd_testkit::redis::RedisProc::server();
                let store = open_store(&server.url(), "t:", Duration::from_secs(2)).unwrap();
                super::$test(store).await;
                drop(server);
            })*
        }
    };
}

store_suite!(
    create_and_update_modes,
    failed_increment_writes_nothing,
    ttl_is_set_slid_and_expires,
    rotation_moves_atomically,
    destroy_and_ping,
    concurrent_writers_lose_nothing
);

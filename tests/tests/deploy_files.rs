//! The files in deploy/ work together: redis-server runs the shipped
//! redis.conf (port and bind moved to loopback), `stackd demo-backend` runs
//! the shipped be1.toml (addresses and /etc/stackd moved to a scratch dir),
//! and a browser reads and writes a session through them. Before this test
//! the backends logged in as Redis' default user, which the shipped
//! redis.conf disables.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use stackd_testkit::http::Browser;
use stackd_testkit::process::stackd;
use stackd_testkit::redis::{command, RedisProc};
use stackd_testkit::{free_addr, stackd_bin, wait_until, Guard};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// `deploy/hosts/<host>.toml` with /etc/stackd/ moved to `etc` (where the
/// password files install.sh writes are created, mode 0640) and `edits` applied.
fn shipped(host: &str, etc: &Path, edits: &[(&str, &str)]) -> PathBuf {
    let mut text = std::fs::read_to_string(deploy().join(format!("hosts/{host}.toml"))).unwrap();
    text = text.replace("/etc/stackd/", &format!("{}/", etc.display()));
    for (from, to) in edits {
        assert!(text.contains(from), "{host}.toml no longer has {from:?}");
        text = text.replace(from, to);
    }
    // The package installs deploy/notify.sh as /etc/stackd/notify.sh.
    std::fs::copy(deploy().join("notify.sh"), etc.join("notify.sh")).unwrap();
    std::fs::set_permissions(
        etc.join("notify.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    for (file, secret) in [("redis.pass", "change-me\n"), ("vrrp.pass", "1111\n")] {
        let p = etc.join(file);
        std::fs::write(&p, secret).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    let path = etc.join(format!("{host}.toml"));
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    path
}

fn check(path: &Path) -> (i32, String) {
    let r = stackd(["check".as_ref(), "--config".as_ref(), path.as_os_str()]);
    (r.code, r.output())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_redis_conf_and_be1_toml_serve_sessions_together() {
    let redis = RedisProc::with_config(&deploy().join("redis/redis.conf"), &[]);
    assert!(
        command(redis.port, "PING").unwrap().starts_with("-NOAUTH"),
        "the default user is off, as shipped"
    );
    let etc = tempfile::tempdir().unwrap();
    let listen = free_addr();
    let cfg = shipped(
        "be1",
        etc.path(),
        &[
            ("192.168.50.140:6379", &format!("127.0.0.1:{}", redis.port)),
            ("0.0.0.0:8080", &listen.to_string()),
        ],
    );
    let (code, out) = check(&cfg);
    assert_eq!(code, 0, "{out}");
    assert!(
        !out.contains("warning"),
        "no secret is world-readable: {out}"
    );

    let mut be = Guard::spawn_logged(
        "demo-backend",
        Command::new(stackd_bin())
            .args(["demo-backend", "--config"])
            .arg(&cfg),
        &etc.path().join("be1.log"),
    );
    wait_until("be1 answers /healthz 200", Duration::from_secs(10), || {
        stackd_testkit::http::get(listen, "/healthz").is_ok_and(|r| r.status == 200)
    });

    let mut browser = Browser::new();
    for visit in 1..=3 {
        let r = browser.get(listen, "/session").await.unwrap();
        assert_eq!(r.status, 200, "{}\n{}", r.body, be.log());
        assert_eq!(r.json()["visits"], visit, "{}", r.body);
    }
    let r = browser
        .post_json(listen, "/login", r#"{"user":"ann"}"#)
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.json()["user"].as_str()),
        (200, Some("ann")),
        "{}",
        r.body
    );
    let id = stackd_testkit::http::session_base(&r.json());

    // In Redis, as the ACL user the backends use: the hash, with its TTL.
    let client = redis::Client::open(format!(
        "redis://stackd:change-me@127.0.0.1:{}/0",
        redis.port
    ))
    .unwrap();
    let mut conn = client
        .get_connection_with_timeout(Duration::from_secs(2))
        .unwrap();
    let key = format!("stackd:session:{id}");
    let user: String = redis::cmd("HGET")
        .arg(&key)
        .arg("d:user")
        .query(&mut conn)
        .unwrap();
    let ttl: i64 = redis::cmd("TTL").arg(&key).query(&mut conn).unwrap();
    assert_eq!(user, "\"ann\"");
    assert!((1700..=1800).contains(&ttl), "session_ttl 1800s, got {ttl}");
    assert!(
        !be.log().contains("change-me"),
        "the password never reaches the log"
    );
    be.signal(stackd_testkit::process::Signal::SIGTERM);
    assert!(be
        .wait_exit(Duration::from_secs(15))
        .is_some_and(|s| s.success()));
}

#[test]
fn every_shipped_host_file_passes_check_with_its_secret_files_in_place() {
    let etc = tempfile::tempdir().unwrap();
    for host in ["px1", "px2", "be1", "be2"] {
        let cfg = shipped(host, etc.path(), &[]);
        let (code, out) = check(&cfg);
        assert_eq!(code, 0, "{host}: {out}");
        assert!(out.contains(": ok ("), "{out}");
        assert!(!out.contains("warning"), "{host}: {out}");
    }
    // A world-readable password file is pointed out, with its key.
    let pass = etc.path().join("vrrp.pass");
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, out) = check(&etc.path().join("px1.toml"));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("warning:")
            && out.contains("ha.instance[0].auth_pass_file")
            && out.contains("mode 0644"),
        "{out}"
    );
}

//! SASL DIGEST-MD5 against a real 3-node ZooKeeper 3.8 ensemble whose servers authenticate
//! with JAAS `DigestLoginModule` and *enforce* it (`enforce.auth.enabled=true`,
//! `enforce.auth.schemes=sasl`): a request that reached a server before SASL was done would be
//! answered `SessionClosedRequireSaslAuth` and end the session, so every test that keeps its
//! session also proves that nothing overtook SASL after a reconnect.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{ensemble_with, fired, identities, run, sasl_client};
use zk_client::{Acl, Client, CreateMode, Error, EventType, Id, SessionState, acl, perms};
use zk_testkit::{Ensemble, SaslServer};

static ENS: OnceLock<Ensemble> = OnceLock::new();
/// Tests that kill or freeze a server take turns (two at once would take the quorum).
static FAULTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn ens() -> &'static Ensemble {
    ensemble_with(&ENS, || {
        Ensemble::builder().nodes(3).sasl(
            SaslServer::digest(&[("bob", "bob-secret"), ("alice", "alice-secret")]).enforce(true),
        )
    })
}

async fn digest(user: &str, password: &str) -> Result<Client, Error> {
    let mech = std::sync::Arc::new(zk_client::DigestMd5::new(user, password));
    sasl_client(&ens().connect_string(), mech).await
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn sasl_digest_ok() {
    let ens = ens();
    run(Duration::from_secs(120), async move {
        let c = digest("bob", "bob-secret").await.unwrap();
        assert_eq!(c.state(), SessionState::Connected);
        let ids = identities(&c).await;
        assert!(ids.contains(&("sasl".into(), "bob".into())), "{ids:?}");
        c.create("/sasl-ok", "x", &acl::open_unsafe(), CreateMode::Ephemeral)
            .await
            .unwrap();
        assert!(c.exists("/sasl-ok").await.unwrap().is_some());
        // The password is nowhere in what Debug shows.
        let shown = format!(
            "{:?}",
            Client::builder(&ens.connect_string()).sasl_digest("bob", "bob-secret")
        );
        assert!(!shown.contains("bob-secret"), "{shown}");
        c.close().await;
    });
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn sasl_digest_wrong_password() {
    ens();
    run(Duration::from_secs(120), async move {
        let t0 = Instant::now();
        let err = digest("bob", "not-bobs").await.unwrap_err();
        assert!(matches!(err, Error::AuthFailed), "{err:?}");
        // Typed and at once, not after the connect timeout.
        assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
    });
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn sasl_digest_unknown_user() {
    ens();
    run(Duration::from_secs(120), async move {
        let err = digest("mallory", "whatever").await.unwrap_err();
        assert!(matches!(err, Error::AuthFailed), "{err:?}");
    });
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn sasl_required_but_not_configured() {
    let ens = ens();
    run(Duration::from_secs(120), async move {
        // The server enforces SASL: a client without it gets a typed error, not a loop of
        // reconnects.
        let c = Client::builder(&ens.connect_string())
            .session_timeout(Duration::from_secs(4))
            .connect_timeout(Duration::from_secs(30))
            .connect()
            .await;
        match c {
            Err(Error::AuthFailed) => {}
            Ok(c) => {
                let err = c.exists("/").await.unwrap_err();
                assert!(matches!(err, Error::AuthFailed), "{err:?}");
                assert_eq!(c.state(), SessionState::AuthFailed);
            }
            Err(other) => panic!("{other:?}"),
        }
    });
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn sasl_acl() {
    ens();
    run(Duration::from_secs(120), async move {
        let bob = digest("bob", "bob-secret").await.unwrap();
        let alice = digest("alice", "alice-secret").await.unwrap();
        let only_bob = [Acl {
            perms: perms::ALL,
            id: Id {
                scheme: "sasl".into(),
                id: "bob".into(),
            },
        }];
        let _ = bob.delete("/sasl-acl", -1).await;
        bob.create("/sasl-acl", "bob's", &only_bob, CreateMode::Persistent)
            .await
            .unwrap();
        assert_eq!(&bob.get_data("/sasl-acl").await.unwrap().0[..], b"bob's");
        let err = alice.get_data("/sasl-acl").await.unwrap_err();
        assert!(matches!(err, Error::NoAuth), "{err:?}");
        let (acl, _) = bob.get_acl("/sasl-acl").await.unwrap();
        assert_eq!(acl, only_bob);
        bob.delete("/sasl-acl", -1).await.unwrap();
    });
}

/// The session's server dies (`kill -9`, or `SIGSTOP` when `freeze`): the session, its
/// identity, its ephemeral node and its watch survive, and requests queued during the
/// failover wait for SASL (the servers enforce it: one that overtook SASL would end the
/// session).
async fn failover_keeps_identity(freeze: bool) {
    let ens = ens();
    let _turn = FAULTS.lock().await;
    ens.heal().await.unwrap();
    ens.wait_serving(Duration::from_secs(60)).await.unwrap();
    let name = if freeze { "freeze" } else { "kill" };
    let path = format!("/sasl-failover-{name}");
    let c = digest("bob", "bob-secret").await.unwrap();
    let id = c.session_id();
    c.create(&path, "mine", &acl::open_unsafe(), CreateMode::Ephemeral)
        .await
        .unwrap();
    let (_, _, watcher) = c.get_data_watch(&path).await.unwrap();
    let on = ens.node_for_addr(c.server().unwrap()).unwrap();
    if freeze {
        ens.node(on).freeze();
    } else {
        ens.node(on).kill().unwrap();
    }
    // Queued while the session moves: all must succeed once it is back.
    let mut queued = Vec::new();
    for _ in 0..20 {
        let c = c.clone();
        let path = path.clone();
        queued.push(tokio::spawn(async move { c.exists(&path).await }));
    }
    for q in queued {
        let stat = q.await.unwrap().unwrap();
        assert!(stat.is_some(), "the ephemeral node survives");
    }
    assert_eq!(c.state(), SessionState::Connected);
    assert_eq!(c.session_id(), id, "same session");
    assert_ne!(ens.node_for_addr(c.server().unwrap()), Some(on));
    let ids = identities(&c).await;
    assert!(ids.contains(&("sasl".into(), "bob".into())), "{ids:?}");
    // The watch was re-registered after SASL.
    let other = digest("alice", "alice-secret").await.unwrap();
    other.set_data(&path, "changed", -1).await.unwrap();
    let ev = fired(watcher, Duration::from_secs(20)).await;
    assert_eq!(ev.event_type, EventType::NodeDataChanged);
    let counters = c.counters().session;
    assert!(counters.reconnects >= 1);
    eprintln!(
        "SASL failover ({name}): pause {:?}, attempts {}",
        counters.last_pause, counters.attempts
    );
    c.close().await;
    if freeze {
        ens.node(on).thaw();
    }
    ens.heal().await.unwrap();
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn sasl_failover_kill() {
    run(Duration::from_secs(180), failover_keeps_identity(false));
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn sasl_failover_sigstop() {
    run(Duration::from_secs(180), failover_keeps_identity(true));
}

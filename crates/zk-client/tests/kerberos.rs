//! SASL GSSAPI (Kerberos) against a real 3-node ZooKeeper 3.8 ensemble whose servers accept
//! Kerberos (JAAS `Krb5LoginModule` with a keytab) and enforce SASL, and a throwaway MIT KDC
//! (Debian's `krb5-kdc`) that the test kit starts in a temp dir and kills with the binary.
//!
//! Kerberos takes its settings from the environment: `KRB5_CONFIG` (the KDC's `krb5.conf`),
//! `KRB5_CLIENT_KTNAME` (the client principal's keytab) and `KRB5CCNAME` (a `DIR:` ticket
//! cache collection, so several principals' tickets can live side by side). They are set once,
//! before anything in this process calls into krb5.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod common;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::{ensemble_with, identities, run, sasl_client};
use zk_client::gssapi::Gssapi;
use zk_client::{Client, CreateMode, Error, SessionState, acl};
use zk_testkit::{Ensemble, Kdc, SaslServer};

static ENS: OnceLock<Ensemble> = OnceLock::new();
static KDC: OnceLock<std::sync::Mutex<Kdc>> = OnceLock::new();
/// The tests take turns: one stops the KDC, two take a server away.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn kdc() -> &'static std::sync::Mutex<Kdc> {
    KDC.get_or_init(|| {
        let kdc = Kdc::start().expect("start the KDC");
        let env = kdc.client_env().unwrap();
        #[allow(unsafe_code, reason = "set once, before any thread calls into krb5")]
        // SAFETY: this runs inside `OnceLock::get_or_init` before the first test reaches krb5;
        // the other test threads only read the environment through std (which locks).
        unsafe {
            for (k, v) in env {
                std::env::set_var(k, v);
            }
        }
        std::sync::Mutex::new(kdc)
    })
}

fn lock_kdc() -> std::sync::MutexGuard<'static, Kdc> {
    kdc()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn ens() -> &'static Ensemble {
    let sasl = SaslServer::kerberos(&lock_kdc()).enforce(true);
    ensemble_with(&ENS, || Ensemble::builder().nodes(3).sasl(sasl))
}

/// The servers as `localhost:<port>`: the server principal is `zookeeper/localhost`.
fn connect_string() -> String {
    ens()
        .nodes()
        .iter()
        .map(|n| format!("localhost:{}", n.client_addr().port()))
        .collect::<Vec<_>>()
        .join(",")
}

async fn connect(mech: Gssapi) -> Result<Client, Error> {
    sasl_client(&connect_string(), Arc::new(mech)).await
}

/// A new principal `name` with a ticket (valid for `lifetime`) in the client's cache
/// collection, and no key in the client keytab.
fn kinit_without_keytab(name: &str, lifetime: Option<Duration>) {
    let kdc = lock_kdc();
    kdc.add_principal(name, "secret-of-a-user").unwrap();
    let kt = kdc.dir().join(format!("{name}.keytab"));
    kdc.keytab(name, &kt).unwrap();
    kdc.kinit(name, &kt, &kdc.ccache(), lifetime).unwrap();
    std::fs::remove_file(&kt).unwrap();
}

fn as_client() -> Gssapi {
    Gssapi::new().client_principal(Kdc::CLIENT)
}

#[test]
#[ignore = "needs Java, ZooKeeper and krb5-kdc: run with -- --include-ignored (scripts/test-all.sh does)"]
fn kerberos_keytab_ok() {
    let _turn = serial();
    ens();
    run(Duration::from_secs(120), async move {
        let c = connect(as_client()).await.unwrap();
        let ids = identities(&c).await;
        assert!(
            ids.contains(&("sasl".into(), Kdc::CLIENT.into())),
            "{ids:?}"
        );
        c.create("/krb", "x", &acl::open_unsafe(), CreateMode::Ephemeral)
            .await
            .unwrap();
        c.close().await;
    });
}

#[test]
#[ignore = "needs Java, ZooKeeper and krb5-kdc: run with -- --include-ignored (scripts/test-all.sh does)"]
fn kerberos_ticket_cache_ok() {
    let _turn = serial();
    ens();
    // alice's key is not in the client keytab: only her ticket in the cache can work.
    kinit_without_keytab("alice", None);
    run(Duration::from_secs(120), async move {
        let c = connect(Gssapi::new().client_principal("alice@EXAMPLE.COM"))
            .await
            .unwrap();
        let ids = identities(&c).await;
        assert!(
            ids.contains(&("sasl".into(), "alice@EXAMPLE.COM".into())),
            "{ids:?}"
        );
        c.close().await;
    });
}

#[test]
#[ignore = "needs Java, ZooKeeper and krb5-kdc: run with -- --include-ignored (scripts/test-all.sh does)"]
fn kerberos_expired_ticket() {
    let _turn = serial();
    ens();
    kinit_without_keytab("bob", Some(Duration::from_secs(2)));
    // Past the ticket's end and the 2 s clock skew krb5.conf allows.
    std::thread::sleep(Duration::from_secs(6));
    run(Duration::from_secs(120), async move {
        let t0 = Instant::now();
        let err = connect(Gssapi::new().client_principal("bob@EXAMPLE.COM"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::AuthFailed), "{err:?}");
        assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    });
}

#[test]
#[ignore = "needs Java, ZooKeeper and krb5-kdc: run with -- --include-ignored (scripts/test-all.sh does)"]
fn kerberos_wrong_realm() {
    let _turn = serial();
    ens();
    run(Duration::from_secs(120), async move {
        let err = connect(Gssapi::new().client_principal("client@WRONG.EXAMPLE"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::AuthFailed), "{err:?}");
    });
}

/// The session's server goes away (`kill -9` with the KDC stopped first, or `SIGSTOP`): the
/// session, its identity and its ephemeral node survive, and requests queued during the
/// failover succeed (the servers enforce SASL: one that overtook it would end the session).
/// With the KDC down, the service ticket for the next server was obtained ahead of need.
async fn failover_keeps_identity(kdc_down_and_kill: bool) {
    let ens = ens();
    ens.heal().await.unwrap();
    ens.wait_serving(Duration::from_secs(60)).await.unwrap();
    let c = connect(as_client()).await.unwrap();
    let id = c.session_id();
    let path = format!("/krb-failover-{kdc_down_and_kill}");
    c.create(&path, "x", &acl::open_unsafe(), CreateMode::Ephemeral)
        .await
        .unwrap();
    let on = ens.node_for_addr(c.server().unwrap()).unwrap();
    if kdc_down_and_kill {
        lock_kdc().stop();
        ens.node(on).kill().unwrap();
    } else {
        ens.node(on).freeze();
    }
    let mut queued = Vec::new();
    for _ in 0..10 {
        let (c, path) = (c.clone(), path.clone());
        queued.push(tokio::spawn(async move { c.exists(&path).await }));
    }
    for q in queued {
        assert!(q.await.unwrap().unwrap().is_some());
    }
    assert_eq!(c.state(), SessionState::Connected);
    assert_eq!(c.session_id(), id);
    assert_ne!(ens.node_for_addr(c.server().unwrap()), Some(on));
    let ids = identities(&c).await;
    assert!(
        ids.contains(&("sasl".into(), Kdc::CLIENT.into())),
        "{ids:?}"
    );
    eprintln!(
        "Kerberos failover (KDC down and kill: {kdc_down_and_kill}): pause {:?}",
        c.counters().session.last_pause
    );
    c.close().await;
    if kdc_down_and_kill {
        lock_kdc().restart().unwrap();
    } else {
        ens.node(on).thaw();
    }
    ens.heal().await.unwrap();
}

#[test]
#[ignore = "needs Java, ZooKeeper and krb5-kdc: run with -- --include-ignored (scripts/test-all.sh does)"]
fn kerberos_kdc_stopped_during_failover() {
    let _turn = serial();
    run(Duration::from_secs(180), failover_keeps_identity(true));
}

#[test]
#[ignore = "needs Java, ZooKeeper and krb5-kdc: run with -- --include-ignored (scripts/test-all.sh does)"]
fn kerberos_failover_sigstop() {
    let _turn = serial();
    run(Duration::from_secs(180), failover_keeps_identity(false));
}

/// Service tickets for every server of the host list are in the ticket cache as soon as the
/// session starts, before any connection to that server (here a host the client never
/// reaches: `127.0.0.1` on a closed port, principal `zookeeper/127.0.0.1`).
#[test]
#[ignore = "needs Java, ZooKeeper and krb5-kdc: run with -- --include-ignored (scripts/test-all.sh does)"]
fn kerberos_service_tickets_ahead_of_need() {
    let _turn = serial();
    ens();
    let ccache = {
        let kdc = lock_kdc();
        kdc.add_principal("zookeeper/127.0.0.1", "unused-secret")
            .unwrap();
        kdc.ccache()
    };
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    run(Duration::from_secs(120), async move {
        let cs = format!("{},127.0.0.1:{port}", connect_string());
        let c = Client::builder(&cs)
            .sasl(Arc::new(as_client()))
            .session_timeout(Duration::from_secs(4))
            .connect_timeout(Duration::from_secs(30))
            .connect()
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let listed = loop {
            let out = std::process::Command::new("klist")
                .arg("-A")
                .env("KRB5CCNAME", &ccache)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if text.contains("zookeeper/127.0.0.1@EXAMPLE.COM") || Instant::now() > deadline {
                break text;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(
            listed.contains("zookeeper/127.0.0.1@EXAMPLE.COM"),
            "no ticket for the unreached server:\n{listed}"
        );
        assert!(
            listed.contains("zookeeper/localhost@EXAMPLE.COM"),
            "{listed}"
        );
        c.close().await;
    });
}

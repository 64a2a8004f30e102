//! TLS in operation on ZooKeeper 3.8's real `secureClientPort` (Netty, JDK TLS, mutual TLS
//! required): certificate rotation without restart, CRLs on server certificates, and TLS
//! session resumption. The tests share one 3-node ensemble and take turns (some kill nodes);
//! each heals the ensemble first.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod common;

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{ensemble_with, eventually, run};
use zk_client::{Client, CreateMode, TlsConfig, TlsConfigError, TlsConnector, acl};
use zk_testkit::{Ensemble, TlsMaterial, TlsOptions};
use zk_transport::rustls::{HandshakeKind, ProtocolVersion};
use zk_transport::{CertificateProblem, ConnectError, Target, TlsErrorKind};

static ENS: OnceLock<Ensemble> = OnceLock::new();
static TLS13: OnceLock<Ensemble> = OnceLock::new();
/// One test at a time: they kill servers of the shared ensemble.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const LIMIT: Duration = Duration::from_secs(300);
const DEADLINE: Duration = Duration::from_secs(10);

fn ensemble() -> &'static Ensemble {
    ensemble_with(&ENS, || {
        Ensemble::builder().nodes(3).tls(TlsOptions::default())
    })
}

fn config(m: &TlsMaterial, cert_pem: &str, key_pem: &str) -> TlsConfig {
    TlsConfig::builder()
        .ca_pem(&m.ca_pem)
        .unwrap()
        .client_cert_pem(cert_pem, key_pem)
        .unwrap()
        .build()
        .unwrap()
}

fn secure(ens: &Ensemble, i: usize) -> SocketAddr {
    ens.node(i).secure_addr().unwrap()
}

async fn connect(cs: &str, connector: TlsConnector) -> Client {
    Client::builder(cs)
        .tls_connector(connector)
        .session_timeout(Duration::from_secs(4))
        .connect_timeout(Duration::from_secs(30))
        .connect()
        .await
        .unwrap()
}

async fn refusal(connector: &TlsConnector, addr: SocketAddr) -> ConnectError {
    match connector
        .connect_tls(&Target::from_addr(addr), DEADLINE)
        .await
    {
        Ok(_) => panic!("{addr} accepted the handshake"),
        Err(err) => err,
    }
}

/// Kills the node the client is on and waits until the same session is back on another
/// server and answers reads; returns the server it is on then.
async fn fail_over(ens: &Ensemble, c: &Client) -> SocketAddr {
    let on = ens.node_for_addr(c.server().unwrap()).unwrap();
    let reconnects = c.counters().session.reconnects;
    let session = c.session_id();
    ens.node(on).kill().unwrap();
    let back = eventually(Duration::from_secs(60), || async {
        c.counters().session.reconnects > reconnects && c.get_data("/").await.is_ok()
    })
    .await;
    assert!(back, "the session did not come back after the kill");
    assert_eq!(c.session_id(), session, "the session was not kept");
    let now = c.server().unwrap();
    assert_ne!(ens.node_for_addr(now), Some(on));
    now
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn tls_rotation_new_certificate_used_by_the_next_failover_broken_one_refused() {
    let ens = ensemble();
    run(LIMIT, async move {
        let _turn = TURN.lock().await;
        ens.heal().await.unwrap();
        let m = ens.tls().unwrap();
        let ca = m.ca().unwrap();
        // The certificate the client starts with expires soon; the server refuses it after.
        let valid_for = Duration::from_secs(25);
        let short = ca.client_valid_for(valid_for).unwrap();
        let expires = Instant::now() + valid_for;
        let connector = TlsConnector::new(config(m, &short.cert_pem, &short.key_pem));
        let c = connect(&ens.direct_tls_connect_string().unwrap(), connector).await;
        let tls = c.tls().unwrap().clone();
        c.create(
            "/rotation",
            "kept",
            &acl::open_unsafe(),
            CreateMode::Ephemeral,
        )
        .await
        .unwrap();

        // A configuration that does not build is refused, typed, and the old one stays.
        let fresh = ca.client().unwrap();
        let unrelated = ca.client().unwrap();
        let refused = tls.rotate_identity_pem(&fresh.cert_pem, &unrelated.key_pem);
        assert!(
            matches!(refused, Err(TlsConfigError::ClientCertificate(_))),
            "{refused:?}"
        );
        assert_eq!(tls.generation(), 0);
        assert_eq!(tls.stats().rejected_rotations, 1);
        let probe = TlsConnector::new(tls.current());
        probe
            .connect_tls(&Target::from_addr(secure(ens, 0)), DEADLINE)
            .await
            .unwrap();
        assert_eq!(&c.get_data("/rotation").await.unwrap().0[..], b"kept");

        // The new certificate, installed while the session runs.
        assert_eq!(
            tls.rotate_identity_pem(&fresh.cert_pem, &fresh.key_pem),
            Ok(1)
        );
        let full_before = tls.stats().full_handshakes;

        // Once the old certificate has expired the servers refuse it...
        tokio::time::sleep_until((expires + Duration::from_secs(2)).into()).await;
        let old = TlsConnector::new(config(m, &short.cert_pem, &short.key_pem));
        let err = refusal(&old, secure(ens, 0)).await;
        assert!(
            matches!(err, ConnectError::Tls(TlsErrorKind::PeerRejectedUs { .. })),
            "{err:?}"
        );
        // ...so the failover can only succeed with the new one.
        fail_over(ens, &c).await;
        assert!(tls.stats().full_handshakes > full_before);
        assert!(c.exists("/rotation").await.unwrap().is_some());
        c.close().await;
        ens.heal().await.unwrap();
    });
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn tls_crl_revoked_server_is_refused_and_the_session_holds_on_the_others() {
    let ens = ensemble();
    run(LIMIT, async move {
        let _turn = TURN.lock().await;
        ens.heal().await.unwrap();
        let m = ens.tls().unwrap();
        let revoked = 2;
        let crl = m
            .ca()
            .unwrap()
            .crl(&[TlsMaterial::node_serial(ens.node(revoked).id())])
            .unwrap();
        let with_crl = TlsConfig::builder()
            .ca_pem(&m.ca_pem)
            .unwrap()
            .client_cert_pem(&m.client_cert_pem, &m.client_key_pem)
            .unwrap()
            .crl_pem(&crl)
            .unwrap()
            .build()
            .unwrap();
        let connector = TlsConnector::new(with_crl);
        let err = refusal(&connector, secure(ens, revoked)).await;
        assert_eq!(
            err.certificate_problem(),
            Some(CertificateProblem::Revoked),
            "{err:?}"
        );
        assert!(!err.is_transient());
        for i in [0, 1] {
            connector
                .connect_tls(&Target::from_addr(secure(ens, i)), DEADLINE)
                .await
                .unwrap();
        }

        // The session goes on the other servers only, and stays there through a kill -9.
        let c = connect(&ens.direct_tls_connect_string().unwrap(), connector.clone()).await;
        assert_ne!(c.server(), Some(secure(ens, revoked)));
        c.create("/crl", "kept", &acl::open_unsafe(), CreateMode::Ephemeral)
            .await
            .unwrap();
        let now = fail_over(ens, &c).await;
        assert_ne!(now, secure(ens, revoked));
        assert!(c.exists("/crl").await.unwrap().is_some());
        c.close().await;
        ens.heal().await.unwrap();
    });
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn tls_resumption_on_reconnect_to_the_same_server() {
    let ens = ensemble();
    run(LIMIT, async move {
        let _turn = TURN.lock().await;
        ens.heal().await.unwrap();
        let m = ens.tls().unwrap();
        let connector = TlsConnector::new(config(m, &m.client_cert_pem, &m.client_key_pem));
        let mut kinds = Vec::new();
        for i in [0, 1, 0, 1] {
            let stream = connector
                .connect_tls(&Target::from_addr(secure(ens, i)), DEADLINE)
                .await
                .unwrap();
            let conn = stream.get_ref().1;
            assert_eq!(conn.protocol_version(), Some(ProtocolVersion::TLSv1_2));
            kinds.push(conn.handshake_kind().unwrap());
        }
        // Each server resumes its own sessions (the JVM's cache), never another's.
        use HandshakeKind::{Full, Resumed};
        assert_eq!(kinds, [Full, Full, Resumed, Resumed]);

        // Through the client: a session on the server resumes the TLS session a previous one
        // left in the shared connector.
        let before = connector.stats();
        let one = secure(ens, 0).to_string();
        let c = connect(&one, connector.clone()).await;
        let after = c.tls().unwrap().stats();
        assert_eq!(after.full_handshakes, before.full_handshakes);
        assert_eq!(after.resumed_handshakes, before.resumed_handshakes + 1);
        c.get_data("/").await.unwrap();
        c.close().await;
    });
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn tls_resumption_with_tls13_enabled_on_the_server() {
    // ZooKeeper 3.8 speaks TLS 1.2 unless told otherwise; with TLS 1.3 enabled the JDK
    // server sends session tickets after the handshake, which rustls stores when the
    // connection is read (a ZooKeeper session reads its ConnectResponse).
    let ens = ensemble_with(&TLS13, || {
        Ensemble::builder()
            .nodes(1)
            .tls(TlsOptions::default())
            .config("ssl.protocol", "TLSv1.3")
            .config("ssl.enabledProtocols", "TLSv1.3,TLSv1.2")
            // ZooKeeper's default suites are TLS 1.2 ones only.
            .config(
                "ssl.ciphersuites",
                "TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384,\
                 TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            )
    });
    run(LIMIT, async move {
        let _turn = TURN.lock().await;
        let m = ens.tls().unwrap();
        let connector = TlsConnector::new(config(m, &m.client_cert_pem, &m.client_key_pem));
        let one = secure(ens, 0).to_string();
        let mut seen = Vec::new();
        for _ in 0..3 {
            let c = connect(&one, connector.clone()).await;
            c.get_data("/").await.unwrap();
            c.close().await;
            let stats = connector.stats();
            seen.push((stats.full_handshakes, stats.resumed_handshakes));
        }
        let stream = connector
            .connect_tls(&Target::from_addr(secure(ens, 0)), DEADLINE)
            .await
            .unwrap();
        let version = stream.get_ref().1.protocol_version();
        eprintln!(
            "TLS 1.3 server: version {version:?}, (full, resumed) after each session {seen:?}"
        );
        assert_eq!(version, Some(ProtocolVersion::TLSv1_3));
        assert_eq!(seen[0], (1, 0));
        assert!(seen[2].1 >= 1, "no resumption over TLS 1.3: {seen:?}");

        // Priming stores a TLS 1.3 ticket too (it reads the connection to its end).
        let fresh = TlsConnector::new(config(m, &m.client_cert_pem, &m.client_key_pem));
        let target = Target::from_addr(secure(ens, 0));
        assert_eq!(
            fresh.prime(std::slice::from_ref(&target), DEADLINE).await,
            1
        );
        let stream = fresh.connect_tls(&target, DEADLINE).await.unwrap();
        assert_eq!(
            stream.get_ref().1.handshake_kind(),
            Some(HandshakeKind::Resumed)
        );
    });
}

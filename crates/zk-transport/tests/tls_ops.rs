//! TLS in operation against in-process rustls servers: certificate rotation at run time,
//! revocation (CRLs) and session resumption per server address. The same behaviours against
//! ZooKeeper's own `secureClientPort` are in `zk-client`'s `tls_ops` tests.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod common;

use std::time::Duration;

use common::{Ca, Versions, round_trip, server_config, spawn_tls_server};
use rustls::HandshakeKind;
use zk_transport::{
    CertificateProblem, ConnectError, Target, TlsConfig, TlsConfigError, TlsConnector, TlsErrorKind,
};

const DEADLINE: Duration = Duration::from_secs(5);

fn localhost(addr: std::net::SocketAddr) -> Target {
    Target::new(addr, "localhost")
}

fn client_of(ca: &Ca, trusted: &Ca) -> TlsConfig {
    let leaf = ca.client();
    TlsConfig::builder()
        .ca_pem(&trusted.pem())
        .unwrap()
        .client_cert_pem(&leaf.cert_pem, &leaf.key_pem)
        .unwrap()
        .build()
        .unwrap()
}

async fn fails(connector: &TlsConnector, target: &Target) -> ConnectError {
    match connector.connect_tls(target, DEADLINE).await {
        Ok(_) => panic!("{target} was accepted"),
        Err(err) => err,
    }
}

async fn kind(connector: &TlsConnector, target: &Target) -> HandshakeKind {
    let mut stream = connector.connect_tls(target, DEADLINE).await.unwrap();
    round_trip(&mut stream, b"ping").await;
    stream.get_ref().1.handshake_kind().unwrap()
}

#[tokio::test]
async fn rotation_presents_the_new_client_certificate_on_the_next_connection() {
    let server_ca = Ca::new("server-ca");
    let old_ca = Ca::new("old-client-ca");
    let new_ca = Ca::new("new-client-ca");
    // The server trusts only client certificates of the new CA.
    let server = spawn_tls_server(server_config(
        &server_ca.server(&["localhost"]),
        Some(&new_ca),
        Versions::Tls12ZooKeeperLike,
    ))
    .await;
    let target = localhost(server.addr);
    let connector = TlsConnector::new(client_of(&old_ca, &server_ca));
    let handle = connector.reload_handle();
    assert_eq!(handle.generation(), 0);
    let err = fails(&connector, &target).await;
    assert!(
        matches!(err, ConnectError::Tls(TlsErrorKind::PeerRejectedUs { .. })),
        "{err:?}"
    );

    // A key that does not match the certificate: refused, typed, nothing changes.
    let leaf = new_ca.client();
    let other = new_ca.client();
    let refused = handle.rotate_identity_pem(&leaf.cert_pem, &other.key_pem);
    assert!(
        matches!(refused, Err(TlsConfigError::ClientCertificate(_))),
        "{refused:?}"
    );
    let refused = handle.rotate_identity_pem("not pem", &leaf.key_pem);
    assert_eq!(
        refused,
        Err(TlsConfigError::Missing {
            what: "CERTIFICATE"
        })
    );
    assert_eq!(handle.generation(), 0);
    assert_eq!(handle.stats().rejected_rotations, 2);

    assert_eq!(
        handle.rotate_identity_pem(&leaf.cert_pem, &leaf.key_pem),
        Ok(1)
    );
    assert_eq!(kind(&connector, &target).await, HandshakeKind::Full);
    // The roots and the rest of the configuration were kept.
    assert_eq!(handle.current().crl_count(), 0);
    let stats = connector.stats();
    assert_eq!((stats.rotations, stats.full_handshakes), (1, 1));
}

#[tokio::test]
async fn rotation_discards_resumable_sessions() {
    let ca = Ca::new("zk-ca");
    let server = spawn_tls_server(server_config(
        &ca.server(&["localhost"]),
        Some(&ca),
        Versions::Tls12ZooKeeperLike,
    ))
    .await;
    let target = localhost(server.addr);
    let connector = TlsConnector::new(client_of(&ca, &ca));
    assert_eq!(kind(&connector, &target).await, HandshakeKind::Full);
    assert_eq!(kind(&connector, &target).await, HandshakeKind::Resumed);
    let leaf = ca.client();
    connector
        .reload_handle()
        .rotate_identity_pem(&leaf.cert_pem, &leaf.key_pem)
        .unwrap();
    // A resumed session would skip the new certificate.
    assert_eq!(kind(&connector, &target).await, HandshakeKind::Full);
    assert_eq!(kind(&connector, &target).await, HandshakeKind::Resumed);
    let stats = connector.stats();
    assert_eq!((stats.full_handshakes, stats.resumed_handshakes), (2, 2));
}

#[tokio::test]
async fn rotating_roots_changes_which_servers_are_trusted() {
    let old_ca = Ca::new("old-ca");
    let new_ca = Ca::new("new-ca");
    let server = spawn_tls_server(server_config(
        &new_ca.server(&["localhost"]),
        None,
        Versions::Tls12ZooKeeperLike,
    ))
    .await;
    let target = localhost(server.addr);
    let connector = TlsConnector::new(client_of(&old_ca, &old_ca));
    let handle = connector.reload_handle();
    let err = fails(&connector, &target).await;
    assert!(matches!(
        err,
        ConnectError::Tls(TlsErrorKind::CertificateRejected {
            problem: CertificateProblem::UnknownIssuer,
            ..
        })
    ));
    assert!(matches!(
        handle.rotate_roots_pem("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n"),
        Err(TlsConfigError::Pem { .. })
    ));
    handle.rotate_roots_pem(&new_ca.pem()).unwrap();
    assert_eq!(kind(&connector, &target).await, HandshakeKind::Full);
}

#[tokio::test]
async fn crl_refuses_a_revoked_server_certificate_and_accepts_the_others() {
    let ca = Ca::new("zk-ca");
    let revoked = spawn_tls_server(server_config(
        &ca.server_with_serial(&["localhost"], 7),
        None,
        Versions::Tls12ZooKeeperLike,
    ))
    .await;
    let good = spawn_tls_server(server_config(
        &ca.server_with_serial(&["localhost"], 8),
        None,
        Versions::Tls12ZooKeeperLike,
    ))
    .await;
    let config = TlsConfig::builder()
        .ca_pem(&ca.pem())
        .unwrap()
        .crl_pem(&ca.crl(&[7]))
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(config.crl_count(), 1);
    let connector = TlsConnector::new(config);
    let err = fails(&connector, &localhost(revoked.addr)).await;
    assert_eq!(
        err.certificate_problem(),
        Some(CertificateProblem::Revoked),
        "{err:?}"
    );
    assert!(!err.is_transient());
    assert!(err.to_string().contains("revoked"), "{err}");
    assert_eq!(
        kind(&connector, &localhost(good.addr)).await,
        HandshakeKind::Full
    );

    // The CRL is rotated away: the server is accepted again.
    connector
        .reload_handle()
        .rotate_crls_pem(&ca.crl(&[99]))
        .unwrap();
    assert_eq!(
        kind(&connector, &localhost(revoked.addr)).await,
        HandshakeKind::Full
    );
}

#[tokio::test]
async fn crl_of_another_issuer_leaves_the_status_unknown() {
    let ca = Ca::new("zk-ca");
    let unrelated = Ca::new("unrelated");
    let server = spawn_tls_server(server_config(
        &ca.server_with_serial(&["localhost"], 7),
        None,
        Versions::Tls12ZooKeeperLike,
    ))
    .await;
    let target = localhost(server.addr);
    let builder = || {
        TlsConfig::builder()
            .ca_pem(&ca.pem())
            .unwrap()
            .crl_pem(&unrelated.crl(&[7]))
            .unwrap()
    };
    let strict = TlsConnector::new(builder().build().unwrap());
    let err = fails(&strict, &target).await;
    assert_eq!(
        err.certificate_problem(),
        Some(CertificateProblem::RevocationUnknown),
        "{err:?}"
    );
    assert!(!err.is_transient());
    let lenient = TlsConnector::new(builder().allow_unknown_revocation_status().build().unwrap());
    assert_eq!(kind(&lenient, &target).await, HandshakeKind::Full);

    assert_eq!(
        TlsConfig::builder().crl_pem("no crl").err(),
        Some(TlsConfigError::Missing { what: "X509 CRL" })
    );
    let garbage = "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n";
    let built = TlsConfig::builder()
        .ca_pem(&ca.pem())
        .unwrap()
        .crl_pem(garbage)
        .unwrap()
        .build();
    assert!(
        matches!(built, Err(TlsConfigError::InvalidCrl(_))),
        "{built:?}"
    );
}

#[tokio::test]
async fn sessions_resume_per_server_address_even_under_one_name() {
    // Two servers behind one name ("localhost"), each with its own session cache, as the
    // servers of an ensemble on one host or behind one DNS name are.
    let ca = Ca::new("zk-ca");
    let mut servers = Vec::new();
    for _ in 0..2 {
        servers.push(
            spawn_tls_server(server_config(
                &ca.server(&["localhost"]),
                Some(&ca),
                Versions::Tls12ZooKeeperLike,
            ))
            .await,
        );
    }
    let (a, b) = (localhost(servers[0].addr), localhost(servers[1].addr));
    let connector = TlsConnector::new(client_of(&ca, &ca));
    assert_eq!(kind(&connector, &a).await, HandshakeKind::Full);
    assert_eq!(kind(&connector, &b).await, HandshakeKind::Full);
    assert_eq!(kind(&connector, &a).await, HandshakeKind::Resumed);
    assert_eq!(kind(&connector, &b).await, HandshakeKind::Resumed);
    // Clones share the caches and the counters.
    let clone = connector.clone();
    assert_eq!(kind(&clone, &a).await, HandshakeKind::Resumed);
    let stats = connector.stats();
    assert_eq!((stats.full_handshakes, stats.resumed_handshakes), (2, 3));

    // Resumption can be switched off.
    let leaf = ca.client();
    let off = TlsConnector::new(
        TlsConfig::builder()
            .ca_pem(&ca.pem())
            .unwrap()
            .client_cert_pem(&leaf.cert_pem, &leaf.key_pem)
            .unwrap()
            .resumption(false)
            .build()
            .unwrap(),
    );
    assert_eq!(kind(&off, &a).await, HandshakeKind::Full);
    assert_eq!(kind(&off, &a).await, HandshakeKind::Full);
}

#[tokio::test]
async fn from_rustls_configurations_are_replaced_whole() {
    let ca = Ca::new("zk-ca");
    let config = client_of(&ca, &ca);
    let connector = TlsConnector::new(TlsConfig::from_rustls(config.rustls_config().clone()));
    let handle = connector.reload_handle();
    assert_eq!(
        handle.rotate_roots_pem(&ca.pem()),
        Err(TlsConfigError::NotRebuildable)
    );
    assert_eq!(handle.replace(config), 1);
    assert_eq!(handle.current().crl_count(), 0);
    // Debug output names no key material.
    let text = format!("{connector:?} {handle:?}");
    assert!(!text.contains("PRIVATE"), "{text}");
}

#[tokio::test]
async fn priming_leaves_a_resumable_session_for_every_server() {
    let ca = Ca::new("zk-ca");
    let mut targets = Vec::new();
    let mut servers = Vec::new();
    for _ in 0..3 {
        let server = spawn_tls_server(server_config(
            &ca.server(&["localhost"]),
            Some(&ca),
            Versions::Tls12ZooKeeperLike,
        ))
        .await;
        targets.push(localhost(server.addr));
        servers.push(server);
    }
    let connector = TlsConnector::new(client_of(&ca, &ca));
    assert_eq!(connector.prime(&targets, DEADLINE).await, 3);
    for target in &targets {
        assert_eq!(kind(&connector, target).await, HandshakeKind::Resumed);
    }
    let stats = connector.stats();
    assert_eq!((stats.full_handshakes, stats.resumed_handshakes), (3, 3));
}

#[cfg(feature = "tls-watch")]
#[tokio::test]
async fn rotation_from_watched_files_and_a_broken_rewrite_is_refused() {
    use zk_transport::TlsFiles;

    let server_ca = Ca::new("server-ca");
    let client_ca = Ca::new("client-ca");
    let server = spawn_tls_server(server_config(
        &server_ca.server(&["localhost"]),
        Some(&client_ca),
        Versions::Tls12ZooKeeperLike,
    ))
    .await;
    let target = localhost(server.addr);
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = (
        dir.path().join("ca.pem"),
        dir.path().join("tls.crt"),
        dir.path().join("tls.key"),
    );
    // Start with a certificate the server does not trust.
    let untrusted = Ca::new("other").client();
    std::fs::write(&ca, server_ca.pem()).unwrap();
    std::fs::write(&cert, &untrusted.cert_pem).unwrap();
    std::fs::write(&key, &untrusted.key_pem).unwrap();
    let files = TlsFiles::new().ca(&ca).client_cert(&cert, &key);
    let config = TlsConfig::builder()
        .ca_pem_file(&ca)
        .unwrap()
        .client_cert_pem_file(&cert, &key)
        .unwrap()
        .build()
        .unwrap();
    let connector = TlsConnector::new(config);
    let handle = connector.reload_handle();
    let watcher = handle
        .watch_files(files, Duration::from_millis(100))
        .unwrap();
    assert!(matches!(
        fails(&connector, &target).await,
        ConnectError::Tls(TlsErrorKind::PeerRejectedUs { .. })
    ));

    // The certificate manager writes a new certificate and key.
    let fresh = client_ca.client();
    std::fs::write(&cert, &fresh.cert_pem).unwrap();
    std::fs::write(&key, &fresh.key_pem).unwrap();
    wait_for(|| handle.generation() == 1).await;
    assert_eq!(kind(&connector, &target).await, HandshakeKind::Full);
    assert_eq!(watcher.reloads(), 1);

    // A key that does not match is refused; the working configuration stays.
    std::fs::write(&key, &untrusted.key_pem).unwrap();
    wait_for(|| watcher.last_error().is_some()).await;
    assert!(
        matches!(
            watcher.last_error(),
            Some(TlsConfigError::ClientCertificate(_))
        ),
        "{watcher:?}"
    );
    assert_eq!(handle.generation(), 1);
    assert_eq!(kind(&connector, &target).await, HandshakeKind::Resumed);
}

#[cfg(feature = "tls-watch")]
async fn wait_for(mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

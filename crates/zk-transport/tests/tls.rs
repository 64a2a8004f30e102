//! TLS connector against in-process tokio-rustls servers on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Ca, Versions, closed_port, round_trip, self_signed, server_config, spawn_tls_server};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use zk_transport::{
    CertificateProblem, ConnectError, Connector, MemoryConnector, Target, TlsAlert, TlsConfig,
    TlsConnector, TlsErrorKind,
};

const DEADLINE: Duration = Duration::from_secs(5);

fn mtls_client(ca: &Ca) -> TlsConnector {
    let client = ca.client();
    let config = TlsConfig::builder()
        .ca_pem(&ca.pem())
        .unwrap()
        .client_cert_pem(&client.cert_pem, &client.key_pem)
        .unwrap()
        .build()
        .unwrap();
    TlsConnector::new(config)
}

fn localhost(addr: std::net::SocketAddr) -> Target {
    Target::new(addr, "localhost")
}

#[tokio::test]
async fn mtls_to_zookeeper_like_tls12_server_succeeds() {
    let ca = Ca::new("zk-ca");
    let server_leaf = ca.server(&["localhost", "127.0.0.1"]);
    let mut server = spawn_tls_server(server_config(
        &server_leaf,
        Some(&ca),
        Versions::Tls12ZooKeeperLike,
    ))
    .await;
    let connector = mtls_client(&ca);

    let mut stream = connector
        .connect_tls(&localhost(server.addr), DEADLINE)
        .await
        .unwrap();
    let conn = stream.get_ref().1;
    assert_eq!(
        conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    assert_eq!(
        conn.negotiated_cipher_suite().map(|s| s.suite()),
        Some(rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)
    );
    round_trip(&mut stream, b"\0\0\0\x2d hello zookeeper").await;
    assert_eq!(server.outcomes.recv().await, Some(Ok(())));

    // Through the object-safe trait too.
    let dyn_connector: Arc<dyn Connector> = Arc::new(connector);
    let mut boxed = dyn_connector
        .connect(&localhost(server.addr), DEADLINE)
        .await
        .unwrap();
    round_trip(&mut boxed, b"again").await;
}

#[tokio::test]
async fn ip_literal_server_name_is_verified_against_ip_san() {
    let ca = Ca::new("zk-ca");
    let server_leaf = ca.server(&["127.0.0.1"]);
    let server = spawn_tls_server(server_config(
        &server_leaf,
        Some(&ca),
        Versions::Tls12ZooKeeperLike,
    ))
    .await;
    let mut stream = mtls_client(&ca)
        .connect(&Target::from_addr(server.addr), DEADLINE)
        .await
        .unwrap();
    round_trip(&mut stream, b"ip").await;

    // The same certificate does not cover the DNS name "localhost".
    let err = mtls_client(&ca)
        .connect(&localhost(server.addr), DEADLINE)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            &err,
            ConnectError::Tls(TlsErrorKind::CertificateRejected {
                problem: CertificateProblem::NotValidForName,
                ..
            })
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn certificate_for_wrong_host_is_rejected() {
    let ca = Ca::new("zk-ca");
    let server_leaf = ca.server(&["zk.example"]);
    let server = spawn_tls_server(server_config(
        &server_leaf,
        Some(&ca),
        Versions::Tls12ZooKeeperLike,
    ))
    .await;
    let err = mtls_client(&ca)
        .connect(&localhost(server.addr), DEADLINE)
        .await
        .err()
        .unwrap();
    eprintln!("wrong host: {err}");
    let ConnectError::Tls(TlsErrorKind::CertificateRejected { problem, message }) = &err else {
        panic!("expected CertificateRejected, got {err:?}");
    };
    assert_eq!(*problem, CertificateProblem::NotValidForName);
    assert!(
        message.contains("zk.example"),
        "message names the presented SAN: {message}"
    );
    assert!(!err.is_transient());
    let text = err.to_string();
    assert!(text.contains("not valid for the server name"), "{text}");

    // An IP literal target is also refused by a DNS-only certificate.
    let err = mtls_client(&ca)
        .connect(&Target::from_addr(server.addr), DEADLINE)
        .await
        .err()
        .unwrap();
    assert!(matches!(
        err,
        ConnectError::Tls(TlsErrorKind::CertificateRejected {
            problem: CertificateProblem::NotValidForName,
            ..
        })
    ));
}

#[tokio::test]
async fn server_name_override_verifies_against_the_override() {
    let ca = Ca::new("zk-ca");
    let server_leaf = ca.server(&["zk.example"]);
    let server = spawn_tls_server(server_config(
        &server_leaf,
        Some(&ca),
        Versions::Tls12ZooKeeperLike,
    ))
    .await;
    let client = ca.client();
    let config = TlsConfig::builder()
        .ca_pem(&ca.pem())
        .unwrap()
        .client_cert_pem(&client.cert_pem, &client.key_pem)
        .unwrap()
        .server_name_override(Some("zk.example".into()))
        .build()
        .unwrap();
    let mut stream = TlsConnector::new(config)
        .connect(&Target::from_addr(server.addr), DEADLINE)
        .await
        .unwrap();
    round_trip(&mut stream, b"override").await;
}

#[tokio::test]
async fn unknown_ca_is_rejected() {
    let ca = Ca::new("zk-ca");
    let other_ca = Ca::new("someone-else");
    let server_leaf = ca.server(&["localhost"]);
    let server = spawn_tls_server(server_config(
        &server_leaf,
        Some(&ca),
        Versions::Tls12ZooKeeperLike,
    ))
    .await;
    let client = ca.client();
    let config = TlsConfig::builder()
        .ca_pem(&other_ca.pem())
        .unwrap()
        .client_cert_pem(&client.cert_pem, &client.key_pem)
        .unwrap()
        .build()
        .unwrap();
    let err = TlsConnector::new(config)
        .connect(&localhost(server.addr), DEADLINE)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            &err,
            ConnectError::Tls(TlsErrorKind::CertificateRejected {
                problem: CertificateProblem::UnknownIssuer,
                ..
            })
        ),
        "{err:?}"
    );
    eprintln!("unknown CA: {err}");
    assert!(err.to_string().contains("unknown issuer"), "{err}");
    assert!(!err.is_transient());
}

#[tokio::test]
async fn expired_server_certificate_is_rejected() {
    let ca = Ca::new("zk-ca");
    let server_leaf = ca.expired_server(&["localhost"]);
    let server = spawn_tls_server(server_config(
        &server_leaf,
        Some(&ca),
        Versions::Tls12ZooKeeperLike,
    ))
    .await;
    let err = mtls_client(&ca)
        .connect(&localhost(server.addr), DEADLINE)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            &err,
            ConnectError::Tls(TlsErrorKind::CertificateRejected {
                problem: CertificateProblem::Expired,
                ..
            })
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn missing_client_certificate_is_a_typed_rejection() {
    let ca = Ca::new("zk-ca");
    let server_leaf = ca.server(&["localhost"]);
    let mut server = spawn_tls_server(server_config(
        &server_leaf,
        Some(&ca),
        Versions::Tls12ZooKeeperLike,
    ))
    .await;
    let config = TlsConfig::builder()
        .ca_pem(&ca.pem())
        .unwrap()
        .build()
        .unwrap();
    let err = TlsConnector::new(config)
        .connect(&localhost(server.addr), DEADLINE)
        .await
        .err()
        .unwrap();
    eprintln!("missing client cert: {err}");
    let ConnectError::Tls(TlsErrorKind::PeerRejectedUs { alert }) = &err else {
        panic!("expected PeerRejectedUs, got {err:?}");
    };
    // rustls answers an empty client certificate with certificate_required (ZooKeeper with
    // bad_certificate); both are client-certificate rejections.
    assert_eq!(*alert, TlsAlert::CERTIFICATE_REQUIRED, "{err}");
    assert!(
        err.to_string()
            .contains("alert received: certificate_required"),
        "{err}"
    );
    assert!(!err.is_transient());
    let server_side = server.outcomes.recv().await.unwrap();
    assert!(server_side.is_err(), "{server_side:?}");
}

#[tokio::test]
async fn client_certificate_from_unknown_ca_is_a_typed_rejection() {
    let ca = Ca::new("zk-ca");
    let rogue_ca = Ca::new("rogue");
    let server_leaf = ca.server(&["localhost"]);
    let server = spawn_tls_server(server_config(
        &server_leaf,
        Some(&ca),
        Versions::Tls12ZooKeeperLike,
    ))
    .await;
    let rogue = rogue_ca.client();
    let config = TlsConfig::builder()
        .ca_pem(&ca.pem())
        .unwrap()
        .client_cert_pem(&rogue.cert_pem, &rogue.key_pem)
        .unwrap()
        .build()
        .unwrap();
    let err = TlsConnector::new(config)
        .connect(&localhost(server.addr), DEADLINE)
        .await
        .err()
        .unwrap();
    eprintln!("rogue client cert: {err}");
    assert!(
        matches!(&err, ConnectError::Tls(TlsErrorKind::PeerRejectedUs { .. })),
        "{err:?}"
    );
    assert!(!err.is_transient());
}

#[tokio::test]
async fn zookeeper_pem_keystore_works_as_cert_and_key() {
    // ZooKeeper's PEM keystore: PRIVATE KEY then CERTIFICATE in one file.
    let ca = Ca::new("zk-ca");
    let server_leaf = ca.server(&["localhost"]);
    let server = spawn_tls_server(server_config(
        &server_leaf,
        Some(&ca),
        Versions::Tls12ZooKeeperLike,
    ))
    .await;
    let client = ca.client();
    let keystore = format!("{}{}", client.key_pem, client.cert_pem);
    let dir = std::env::temp_dir().join(format!("zk-transport-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let keystore_path = dir.join("client.pem");
    let ca_path = dir.join("ca.pem");
    std::fs::write(&keystore_path, &keystore).unwrap();
    std::fs::write(&ca_path, ca.pem()).unwrap();
    let config = TlsConfig::builder()
        .ca_pem_file(&ca_path)
        .unwrap()
        .client_cert_pem_file(&keystore_path, &keystore_path)
        .unwrap()
        .build();
    std::fs::remove_dir_all(&dir).unwrap();
    let mut stream = TlsConnector::new(config.unwrap())
        .connect(&localhost(server.addr), DEADLINE)
        .await
        .unwrap();
    round_trip(&mut stream, b"keystore").await;
}

#[tokio::test]
async fn tls13_server_works_and_late_client_rejection_is_classified() {
    let ca = Ca::new("zk-ca");
    let server_leaf = ca.server(&["localhost"]);
    let server =
        spawn_tls_server(server_config(&server_leaf, Some(&ca), Versions::Tls13Only)).await;
    let mut stream = mtls_client(&ca)
        .connect_tls(&localhost(server.addr), DEADLINE)
        .await
        .unwrap();
    assert_eq!(
        stream.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    round_trip(&mut stream, b"tls13").await;

    // With TLS 1.3 the server judges our (missing) certificate after our handshake finished:
    // the rejection arrives on the first read, and from_io_error classifies it.
    let config = TlsConfig::builder()
        .ca_pem(&ca.pem())
        .unwrap()
        .build()
        .unwrap();
    let connected = TlsConnector::new(config)
        .connect(&localhost(server.addr), DEADLINE)
        .await;
    match connected {
        Err(err) => assert!(
            matches!(err, ConnectError::Tls(TlsErrorKind::PeerRejectedUs { .. })),
            "{err:?}"
        ),
        Ok(mut stream) => {
            let mut buf = [0u8; 1];
            let err = stream.read(&mut buf).await.err().unwrap();
            let classified = ConnectError::from_io_error(&err);
            assert_eq!(
                classified,
                ConnectError::Tls(TlsErrorKind::PeerRejectedUs {
                    alert: TlsAlert::CERTIFICATE_REQUIRED
                })
            );
        }
    }
}

#[tokio::test]
async fn tls13_only_client_against_tls12_server_is_protocol_version() {
    let ca = Ca::new("zk-ca");
    let server_leaf = ca.server(&["localhost"]);
    let server = spawn_tls_server(server_config(
        &server_leaf,
        Some(&ca),
        Versions::Tls12ZooKeeperLike,
    ))
    .await;
    // A user-supplied rustls config (TLS 1.3 only), through from_rustls.
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca.pem().as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = TlsConnector::new(TlsConfig::from_rustls(Arc::new(client)));
    let err = connector
        .connect(&localhost(server.addr), DEADLINE)
        .await
        .err()
        .unwrap();
    assert_eq!(err, ConnectError::Tls(TlsErrorKind::ProtocolVersion));
    assert!(err.to_string().contains("TLS 1.2 only"), "{err}");
    assert!(!err.is_transient());
}

use rustls::pki_types::pem::PemObject as _;

#[tokio::test]
async fn dangerous_mode_connects_to_self_signed_server() {
    let leaf = self_signed(&["some.other.name"]);
    let server = spawn_tls_server(server_config(&leaf, None, Versions::Tls12ZooKeeperLike)).await;

    // Verification on: refused.
    let err = TlsConnector::new(
        TlsConfig::builder()
            .ca_pem(&Ca::new("x").pem())
            .unwrap()
            .build()
            .unwrap(),
    )
    .connect(&localhost(server.addr), DEADLINE)
    .await
    .err()
    .unwrap();
    assert!(matches!(
        err,
        ConnectError::Tls(TlsErrorKind::CertificateRejected {
            problem: CertificateProblem::UnknownIssuer,
            ..
        })
    ));

    let config = TlsConfig::builder()
        .dangerous()
        .disable_certificate_verification()
        .build()
        .unwrap();
    assert!(config.is_verification_disabled());
    let mut stream = TlsConnector::new(config)
        .connect(&localhost(server.addr), DEADLINE)
        .await
        .unwrap();
    round_trip(&mut stream, b"insecure").await;
}

#[tokio::test]
async fn tls12_session_is_resumed_on_reconnect_to_the_same_server() {
    let ca = Ca::new("zk-ca");
    let server_leaf = ca.server(&["localhost"]);
    let server = spawn_tls_server(server_config(
        &server_leaf,
        Some(&ca),
        Versions::Tls12ZooKeeperLike,
    ))
    .await;
    let connector = mtls_client(&ca);
    let first = connector
        .connect_tls(&localhost(server.addr), DEADLINE)
        .await
        .unwrap();
    assert_eq!(
        first.get_ref().1.handshake_kind(),
        Some(rustls::HandshakeKind::Full)
    );
    drop(first);
    let second = connector
        .connect_tls(&localhost(server.addr), DEADLINE)
        .await
        .unwrap();
    assert_eq!(
        second.get_ref().1.handshake_kind(),
        Some(rustls::HandshakeKind::Resumed)
    );
}

#[tokio::test]
async fn handshake_against_silent_server_times_out_within_deadline() {
    // Accepts TCP and never says a word: what a frozen server looks like.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let ca = Ca::new("zk-ca");
    let deadline = Duration::from_millis(300);
    let started = Instant::now();
    let err = mtls_client(&ca)
        .connect(&localhost(addr), deadline)
        .await
        .err()
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(err, ConnectError::TimedOut);
    assert!(err.is_transient());
    assert!(elapsed >= deadline, "{elapsed:?}");
    assert!(
        elapsed < deadline + Duration::from_millis(250),
        "{elapsed:?}"
    );
    holder.abort();
}

#[tokio::test]
async fn server_closing_during_handshake_is_transient_io() {
    // ZooKeeper during an election: accept, then close at once.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let closer = tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            drop(sock);
        }
    });
    let ca = Ca::new("zk-ca");
    let err = mtls_client(&ca)
        .connect(&localhost(addr), DEADLINE)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            &err,
            ConnectError::Io {
                kind: std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_transient());
    closer.abort();
}

#[tokio::test]
async fn plaintext_server_answer_is_a_tls_error() {
    // A plain port answering garbage to a ClientHello.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut sock, _)) = listener.accept().await {
            let _ = sock.write_all(b"this is not TLS at all, sorry\n").await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let ca = Ca::new("zk-ca");
    let err = mtls_client(&ca)
        .connect(&localhost(addr), DEADLINE)
        .await
        .err()
        .unwrap();
    eprintln!("plaintext answer: {err}");
    assert!(
        matches!(&err, ConnectError::Tls(TlsErrorKind::Other(_))),
        "{err:?}"
    );
    server.abort();
}

#[tokio::test]
async fn refused_through_tls_connector() {
    let ca = Ca::new("zk-ca");
    let err = mtls_client(&ca)
        .connect(&localhost(closed_port().await), DEADLINE)
        .await
        .err()
        .unwrap();
    assert_eq!(err, ConnectError::Refused);
}

#[tokio::test]
async fn invalid_server_name_fails_before_connecting() {
    let ca = Ca::new("zk-ca");
    let (memory, mut listener) = MemoryConnector::new();
    let connector = TlsConnector::over(Arc::new(memory.clone()), mtls_client(&ca).config());
    let target = Target::new("10.0.0.1:2281".parse().unwrap(), "not a host name!");
    let err = connector.connect(&target, DEADLINE).await.err().unwrap();
    assert_eq!(
        err,
        ConnectError::Tls(TlsErrorKind::InvalidServerName("not a host name!".into()))
    );
    assert_eq!(memory.attempts(target.addr), 0);
    assert!(listener.try_accept().is_none());
}

#[tokio::test]
async fn tls_over_the_memory_connector() {
    let ca = Ca::new("zk-ca");
    let server_leaf = ca.server(&["zk1"]);
    let acceptor = tokio_rustls::TlsAcceptor::from(server_config(
        &server_leaf,
        Some(&ca),
        Versions::Tls12ZooKeeperLike,
    ));
    let (memory, mut listener) = MemoryConnector::new();
    let server = tokio::spawn(async move {
        let (target, pipe) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(pipe).await.unwrap();
        common::echo(&mut tls).await;
        target
    });
    let connector = TlsConnector::over(Arc::new(memory), mtls_client(&ca).config());
    let target = Target::new("10.0.0.1:2281".parse().unwrap(), "zk1");
    let mut stream = connector.connect(&target, DEADLINE).await.unwrap();
    round_trip(&mut stream, b"in memory, encrypted").await;
    drop(stream);
    assert_eq!(server.await.unwrap(), target);
}

#[tokio::test]
async fn handshake_latency_is_reported() {
    // Not a benchmark (debug build, shared machine): prints the loopback TCP+TLS 1.2 mTLS
    // handshake time, full and resumed, so regressions of an order of magnitude are visible.
    let ca = Ca::new("zk-ca");
    let server_leaf = ca.server(&["localhost"]);
    let server = spawn_tls_server(server_config(
        &server_leaf,
        Some(&ca),
        Versions::Tls12ZooKeeperLike,
    ))
    .await;
    let target = localhost(server.addr);
    let mut full = Vec::new();
    let mut resumed = Vec::new();
    for _ in 0..20 {
        // A fresh config has an empty session cache: a full handshake.
        let connector = mtls_client(&ca);
        let started = Instant::now();
        let stream = connector.connect_tls(&target, DEADLINE).await.unwrap();
        full.push(started.elapsed());
        drop(stream);
        let started = Instant::now();
        let stream = connector.connect_tls(&target, DEADLINE).await.unwrap();
        resumed.push(started.elapsed());
        assert_eq!(
            stream.get_ref().1.handshake_kind(),
            Some(rustls::HandshakeKind::Resumed)
        );
    }
    full.sort();
    resumed.sort();
    println!(
        "TLS 1.2 mTLS ECDSA loopback handshake (TCP+TLS), 20 samples: full median {:?} max {:?}; resumed median {:?} max {:?}",
        full[10], full[19], resumed[10], resumed[19]
    );
    assert!(full[10] < DEADLINE);
}

/// `set_receive_low_water` reaches through the TLS connector's stream to its TCP socket: a
/// record smaller than the mark does not wake the reader, enough ciphertext does, and every
/// plaintext byte then arrives.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn receive_low_water_reaches_through_tls() {
    use tokio::io::AsyncWriteExt;

    let ca = Ca::new("zk-ca");
    let server_leaf = ca.server(&["localhost"]);
    let acceptor = tokio_rustls::TlsAcceptor::from(server_config(
        &server_leaf,
        Some(&ca),
        Versions::Tls12ZooKeeperLike,
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        acceptor.accept(tcp).await.unwrap()
    });
    let dyn_connector: Arc<dyn Connector> = Arc::new(mtls_client(&ca));
    let mut stream = dyn_connector
        .connect(&localhost(addr), DEADLINE)
        .await
        .unwrap();
    let mut server = server.await.unwrap();
    // A mark of 300 bytes; one 10-byte record is 39 bytes on the wire (TLS 1.2, AES-GCM).
    assert!(zk_transport::set_receive_low_water(&*stream, 300));
    server.write_all(&[7; 10]).await.unwrap();
    server.flush().await.unwrap();
    let mut buf = vec![0u8; 1024];
    let early = tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "woken for one small record with a mark of 300"
    );

    for _ in 0..10 {
        server.write_all(&[8; 20]).await.unwrap();
        server.flush().await.unwrap();
    }
    let mut got = Vec::new();
    while got.len() < 210 {
        let n = tokio::time::timeout(DEADLINE, stream.read(&mut buf))
            .await
            .expect("woken once the records reach the mark")
            .unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
        // Everything is buffered now: take the rest at once, without waiting for more.
        assert!(zk_transport::set_receive_low_water(&*stream, 1));
    }
    assert_eq!(&got[..10], &[7; 10]);
    assert!(got[10..].iter().all(|&b| b == 8));
}

//! The TLS listener (Netty, secureClientPort) with the generated certificates, spoken to by a
//! tokio-rustls client sending a raw ConnectRequest.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use zk_testkit::{ClientAuth, Ensemble, TlsMaterial, TlsOptions};

const LIMIT: Duration = Duration::from_secs(30);

/// Which client certificate to present.
#[derive(Clone, Copy, Debug)]
enum Identity {
    Valid,
    Rogue,
    NoCert,
}

fn connector(m: &TlsMaterial, who: Identity) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(m.ca_pem.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let identity = |cert: &str, key: &str| {
        (
            vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
        )
    };
    let config = match who {
        Identity::Valid => {
            let (c, k) = identity(&m.client_cert_pem, &m.client_key_pem);
            builder.with_client_auth_cert(c, k).unwrap()
        }
        Identity::Rogue => {
            let (c, k) = identity(&m.rogue_client_cert_pem, &m.rogue_client_key_pem);
            builder.with_client_auth_cert(c, k).unwrap()
        }
        Identity::NoCert => builder.with_no_client_auth(),
    };
    TlsConnector::from(Arc::new(config))
}

/// TLS handshake plus ZooKeeper handshake; Ok(response length) or the failure.
async fn tls_session(
    ens: &Ensemble,
    node: usize,
    who: Identity,
    name: &str,
) -> Result<usize, String> {
    let addr = ens.node(node).secure_addr().unwrap();
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let server_name = ServerName::try_from(name.to_owned()).unwrap();
    let fut = async {
        let mut tls = connector(ens.tls().unwrap(), who)
            .connect(server_name, tcp)
            .await
            .map_err(|e| format!("tls: {e}"))?;
        let version = tls.get_ref().1.protocol_version();
        assert_eq!(
            version,
            Some(rustls::ProtocolVersion::TLSv1_2),
            "3.8 speaks TLS 1.2 only"
        );
        common::handshake(&mut tls, 4000, false)
            .await
            .map(|(len, _)| len)
    };
    tokio::time::timeout(LIMIT, fut)
        .await
        .map_err(|_| "timeout".to_owned())?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
async fn tls_need_accepts_valid_client_and_rejects_others() {
    let ens = Ensemble::builder()
        .nodes(1)
        .tls(TlsOptions::default())
        .start()
        .await
        .unwrap();
    let m = ens.tls().unwrap();
    assert!(m.ca_path().exists() && m.client_cert_path().exists() && m.client_key_path().exists());
    let tls_connect = ens.tls_connect_string().unwrap();
    assert_eq!(tls_connect, ens.node(0).secure_addr().unwrap().to_string());
    assert_eq!(
        ens.node_for_addr(ens.node(0).secure_addr().unwrap()),
        Some(0)
    );

    // Valid certificate: a 37-byte ConnectResponse, by IP SAN and by DNS SAN.
    assert_eq!(
        tls_session(&ens, 0, Identity::Valid, "127.0.0.1").await,
        Ok(37)
    );
    assert_eq!(
        tls_session(&ens, 0, Identity::Valid, "localhost").await,
        Ok(37)
    );
    // The server certificate does not name other hosts.
    assert!(
        tls_session(&ens, 0, Identity::Valid, "zk.example")
            .await
            .is_err()
    );
    // clientAuth=need: no certificate and a certificate from another CA both fail.
    let none = tls_session(&ens, 0, Identity::NoCert, "127.0.0.1").await;
    assert!(none.is_err(), "no-cert client accepted: {none:?}");
    let rogue = tls_session(&ens, 0, Identity::Rogue, "127.0.0.1").await;
    assert!(rogue.is_err(), "rogue client accepted: {rogue:?}");
    // The plain port still works next to TLS (now on Netty, thanks to netty-codec.jar).
    let mut s = TcpStream::connect(ens.node(0).client_addr()).await.unwrap();
    assert_eq!(common::handshake(&mut s, 4000, false).await.unwrap().0, 37);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
async fn tls_want_accepts_clients_without_certificates() {
    let ens = Ensemble::builder()
        .nodes(1)
        .tls(TlsOptions {
            client_auth: ClientAuth::Want,
        })
        .start()
        .await
        .unwrap();
    assert_eq!(
        tls_session(&ens, 0, Identity::NoCert, "127.0.0.1").await,
        Ok(37)
    );
    assert_eq!(
        tls_session(&ens, 0, Identity::Valid, "127.0.0.1").await,
        Ok(37)
    );
    assert!(
        tls_session(&ens, 0, Identity::Rogue, "127.0.0.1")
            .await
            .is_err()
    );
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn material_round_trips_through_files() {
    let dir = tempfile::tempdir().unwrap();
    let m = TlsMaterial::generate(dir.path()).unwrap();
    let again = TlsMaterial::load(dir.path()).unwrap();
    assert_eq!(m.ca_pem, again.ca_pem);
    assert_eq!(m.client_key_pem, again.client_key_pem);
    let store = std::fs::read_to_string(m.server_keystore_path()).unwrap();
    assert!(store.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(store.contains("-----BEGIN CERTIFICATE-----"));
    assert_ne!(m.ca_pem, m.rogue_ca_pem);
}

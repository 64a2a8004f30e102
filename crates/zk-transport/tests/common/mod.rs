//! Test PKI (the test kit's certificate authority) and small loopback servers shared by the integration tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    dead_code,
    unreachable_pub,
    reason = "test code"
)]

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

pub use zk_testkit::Leaf;

/// A throw-away certificate authority: the test kit's (one test PKI for the whole workspace),
/// unwrapped for tests.
pub struct Ca(zk_testkit::TestCa);

impl Ca {
    pub fn new(name: &str) -> Self {
        Self(zk_testkit::TestCa::new(name).unwrap())
    }

    pub fn pem(&self) -> String {
        self.0.pem()
    }

    /// A server certificate for these SANs (DNS names or IP literals), like ZooKeeper's test
    /// PKI: EKU serverAuth + clientAuth.
    pub fn server(&self, sans: &[&str]) -> Leaf {
        self.0.server(sans).unwrap()
    }

    /// A client certificate with no SAN (ZooKeeper does not check it), EKU clientAuth.
    pub fn client(&self) -> Leaf {
        self.0.client().unwrap()
    }

    /// A server certificate with this serial number (for CRLs).
    pub fn server_with_serial(&self, sans: &[&str], serial: u64) -> Leaf {
        self.0.server_with_serial(sans, serial).unwrap()
    }

    /// A CRL (PEM) revoking these serial numbers.
    pub fn crl(&self, serials: &[u64]) -> String {
        self.0.crl(serials).unwrap()
    }

    /// A server certificate that expired in 2020.
    pub fn expired_server(&self, sans: &[&str]) -> Leaf {
        self.0.expired_server(sans).unwrap()
    }
}

/// A self-signed server certificate (no CA at all).
pub fn self_signed(sans: &[&str]) -> Leaf {
    zk_testkit::self_signed(sans).unwrap()
}

/// TLS versions a test server accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Versions {
    /// Like ZooKeeper 3.8: TLS 1.2 only, with ECDHE + AES-128-GCM only.
    Tls12ZooKeeperLike,
    Tls13Only,
}

/// A rustls server config: `leaf` as server identity; with `client_ca`, client certificates
/// signed by it are **required** (ZooKeeper's default `ssl.clientAuth=need`).
pub fn server_config(leaf: &Leaf, client_ca: Option<&Ca>, versions: Versions) -> Arc<ServerConfig> {
    let mut provider = rustls::crypto::ring::default_provider();
    if versions == Versions::Tls12ZooKeeperLike {
        provider.cipher_suites.retain(|suite| {
            matches!(
                suite.suite(),
                rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                    | rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
            )
        });
    }
    let provider = Arc::new(provider);
    let version_list: &[&'static rustls::SupportedProtocolVersion] = match versions {
        Versions::Tls12ZooKeeperLike => &[&rustls::version::TLS12],
        Versions::Tls13Only => &[&rustls::version::TLS13],
    };
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(version_list)
        .unwrap();
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(ca.pem().as_bytes()).unwrap())
                .unwrap();
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let chain = CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
    Arc::new(builder.with_single_cert(chain, key).unwrap())
}

/// A loopback TLS echo server. Every connection's server-side handshake outcome is reported on
/// `outcomes` (`Err` carries the server's error text).
pub struct TlsServer {
    pub addr: SocketAddr,
    pub outcomes: mpsc::UnboundedReceiver<Result<(), String>>,
}

pub async fn spawn_tls_server(config: Arc<ServerConfig>) -> TlsServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, outcomes) = mpsc::unbounded_channel();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match acceptor.accept(tcp).await {
                    Ok(mut tls) => {
                        let _ = tx.send(Ok(()));
                        echo(&mut tls).await;
                    }
                    Err(err) => {
                        let _ = tx.send(Err(err.to_string()));
                    }
                }
            });
        }
    });
    TlsServer { addr, outcomes }
}

/// Echoes until EOF or error.
pub async fn echo<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(stream: &mut S) {
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).await.is_err() || stream.flush().await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Writes `msg` and expects it echoed back.
pub async fn round_trip<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
    msg: &[u8],
) {
    stream.write_all(msg).await.unwrap();
    stream.flush().await.unwrap();
    let mut back = vec![0u8; msg.len()];
    stream.read_exact(&mut back).await.unwrap();
    assert_eq!(back, msg);
}

/// A port on loopback where nothing listens (bound, then released).
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

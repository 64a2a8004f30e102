//! Byte-stream transports for the zk-failover ZooKeeper client.
//!
//! This crate knows sockets and TLS, not ZooKeeper. The session engine asks a [`Connector`] for a
//! stream to one resolved address within a deadline, and gets back a [`BoxStream`] or a typed
//! [`ConnectError`] that tells it whether the host is down, silent, unreachable, or whether the
//! configuration is wrong ([`ConnectError::is_transient`]).
//!
//! | connector | use |
//! |---|---|
//! | [`TcpConnector`] | plain TCP; `TCP_NODELAY` on, optional keepalive and `TCP_USER_TIMEOUT` |
//! | [`TlsConnector`] | TLS 1.2/1.3 on rustls (ring), CA roots from PEM, optional client certificate, verification on by default |
//! | [`MemoryConnector`] | in-memory pipes with scripted refusals and hangs, for deterministic tests |
//!
//! Switching from TCP to TLS is one constructor:
//!
//! ```
//! # fn doc(ca_pem: &str) -> Result<(), zk_transport::TlsConfigError> {
//! use std::sync::Arc;
//! use zk_transport::{Connector, TcpConnector, TlsConfig, TlsConnector};
//!
//! let plain: Arc<dyn Connector> = Arc::new(TcpConnector::new());
//! let tls: Arc<dyn Connector> = Arc::new(TlsConnector::new(TlsConfig::builder().ca_pem(ca_pem)?.build()?));
//! # let _ = (plain, tls); Ok(()) }
//! ```
//!
//! # The `Connector` contract
//!
//! [`Connector::connect`] opens **one** stream to [`Target::addr`] and must finish — with a
//! stream or an error — within the given `timeout`, covering every step it takes (TCP connect,
//! TLS handshake, proxy negotiation). It must not retry other addresses: choosing hosts is the
//! session engine's job. Name resolution has already happened; [`Target::server_name`] carries
//! the host as written in the connection string, for SNI and certificate checks. Map failures to
//! the most precise [`ConnectError`] variant (an `io::Error` converts with `?` or
//! [`ConnectError::from_io_error`]), because the failover logic treats a refusal, a timeout and a
//! certificate problem differently.
//!
//! The trait is object safe; the engine holds an `Arc<dyn Connector>`, and `Arc<C>` and `Box<C>`
//! forward to `C`.
//!
//! # Plugging in your own transport
//!
//! A connector that wraps another one, here to log every attempt with its duration:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, Instant};
//! use zk_transport::{BoxStream, ConnectError, Connector, TcpConnector, Target};
//!
//! #[derive(Debug)]
//! struct Logged<C> {
//!     inner: C,
//! }
//!
//! #[async_trait::async_trait]
//! impl<C: Connector> Connector for Logged<C> {
//!     async fn connect(&self, target: &Target, timeout: Duration) -> Result<BoxStream, ConnectError> {
//!         let started = Instant::now();
//!         let result = self.inner.connect(target, timeout).await;
//!         println!("connect {target}: {:?} after {:?}", result.as_ref().err(), started.elapsed());
//!         result
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let target = Target::from_addr(listener.local_addr().unwrap());
//! let connector: Arc<dyn Connector> = Arc::new(Logged { inner: TcpConnector::new() });
//! let stream = connector.connect(&target, Duration::from_secs(1)).await;
//! assert!(stream.is_ok());
//! # }
//! ```
//!
//! A transport of a different kind, sketched: ZooKeeper behind local Unix sockets, one per
//! port (a SOCKS or HTTP-CONNECT tunnel has the same shape — connect to the proxy, negotiate,
//! return the stream — and can sit under TLS with [`TlsConnector::over`]):
//!
//! ```no_run
//! # #[cfg(unix)] mod unix {
//! use std::time::Duration;
//! use zk_transport::{BoxStream, ConnectError, Connector, Target};
//!
//! #[derive(Debug)]
//! struct UnixSockets {
//!     dir: std::path::PathBuf,
//! }
//!
//! #[async_trait::async_trait]
//! impl Connector for UnixSockets {
//!     async fn connect(&self, target: &Target, timeout: Duration) -> Result<BoxStream, ConnectError> {
//!         let path = self.dir.join(format!("zk-{}.sock", target.addr.port()));
//!         match tokio::time::timeout(timeout, tokio::net::UnixStream::connect(path)).await {
//!             Ok(Ok(stream)) => Ok(Box::new(stream)),
//!             Ok(Err(err)) => Err(err.into()), // ECONNREFUSED -> Refused, etc.
//!             Err(_) => Err(ConnectError::TimedOut),
//!         }
//!     }
//! }
//! # }
//! # fn main() {}
//! ```
//!
//! # TLS and ZooKeeper
//!
//! ZooKeeper 3.8 serves TLS on `secureClientPort` (Netty) and speaks **TLS 1.2 only**, with
//! ECDHE and AES-GCM; it **requires a client certificate** unless `ssl.clientAuth` says
//! otherwise. [`TlsConfig::builder`] offers TLS 1.3 and 1.2 with rustls's default suites, which
//! include ECDHE-RSA/ECDSA-AES-GCM, so it works with a default server. Verification is on and
//! needs CA roots; it can only be turned off through
//! `TlsConfig::builder().dangerous().disable_certificate_verification()`.
//!
//! A missing or untrusted client certificate shows up as
//! [`TlsErrorKind::PeerRejectedUs`] (ZooKeeper sends `bad_certificate` or
//! `certificate_unknown`), a server certificate we do not accept as
//! [`TlsErrorKind::CertificateRejected`]. Neither is transient.
//!
//! # TLS in operation
//!
//! - **Rotation**: [`TlsConnector::reload_handle`] gives a [`TlsReloadHandle`] that replaces the
//!   client certificate, the roots, the CRLs or the whole configuration while connections are
//!   made; a configuration that does not build is refused with its [`TlsConfigError`] and the
//!   one in use stays. With the `tls-watch` feature, `TlsReloadHandle::watch_files` reloads
//!   from PEM files when they change.
//! - **Revocation**: [`TlsConfigBuilder::crl_pem`]; a revoked server certificate is
//!   [`CertificateProblem::Revoked`], not transient.
//! - **Resumption**: sessions are cached per server address (ZooKeeper servers each resume
//!   only their own), dropped on rotation; [`TlsConnector::prime`] readies one with every
//!   server; [`TlsStats`] counts full and resumed handshakes.
#![deny(unsafe_code)]

mod error;
mod lowat;
mod memory;
mod tcp;
mod tls;
#[cfg(feature = "tls-watch")]
mod watch;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

pub use error::{CertificateProblem, ConnectError, TlsAlert, TlsConfigError, TlsErrorKind};
pub use memory::{MemoryBehaviour, MemoryConnector, MemoryListener};
pub use tcp::TcpConnector;
pub use tls::{
    DangerousTlsConfigBuilder, TlsConfig, TlsConfigBuilder, TlsConnector, TlsFiles,
    TlsReloadHandle, TlsStats,
};
#[cfg(feature = "tls-watch")]
pub use watch::TlsFileWatcher;

/// Re-export of the rustls version this crate is built on, for [`TlsConfig::from_rustls`].
pub use rustls;

/// A byte stream to one server.
///
/// Every `AsyncRead + AsyncWrite + Send + Unpin + 'static` type is one. The `Any` bound lets
/// [`set_receive_low_water`] find a plain TCP socket behind a [`BoxStream`].
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + std::any::Any {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

pub use lowat::set_receive_low_water;

/// The stream type every [`Connector`] returns.
pub type BoxStream = Box<dyn Stream>;

/// Where to connect: one resolved address, plus the host name from the connection string (used
/// for SNI and certificate verification; an IP literal is verified as an IP address).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The resolved socket address to connect to.
    pub addr: SocketAddr,
    /// The host as written in the connection string, e.g. `zk1.example.com` or `127.0.0.1`.
    pub server_name: String,
}

impl Target {
    /// A target for `addr`, verified against `server_name`.
    #[must_use]
    pub fn new(addr: SocketAddr, server_name: impl Into<String>) -> Self {
        Self {
            addr,
            server_name: server_name.into(),
        }
    }

    /// A target whose server name is the address's IP (for connection strings holding IPs).
    #[must_use]
    pub fn from_addr(addr: SocketAddr) -> Self {
        Self::new(addr, addr.ip().to_string())
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.server_name == self.addr.ip().to_string() {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{} ({})", self.server_name, self.addr)
        }
    }
}

/// Opens byte streams to servers. See the [crate documentation](crate) for the contract and an
/// example of a custom implementation.
#[async_trait::async_trait]
pub trait Connector: Send + Sync + fmt::Debug + 'static {
    /// Opens a stream to `target.addr` within `timeout` (covers TCP connect and, for TLS, the
    /// TLS handshake).
    ///
    /// # Errors
    ///
    /// [`ConnectError::TimedOut`] when the deadline passes; otherwise the most precise variant
    /// for what failed.
    async fn connect(&self, target: &Target, timeout: Duration) -> Result<BoxStream, ConnectError>;
}

#[async_trait::async_trait]
impl<C: Connector + ?Sized> Connector for Arc<C> {
    async fn connect(&self, target: &Target, timeout: Duration) -> Result<BoxStream, ConnectError> {
        (**self).connect(target, timeout).await
    }
}

#[async_trait::async_trait]
impl<C: Connector + ?Sized> Connector for Box<C> {
    async fn connect(&self, target: &Target, timeout: Duration) -> Result<BoxStream, ConnectError> {
        (**self).connect(target, timeout).await
    }
}

//! TLS over any [`Connector`] (TCP by default), on rustls with the ring provider.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::client::TlsStream;

use crate::{
    BoxStream, ConnectError, Connector, Target, TcpConnector, TlsConfigError, TlsErrorKind,
};

/// Client-side TLS settings: trust roots, optional client certificate, server-name handling.
///
/// Build one with [`TlsConfig::builder`], or wrap your own rustls config with
/// [`TlsConfig::from_rustls`]. Cloning is cheap (the rustls config is shared), and sharing one
/// `TlsConfig` across reconnects lets rustls resume TLS sessions with a server it already met.
#[derive(Clone)]
pub struct TlsConfig {
    client: Arc<ClientConfig>,
    server_name_override: Option<ServerName<'static>>,
    verification_disabled: bool,
}

impl TlsConfig {
    /// Starts a builder: certificate verification on, TLS 1.3 and 1.2 offered, no client
    /// certificate, ring crypto provider.
    #[must_use]
    pub fn builder() -> TlsConfigBuilder {
        TlsConfigBuilder::default()
    }

    /// Uses a rustls client configuration as is (its crypto provider, versions, verifier and
    /// client certificate). The server name still comes from each [`Target`].
    #[must_use]
    pub fn from_rustls(config: Arc<ClientConfig>) -> Self {
        Self {
            client: config,
            server_name_override: None,
            verification_disabled: false,
        }
    }

    /// Replaces the server name used for SNI and certificate verification (instead of
    /// [`Target::server_name`]); `None` restores the default.
    ///
    /// # Errors
    ///
    /// [`TlsConfigError::InvalidServerName`] if the name is neither a DNS name nor an IP address.
    pub fn with_server_name_override(
        mut self,
        name: Option<String>,
    ) -> Result<Self, TlsConfigError> {
        self.server_name_override = match name {
            Some(name) => {
                Some(parse_server_name(&name).ok_or(TlsConfigError::InvalidServerName(name))?)
            }
            None => None,
        };
        Ok(self)
    }

    /// The rustls configuration in use.
    #[must_use]
    pub fn rustls_config(&self) -> &Arc<ClientConfig> {
        &self.client
    }

    /// The server-name override, if any.
    #[must_use]
    pub fn server_name_override(&self) -> Option<&ServerName<'static>> {
        self.server_name_override.as_ref()
    }

    /// Whether certificate verification was disabled through
    /// [`DangerousTlsConfigBuilder::disable_certificate_verification`].
    #[must_use]
    pub fn is_verification_disabled(&self) -> bool {
        self.verification_disabled
    }

    fn server_name_for(&self, target: &Target) -> Result<ServerName<'static>, ConnectError> {
        if let Some(name) = &self.server_name_override {
            return Ok(name.clone());
        }
        parse_server_name(&target.server_name)
            .ok_or_else(|| TlsErrorKind::InvalidServerName(target.server_name.clone()).into())
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("server_name_override", &self.server_name_override)
            .field("verification_disabled", &self.verification_disabled)
            .field(
                "client_auth",
                &self.client.client_auth_cert_resolver.has_certs(),
            )
            .finish_non_exhaustive()
    }
}

/// Parses a host from a connection string into a rustls server name: an IP literal (brackets
/// around IPv6 allowed) becomes an IP-address name, anything else must be a valid DNS name.
fn parse_server_name(name: &str) -> Option<ServerName<'static>> {
    let bare = name
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(name);
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return Some(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(bare.to_owned()).ok()
}

/// Builder for [`TlsConfig`]; see [`TlsConfig::builder`].
///
/// ```
/// # fn pem() -> (String, String, String) { unimplemented!() }
/// # fn doc() -> Result<(), zk_transport::TlsConfigError> {
/// use zk_transport::{TlsConfig, TlsConnector};
///
/// let (ca_pem, client_chain_pem, client_key_pem) = pem();
/// let config = TlsConfig::builder()
///     .ca_pem(&ca_pem)?
///     .client_cert_pem(&client_chain_pem, &client_key_pem)?
///     .build()?;
/// let connector = TlsConnector::new(config);
/// # let _ = connector; Ok(()) }
/// ```
pub struct TlsConfigBuilder {
    roots: RootCertStore,
    client_auth: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    server_name_override: Option<String>,
    verification_disabled: bool,
}

impl Default for TlsConfigBuilder {
    fn default() -> Self {
        Self {
            roots: RootCertStore::empty(),
            client_auth: None,
            server_name_override: None,
            verification_disabled: false,
        }
    }
}

impl TlsConfigBuilder {
    /// Adds every `CERTIFICATE` in this PEM text as a trusted CA root. May be called repeatedly.
    ///
    /// # Errors
    ///
    /// [`TlsConfigError::Pem`] for malformed PEM, [`TlsConfigError::Missing`] if it holds no
    /// certificate, [`TlsConfigError::InvalidCaCertificate`] if one cannot be a trust anchor.
    pub fn ca_pem(mut self, pem: &str) -> Result<Self, TlsConfigError> {
        let certs = parse_certs(pem, "CA certificates")?;
        for cert in certs {
            self.roots
                .add(cert)
                .map_err(|err| TlsConfigError::InvalidCaCertificate(err.to_string()))?;
        }
        Ok(self)
    }

    /// [`ca_pem`](Self::ca_pem) with the text read from a file.
    ///
    /// # Errors
    ///
    /// As `ca_pem`, plus [`TlsConfigError::ReadFile`].
    pub fn ca_pem_file(self, path: impl AsRef<Path>) -> Result<Self, TlsConfigError> {
        let text = read_file(path.as_ref())?;
        self.ca_pem(&text)
    }

    /// Presents this client certificate (mTLS). `chain_pem` holds the leaf certificate first,
    /// then any intermediates; `key_pem` holds its private key (PKCS#8, PKCS#1 or SEC1).
    ///
    /// Both may be the same text: ZooKeeper's PEM keystore (a `PRIVATE KEY` followed by the
    /// certificate in one file) works as both arguments.
    ///
    /// # Errors
    ///
    /// [`TlsConfigError::Pem`] or [`TlsConfigError::Missing`].
    pub fn client_cert_pem(
        mut self,
        chain_pem: &str,
        key_pem: &str,
    ) -> Result<Self, TlsConfigError> {
        let chain = parse_certs(chain_pem, "client certificate chain")?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|err| match err {
            rustls_pki_types::pem::Error::NoItemsFound => TlsConfigError::Missing {
                what: "PRIVATE KEY",
            },
            other => TlsConfigError::Pem {
                what: "client private key",
                message: other.to_string(),
            },
        })?;
        self.client_auth = Some((chain, key));
        Ok(self)
    }

    /// [`client_cert_pem`](Self::client_cert_pem) with the texts read from files (they may be
    /// the same file).
    ///
    /// # Errors
    ///
    /// As `client_cert_pem`, plus [`TlsConfigError::ReadFile`].
    pub fn client_cert_pem_file(
        self,
        chain_path: impl AsRef<Path>,
        key_path: impl AsRef<Path>,
    ) -> Result<Self, TlsConfigError> {
        let chain = read_file(chain_path.as_ref())?;
        let key = read_file(key_path.as_ref())?;
        self.client_cert_pem(&chain, &key)
    }

    /// Uses this name for SNI and certificate verification instead of each
    /// [`Target::server_name`] (for example when the connection string holds IP addresses but
    /// the certificates name a DNS host). `None` (the default) uses the target's name.
    #[must_use]
    pub fn server_name_override(mut self, name: Option<String>) -> Self {
        self.server_name_override = name;
        self
    }

    /// Options that weaken security. Read their documentation.
    #[must_use]
    pub fn dangerous(self) -> DangerousTlsConfigBuilder {
        DangerousTlsConfigBuilder { inner: self }
    }

    /// Builds the configuration.
    ///
    /// # Errors
    ///
    /// [`TlsConfigError::NoTrustAnchors`] if verification is on and no CA was given,
    /// [`TlsConfigError::ClientCertificate`] if rustls refuses the client certificate or key,
    /// [`TlsConfigError::InvalidServerName`] for a bad override.
    pub fn build(self) -> Result<TlsConfig, TlsConfigError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|err| TlsConfigError::Rustls(err.to_string()))?;
        let wants_client_cert = if self.verification_disabled {
            tracing::warn!(
                "TLS certificate verification is DISABLED; the server is not authenticated"
            );
            versions
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoCertificateVerification { provider }))
        } else {
            if self.roots.is_empty() {
                return Err(TlsConfigError::NoTrustAnchors);
            }
            versions.with_root_certificates(self.roots)
        };
        let client = match self.client_auth {
            Some((chain, key)) => wants_client_cert
                .with_client_auth_cert(chain, key)
                .map_err(|err| TlsConfigError::ClientCertificate(err.to_string()))?,
            None => wants_client_cert.with_no_client_auth(),
        };
        let config = TlsConfig {
            client: Arc::new(client),
            server_name_override: None,
            verification_disabled: self.verification_disabled,
        };
        config.with_server_name_override(self.server_name_override)
    }
}

impl fmt::Debug for TlsConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfigBuilder")
            .field("ca_roots", &self.roots.len())
            .field("client_cert", &self.client_auth.is_some())
            .field("server_name_override", &self.server_name_override)
            .field("verification_disabled", &self.verification_disabled)
            .finish()
    }
}

/// Security-weakening options, reached through [`TlsConfigBuilder::dangerous`].
#[derive(Debug)]
pub struct DangerousTlsConfigBuilder {
    inner: TlsConfigBuilder,
}

impl DangerousTlsConfigBuilder {
    /// Accepts any server certificate: no CA, host-name or validity check.
    ///
    /// The handshake signatures are still verified (so the server must hold the key of the
    /// certificate it sends), but anyone on the path can present their own certificate and read
    /// or alter the traffic. Only for tests and throw-away environments. CA roots given to the
    /// builder are ignored.
    #[must_use]
    pub fn disable_certificate_verification(mut self) -> TlsConfigBuilder {
        self.inner.verification_disabled = true;
        self.inner
    }
}

/// Accepts every certificate but still checks handshake signatures against it.
#[derive(Debug)]
struct NoCertificateVerification {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for NoCertificateVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn parse_certs(
    pem: &str,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| TlsConfigError::Pem {
            what,
            message: err.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsConfigError::Missing {
            what: "CERTIFICATE",
        });
    }
    Ok(certs)
}

fn read_file(path: &Path) -> Result<String, TlsConfigError> {
    std::fs::read_to_string(path).map_err(|err| TlsConfigError::ReadFile {
        path: path.display().to_string(),
        message: err.to_string(),
    })
}

/// Opens TLS streams: connects with an inner [`Connector`] (a [`TcpConnector`] unless told
/// otherwise), then runs the TLS handshake, all within the one deadline given to
/// [`Connector::connect`].
///
/// SNI and certificate verification use [`Target::server_name`] (an IP literal is verified
/// against the certificate's IP SANs), unless the [`TlsConfig`] has a server-name override.
#[derive(Debug, Clone)]
pub struct TlsConnector {
    inner: Arc<dyn Connector>,
    config: TlsConfig,
}

impl TlsConnector {
    /// TLS over a default [`TcpConnector`].
    #[must_use]
    pub fn new(config: TlsConfig) -> Self {
        Self::with_tcp(TcpConnector::new(), config)
    }

    /// TLS over this [`TcpConnector`] (to set keepalive or `TCP_USER_TIMEOUT`).
    #[must_use]
    pub fn with_tcp(tcp: TcpConnector, config: TlsConfig) -> Self {
        Self::over(Arc::new(tcp), config)
    }

    /// TLS over any other connector (an in-memory pipe, a proxy tunnel, …).
    #[must_use]
    pub fn over(inner: Arc<dyn Connector>, config: TlsConfig) -> Self {
        Self { inner, config }
    }

    /// The TLS configuration.
    #[must_use]
    pub fn config(&self) -> &TlsConfig {
        &self.config
    }

    /// Like [`Connector::connect`] but returns the concrete TLS stream, so callers can inspect
    /// the negotiated protocol version, cipher suite or peer certificates through
    /// `stream.get_ref().1`.
    ///
    /// # Errors
    ///
    /// [`ConnectError::TimedOut`] when TCP connect plus handshake exceed `timeout`; the inner
    /// connector's errors; [`ConnectError::Tls`] for handshake failures.
    pub async fn connect_tls(
        &self,
        target: &Target,
        timeout: Duration,
    ) -> Result<TlsStream<BoxStream>, ConnectError> {
        let server_name = self.config.server_name_for(target)?;
        let started = Instant::now();
        let attempt = async {
            let io = self.inner.connect(target, timeout).await?;
            let connector = tokio_rustls::TlsConnector::from(Arc::clone(&self.config.client));
            connector
                .connect(server_name, io)
                .await
                .map_err(|err| ConnectError::from_io_error(&err))
        };
        let result = match tokio::time::timeout(timeout, attempt).await {
            Ok(result) => result,
            Err(_elapsed) => Err(ConnectError::TimedOut),
        };
        let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        match &result {
            Ok(stream) => {
                let conn = stream.get_ref().1;
                tracing::debug!(
                    addr = %target.addr,
                    server_name = %target.server_name,
                    version = ?conn.protocol_version(),
                    cipher_suite = ?conn.negotiated_cipher_suite().map(|s| s.suite()),
                    resumed = ?conn.handshake_kind(),
                    elapsed_us,
                    "tls connected"
                );
            }
            Err(err) => tracing::debug!(
                addr = %target.addr,
                server_name = %target.server_name,
                error = %err,
                elapsed_us,
                "tls connect failed"
            ),
        }
        result
    }
}

#[async_trait::async_trait]
impl Connector for TlsConnector {
    async fn connect(&self, target: &Target, timeout: Duration) -> Result<BoxStream, ConnectError> {
        let stream = self.connect_tls(target, timeout).await?;
        Ok(Box::new(stream))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_parse() {
        assert!(matches!(
            parse_server_name("127.0.0.1"),
            Some(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            parse_server_name("::1"),
            Some(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            parse_server_name("[::1]"),
            Some(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            parse_server_name("zk1.example.com"),
            Some(ServerName::DnsName(_))
        ));
        assert!(parse_server_name("not a host!").is_none());
        assert!(parse_server_name("").is_none());
    }

    #[test]
    fn builder_requires_roots_unless_dangerous() {
        assert_eq!(
            TlsConfig::builder().build().err(),
            Some(TlsConfigError::NoTrustAnchors)
        );
        let config = TlsConfig::builder()
            .dangerous()
            .disable_certificate_verification()
            .build()
            .unwrap();
        assert!(config.is_verification_disabled());
    }

    #[test]
    fn builder_rejects_bad_pem() {
        assert_eq!(
            TlsConfig::builder().ca_pem("no pem here").err(),
            Some(TlsConfigError::Missing {
                what: "CERTIFICATE"
            })
        );
        let broken = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            TlsConfig::builder().ca_pem(broken).err(),
            Some(TlsConfigError::Pem {
                what: "CA certificates",
                ..
            })
        ));
        let err = TlsConfig::builder()
            .dangerous()
            .disable_certificate_verification()
            .server_name_override(Some("bad name!".into()))
            .build()
            .err();
        assert_eq!(
            err,
            Some(TlsConfigError::InvalidServerName("bad name!".into()))
        );
        assert!(matches!(
            TlsConfig::builder()
                .ca_pem_file("/nonexistent/ca.pem")
                .err(),
            Some(TlsConfigError::ReadFile { .. })
        ));
    }

    #[test]
    fn invalid_target_name_is_typed() {
        let config = TlsConfig::builder()
            .dangerous()
            .disable_certificate_verification()
            .build()
            .unwrap();
        let target = Target::new("127.0.0.1:1".parse().unwrap(), "bad name!");
        assert_eq!(
            config.server_name_for(&target).err(),
            Some(ConnectError::Tls(TlsErrorKind::InvalidServerName(
                "bad name!".into()
            )))
        );
    }
}

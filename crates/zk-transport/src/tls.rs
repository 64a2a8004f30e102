//! TLS over any [`Connector`] (TCP by default), on rustls with the ring provider.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, HandshakeKind, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, UnixTime,
};
use tokio_rustls::client::TlsStream;

use crate::{
    BoxStream, ConnectError, Connector, Target, TcpConnector, TlsConfigError, TlsErrorKind,
};

/// Client-side TLS settings: trust roots, optional client certificate, optional CRLs,
/// server-name handling.
///
/// Build one with [`TlsConfig::builder`], or wrap your own rustls config with
/// [`TlsConfig::from_rustls`]. Cloning is cheap (the rustls config is shared). A
/// [`TlsConnector`] made from a built configuration keeps a TLS session cache per server
/// address, so reconnecting to a server it already met resumes the TLS session (an abbreviated
/// handshake); see [`TlsConnector::stats`].
///
/// A configuration is a snapshot. To change the client certificate, the trusted roots or the
/// CRLs while a client runs, use the connector's [`TlsReloadHandle`].
#[derive(Clone)]
pub struct TlsConfig {
    client: Arc<ClientConfig>,
    server_name_override: Option<ServerName<'static>>,
    verification_disabled: bool,
    /// What the builder was given (absent for [`TlsConfig::from_rustls`]): lets a rotation
    /// replace one part and rebuild.
    spec: Option<Arc<Spec>>,
}

impl TlsConfig {
    /// Starts a builder: certificate verification on, TLS 1.3 and 1.2 offered, no client
    /// certificate, no CRL, session resumption on, ring crypto provider.
    #[must_use]
    pub fn builder() -> TlsConfigBuilder {
        TlsConfigBuilder::default()
    }

    /// Uses a rustls client configuration as is (its crypto provider, versions, verifier,
    /// client certificate and session store). The server name still comes from each
    /// [`Target`]. Such a configuration can be replaced as a whole
    /// ([`TlsReloadHandle::replace`]) but not part by part.
    #[must_use]
    pub fn from_rustls(config: Arc<ClientConfig>) -> Self {
        Self {
            client: config,
            server_name_override: None,
            verification_disabled: false,
            spec: None,
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

    /// How many CRLs the server certificates are checked against.
    #[must_use]
    pub fn crl_count(&self) -> usize {
        self.spec.as_ref().map_or(0, |s| s.crls.len())
    }

    /// A builder holding everything this configuration was built from, to change one part
    /// (`None` for [`TlsConfig::from_rustls`]).
    fn to_builder(&self) -> Option<TlsConfigBuilder> {
        let spec = self.spec.as_ref()?;
        Some(TlsConfigBuilder {
            spec: Spec::clone(spec),
            server_name_override: None,
            keep_server_name: self.server_name_override.clone(),
        })
    }

    /// Whether the connector keeps one session cache per server address for this
    /// configuration (built ones with resumption on); `from_rustls` configurations keep the
    /// session store they came with.
    fn per_address_sessions(&self) -> bool {
        self.spec.as_ref().is_some_and(|s| s.resumption)
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
            .field("crls", &self.crl_count())
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

/// A client certificate chain and its key. The key never appears in `Debug` output.
struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

/// The inputs of a built [`TlsConfig`].
#[derive(Clone)]
struct Spec {
    roots: RootCertStore,
    identity: Option<Arc<Identity>>,
    crls: Vec<CertificateRevocationListDer<'static>>,
    allow_unknown_revocation: bool,
    verification_disabled: bool,
    resumption: bool,
}

impl Default for Spec {
    fn default() -> Self {
        Self {
            roots: RootCertStore::empty(),
            identity: None,
            crls: Vec::new(),
            allow_unknown_revocation: false,
            verification_disabled: false,
            resumption: true,
        }
    }
}

impl Spec {
    fn client_config(&self) -> Result<ClientConfig, TlsConfigError> {
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
        } else if self.roots.is_empty() {
            return Err(TlsConfigError::NoTrustAnchors);
        } else if self.crls.is_empty() {
            versions.with_root_certificates(self.roots.clone())
        } else {
            let mut verifier =
                WebPkiServerVerifier::builder_with_provider(Arc::new(self.roots.clone()), provider)
                    .with_crls(self.crls.iter().cloned());
            if self.allow_unknown_revocation {
                verifier = verifier.allow_unknown_revocation_status();
            }
            let verifier = verifier
                .build()
                .map_err(|err| TlsConfigError::InvalidCrl(err.to_string()))?;
            versions.with_webpki_verifier(verifier)
        };
        let mut client = match &self.identity {
            Some(id) => wants_client_cert
                .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
                .map_err(|err| TlsConfigError::ClientCertificate(err.to_string()))?,
            None => wants_client_cert.with_no_client_auth(),
        };
        if !self.resumption {
            client.resumption = Resumption::disabled();
        }
        Ok(client)
    }
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
#[derive(Default)]
pub struct TlsConfigBuilder {
    spec: Spec,
    server_name_override: Option<String>,
    /// A rotation's builder keeps the parsed override of the configuration it replaces.
    keep_server_name: Option<ServerName<'static>>,
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
            self.spec
                .roots
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

    /// Forgets the CA roots added so far (in a [`TlsReloadHandle::rotate`] closure: replace
    /// the roots instead of adding to them).
    #[must_use]
    pub fn clear_roots(mut self) -> Self {
        self.spec.roots = RootCertStore::empty();
        self
    }

    /// Presents this client certificate (mTLS). `chain_pem` holds the leaf certificate first,
    /// then any intermediates; `key_pem` holds its private key (PKCS#8, PKCS#1 or SEC1).
    /// Replaces a client certificate given before.
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
        self.spec.identity = Some(Arc::new(Identity { chain, key }));
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

    /// Presents no client certificate.
    #[must_use]
    pub fn no_client_cert(mut self) -> Self {
        self.spec.identity = None;
        self
    }

    /// Checks server certificates against every `X509 CRL` in this PEM text (certificate
    /// revocation lists, as issued by the CAs). May be called repeatedly.
    ///
    /// Revocation is checked for the whole chain (except the trust anchor), and a certificate
    /// whose issuer published no CRL here is **refused** as of unknown status, unless
    /// [`allow_unknown_revocation_status`](Self::allow_unknown_revocation_status). A revoked
    /// server certificate fails the handshake with
    /// [`CertificateProblem::Revoked`](crate::CertificateProblem::Revoked), which is not
    /// transient: the session engine moves on to the next server.
    ///
    /// # Errors
    ///
    /// [`TlsConfigError::Pem`] for malformed PEM, [`TlsConfigError::Missing`] if it holds no
    /// CRL. (CRLs that parse as PEM but not as CRLs are refused by [`build`](Self::build).)
    pub fn crl_pem(mut self, pem: &str) -> Result<Self, TlsConfigError> {
        let crls = CertificateRevocationListDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| TlsConfigError::Pem {
                what: "CRLs",
                message: err.to_string(),
            })?;
        if crls.is_empty() {
            return Err(TlsConfigError::Missing { what: "X509 CRL" });
        }
        self.spec.crls.extend(crls);
        Ok(self)
    }

    /// [`crl_pem`](Self::crl_pem) with the text read from a file.
    ///
    /// # Errors
    ///
    /// As `crl_pem`, plus [`TlsConfigError::ReadFile`].
    pub fn crl_pem_file(self, path: impl AsRef<Path>) -> Result<Self, TlsConfigError> {
        let text = read_file(path.as_ref())?;
        self.crl_pem(&text)
    }

    /// Forgets the CRLs added so far.
    #[must_use]
    pub fn clear_crls(mut self) -> Self {
        self.spec.crls.clear();
        self
    }

    /// With CRLs: accept a certificate whose issuer has no CRL among those given (by default
    /// such a certificate is refused).
    #[must_use]
    pub fn allow_unknown_revocation_status(mut self) -> Self {
        self.spec.allow_unknown_revocation = true;
        self
    }

    /// TLS session resumption (on by default): the connector keeps the sessions of the last
    /// few handshakes with each server address and offers them when it reconnects there
    /// (TLS 1.2 session IDs or tickets, TLS 1.3 tickets), which spares the server's
    /// certificate chain, the signatures and (TLS 1.2) a key exchange.
    #[must_use]
    pub fn resumption(mut self, on: bool) -> Self {
        self.spec.resumption = on;
        self
    }

    /// Uses this name for SNI and certificate verification instead of each
    /// [`Target::server_name`] (for example when the connection string holds IP addresses but
    /// the certificates name a DNS host). `None` (the default) uses the target's name.
    #[must_use]
    pub fn server_name_override(mut self, name: Option<String>) -> Self {
        self.server_name_override = name;
        self.keep_server_name = None;
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
    /// [`TlsConfigError::ClientCertificate`] if rustls refuses the client certificate or key
    /// (for example a key that does not match the certificate),
    /// [`TlsConfigError::InvalidCrl`] for a CRL that does not parse,
    /// [`TlsConfigError::InvalidServerName`] for a bad override.
    pub fn build(self) -> Result<TlsConfig, TlsConfigError> {
        let client = self.spec.client_config()?;
        let config = TlsConfig {
            client: Arc::new(client),
            server_name_override: self.keep_server_name,
            verification_disabled: self.spec.verification_disabled,
            spec: Some(Arc::new(self.spec)),
        };
        match self.server_name_override {
            Some(name) => config.with_server_name_override(Some(name)),
            None => Ok(config),
        }
    }
}

impl fmt::Debug for TlsConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfigBuilder")
            .field("ca_roots", &self.spec.roots.len())
            .field("client_cert", &self.spec.identity.is_some())
            .field("crls", &self.spec.crls.len())
            .field("resumption", &self.spec.resumption)
            .field("server_name_override", &self.server_name_override)
            .field("verification_disabled", &self.spec.verification_disabled)
            .finish_non_exhaustive()
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
        self.inner.spec.verification_disabled = true;
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

/// Per-address session caches kept by a connector: bounded so a long run through many
/// reconfigurations does not grow without end.
const MAX_SESSION_CACHES: usize = 64;
/// TLS sessions kept per server address (TLS 1.3 tickets are single use; ZooKeeper's JDK
/// server sends one or two per handshake).
const SESSIONS_PER_ADDRESS: usize = 8;

/// Handshake counters of a [`TlsConnector`] (and of every clone and [`TlsReloadHandle`] of it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsStats {
    /// Handshakes that completed in full (certificate chain, signatures, key exchange).
    pub full_handshakes: u64,
    /// Handshakes that resumed an earlier TLS session (abbreviated).
    pub resumed_handshakes: u64,
    /// Connection attempts that failed (TCP or TLS, including timeouts).
    pub failed: u64,
    /// Configurations installed through a [`TlsReloadHandle`].
    pub rotations: u64,
    /// Rotations refused because the new configuration did not build.
    pub rejected_rotations: u64,
}

#[derive(Debug, Default)]
struct Counters {
    full: AtomicU64,
    resumed: AtomicU64,
    failed: AtomicU64,
    rotations: AtomicU64,
    rejected: AtomicU64,
}

/// The configuration a connector uses now, with its session caches.
struct Current {
    config: TlsConfig,
    generation: u64,
    /// One rustls configuration per server address, each with its own session store: rustls
    /// keys sessions by server name, and the servers of an ensemble often share one (an IP
    /// connection string on one machine, a DNS name in front of several servers), while each
    /// server JVM only resumes its own sessions.
    per_address: HashMap<SocketAddr, Arc<ClientConfig>>,
}

struct Shared {
    current: RwLock<Current>,
    counters: Counters,
}

impl Shared {
    fn new(config: TlsConfig) -> Self {
        Self {
            current: RwLock::new(Current {
                config,
                generation: 0,
                per_address: HashMap::new(),
            }),
            counters: Counters::default(),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Current> {
        self.current.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The server name and the rustls configuration for this target, from the current
    /// configuration.
    fn for_target(
        &self,
        target: &Target,
    ) -> Result<(ServerName<'static>, Arc<ClientConfig>), ConnectError> {
        {
            let current = self.read();
            let name = current.config.server_name_for(target)?;
            if !current.config.per_address_sessions() {
                return Ok((name, Arc::clone(&current.config.client)));
            }
            if let Some(config) = current.per_address.get(&target.addr) {
                return Ok((name, Arc::clone(config)));
            }
        }
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        let name = current.config.server_name_for(target)?;
        if current.per_address.len() >= MAX_SESSION_CACHES {
            current.per_address.clear();
        }
        let base = Arc::clone(&current.config.client);
        let config = current.per_address.entry(target.addr).or_insert_with(|| {
            let mut config = ClientConfig::clone(&base);
            config.resumption = Resumption::in_memory_sessions(SESSIONS_PER_ADDRESS);
            Arc::new(config)
        });
        Ok((name, Arc::clone(config)))
    }

    fn install(&self, config: TlsConfig) -> u64 {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        current.config = config;
        current.generation += 1;
        // Sessions negotiated under the old identity, roots or CRLs are not resumed: a resumed
        // TLS session skips the certificates, so it would keep presenting the old client
        // certificate and keep trusting a server the new roots or CRLs refuse.
        current.per_address.clear();
        self.counters.rotations.fetch_add(1, Ordering::Relaxed);
        current.generation
    }

    fn stats(&self) -> TlsStats {
        let c = &self.counters;
        TlsStats {
            full_handshakes: c.full.load(Ordering::Relaxed),
            resumed_handshakes: c.resumed.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            rotations: c.rotations.load(Ordering::Relaxed),
            rejected_rotations: c.rejected.load(Ordering::Relaxed),
        }
    }
}

/// Opens TLS streams: connects with an inner [`Connector`] (a [`TcpConnector`] unless told
/// otherwise), then runs the TLS handshake, all within the one deadline given to
/// [`Connector::connect`].
///
/// SNI and certificate verification use [`Target::server_name`] (an IP literal is verified
/// against the certificate's IP SANs), unless the [`TlsConfig`] has a server-name override.
///
/// Clones share the configuration, the session caches and the counters. The configuration
/// can be replaced at run time through [`TlsConnector::reload_handle`]; connections already
/// open keep the configuration they were made with, the next one uses the new one.
#[derive(Clone)]
pub struct TlsConnector {
    inner: Arc<dyn Connector>,
    shared: Arc<Shared>,
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.shared.read();
        f.debug_struct("TlsConnector")
            .field("inner", &self.inner)
            .field("config", &current.config)
            .field("generation", &current.generation)
            .finish_non_exhaustive()
    }
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
        Self {
            inner,
            shared: Arc::new(Shared::new(config)),
        }
    }

    /// The TLS configuration in use now.
    #[must_use]
    pub fn config(&self) -> TlsConfig {
        self.reload_handle().current()
    }

    /// A handle that replaces this connector's configuration at run time (certificate
    /// rotation, new roots, new CRLs).
    #[must_use]
    pub fn reload_handle(&self) -> TlsReloadHandle {
        TlsReloadHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Handshake counters (full, resumed, failed) and rotations so far.
    #[must_use]
    pub fn stats(&self) -> TlsStats {
        self.shared.stats()
    }

    /// Handshakes with each target and closes the connection again, so that the session
    /// caches hold a resumable TLS session for every server: a later failover to any of them
    /// then costs an abbreviated handshake instead of a full one. ZooKeeper sees a TLS
    /// connection that closes before its `ConnectRequest` (no session is created). Returns how
    /// many handshakes succeeded; failures are only counted in [`TlsConnector::stats`].
    ///
    /// Sessions expire on the server (the JDK keeps them 24 h by default) and die with its
    /// JVM: prime again after servers restart, or let the first reconnect pay the full
    /// handshake.
    pub async fn prime(&self, targets: &[Target], timeout: Duration) -> usize {
        let mut primed = 0;
        for target in targets {
            if let Ok(mut stream) = self.connect_tls(target, timeout).await {
                primed += 1;
                // Close, then read to the server's EOF: TLS 1.3 session tickets arrive after the
                // handshake and are stored only when the connection is read.
                let _ = tokio::time::timeout(timeout, async {
                    let _ = tokio::io::AsyncWriteExt::shutdown(&mut stream).await;
                    let mut buf = [0_u8; 256];
                    while let Ok(n) = tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                })
                .await;
            }
        }
        primed
    }

    /// Like [`Connector::connect`] but returns the concrete TLS stream, so callers can inspect
    /// the negotiated protocol version, cipher suite, peer certificates or whether the session
    /// was resumed through `stream.get_ref().1`.
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
        let counters = &self.shared.counters;
        let (server_name, client) = match self.shared.for_target(target) {
            Ok(found) => found,
            Err(err) => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                return Err(err);
            }
        };
        let started = Instant::now();
        let attempt = async {
            let io = self.inner.connect(target, timeout).await?;
            let connector = tokio_rustls::TlsConnector::from(client);
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
                let kind = conn.handshake_kind();
                let counter = if kind == Some(HandshakeKind::Resumed) {
                    &counters.resumed
                } else {
                    &counters.full
                };
                counter.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    addr = %target.addr,
                    server_name = %target.server_name,
                    version = ?conn.protocol_version(),
                    cipher_suite = ?conn.negotiated_cipher_suite().map(|s| s.suite()),
                    handshake = ?kind,
                    elapsed_us,
                    "tls connected"
                );
            }
            Err(err) => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    addr = %target.addr,
                    server_name = %target.server_name,
                    error = %err,
                    elapsed_us,
                    "tls connect failed"
                );
            }
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

/// The PEM files a configuration is (re)built from, for [`TlsReloadHandle::reload_files`] and
/// (feature `tls-watch`) `TlsReloadHandle::watch_files`. Each file holds what the builder
/// method of the same name takes; the client key may be in the certificate file
/// (ZooKeeper's PEM key store layout: key, then certificate).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsFiles {
    /// CA roots (replace the configuration's roots when non-empty).
    pub ca: Vec<std::path::PathBuf>,
    /// Client certificate chain, and the key file (the same file if `None`).
    pub client_cert: Option<(std::path::PathBuf, Option<std::path::PathBuf>)>,
    /// CRLs (replace the configuration's CRLs when non-empty).
    pub crls: Vec<std::path::PathBuf>,
}

impl TlsFiles {
    /// No files.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a CA file.
    #[must_use]
    pub fn ca(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.ca.push(path.into());
        self
    }

    /// The client certificate chain file and its key file.
    #[must_use]
    pub fn client_cert(
        mut self,
        chain: impl Into<std::path::PathBuf>,
        key: impl Into<std::path::PathBuf>,
    ) -> Self {
        self.client_cert = Some((chain.into(), Some(key.into())));
        self
    }

    /// Adds a CRL file.
    #[must_use]
    pub fn crl(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.crls.push(path.into());
        self
    }

    /// Every file named.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        let cert = self
            .client_cert
            .iter()
            .flat_map(|(chain, key)| std::iter::once(chain.as_path()).chain(key.as_deref()));
        self.ca
            .iter()
            .map(std::path::PathBuf::as_path)
            .chain(cert)
            .chain(self.crls.iter().map(std::path::PathBuf::as_path))
    }

    fn apply(&self, mut builder: TlsConfigBuilder) -> Result<TlsConfigBuilder, TlsConfigError> {
        if !self.ca.is_empty() {
            builder = builder.clear_roots();
            for path in &self.ca {
                builder = builder.ca_pem_file(path)?;
            }
        }
        if let Some((chain, key)) = &self.client_cert {
            builder = builder.client_cert_pem_file(chain, key.as_ref().unwrap_or(chain))?;
        }
        if !self.crls.is_empty() {
            builder = builder.clear_crls();
            for path in &self.crls {
                builder = builder.crl_pem_file(path)?;
            }
        }
        Ok(builder)
    }
}

/// Replaces a [`TlsConnector`]'s configuration while it runs: a new client certificate
/// (rotation), new trusted roots, new CRLs, or a whole new [`TlsConfig`].
///
/// The new configuration is built first; if it does not build, the call returns the typed
/// [`TlsConfigError`] and the connector keeps its configuration. Once installed, the **next**
/// connection uses it (open connections are not touched, so a failover right after a rotation
/// presents the new certificate). Rotations discard the TLS session caches: a resumed session
/// would skip the certificates and so bypass the new identity, roots or CRLs.
///
/// Cheap to clone; every clone acts on the same connector.
///
/// ```
/// # fn doc(handle: &zk_transport::TlsReloadHandle, cert: &str, key: &str) {
/// match handle.rotate_identity_pem(cert, key) {
///     Ok(generation) => tracing::info!(generation, "client certificate rotated"),
///     Err(err) => tracing::warn!(%err, "new client certificate refused, keeping the old one"),
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct TlsReloadHandle {
    shared: Arc<Shared>,
}

impl fmt::Debug for TlsReloadHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsReloadHandle")
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

impl TlsReloadHandle {
    /// The configuration in use now.
    #[must_use]
    pub fn current(&self) -> TlsConfig {
        let current = self.shared.read();
        current.config.clone()
    }

    /// How many configurations were installed since the connector was made (0 = the original).
    #[must_use]
    pub fn generation(&self) -> u64 {
        let current = self.shared.read();
        current.generation
    }

    /// The connector's handshake counters.
    #[must_use]
    pub fn stats(&self) -> TlsStats {
        self.shared.stats()
    }

    /// Installs a configuration built elsewhere. Returns the new generation.
    pub fn replace(&self, config: TlsConfig) -> u64 {
        let generation = self.shared.install(config);
        tracing::info!(generation, "TLS configuration replaced");
        generation
    }

    /// Changes the current configuration: `change` gets a builder holding everything the
    /// current one was built from (roots, client certificate, CRLs, options, server-name
    /// override) and returns it modified; the result is built and installed. Returns the new
    /// generation.
    ///
    /// Builder methods that add ([`ca_pem`](TlsConfigBuilder::ca_pem),
    /// [`crl_pem`](TlsConfigBuilder::crl_pem)) add to what is there; clear first
    /// ([`clear_roots`](TlsConfigBuilder::clear_roots),
    /// [`clear_crls`](TlsConfigBuilder::clear_crls)) to replace.
    ///
    /// # Errors
    ///
    /// Whatever `change` or [`TlsConfigBuilder::build`] returns, and
    /// [`TlsConfigError::NotRebuildable`] for a configuration made with
    /// [`TlsConfig::from_rustls`]. The current configuration stays in place.
    pub fn rotate(
        &self,
        change: impl FnOnce(TlsConfigBuilder) -> Result<TlsConfigBuilder, TlsConfigError>,
    ) -> Result<u64, TlsConfigError> {
        let built = self
            .current()
            .to_builder()
            .ok_or(TlsConfigError::NotRebuildable)
            .and_then(change)
            .and_then(TlsConfigBuilder::build);
        match built {
            Ok(config) => {
                let generation = self.shared.install(config);
                tracing::info!(generation, "TLS configuration rotated");
                Ok(generation)
            }
            Err(err) => {
                self.shared
                    .counters
                    .rejected
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %err, "TLS rotation refused; the configuration in use stays");
                Err(err)
            }
        }
    }

    /// Replaces the client certificate and key (see [`TlsConfigBuilder::client_cert_pem`]).
    ///
    /// # Errors
    ///
    /// As [`rotate`](Self::rotate): unparsable PEM, or a key that does not match the
    /// certificate ([`TlsConfigError::ClientCertificate`]).
    pub fn rotate_identity_pem(
        &self,
        chain_pem: &str,
        key_pem: &str,
    ) -> Result<u64, TlsConfigError> {
        self.rotate(|b| b.client_cert_pem(chain_pem, key_pem))
    }

    /// Replaces the trusted CA roots with those in this PEM text.
    ///
    /// # Errors
    ///
    /// As [`rotate`](Self::rotate).
    pub fn rotate_roots_pem(&self, ca_pem: &str) -> Result<u64, TlsConfigError> {
        self.rotate(|b| b.clear_roots().ca_pem(ca_pem))
    }

    /// Rebuilds the configuration from these files (what they name replaces the current roots,
    /// client certificate or CRLs; the rest is kept) and installs it.
    ///
    /// # Errors
    ///
    /// As [`rotate`](Self::rotate), plus [`TlsConfigError::ReadFile`].
    pub fn reload_files(&self, files: &TlsFiles) -> Result<u64, TlsConfigError> {
        self.rotate(|b| files.apply(b))
    }

    /// Replaces the CRLs with those in this PEM text.
    ///
    /// # Errors
    ///
    /// As [`rotate`](Self::rotate).
    pub fn rotate_crls_pem(&self, crl_pem: &str) -> Result<u64, TlsConfigError> {
        self.rotate(|b| b.clear_crls().crl_pem(crl_pem))
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

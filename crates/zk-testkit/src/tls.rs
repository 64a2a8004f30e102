//! Test certificates (generated with rcgen, ECDSA P-256) and the TLS options of an ensemble.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SerialNumber,
};

use crate::error::TestkitError;

/// The server's `ssl.clientAuth` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ClientAuth {
    /// A valid client certificate is required (the server's default).
    #[default]
    Need,
    /// A client certificate is checked if presented, but not required.
    Want,
    /// Client certificates are ignored.
    None,
}

impl ClientAuth {
    /// The value written to `zoo.cfg`.
    pub fn as_config_value(self) -> &'static str {
        match self {
            Self::Need => "need",
            Self::Want => "want",
            Self::None => "none",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "need" => Some(Self::Need),
            "want" => Some(Self::Want),
            "none" => Some(Self::None),
            _ => None,
        }
    }
}

/// TLS options of an ensemble: a `secureClientPort` on every node, served by Netty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TlsOptions {
    /// Whether the server demands client certificates.
    pub client_auth: ClientAuth,
}

/// PEM material for clients under test. Written to `<ensemble dir>/tls/` as well.
///
/// Keys are ECDSA P-256 in PKCS#8 (`-----BEGIN PRIVATE KEY-----`). The server certificate has
/// the SANs IP `127.0.0.1` and DNS `localhost`, and is signed by `ca_pem`.
#[derive(Debug, Clone)]
pub struct TlsMaterial {
    /// The CA that signed the server and the client certificate.
    pub ca_pem: String,
    /// A client certificate signed by `ca_pem` (CN `zk-client`, EKU clientAuth).
    pub client_cert_pem: String,
    /// The key of `client_cert_pem`.
    pub client_key_pem: String,
    /// A client certificate signed by an unrelated CA: servers must reject it.
    pub rogue_client_cert_pem: String,
    /// The key of `rogue_client_cert_pem`.
    pub rogue_client_key_pem: String,
    /// The unrelated CA that signed the rogue certificate.
    pub rogue_ca_pem: String,
    /// The server certificate (for clients that pin it).
    pub server_cert_pem: String,
    /// The server key.
    pub server_key_pem: String,
    /// The key of `ca_pem` (test material: lets tests sign new certificates and CRLs with
    /// [`TlsMaterial::ca`]).
    pub ca_key_pem: String,
    /// Directory holding `ca.pem`, `client-cert.pem`, `client-key.pem`, `rogue-cert.pem`,
    /// `rogue-key.pem`, `server.pem` (key then certificate, as ZooKeeper wants it), and each
    /// node's own key store `node-<id>.pem` (see [`TlsMaterial::node_serial`]).
    pub dir: PathBuf,
}

/// The common name of the ensemble's CA.
const CA_NAME: &str = "zk-testkit CA";
/// Node `id`'s server certificate has the serial number `NODE_SERIAL_BASE + id`.
const NODE_SERIAL_BASE: u64 = 0x5a00;

const FILES: [&str; 9] = [
    "ca.pem",
    "client-cert.pem",
    "client-key.pem",
    "rogue-cert.pem",
    "rogue-key.pem",
    "rogue-ca.pem",
    "server-cert.pem",
    "server-key.pem",
    "ca-key.pem",
];

/// A throw-away certificate authority for tests (ECDSA P-256): what the ensemble's TLS
/// material is made with, and what transport-level tests sign their servers and clients with.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

/// A certificate and its private key, in PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct Leaf {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: String,
}

impl std::fmt::Debug for Leaf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leaf")
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl TestCa {
    /// A new CA with common name `name`.
    ///
    /// # Errors
    /// Certificate generation failed ([`TestkitError::Certificate`]).
    pub fn new(name: &str) -> Result<Self, TestkitError> {
        let params = ca_params(name)?;
        let key = KeyPair::generate()?;
        let pem = params.self_signed(&key)?.pem();
        Ok(Self {
            issuer: Issuer::new(params, key),
            pem,
        })
    }

    /// The CA `new(name)` made, from its certificate and key (PEM): it signs certificates and
    /// CRLs that verify against `cert_pem`.
    ///
    /// # Errors
    /// The key does not parse ([`TestkitError::Certificate`]).
    pub fn from_pem(name: &str, cert_pem: &str, key_pem: &str) -> Result<Self, TestkitError> {
        Ok(Self {
            issuer: Issuer::new(ca_params(name)?, KeyPair::from_pem(key_pem)?),
            pem: cert_pem.to_owned(),
        })
    }

    /// The CA certificate in PEM (what clients and servers trust).
    #[must_use]
    pub fn pem(&self) -> String {
        self.pem.clone()
    }

    /// The CA's private key in PEM (PKCS#8).
    #[must_use]
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// A server certificate like [`TestCa::server`] with this serial number (to revoke it
    /// with [`TestCa::crl`]).
    ///
    /// # Errors
    /// Certificate generation failed.
    pub fn server_with_serial(&self, sans: &[&str], serial: u64) -> Result<Leaf, TestkitError> {
        let mut params = leaf_params("localhost", sans, true)?;
        params.serial_number = Some(SerialNumber::from(serial));
        self.sign(&params)
    }

    /// A client certificate like [`TestCa::client`] that is valid from a minute ago until
    /// `valid_for` from now (to test rotation before expiry).
    ///
    /// # Errors
    /// Certificate generation failed.
    pub fn client_valid_for(&self, valid_for: Duration) -> Result<Leaf, TestkitError> {
        let mut params = leaf_params("zk-client", &[], false)?;
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::minutes(1);
        params.not_after = now + valid_for;
        self.sign(&params)
    }

    /// A CRL (PEM) of this CA revoking these serial numbers, valid from a minute ago for a day.
    ///
    /// # Errors
    /// CRL generation failed.
    pub fn crl(&self, revoked_serials: &[u64]) -> Result<String, TestkitError> {
        let now = time::OffsetDateTime::now_utc();
        let params = CertificateRevocationListParams {
            this_update: now - time::Duration::minutes(1),
            next_update: now + time::Duration::days(1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked_serials
                .iter()
                .map(|serial| RevokedCertParams {
                    serial_number: SerialNumber::from(*serial),
                    revocation_time: now - time::Duration::minutes(1),
                    reason_code: Some(RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(&self.issuer)?.pem()?)
    }

    fn sign(&self, params: &CertificateParams) -> Result<Leaf, TestkitError> {
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A server certificate for these SANs (DNS names or IP literals) with common name
    /// `localhost`, like ZooKeeper's test PKI: EKU serverAuth and clientAuth.
    ///
    /// # Errors
    /// Certificate generation failed.
    pub fn server(&self, sans: &[&str]) -> Result<Leaf, TestkitError> {
        self.leaf("localhost", sans, true, None)
    }

    /// A client certificate with common name `zk-client`, no SAN (ZooKeeper does not check
    /// it), EKU clientAuth.
    ///
    /// # Errors
    /// Certificate generation failed.
    pub fn client(&self) -> Result<Leaf, TestkitError> {
        self.leaf("zk-client", &[], false, None)
    }

    /// A server certificate like [`TestCa::server`] that expired on 2020-01-01.
    ///
    /// # Errors
    /// Certificate generation failed.
    pub fn expired_server(&self, sans: &[&str]) -> Result<Leaf, TestkitError> {
        self.leaf("localhost", sans, true, Some((2019, 2020)))
    }

    fn leaf(
        &self,
        cn: &str,
        sans: &[&str],
        server: bool,
        valid_years: Option<(i32, i32)>,
    ) -> Result<Leaf, TestkitError> {
        let mut params = leaf_params(cn, sans, server)?;
        if let Some((from, to)) = valid_years {
            params.not_before = rcgen::date_time_ymd(from, 1, 1);
            params.not_after = rcgen::date_time_ymd(to, 1, 1);
        }
        self.sign(&params)
    }
}

fn ca_params(name: &str) -> Result<CertificateParams, TestkitError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

/// A self-signed server certificate (no CA at all) for these SANs.
///
/// # Errors
/// Certificate generation failed.
pub fn self_signed(sans: &[&str]) -> Result<Leaf, TestkitError> {
    let key = KeyPair::generate()?;
    let cert = leaf_params("self-signed", sans, true)?.self_signed(&key)?;
    Ok(Leaf {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn leaf_params(cn: &str, sans: &[&str], server: bool) -> Result<CertificateParams, TestkitError> {
    let mut params =
        CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())?;
    params.distinguished_name.push(DnType::CommonName, cn);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyAgreement,
    ];
    params.extended_key_usages = if server {
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ]
    } else {
        vec![ExtendedKeyUsagePurpose::ClientAuth]
    };
    Ok(params)
}

impl TlsMaterial {
    /// Generate fresh material and write it to `dir` (created if missing).
    pub fn generate(dir: &Path) -> Result<Self, TestkitError> {
        let ca = TestCa::new(CA_NAME)?;
        let rogue_ca = TestCa::new("zk-testkit rogue CA")?;
        let server = ca.server(&["127.0.0.1", "localhost"])?;
        let client = ca.client()?;
        let rogue = rogue_ca.client()?;
        let material = Self {
            ca_pem: ca.pem(),
            client_cert_pem: client.cert_pem,
            client_key_pem: client.key_pem,
            rogue_client_cert_pem: rogue.cert_pem,
            rogue_client_key_pem: rogue.key_pem,
            rogue_ca_pem: rogue_ca.pem(),
            server_cert_pem: server.cert_pem,
            server_key_pem: server.key_pem,
            ca_key_pem: ca.key_pem(),
            dir: dir.to_path_buf(),
        };
        material.write()?;
        Ok(material)
    }

    fn contents(&self) -> [&str; 9] {
        [
            &self.ca_pem,
            &self.client_cert_pem,
            &self.client_key_pem,
            &self.rogue_client_cert_pem,
            &self.rogue_client_key_pem,
            &self.rogue_ca_pem,
            &self.server_cert_pem,
            &self.server_key_pem,
            &self.ca_key_pem,
        ]
    }

    fn write(&self) -> Result<(), TestkitError> {
        let ctx = |p: &Path| format!("writing {}", p.display());
        fs::create_dir_all(&self.dir).map_err(|e| TestkitError::io(ctx(&self.dir), e))?;
        for (name, body) in FILES.iter().zip(self.contents()) {
            let p = self.dir.join(name);
            fs::write(&p, body).map_err(|e| TestkitError::io(ctx(&p), e))?;
        }
        // ZooKeeper's PEM key store: one file, PKCS#8 key first, then the certificate.
        let p = self.server_keystore_path();
        fs::write(
            &p,
            format!("{}{}", self.server_key_pem, self.server_cert_pem),
        )
        .map_err(|e| TestkitError::io(ctx(&p), e))?;
        Ok(())
    }

    /// Load material previously written by [`TlsMaterial::generate`].
    pub fn load(dir: &Path) -> Result<Self, TestkitError> {
        let read = |name: &str| {
            let p = dir.join(name);
            fs::read_to_string(&p)
                .map_err(|e| TestkitError::io(format!("reading {}", p.display()), e))
        };
        Ok(Self {
            ca_pem: read(FILES[0])?,
            client_cert_pem: read(FILES[1])?,
            client_key_pem: read(FILES[2])?,
            rogue_client_cert_pem: read(FILES[3])?,
            rogue_client_key_pem: read(FILES[4])?,
            rogue_ca_pem: read(FILES[5])?,
            server_cert_pem: read(FILES[6])?,
            server_key_pem: read(FILES[7])?,
            ca_key_pem: read(FILES[8])?,
            dir: dir.to_path_buf(),
        })
    }

    /// Path of the CA certificate file.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join(FILES[0])
    }

    /// Path of the client certificate file.
    pub fn client_cert_path(&self) -> PathBuf {
        self.dir.join(FILES[1])
    }

    /// Path of the client key file.
    pub fn client_key_path(&self) -> PathBuf {
        self.dir.join(FILES[2])
    }

    /// Path of the server's key store (key then certificate).
    pub fn server_keystore_path(&self) -> PathBuf {
        self.dir.join("server.pem")
    }

    /// The ensemble's CA, able to sign new certificates and CRLs.
    ///
    /// # Errors
    /// The stored key does not parse.
    pub fn ca(&self) -> Result<TestCa, TestkitError> {
        TestCa::from_pem(CA_NAME, &self.ca_pem, &self.ca_key_pem)
    }

    /// The serial number of node `id`'s server certificate (each node has its own, with the
    /// SANs `127.0.0.1` and `localhost`), for CRLs: `ca()?.crl(&[TlsMaterial::node_serial(2)])`.
    #[must_use]
    pub fn node_serial(id: usize) -> u64 {
        NODE_SERIAL_BASE + id as u64
    }

    /// Path of node `id`'s key store (key then certificate).
    pub fn node_keystore_path(&self, id: usize) -> PathBuf {
        self.dir.join(format!("node-{id}.pem"))
    }

    /// Writes node `id`'s key store (a server certificate of its own) unless it exists.
    pub(crate) fn write_node_keystore(&self, id: usize) -> Result<(), TestkitError> {
        let p = self.node_keystore_path(id);
        if p.exists() {
            return Ok(());
        }
        let leaf = self
            .ca()?
            .server_with_serial(&["127.0.0.1", "localhost"], Self::node_serial(id))?;
        fs::write(&p, format!("{}{}", leaf.key_pem, leaf.cert_pem))
            .map_err(|e| TestkitError::io(format!("writing {}", p.display()), e))
    }
}

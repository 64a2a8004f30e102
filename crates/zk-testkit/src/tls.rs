//! Test certificates (generated with rcgen, ECDSA P-256) and the TLS options of an ensemble.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
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
    /// Directory holding `ca.pem`, `client-cert.pem`, `client-key.pem`, `rogue-cert.pem`,
    /// `rogue-key.pem`, `server.pem` (key then certificate, as ZooKeeper wants it).
    pub dir: PathBuf,
}

const FILES: [&str; 8] = [
    "ca.pem",
    "client-cert.pem",
    "client-key.pem",
    "rogue-cert.pem",
    "rogue-key.pem",
    "rogue-ca.pem",
    "server-cert.pem",
    "server-key.pem",
];

/// A throw-away certificate authority for tests (ECDSA P-256): what the ensemble's TLS
/// material is made with, and what transport-level tests sign their servers and clients with.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
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
    /// Certificate generation failed ([`TestkitError::Tls`]).
    pub fn new(name: &str) -> Result<Self, TestkitError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        Ok(Self {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate()?)?,
        })
    }

    /// The CA certificate in PEM (what clients and servers trust).
    #[must_use]
    pub fn pem(&self) -> String {
        self.issuer.pem()
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
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
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
        let ca = TestCa::new("zk-testkit CA")?;
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
            dir: dir.to_path_buf(),
        };
        material.write()?;
        Ok(material)
    }

    fn contents(&self) -> [&str; 8] {
        [
            &self.ca_pem,
            &self.client_cert_pem,
            &self.client_key_pem,
            &self.rogue_client_cert_pem,
            &self.rogue_client_key_pem,
            &self.rogue_ca_pem,
            &self.server_cert_pem,
            &self.server_key_pem,
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
}

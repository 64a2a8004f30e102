//! Typed connect errors and their classification from `io::Error` and `rustls::Error`.

use std::fmt;
use std::io;

use rustls::{AlertDescription, CertificateError, PeerIncompatible};

/// Why a [`Connector`](crate::Connector) could not open a stream.
///
/// The variants are chosen for the failover logic above this crate: it needs to know whether a
/// host is down ([`Refused`](Self::Refused)), silent ([`TimedOut`](Self::TimedOut)), out of
/// reach ([`Unreachable`](Self::Unreachable)), or whether the configuration itself is wrong
/// (most [`Tls`](Self::Tls) errors). See [`ConnectError::is_transient`].
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectError {
    /// The host actively refused the TCP connection (`ECONNREFUSED`): nothing listens there.
    #[error("connection refused")]
    Refused,
    /// The deadline passed before the stream was ready (TCP connect and, for TLS, the handshake).
    #[error("timed out")]
    TimedOut,
    /// The network or host is unreachable (`ENETUNREACH` / `EHOSTUNREACH`).
    #[error("network or host unreachable")]
    Unreachable,
    /// Any other I/O failure, for example a reset or an EOF in the middle of a TLS handshake.
    #[error("I/O error ({kind}): {message}")]
    Io {
        /// The `io::ErrorKind` of the underlying error.
        kind: io::ErrorKind,
        /// The underlying error's message.
        message: String,
    },
    /// The TLS handshake failed.
    #[error("TLS: {0}")]
    Tls(TlsErrorKind),
}

impl ConnectError {
    /// Whether trying again (this host later, or another host) can plausibly succeed.
    ///
    /// Refused, timed-out, unreachable and plain I/O failures are transient: a server that is
    /// restarting, electing a leader or partitioned away will come back. Certificate problems,
    /// a client certificate the server refuses, protocol-version or cipher mismatches and an
    /// invalid server name are **not**: the same configuration will fail the same way. Callers
    /// should still try other hosts (each may have its own certificate), but must not hammer a
    /// host with a non-transient failure without backoff, and should surface the error.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Refused | Self::TimedOut | Self::Unreachable => true,
            Self::Io { kind, .. } => !matches!(
                kind,
                io::ErrorKind::InvalidInput
                    | io::ErrorKind::Unsupported
                    | io::ErrorKind::PermissionDenied
            ),
            Self::Tls(kind) => kind.is_transient(),
        }
    }

    /// The certificate problem when the server's certificate was rejected (expired, revoked,
    /// unknown issuer, …), else `None`.
    #[must_use]
    pub const fn certificate_problem(&self) -> Option<CertificateProblem> {
        match self {
            Self::Tls(TlsErrorKind::CertificateRejected { problem, .. }) => Some(*problem),
            _ => None,
        }
    }

    /// Classifies an I/O error the way the connectors do.
    ///
    /// Useful for errors that surface only after the stream was handed out: with TLS 1.3 a server
    /// that refuses our client certificate sends its alert after the client finished the
    /// handshake, so the rejection appears on the first read as an `io::Error` wrapping a
    /// `rustls::Error`. Passing that error here yields
    /// [`TlsErrorKind::PeerRejectedUs`]. (ZooKeeper 3.8 speaks TLS 1.2, where the rejection
    /// happens inside the handshake and is reported by the connector directly.)
    #[must_use]
    pub fn from_io_error(err: &io::Error) -> Self {
        if let Some(tls) = err
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Self::Tls(TlsErrorKind::from_rustls(tls));
        }
        match err.kind() {
            io::ErrorKind::ConnectionRefused => Self::Refused,
            io::ErrorKind::TimedOut => Self::TimedOut,
            io::ErrorKind::NetworkUnreachable | io::ErrorKind::HostUnreachable => Self::Unreachable,
            kind => Self::Io {
                kind,
                message: err.to_string(),
            },
        }
    }
}

impl From<io::Error> for ConnectError {
    fn from(err: io::Error) -> Self {
        Self::from_io_error(&err)
    }
}

impl From<TlsErrorKind> for ConnectError {
    fn from(kind: TlsErrorKind) -> Self {
        Self::Tls(kind)
    }
}

/// What went wrong in a TLS handshake.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsErrorKind {
    /// We rejected the server's certificate: unknown CA, wrong host name, expired, …
    #[error("server certificate rejected ({problem}): {message}")]
    CertificateRejected {
        /// The reason, typed.
        problem: CertificateProblem,
        /// rustls's description, naming the detail (for example the names the certificate
        /// presents when it does not match the expected host).
        message: String,
    },
    /// The server sent a fatal alert refusing us, typically because our client certificate is
    /// missing or not trusted (`bad_certificate`, `certificate_unknown`, `certificate_required`,
    /// `unknown_ca`, `access_denied`, …).
    #[error(
        "server refused the handshake, alert received: {alert} (is the client certificate missing or untrusted?)"
    )]
    PeerRejectedUs {
        /// The alert the server sent.
        alert: TlsAlert,
    },
    /// No TLS protocol version in common (for example a TLS 1.3-only client against ZooKeeper
    /// 3.8, which speaks TLS 1.2 only), either signalled by a `protocol_version` alert or
    /// detected locally.
    #[error("no TLS protocol version in common (ZooKeeper 3.8 speaks TLS 1.2 only)")]
    ProtocolVersion,
    /// No cipher suite, key-exchange group or signature scheme in common, or another
    /// negotiation failure (`handshake_failure`, `insufficient_security`).
    #[error("TLS parameters incompatible: {0}")]
    Incompatible(String),
    /// The server name from the connection string (or the override) is neither a valid DNS name
    /// nor an IP address, so it cannot be verified.
    #[error("invalid TLS server name {0:?}")]
    InvalidServerName(String),
    /// Any other TLS failure (corrupt records, unexpected messages, unexpected alerts).
    #[error("{0}")]
    Other(String),
}

impl TlsErrorKind {
    /// Whether this failure can go away without a configuration change; see
    /// [`ConnectError::is_transient`].
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Other(_))
    }

    /// Classifies a rustls error.
    #[must_use]
    pub fn from_rustls(err: &rustls::Error) -> Self {
        match err {
            rustls::Error::InvalidCertificate(cert_err) => Self::CertificateRejected {
                problem: CertificateProblem::from_rustls(cert_err),
                message: err.to_string(),
            },
            rustls::Error::NoCertificatesPresented => Self::CertificateRejected {
                problem: CertificateProblem::NoCertificate,
                message: err.to_string(),
            },
            rustls::Error::InvalidCertRevocationList(_) => Self::CertificateRejected {
                problem: CertificateProblem::RevocationUnknown,
                message: err.to_string(),
            },
            rustls::Error::UnsupportedNameType => Self::InvalidServerName(err.to_string()),
            rustls::Error::AlertReceived(alert) => Self::from_alert(*alert),
            rustls::Error::PeerIncompatible(why) => match why {
                PeerIncompatible::ServerDoesNotSupportTls12Or13
                | PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig
                | PeerIncompatible::Tls12NotOffered
                | PeerIncompatible::Tls12NotOfferedOrEnabled
                | PeerIncompatible::SupportedVersionsExtensionRequired => Self::ProtocolVersion,
                _ => Self::Incompatible(err.to_string()),
            },
            other => Self::Other(other.to_string()),
        }
    }

    fn from_alert(alert: AlertDescription) -> Self {
        let ours = TlsAlert(u8::from(alert));
        match alert {
            AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnknownCA
            | AlertDescription::AccessDenied
            | AlertDescription::NoCertificate
            | AlertDescription::CertificateRequired => Self::PeerRejectedUs { alert: ours },
            AlertDescription::ProtocolVersion => Self::ProtocolVersion,
            AlertDescription::HandshakeFailure | AlertDescription::InsufficientSecurity => {
                Self::Incompatible(format!(
                    "alert received: {ours} (no cipher suite or parameters in common?)"
                ))
            }
            _ => Self::Other(format!("alert received: {ours}")),
        }
    }
}

/// Why the server's certificate was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CertificateProblem {
    /// The certificate does not chain to any configured CA root.
    UnknownIssuer,
    /// The certificate is not valid for the host name or IP address we connected to.
    NotValidForName,
    /// The certificate has expired.
    Expired,
    /// The certificate is not valid yet.
    NotValidYet,
    /// The certificate was revoked: a configured CRL lists it.
    Revoked,
    /// Revocation was to be checked but could not be: no CRL from the certificate's issuer
    /// among those configured, an expired CRL, or a CRL that does not verify.
    RevocationUnknown,
    /// A signature on the certificate chain is invalid.
    BadSignature,
    /// The certificate could not be parsed.
    BadEncoding,
    /// The certificate is not allowed for server authentication (extended key usage).
    InvalidPurpose,
    /// The server presented no certificate at all.
    NoCertificate,
    /// Any other reason (see the accompanying message).
    Other,
}

impl CertificateProblem {
    fn from_rustls(err: &CertificateError) -> Self {
        match err {
            CertificateError::UnknownIssuer => Self::UnknownIssuer,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                Self::NotValidForName
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => Self::Expired,
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                Self::NotValidYet
            }
            CertificateError::Revoked => Self::Revoked,
            CertificateError::UnknownRevocationStatus
            | CertificateError::ExpiredRevocationList
            | CertificateError::ExpiredRevocationListContext { .. } => Self::RevocationUnknown,
            CertificateError::BadSignature => Self::BadSignature,
            CertificateError::BadEncoding => Self::BadEncoding,
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                Self::InvalidPurpose
            }
            _ => Self::Other,
        }
    }
}

impl fmt::Display for CertificateProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnknownIssuer => "unknown issuer",
            Self::NotValidForName => "not valid for the server name",
            Self::Expired => "expired",
            Self::NotValidYet => "not valid yet",
            Self::Revoked => "revoked",
            Self::RevocationUnknown => "revocation status unknown",
            Self::BadSignature => "bad signature",
            Self::BadEncoding => "bad encoding",
            Self::InvalidPurpose => "invalid purpose",
            Self::NoCertificate => "no certificate presented",
            Self::Other => "other",
        })
    }
}

/// A TLS alert code (RFC 8446 §6 / IANA "TLS Alerts"), displayed by its registry name, e.g.
/// `bad_certificate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TlsAlert(pub u8);

impl TlsAlert {
    /// `handshake_failure` (40).
    pub const HANDSHAKE_FAILURE: Self = Self(40);
    /// `bad_certificate` (42): ZooKeeper's answer when no client certificate was sent.
    pub const BAD_CERTIFICATE: Self = Self(42);
    /// `certificate_unknown` (46): ZooKeeper's answer to a client certificate from an unknown CA.
    pub const CERTIFICATE_UNKNOWN: Self = Self(46);
    /// `unknown_ca` (48).
    pub const UNKNOWN_CA: Self = Self(48);
    /// `access_denied` (49).
    pub const ACCESS_DENIED: Self = Self(49);
    /// `protocol_version` (70).
    pub const PROTOCOL_VERSION: Self = Self(70);
    /// `certificate_required` (116, TLS 1.3).
    pub const CERTIFICATE_REQUIRED: Self = Self(116);

    /// The IANA registry name of this alert, or `"unknown"`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "close_notify",
            10 => "unexpected_message",
            20 => "bad_record_mac",
            21 => "decryption_failed",
            22 => "record_overflow",
            30 => "decompression_failure",
            40 => "handshake_failure",
            41 => "no_certificate",
            42 => "bad_certificate",
            43 => "unsupported_certificate",
            44 => "certificate_revoked",
            45 => "certificate_expired",
            46 => "certificate_unknown",
            47 => "illegal_parameter",
            48 => "unknown_ca",
            49 => "access_denied",
            50 => "decode_error",
            51 => "decrypt_error",
            60 => "export_restriction",
            70 => "protocol_version",
            71 => "insufficient_security",
            80 => "internal_error",
            86 => "inappropriate_fallback",
            90 => "user_canceled",
            100 => "no_renegotiation",
            109 => "missing_extension",
            110 => "unsupported_extension",
            111 => "certificate_unobtainable",
            112 => "unrecognized_name",
            113 => "bad_certificate_status_response",
            114 => "bad_certificate_hash_value",
            115 => "unknown_psk_identity",
            116 => "certificate_required",
            120 => "no_application_protocol",
            121 => "encrypted_client_hello_required",
            _ => "unknown",
        }
    }
}

impl fmt::Display for TlsAlert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

/// Why a [`TlsConfig`](crate::TlsConfig) could not be built.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// PEM text could not be parsed.
    #[error("invalid PEM in {what}: {message}")]
    Pem {
        /// Which input: "CA certificates", "client certificate chain" or "client private key".
        what: &'static str,
        /// The parser's message.
        message: String,
    },
    /// The PEM text holds no item of the expected kind.
    #[error("no {what} found in the PEM input")]
    Missing {
        /// What was looked for, e.g. "CERTIFICATE" or "PRIVATE KEY".
        what: &'static str,
    },
    /// A CA certificate was rejected as a trust anchor.
    #[error("invalid CA certificate: {0}")]
    InvalidCaCertificate(String),
    /// Certificate verification is on but no CA root was configured.
    #[error("certificate verification is on but no CA certificate was given (use ca_pem)")]
    NoTrustAnchors,
    /// rustls refused the client certificate chain or key (for example a key that does not
    /// match the certificate).
    #[error("invalid client certificate or key: {0}")]
    ClientCertificate(String),
    /// The server name override is neither a DNS name nor an IP address.
    #[error("invalid server name override {0:?}")]
    InvalidServerName(String),
    /// A PEM file could not be read.
    #[error("cannot read {path}: {message}")]
    ReadFile {
        /// The file's path.
        path: String,
        /// The I/O error's message.
        message: String,
    },
    /// A CRL could not be parsed.
    #[error("invalid CRL: {0}")]
    InvalidCrl(String),
    /// A part of the configuration was to be replaced, but it was made with
    /// [`TlsConfig::from_rustls`](crate::TlsConfig::from_rustls): only a whole new
    /// configuration can replace it.
    #[error("this TLS configuration was not made by the builder: replace it as a whole")]
    NotRebuildable,
    /// Files could not be watched (feature `tls-watch`).
    #[error("cannot watch {path}: {message}")]
    Watch {
        /// The directory.
        path: String,
        /// The watcher's message.
        message: String,
    },
    /// Any other rustls configuration error.
    #[error("TLS configuration: {0}")]
    Rustls(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_kinds_map_precisely() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(ConnectError::from(refused), ConnectError::Refused);
        let timed_out = io::Error::from(io::ErrorKind::TimedOut);
        assert_eq!(ConnectError::from(timed_out), ConnectError::TimedOut);
        let unreachable = io::Error::from(io::ErrorKind::HostUnreachable);
        assert_eq!(ConnectError::from(unreachable), ConnectError::Unreachable);
        let net = io::Error::from(io::ErrorKind::NetworkUnreachable);
        assert_eq!(ConnectError::from(net), ConnectError::Unreachable);
        let reset = io::Error::new(io::ErrorKind::ConnectionReset, "reset by peer");
        let err = ConnectError::from(reset);
        assert!(
            matches!(&err, ConnectError::Io { kind: io::ErrorKind::ConnectionReset, message } if message == "reset by peer")
        );
        assert!(err.is_transient());
    }

    #[test]
    fn raw_os_errors_map_too() {
        let refused = io::Error::from_raw_os_error(libc_econnrefused());
        assert_eq!(ConnectError::from(refused), ConnectError::Refused);
    }

    #[cfg(target_os = "linux")]
    fn libc_econnrefused() -> i32 {
        111
    }

    #[cfg(not(target_os = "linux"))]
    fn libc_econnrefused() -> i32 {
        61
    }

    #[test]
    fn wrapped_rustls_errors_are_classified() {
        let wrapped = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        let err = ConnectError::from(wrapped);
        assert!(matches!(
            &err,
            ConnectError::Tls(TlsErrorKind::CertificateRejected {
                problem: CertificateProblem::UnknownIssuer,
                ..
            })
        ));
        assert!(!err.is_transient());
        assert!(err.to_string().contains("unknown issuer"), "{err}");
    }

    #[test]
    fn alerts_are_classified() {
        for (alert, expected) in [
            (AlertDescription::BadCertificate, TlsAlert::BAD_CERTIFICATE),
            (
                AlertDescription::CertificateUnknown,
                TlsAlert::CERTIFICATE_UNKNOWN,
            ),
            (
                AlertDescription::CertificateRequired,
                TlsAlert::CERTIFICATE_REQUIRED,
            ),
            (AlertDescription::UnknownCA, TlsAlert::UNKNOWN_CA),
        ] {
            let kind = TlsErrorKind::from_rustls(&rustls::Error::AlertReceived(alert));
            assert_eq!(kind, TlsErrorKind::PeerRejectedUs { alert: expected });
            assert!(!kind.is_transient());
        }
        let kind = TlsErrorKind::from_rustls(&rustls::Error::AlertReceived(
            AlertDescription::ProtocolVersion,
        ));
        assert_eq!(kind, TlsErrorKind::ProtocolVersion);
        let kind = TlsErrorKind::from_rustls(&rustls::Error::AlertReceived(
            AlertDescription::HandshakeFailure,
        ));
        assert!(matches!(&kind, TlsErrorKind::Incompatible(m) if m.contains("handshake_failure")));
        let kind =
            TlsErrorKind::from_rustls(&rustls::Error::AlertReceived(AlertDescription::DecodeError));
        assert!(kind.is_transient());
    }

    #[test]
    fn alert_display_names_the_cause() {
        let err = ConnectError::Tls(TlsErrorKind::PeerRejectedUs {
            alert: TlsAlert::BAD_CERTIFICATE,
        });
        let text = err.to_string();
        assert!(
            text.contains("alert received: bad_certificate (42)"),
            "{text}"
        );
        assert_eq!(TlsAlert(200).name(), "unknown");
    }

    #[test]
    fn not_valid_for_name_context_is_recognised() {
        let err = rustls::Error::InvalidCertificate(CertificateError::NotValidForName);
        assert!(matches!(
            TlsErrorKind::from_rustls(&err),
            TlsErrorKind::CertificateRejected {
                problem: CertificateProblem::NotValidForName,
                ..
            }
        ));
        let err = rustls::Error::PeerIncompatible(PeerIncompatible::Tls12NotOffered);
        assert_eq!(
            TlsErrorKind::from_rustls(&err),
            TlsErrorKind::ProtocolVersion
        );
    }

    #[test]
    fn transience() {
        assert!(ConnectError::Refused.is_transient());
        assert!(ConnectError::TimedOut.is_transient());
        assert!(ConnectError::Unreachable.is_transient());
        assert!(!ConnectError::Tls(TlsErrorKind::ProtocolVersion).is_transient());
        assert!(!ConnectError::Tls(TlsErrorKind::InvalidServerName("x".into())).is_transient());
        assert!(
            !ConnectError::Io {
                kind: io::ErrorKind::InvalidInput,
                message: String::new()
            }
            .is_transient()
        );
    }
}

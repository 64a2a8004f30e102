//! Error types of the connection-string parser.

use crate::PathError;

/// A connection string (or a single host entry) that could not be parsed.
///
/// `offset` is a byte offset into the string given to the parser, pointing at the first
/// offending byte (or at the position where something is missing).
///
/// ```
/// use zk_connstr::{ConnectString, ParseErrorKind};
///
/// let err = ConnectString::parse("zk1:2181,,zk2:2181").unwrap_err();
/// assert_eq!(err.offset, 9);
/// assert_eq!(err.kind, ParseErrorKind::EmptyEntry);
/// assert_eq!(err.to_string(), "at byte 9: empty entry (two consecutive commas, or a leading or trailing comma)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[error("at byte {offset}: {kind}")]
pub struct ParseError {
    /// Byte offset in the input.
    pub offset: usize,
    /// What is wrong.
    pub kind: ParseErrorKind,
}

impl ParseError {
    pub(crate) fn new(offset: usize, kind: ParseErrorKind) -> Self {
        Self { offset, kind }
    }
}

/// What is wrong with a connection string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The string is empty or only whitespace.
    #[error("empty connection string")]
    Empty,
    /// An entry has a port but no host, as in `:2181`.
    #[error("missing host name before ':'")]
    EmptyHost,
    /// An entry between commas is empty, as in `a:1,,b:2` or `a:1,`.
    #[error("empty entry (two consecutive commas, or a leading or trailing comma)")]
    EmptyEntry,
    /// The string names no host at all, as in `,` or `/app`.
    #[error("no host in the connection string")]
    NoHost,
    /// An IPv6 address written without brackets, as in `::1` or `fe80::1:2181`.
    #[error("IPv6 addresses must be written in brackets, as in [::1]:2181")]
    UnbracketedIpv6,
    /// The port is not a decimal number (`h:`, `h:x`, `h:+1`).
    #[error("invalid port {text:?}: expected a decimal number from 1 to 65535")]
    InvalidPort {
        /// The text where the port was expected (possibly empty).
        text: String,
    },
    /// The port is a number outside 1..=65535.
    #[error("port out of range: expected 1 to 65535")]
    PortOutOfRange,
    /// A host name contains a character other than ASCII letters, digits, `-` and `_`.
    #[error("invalid character in host name (allowed: ASCII letters, digits, '-', '_', '.')")]
    InvalidHostName,
    /// A host name has an empty label, as in `a..b` or `.a`.
    #[error("empty label in host name")]
    EmptyLabel,
    /// A host name label is longer than 63 bytes.
    #[error("host name label longer than 63 characters")]
    LabelTooLong,
    /// A host name is longer than 253 bytes (not counting a trailing dot).
    #[error("host name longer than 253 characters")]
    HostNameTooLong,
    /// A host whose last label is a number (`256.1.1.1`, `1.2.3`, `10`, `0x7f.1`) but which is
    /// not a dotted-quad IPv4 address with decimal octets 0–255 and no leading zeros.
    ///
    /// Resolvers would read such a name as an IPv4 address in some legacy form (octal, hex,
    /// fewer than four parts), or reject it; it is never a host name.
    #[error(
        "not a valid IPv4 address (a host name cannot end with a numeric label; write IPv4 as four decimal octets 0-255)"
    )]
    InvalidIpv4,
    /// A `[` without a matching `]`.
    #[error("unclosed '[' (IPv6 address)")]
    UnclosedBracket,
    /// The text between brackets is not an IPv6 address.
    #[error("invalid IPv6 address between brackets")]
    InvalidIpv6,
    /// The zone id after `%` in a bracketed IPv6 address is empty, too long or has a
    /// character other than ASCII letters, digits, `-`, `_` and `.`.
    #[error("invalid IPv6 zone id (1 to 64 of: ASCII letters, digits, '-', '_', '.')")]
    InvalidZone,
    /// Something other than `:port` follows `]`.
    #[error("unexpected text after ']' (expected ':port', ',' or '/')")]
    UnexpectedAfterBracket,
    /// A comma inside the chroot, as in `h1:2181/a,h2:2181`: the chroot comes last.
    #[error("comma after the chroot: the chroot must come after all hosts")]
    CommaAfterChroot,
    /// The chroot breaks ZooKeeper's path rules.
    #[error("invalid chroot: {0}")]
    InvalidChroot(PathError),
}

/// Why [`ConnectString::new`](crate::ConnectString::new) refused its parts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The host list is empty.
    #[error("a connection string needs at least one host")]
    NoHosts,
    /// A host is not one the parser would produce (bad name, zone or port 0).
    #[error("host #{index}: {kind}")]
    InvalidHost {
        /// Index of the host in the list.
        index: usize,
        /// What is wrong with it.
        kind: ParseErrorKind,
    },
}

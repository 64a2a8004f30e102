//! A strict parser for ZooKeeper connection strings: `host[:port][,host[:port]]…[/chroot]`.
//!
//! Pure and synchronous: no I/O, no DNS (names are resolved by whoever connects, on every
//! attempt), no panics on any input. Every malformed string yields a [`ParseError`] carrying
//! the byte offset of the problem and a typed [`ParseErrorKind`].
//!
//! ```
//! use zk_connstr::{ConnectString, Host, ParseErrorKind};
//!
//! let cs: ConnectString = " zk1.example.com, 10.0.0.2:2182 ,[fe80::1%eth0]:2183/app/prod".parse()?;
//! assert_eq!(cs.hosts().len(), 3);
//! assert_eq!(cs.hosts()[0].host, Host::Name("zk1.example.com".into()));
//! assert_eq!(cs.hosts()[0].port, zk_connstr::DEFAULT_PORT);
//! assert_eq!(cs.chroot().map(|c| c.as_str()), Some("/app/prod"));
//! assert_eq!(cs.to_string(), "zk1.example.com:2181,10.0.0.2:2182,[fe80::1%eth0]:2183/app/prod");
//!
//! // The Java client reads this as host ":" port 1; here it is an error.
//! let err = ConnectString::parse("::1").unwrap_err();
//! assert_eq!((err.offset, err.kind), (0, ParseErrorKind::UnbracketedIpv6));
//! # Ok::<(), zk_connstr::ParseError>(())
//! ```
//!
//! # Grammar and rules
//!
//! - Entries are separated by `,`; whitespace around an entry (and around the whole string)
//!   is ignored, whitespace inside a host is an error. Every entry must name a host:
//!   `a:1,,b:2`, a leading or a trailing comma are errors ([`ParseErrorKind::EmptyEntry`]),
//!   as is a string with no host at all (`,`, `/app`: [`ParseErrorKind::NoHost`]).
//! - A host is a DNS name (see [`Host::Name`]), a dotted-quad IPv4 address, or an IPv6
//!   address in brackets with an optional zone id: `[::1]`, `[fe80::1%eth0]:2181`.
//!   IPv6 without brackets is refused ([`ParseErrorKind::UnbracketedIpv6`]): `fe80::1:2181`
//!   is ambiguous.
//! - A name whose last label is numeric must be a valid IPv4 address: `256.1.1.1`, `1.2.3`,
//!   `010.0.0.1` or `0x7f.1` are refused ([`ParseErrorKind::InvalidIpv4`]) rather than
//!   handed to a resolver that would read them as some legacy IPv4 form.
//! - The port is optional ([`DEFAULT_PORT`]); when present it is decimal digits only, in
//!   1..=65535 (leading zeros allowed).
//! - The chroot starts at the first `/` and runs to the end of the string. It must pass
//!   [`validate_path`] (ZooKeeper's own path rules); `/` alone means no chroot. A comma in
//!   it is refused ([`ParseErrorKind::CommaAfterChroot`]): `h1:2181/a,h2:2181` is a host
//!   list written in the wrong order, not a chroot named `a,h2:2181`.
//! - Duplicate hosts are kept, in order, as the Java client keeps them. Host names are
//!   compared case-sensitively by `==`.
//!
//! [`Display`](std::fmt::Display) writes a canonical form (no whitespace, every port
//! explicit) that parses back to an equal value.
#![forbid(unsafe_code)]

use std::fmt;
use std::str::FromStr;

mod config;
mod error;
mod host;
mod path;

pub use config::{ConfigError, EnsembleConfig, Role, ServerEntry};
pub use error::{BuildError, ParseError, ParseErrorKind};
pub use host::{Host, HostSpec};
pub use path::{Chroot, ChrootError, PathError, validate_path};

/// The port used when an entry has none: 2181.
pub const DEFAULT_PORT: u16 = 2181;

/// A parsed connection string: at least one host, and an optional chroot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnectString {
    hosts: Vec<HostSpec>,
    chroot: Option<Chroot>,
}

impl ConnectString {
    /// Parses `host[:port][,host[:port]]…[/chroot]`; see the [crate docs](crate) for the rules.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        parse(s)
    }

    /// Builds a connection string from parts, checking that each host is one the parser
    /// could produce (valid name or zone, port not 0), so that [`Display`](fmt::Display)
    /// round-trips.
    ///
    /// ```
    /// use zk_connstr::{BuildError, Chroot, ConnectString, HostSpec};
    ///
    /// let hosts = vec!["127.0.0.1:2181".parse::<HostSpec>()?];
    /// let cs = ConnectString::new(hosts, Some(Chroot::new("/app").unwrap())).unwrap();
    /// assert_eq!(cs.to_string(), "127.0.0.1:2181/app");
    /// assert_eq!(ConnectString::new(vec![], None), Err(BuildError::NoHosts));
    /// # Ok::<(), zk_connstr::ParseError>(())
    /// ```
    pub fn new(hosts: Vec<HostSpec>, chroot: Option<Chroot>) -> Result<Self, BuildError> {
        if hosts.is_empty() {
            return Err(BuildError::NoHosts);
        }
        for (index, spec) in hosts.iter().enumerate() {
            spec.host
                .check()
                .map_err(|(_, kind)| BuildError::InvalidHost { index, kind })?;
            if spec.port == 0 {
                return Err(BuildError::InvalidHost {
                    index,
                    kind: ParseErrorKind::PortOutOfRange,
                });
            }
        }
        Ok(Self { hosts, chroot })
    }

    /// The servers, in the order written (never empty; duplicates kept).
    #[must_use]
    pub fn hosts(&self) -> &[HostSpec] {
        &self.hosts
    }

    /// The chroot, if any.
    #[must_use]
    pub fn chroot(&self) -> Option<&Chroot> {
        self.chroot.as_ref()
    }

    /// The hosts and the chroot.
    #[must_use]
    pub fn into_parts(self) -> (Vec<HostSpec>, Option<Chroot>) {
        (self.hosts, self.chroot)
    }
}

impl fmt::Display for ConnectString {
    /// The canonical form: `host:port,…[/chroot]`, every port explicit, no whitespace.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, spec) in self.hosts.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{spec}")?;
        }
        if let Some(chroot) = &self.chroot {
            f.write_str(chroot.as_str())?;
        }
        Ok(())
    }
}

impl FromStr for ConnectString {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

fn parse(input: &str) -> Result<ConnectString, ParseError> {
    let trimmed = input.trim_ascii();
    if trimmed.is_empty() {
        return Err(ParseError::new(0, ParseErrorKind::Empty));
    }
    let base = input.len() - input.trim_ascii_start().len();
    let (host_list, chroot_text) = match trimmed.find('/') {
        Some(slash) => (&trimmed[..slash], Some((slash, &trimmed[slash..]))),
        None => (trimmed, None),
    };

    if host_list
        .split(',')
        .all(|entry| entry.trim_ascii().is_empty())
    {
        return Err(ParseError::new(base, ParseErrorKind::NoHost));
    }
    let mut hosts = Vec::new();
    let mut start = base;
    for entry in host_list.split(',') {
        let leading = entry.len() - entry.trim_ascii_start().len();
        let entry_trimmed = entry.trim_ascii();
        if entry_trimmed.is_empty() {
            return Err(ParseError::new(start, ParseErrorKind::EmptyEntry));
        }
        hosts.push(host::parse_entry(entry_trimmed, start + leading)?);
        start += entry.len() + 1;
    }

    let chroot = match chroot_text {
        None => None,
        Some((_, "/")) => None,
        Some((slash, text)) => {
            let at = base + slash;
            if let Some(comma) = text.find(',') {
                return Err(ParseError::new(
                    at + comma,
                    ParseErrorKind::CommaAfterChroot,
                ));
            }
            validate_path(text).map_err(|e| {
                let off = match e {
                    PathError::Empty | PathError::NotAbsolute => 0,
                    PathError::TrailingSlash => text.len() - 1,
                    PathError::EmptySegment { offset }
                    | PathError::RelativeSegment { offset }
                    | PathError::NulCharacter { offset }
                    | PathError::ForbiddenCharacter { offset, .. } => offset,
                };
                ParseError::new(at + off, ParseErrorKind::InvalidChroot(e))
            })?;
            Some(Chroot::from_validated(text))
        }
    };
    Ok(ConnectString { hosts, chroot })
}

/// Compiles and runs the README example as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// Entry points for the fuzz targets and their corpus replay tests; not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    use super::{Chroot, ConnectString, EnsembleConfig, HostSpec, validate_path};

    /// Parses `data` (lossily decoded, and as-is when it is UTF-8) as a connection string,
    /// a host entry and a chroot, and checks the invariants: canonical forms round-trip,
    /// chroot prefix/strip are inverse. Panics (on purpose) when an invariant breaks.
    pub fn connstr(data: &[u8]) {
        // The same bytes as a published ensemble configuration: a typed error or hosts that
        // a connection string can hold (never an empty list).
        if let Ok(hosts) = EnsembleConfig::parse(data).and_then(|c| c.client_hosts()) {
            assert!(!hosts.is_empty());
            assert!(
                ConnectString::new(hosts, None).is_ok(),
                "config hosts refused"
            );
        }
        let lossy = String::from_utf8_lossy(data);
        check(&lossy);
        if let Ok(text) = std::str::from_utf8(data) {
            check(text);
        }
    }

    fn check(text: &str) {
        if let Ok(cs) = ConnectString::parse(text) {
            let canonical = cs.to_string();
            let again = ConnectString::parse(&canonical);
            assert_eq!(
                again.as_ref(),
                Ok(&cs),
                "canonical form {canonical:?} of {text:?}"
            );
            assert_eq!(again.map(|c| c.to_string()), Ok(canonical));
            assert!(!cs.hosts().is_empty());
            let rebuilt = ConnectString::new(cs.hosts().to_vec(), cs.chroot().cloned());
            assert_eq!(rebuilt.as_ref(), Ok(&cs));
            for spec in cs.hosts() {
                assert_ne!(spec.port, 0);
                assert!(!spec.server_name().is_empty());
                let _ = spec.socket_addr();
            }
            if let Some(chroot) = cs.chroot() {
                assert_eq!(validate_path(chroot.as_str()), Ok(()));
                assert_eq!(chroot.strip(&chroot.prefix("/")), Some("/"));
                assert_eq!(chroot.strip(&chroot.prefix("/x/y")), Some("/x/y"));
            }
        }
        if let Ok(spec) = HostSpec::parse(text) {
            let canonical = spec.to_string();
            assert_eq!(HostSpec::parse(&canonical).as_ref(), Ok(&spec));
        }
        let valid = validate_path(text).is_ok();
        match Chroot::new(text) {
            Ok(chroot) => {
                assert!(valid);
                assert_eq!(chroot.as_str(), text);
                let path = format!("h{text}");
                let cs = ConnectString::parse(&path);
                assert_eq!(cs.map(|c| c.chroot().cloned()), Ok(Some(chroot)));
            }
            Err(_) => assert!(!valid || text == "/" || text.contains(',') || text.ends_with(' ')),
        }
    }
}

//! Hosts and host entries (`host[:port]`).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::str::FromStr;

use crate::{DEFAULT_PORT, ParseError, ParseErrorKind};

/// Longest host name, in bytes, not counting a trailing dot.
const MAX_NAME_LEN: usize = 253;
/// Longest label of a host name, in bytes.
const MAX_LABEL_LEN: usize = 63;
/// Longest IPv6 zone id, in bytes.
const MAX_ZONE_LEN: usize = 64;

/// A server address as written in a connection string. DNS names are not resolved here.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Host {
    /// A DNS name: dot-separated labels of ASCII letters, digits, `-` and `_`, each 1 to 63
    /// bytes, 253 bytes at most, optionally with one trailing dot (an absolute name). Case is
    /// preserved. The last label is never numeric (see [`ParseErrorKind::InvalidIpv4`]).
    Name(String),
    /// An IPv4 address in dotted-quad form.
    Ipv4(Ipv4Addr),
    /// An IPv6 address, written in brackets, with an optional zone id (`[fe80::1%eth0]`).
    Ipv6 {
        /// The address.
        addr: Ipv6Addr,
        /// The zone (scope) id after `%`: an interface name or number.
        zone: Option<String>,
    },
}

impl Host {
    /// Checks that this host is one the parser could have produced, so that its
    /// [`Display`](fmt::Display) form parses back to it.
    ///
    /// On error, returns the byte offset (in the displayed form) and what is wrong.
    pub(crate) fn check(&self) -> Result<(), (usize, ParseErrorKind)> {
        match self {
            Self::Name(name) => check_name(name),
            Self::Ipv4(_) | Self::Ipv6 { zone: None, .. } => Ok(()),
            Self::Ipv6 {
                addr,
                zone: Some(zone),
            } => check_zone(zone).map_err(|(off, kind)| {
                // `[` + address + `%` come before the zone.
                (off + addr.to_string().len() + 2, kind)
            }),
        }
    }
}

impl fmt::Display for Host {
    /// Writes the host as in a connection string: IPv6 in brackets, with its zone.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) => f.write_str(name),
            Self::Ipv4(addr) => write!(f, "{addr}"),
            Self::Ipv6 { addr, zone: None } => write!(f, "[{addr}]"),
            Self::Ipv6 {
                addr,
                zone: Some(zone),
            } => write!(f, "[{addr}%{zone}]"),
        }
    }
}

/// One server of a connection string: a host and a port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostSpec {
    /// The host.
    pub host: Host,
    /// The port (the parser never produces 0).
    pub port: u16,
}

impl HostSpec {
    /// Parses a single entry, `host[:port]`, with the same rules as one entry of a
    /// connection string (no surrounding whitespace allowed here).
    ///
    /// ```
    /// use zk_connstr::{Host, HostSpec};
    ///
    /// let spec = HostSpec::parse("[fe80::1%eth0]:2182").unwrap();
    /// assert_eq!(spec.port, 2182);
    /// assert!(matches!(spec.host, Host::Ipv6 { zone: Some(ref z), .. } if z == "eth0"));
    /// assert_eq!(HostSpec::parse("zk1").unwrap().to_string(), "zk1:2181");
    /// ```
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        if s.is_empty() {
            return Err(ParseError::new(0, ParseErrorKind::Empty));
        }
        parse_entry(s, 0)
    }

    /// The name to check a TLS certificate against (and to send as SNI for DNS names):
    /// the DNS name without a trailing dot, or the IP address as text (IPv6 without brackets
    /// and without zone).
    ///
    /// ```
    /// use zk_connstr::HostSpec;
    ///
    /// assert_eq!(HostSpec::parse("zk1.example.com.:2181").unwrap().server_name(), "zk1.example.com");
    /// assert_eq!(HostSpec::parse("[fe80::1%eth0]").unwrap().server_name(), "fe80::1");
    /// ```
    #[must_use]
    pub fn server_name(&self) -> String {
        match &self.host {
            Host::Name(name) => name.strip_suffix('.').unwrap_or(name).to_owned(),
            Host::Ipv4(addr) => addr.to_string(),
            Host::Ipv6 { addr, .. } => addr.to_string(),
        }
    }

    /// The socket address of an IP literal, without any DNS lookup.
    ///
    /// Returns `None` for DNS names, and for IPv6 addresses whose zone id is an interface
    /// *name* (`%eth0`): this crate does no system calls, so resolve the name to an index
    /// (`if_nametoindex`) yourself. A numeric zone (`%2`) becomes the scope id.
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// use zk_connstr::HostSpec;
    ///
    /// let spec = HostSpec::parse("[fe80::1%3]:2181").unwrap();
    /// let SocketAddr::V6(addr) = spec.socket_addr().unwrap() else { unreachable!() };
    /// assert_eq!(addr.scope_id(), 3);
    /// assert_eq!(HostSpec::parse("zk1").unwrap().socket_addr(), None);
    /// ```
    #[must_use]
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match &self.host {
            Host::Name(_) => None,
            Host::Ipv4(addr) => Some(SocketAddr::V4(SocketAddrV4::new(*addr, self.port))),
            Host::Ipv6 { addr, zone } => {
                let scope_id = match zone {
                    None => 0,
                    Some(zone) => zone.parse::<u32>().ok()?,
                };
                Some(SocketAddr::V6(SocketAddrV6::new(
                    *addr, self.port, 0, scope_id,
                )))
            }
        }
    }
}

impl fmt::Display for HostSpec {
    /// `name:port`, `1.2.3.4:port` or `[v6%zone]:port`; the port is always written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl FromStr for HostSpec {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl From<SocketAddr> for HostSpec {
    /// An IP literal host. A non-zero IPv6 scope id becomes a numeric zone.
    fn from(addr: SocketAddr) -> Self {
        let host = match addr {
            SocketAddr::V4(v4) => Host::Ipv4(*v4.ip()),
            SocketAddr::V6(v6) => Host::Ipv6 {
                addr: *v6.ip(),
                zone: (v6.scope_id() != 0).then(|| v6.scope_id().to_string()),
            },
        };
        Self {
            host,
            port: addr.port(),
        }
    }
}

/// Parses one entry, already trimmed and non-empty. `base` is the entry's offset in the input.
pub(crate) fn parse_entry(entry: &str, base: usize) -> Result<HostSpec, ParseError> {
    let err = |off: usize, kind| ParseError::new(base + off, kind);

    if let Some(after_open) = entry.strip_prefix('[') {
        let Some(close) = after_open.find(']') else {
            return Err(err(0, ParseErrorKind::UnclosedBracket));
        };
        let inner = &after_open[..close];
        let (addr_text, zone) = match inner.split_once('%') {
            Some((addr, zone)) => (addr, Some(zone)),
            None => (inner, None),
        };
        let addr: Ipv6Addr = addr_text
            .parse()
            .map_err(|_| err(1, ParseErrorKind::InvalidIpv6))?;
        if let Some(zone) = zone {
            check_zone(zone).map_err(|(off, kind)| err(1 + addr_text.len() + 1 + off, kind))?;
        }
        // Offset of the first byte after `]`.
        let after = 1 + close + 1;
        let rest = &entry[after..];
        let port = if rest.is_empty() {
            DEFAULT_PORT
        } else if let Some(port) = rest.strip_prefix(':') {
            parse_port(port).map_err(|kind| err(after + 1, kind))?
        } else {
            return Err(err(after, ParseErrorKind::UnexpectedAfterBracket));
        };
        return Ok(HostSpec {
            host: Host::Ipv6 {
                addr,
                zone: zone.map(str::to_owned),
            },
            port,
        });
    }

    if looks_like_unbracketed_ipv6(entry) {
        return Err(err(0, ParseErrorKind::UnbracketedIpv6));
    }
    let (host_text, port_text) = match entry.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (entry, None),
    };
    // Left to right: the host is checked before the port.
    let host = match host_text.parse::<Ipv4Addr>() {
        Ok(addr) => Host::Ipv4(addr),
        Err(_) => {
            check_name(host_text).map_err(|(off, kind)| err(off, kind))?;
            Host::Name(host_text.to_owned())
        }
    };
    let port = match port_text {
        Some(text) => parse_port(text).map_err(|kind| err(host_text.len() + 1, kind))?,
        None => DEFAULT_PORT,
    };
    Ok(HostSpec { host, port })
}

/// Two or more colons, and only hex digits, `:` and `.` before any `%`: an IPv6 address
/// (perhaps with a port glued on) that is missing its brackets.
fn looks_like_unbracketed_ipv6(entry: &str) -> bool {
    let addr = entry.split_once('%').map_or(entry, |(addr, _)| addr);
    entry.bytes().filter(|&b| b == b':').count() >= 2
        && addr
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
}

/// A decimal port in 1..=65535; leading zeros are accepted.
pub(crate) fn parse_port(text: &str) -> Result<u16, ParseErrorKind> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseErrorKind::InvalidPort {
            text: text.to_owned(),
        });
    }
    let value = text.bytes().fold(0_u32, |acc, b| {
        acc.saturating_mul(10).saturating_add(u32::from(b - b'0'))
    });
    match u16::try_from(value) {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(ParseErrorKind::PortOutOfRange),
    }
}

/// Checks a DNS name; the error carries the byte offset in `name`.
fn check_name(name: &str) -> Result<(), (usize, ParseErrorKind)> {
    if name.is_empty() {
        return Err((0, ParseErrorKind::EmptyHost));
    }
    let body = name.strip_suffix('.').unwrap_or(name);
    if body.len() > MAX_NAME_LEN {
        return Err((0, ParseErrorKind::HostNameTooLong));
    }
    let mut start = 0;
    let mut last = "";
    for label in body.split('.') {
        if label.is_empty() {
            return Err((start, ParseErrorKind::EmptyLabel));
        }
        if let Some(i) = label
            .bytes()
            .position(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        {
            return Err((start + i, ParseErrorKind::InvalidHostName));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err((start, ParseErrorKind::LabelTooLong));
        }
        start += label.len() + 1;
        last = label;
    }
    if is_numeric_label(last) {
        return Err((0, ParseErrorKind::InvalidIpv4));
    }
    Ok(())
}

/// A label that an IPv4 parser in the WHATWG URL or `inet_aton` tradition reads as a
/// number: all decimal digits, or `0x` followed by hex digits.
fn is_numeric_label(label: &str) -> bool {
    let hex = label
        .strip_prefix("0x")
        .or_else(|| label.strip_prefix("0X"));
    match hex {
        Some(digits) => digits.bytes().all(|b| b.is_ascii_hexdigit()),
        None => !label.is_empty() && label.bytes().all(|b| b.is_ascii_digit()),
    }
}

/// Checks an IPv6 zone id; the error carries the byte offset in `zone`.
fn check_zone(zone: &str) -> Result<(), (usize, ParseErrorKind)> {
    if zone.is_empty() || zone.len() > MAX_ZONE_LEN {
        return Err((0, ParseErrorKind::InvalidZone));
    }
    match zone
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'))
    {
        Some(i) => Err((i, ParseErrorKind::InvalidZone)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(parse_port("1"), Ok(1));
        assert_eq!(parse_port("65535"), Ok(65535));
        assert_eq!(parse_port("002181"), Ok(2181));
        assert_eq!(parse_port("0"), Err(ParseErrorKind::PortOutOfRange));
        assert_eq!(parse_port("65536"), Err(ParseErrorKind::PortOutOfRange));
        assert_eq!(
            parse_port("99999999999999999999999999"),
            Err(ParseErrorKind::PortOutOfRange)
        );
        assert!(matches!(
            parse_port("-1"),
            Err(ParseErrorKind::InvalidPort { .. })
        ));
        assert!(matches!(
            parse_port("١٢"),
            Err(ParseErrorKind::InvalidPort { .. })
        ));
    }

    #[test]
    fn numeric_labels() {
        for n in ["0", "123", "0x", "0x1f", "0XAB"] {
            assert!(is_numeric_label(n), "{n}");
        }
        for n in ["", "a1", "1a", "0xg", "x0"] {
            assert!(!is_numeric_label(n), "{n}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(check_name("a-b_c.D9"), Ok(()));
        assert_eq!(check_name("a.b."), Ok(()));
        assert_eq!(check_name("1a.2b"), Ok(()));
        assert_eq!(check_name("."), Err((0, ParseErrorKind::EmptyLabel)));
        assert_eq!(check_name("a..b"), Err((2, ParseErrorKind::EmptyLabel)));
        assert_eq!(
            check_name("a.b!"),
            Err((3, ParseErrorKind::InvalidHostName))
        );
        assert_eq!(check_name("host.10"), Err((0, ParseErrorKind::InvalidIpv4)));
        let long_label = "a".repeat(64);
        assert_eq!(
            check_name(&long_label),
            Err((0, ParseErrorKind::LabelTooLong))
        );
        let long_name = ["a".repeat(63).as_str(); 4].join(".");
        assert_eq!(long_name.len(), 255);
        assert_eq!(
            check_name(&long_name),
            Err((0, ParseErrorKind::HostNameTooLong))
        );
        let max = format!(
            "{}.{}",
            ["a".repeat(63).as_str(); 3].join("."),
            "b".repeat(61)
        );
        assert_eq!(max.len(), 253);
        assert_eq!(check_name(&max), Ok(()));
        assert_eq!(check_name(&format!("{max}.")), Ok(()));
    }

    #[test]
    fn host_check_offsets_point_into_display_form() {
        let host = Host::Ipv6 {
            addr: Ipv6Addr::LOCALHOST,
            zone: Some("e th".into()),
        };
        let text = host.to_string();
        let (off, kind) = host.check().unwrap_err();
        assert_eq!(kind, ParseErrorKind::InvalidZone);
        assert_eq!(&text[off..=off], " ");
    }

    #[test]
    fn socket_addr_conversions() {
        let v6: SocketAddr = "[fe80::1%7]:2181".parse().unwrap();
        let spec = HostSpec::from(v6);
        assert_eq!(spec.to_string(), "[fe80::1%7]:2181");
        assert_eq!(spec.socket_addr(), Some(v6));
        let v4: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(HostSpec::from(v4).socket_addr(), Some(v4));
        let named = HostSpec::parse("[fe80::1%eth0]").unwrap();
        assert_eq!(named.socket_addr(), None);
    }
}

//! The ensemble's dynamic configuration as servers publish it in `/zookeeper/config`
//! (ZooKeeper 3.5+), and the client addresses a client can take from it.
//!
//! ```text
//! server.1=10.0.0.1:2888:3888:participant;0.0.0.0:2181
//! server.2=10.0.0.2:2888:3888:participant;2181
//! server.3=10.0.0.3:2888:3888:observer;10.0.0.3:2181
//! version=100000003
//! ```
//!
//! Each `server.<id>` line is `host:quorumPort:electionPort[:role][;[clientHost:]clientPort]`.
//! A server without the `;client` part has no client address here (it is skipped); a
//! wildcard client host (`0.0.0.0`, `[::]`) or a missing one means the server's own host.
//! Unknown keys are ignored. Anything malformed is a typed [`ConfigError`]: a client must
//! never replace its host list with something it could not read.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::{Host, HostSpec};

/// A server's role in the ensemble.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// Votes and may lead.
    Participant,
    /// Serves clients, does not vote.
    Observer,
}

/// One `server.<id>=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEntry {
    /// The server id.
    pub id: u64,
    /// The host of its quorum and election ports.
    pub host: Host,
    /// Participant or observer.
    pub role: Role,
    /// Where clients connect, if the line names it (wildcards already mapped to `host`).
    pub client: Option<HostSpec>,
}

/// A parsed dynamic configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnsembleConfig {
    /// `version=` (hexadecimal, the zxid that created it); `None` if absent.
    pub version: Option<u64>,
    /// The servers, in the order listed.
    pub servers: Vec<ServerEntry>,
}

/// Why a configuration could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The text is not UTF-8.
    #[error("the configuration is not UTF-8")]
    NotUtf8,
    /// A line has no `=`.
    #[error("line {line}: no '='")]
    NoEquals {
        /// 1-based line number.
        line: usize,
    },
    /// A `server.<id>` key whose id is not a number.
    #[error("line {line}: bad server id")]
    BadServerId {
        /// 1-based line number.
        line: usize,
    },
    /// A server line that does not read as `host:port:port[:role][;client]`.
    #[error("line {line}: bad server address: {reason}")]
    BadServer {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// `version=` is not hexadecimal.
    #[error("line {line}: bad version")]
    BadVersion {
        /// 1-based line number.
        line: usize,
    },
    /// Two lines for the same server id.
    #[error("server {id} listed twice")]
    DuplicateServer {
        /// The id.
        id: u64,
    },
    /// No server names a client address: nothing a client could connect to.
    #[error("no server names a client address")]
    NoClientAddress,
}

impl EnsembleConfig {
    /// Parses the data of `/zookeeper/config`.
    ///
    /// # Errors
    /// A [`ConfigError`] for anything malformed (see the module docs).
    pub fn parse(data: &[u8]) -> Result<Self, ConfigError> {
        let text = std::str::from_utf8(data).map_err(|_| ConfigError::NotUtf8)?;
        let mut version = None;
        let mut servers: Vec<ServerEntry> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let raw = raw.trim();
            if raw.is_empty() || raw.starts_with('#') {
                continue;
            }
            let (key, value) = raw.split_once('=').ok_or(ConfigError::NoEquals { line })?;
            let (key, value) = (key.trim(), value.trim());
            if key == "version" {
                version = Some(
                    u64::from_str_radix(value, 16).map_err(|_| ConfigError::BadVersion { line })?,
                );
            } else if let Some(id) = key.strip_prefix("server.") {
                let id: u64 = id.parse().map_err(|_| ConfigError::BadServerId { line })?;
                if servers.iter().any(|s| s.id == id) {
                    return Err(ConfigError::DuplicateServer { id });
                }
                servers.push(server(id, value, line)?);
            }
        }
        Ok(Self { version, servers })
    }

    /// The client addresses of every server that names one, in order, without duplicates.
    ///
    /// # Errors
    /// [`ConfigError::NoClientAddress`] when there is none.
    pub fn client_hosts(&self) -> Result<Vec<HostSpec>, ConfigError> {
        let mut hosts: Vec<HostSpec> = Vec::new();
        for s in &self.servers {
            if let Some(c) = &s.client
                && !hosts.contains(c)
            {
                hosts.push(c.clone());
            }
        }
        if hosts.is_empty() {
            return Err(ConfigError::NoClientAddress);
        }
        Ok(hosts)
    }
}

fn bad(line: usize, reason: &'static str) -> ConfigError {
    ConfigError::BadServer { line, reason }
}

/// `host:quorumPort:electionPort[:role][;[clientHost:]clientPort]`.
fn server(id: u64, value: &str, line: usize) -> Result<ServerEntry, ConfigError> {
    let (quorum, client) = match value.split_once(';') {
        Some((q, c)) => (q.trim(), Some(c.trim())),
        None => (value, None),
    };
    let (host, rest) = split_host(quorum).ok_or_else(|| bad(line, "no host"))?;
    let host = parse_host(host).ok_or_else(|| bad(line, "bad host"))?;
    let mut parts = rest.split(':');
    for _ in 0..2 {
        parts
            .next()
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| *p != 0)
            .ok_or_else(|| bad(line, "bad quorum or election port"))?;
    }
    let role = match parts.next() {
        None | Some("participant") => Role::Participant,
        Some("observer") => Role::Observer,
        Some(_) => return Err(bad(line, "unknown role")),
    };
    if parts.next().is_some() {
        return Err(bad(line, "too many fields"));
    }
    let client = match client {
        None | Some("") => None,
        Some(c) => Some(client_spec(c, &host).ok_or_else(|| bad(line, "bad client address"))?),
    };
    Ok(ServerEntry {
        id,
        host,
        role,
        client,
    })
}

/// `[clientHost:]clientPort`; a wildcard or missing host means `server_host`.
fn client_spec(c: &str, server_host: &Host) -> Option<HostSpec> {
    let (host, port) = match c.rsplit_once(':') {
        Some((h, p)) => (Some(h), p),
        None => (None, c),
    };
    let port = port.parse::<u16>().ok().filter(|p| *p != 0)?;
    let host = match host {
        None => server_host.clone(),
        Some(h) => {
            let h = parse_host(h)?;
            if is_wildcard(&h) {
                server_host.clone()
            } else {
                h
            }
        }
    };
    Some(HostSpec { host, port })
}

fn is_wildcard(h: &Host) -> bool {
    match h {
        Host::Ipv4(a) => *a == Ipv4Addr::UNSPECIFIED,
        Host::Ipv6 { addr, .. } => *addr == Ipv6Addr::UNSPECIFIED,
        Host::Name(_) => false,
    }
}

/// Splits `host:rest`, where an IPv6 host is bracketed.
fn split_host(s: &str) -> Option<(&str, &str)> {
    if s.starts_with('[') {
        let end = s.find(']')?;
        let rest = s[end + 1..].strip_prefix(':')?;
        Some((&s[..=end], rest))
    } else {
        s.split_once(':')
    }
}

fn parse_host(h: &str) -> Option<Host> {
    if let Some(inner) = h.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
        return match inner.parse::<IpAddr>().ok()? {
            IpAddr::V6(addr) => Some(Host::Ipv6 { addr, zone: None }),
            IpAddr::V4(_) => None,
        };
    }
    // Through the connection-string rules (names, IPv4), with a dummy port.
    HostSpec::parse(&format!("{h}:1")).ok().map(|s| s.host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(cfg: &EnsembleConfig) -> Vec<String> {
        let hosts = cfg.client_hosts().unwrap();
        hosts.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_published_config_gives_the_client_addresses() {
        let cfg = EnsembleConfig::parse(
            b"server.1=10.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
              server.2=10.0.0.2:2888:3888:participant;2182\n\
              server.3=10.0.0.3:2888:3888:observer;10.0.0.9:2183\n\
              server.4=10.0.0.4:2888:3888\n\
              version=10000000a\n",
        )
        .unwrap();
        assert_eq!(cfg.version, Some(0x1_0000_000a));
        assert_eq!(cfg.servers.len(), 4);
        assert_eq!(cfg.servers[2].role, Role::Observer);
        assert_eq!(
            shown(&cfg),
            ["10.0.0.1:2181", "10.0.0.2:2182", "10.0.0.9:2183"]
        );
    }

    #[test]
    fn ipv6_and_names() {
        let cfg =
            EnsembleConfig::parse(b"server.1=[::1]:2888:3888;[::]:2181\nserver.2=zk2:1:2;zk2:2181")
                .unwrap();
        assert_eq!(shown(&cfg), ["[::1]:2181", "zk2:2181"]);
    }

    #[test]
    fn unusable_configs_are_typed_errors() {
        // Each text and the error it must give (compared by variant).
        let cases: &[(&[u8], ConfigError)] = &[
            (b"\xff", ConfigError::NotUtf8),
            (b"server.1", ConfigError::NoEquals { line: 1 }),
            (b"server.x=a:1:2", ConfigError::BadServerId { line: 1 }),
            (b"server.1=a:1", bad(1, "")),
            (b"server.1=a:1:2:boss", bad(1, "")),
            (b"server.1=a:1:2;0", bad(1, "")),
            (b"server.1=a:1:2;b:c", bad(1, "")),
            (b"server.1=a b:1:2", bad(1, "")),
            (b"version=xyz", ConfigError::BadVersion { line: 1 }),
            (
                b"server.1=a:1:2;3\nserver.1=b:1:2;3",
                ConfigError::DuplicateServer { id: 1 },
            ),
        ];
        for (text, want) in cases {
            let e = EnsembleConfig::parse(text).unwrap_err();
            assert_eq!(
                std::mem::discriminant(&e),
                std::mem::discriminant(want),
                "{:?}: {e:?}",
                String::from_utf8_lossy(text)
            );
        }
        let none = EnsembleConfig::parse(b"server.1=a:1:2\nversion=1").unwrap();
        assert_eq!(none.client_hosts(), Err(ConfigError::NoClientAddress));
    }
}

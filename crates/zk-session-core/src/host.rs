//! Host selection as a pure policy: which server to try next.
//!
//! The default [`StaticHostProvider`] shuffles the connection string's hosts once, walks them
//! round-robin (so the host that just failed is never retried first while another one is
//! available), and keeps a small per-host health record: each failure puts the host on a
//! short, kind-dependent penalty that doubles on repeated failures and is forgiven by a
//! success. When every host is penalised it picks the one whose penalty ends first instead
//! of waiting: a session is at stake. Names are resolved by the driver on every attempt.

use std::time::{Duration, Instant};

use zk_connstr::HostSpec;

use crate::rng::Rng;

/// Index of a host in its provider's list.
pub type HostId = usize;

/// The host to try next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Its index, reported back with the attempt's outcome.
    pub id: HostId,
    /// Name or address and port, as written in the connection string.
    pub spec: HostSpec,
}

/// Why an attempt on a host, or a connection to it, failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HostFailure {
    /// TCP connection refused (nothing listening: a crashed server).
    Refused,
    /// TCP, TLS or the handshake did not finish in time (a frozen or blackholed server).
    TimedOut,
    /// The server accepted TCP and closed without a ConnectResponse: leader election,
    /// our zxid ahead of its own, or read-only mode refusing us.
    ClosedInHandshake,
    /// The name did not resolve to any address.
    Unresolvable,
    /// TLS failed for a reason that will not fix itself (certificate, protocol version).
    Tls,
    /// Other transport error.
    Io,
    /// The server sent something that is not ZooKeeper.
    Protocol,
    /// An established connection was closed or reset.
    ConnectionLost,
    /// An established connection went silent.
    Frozen,
    /// The server is read-only and we want a read-write one.
    ReadOnly,
}

impl HostFailure {
    /// The first penalty for this kind of failure. Penalties rank hosts by what trying them
    /// again would cost: a host that closes or refuses at once costs a round trip, one that
    /// timed out costs a whole attempt.
    #[must_use]
    pub const fn base_penalty(self) -> Duration {
        match self {
            Self::ClosedInHandshake => Duration::from_millis(25),
            Self::Refused => Duration::from_millis(100),
            Self::ConnectionLost | Self::Io => Duration::from_millis(500),
            Self::Unresolvable | Self::ReadOnly => Duration::from_secs(1),
            Self::TimedOut | Self::Frozen | Self::Protocol | Self::Tls => Duration::from_secs(5),
        }
    }

    /// The longest penalty this kind of failure can grow to by repetition.
    #[must_use]
    pub const fn max_penalty(self) -> Duration {
        match self {
            Self::ClosedInHandshake => Duration::from_millis(250),
            Self::Refused => Duration::from_secs(2),
            Self::ConnectionLost | Self::Io => Duration::from_secs(10),
            _ => MAX_PENALTY,
        }
    }
}

/// Health of one host as the provider sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostStats {
    /// Failures since the provider was created.
    pub failures: u64,
    /// Successful handshakes since the provider was created.
    pub successes: u64,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// The most recent failure.
    pub last_failure: Option<HostFailure>,
}

/// Chooses servers. Implement it to plug in service discovery or a custom policy.
pub trait HostProvider: Send + std::fmt::Debug {
    /// How many hosts there are (at least one).
    fn len(&self) -> usize;
    /// Whether there are no hosts (never true for a valid provider).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The host to try next (`None` only for an empty list). Must not sleep: pacing is the
    /// session core's job.
    fn next(&mut self, now: Instant, rng: &mut Rng) -> Option<Candidate>;
    /// An attempt or a connection on `host` failed.
    fn on_failure(&mut self, now: Instant, host: HostId, failure: HostFailure);
    /// A handshake on `host` succeeded.
    fn on_success(&mut self, now: Instant, host: HostId);
    /// Per-host health, indexed by [`HostId`].
    fn stats(&self) -> Vec<HostStats>;
    /// No penalty may exceed `cap` (the session core sets it from the session timeout, so
    /// a healed host is always retried while the session can still be saved).
    fn set_max_penalty(&mut self, cap: Duration) {
        let _ = cap;
    }
}

#[derive(Debug, Clone)]
struct Entry {
    spec: HostSpec,
    stats: HostStats,
    penalty_until: Option<Instant>,
}

/// The default provider over a fixed list of hosts (see the module docs).
#[derive(Debug, Clone)]
pub struct StaticHostProvider {
    entries: Vec<Entry>,
    /// Visiting order, shuffled once.
    order: Vec<HostId>,
    /// Position in `order` of the host returned last.
    cursor: Option<usize>,
    shuffled: bool,
    max_penalty: Option<Duration>,
}

/// The longest penalty a host can get.
const MAX_PENALTY: Duration = Duration::from_secs(30);

impl StaticHostProvider {
    /// A provider over `hosts`, shuffled on first use with the session's RNG.
    #[must_use]
    pub fn new(hosts: Vec<HostSpec>) -> Self {
        let order = (0..hosts.len()).collect();
        let entries = hosts
            .into_iter()
            .map(|spec| Entry {
                spec,
                stats: HostStats::default(),
                penalty_until: None,
            })
            .collect();
        Self {
            entries,
            order,
            cursor: None,
            shuffled: false,
            max_penalty: None,
        }
    }

    /// A provider that keeps the given order (no shuffle): for tests and for users who
    /// list servers by preference.
    #[must_use]
    pub fn in_order(hosts: Vec<HostSpec>) -> Self {
        let mut p = Self::new(hosts);
        p.shuffled = true;
        p
    }

    fn penalty(failure: HostFailure, consecutive: u32) -> Duration {
        let shift = consecutive.saturating_sub(1).min(8);
        failure
            .base_penalty()
            .saturating_mul(1 << shift)
            .min(failure.max_penalty())
    }
}

impl HostProvider for StaticHostProvider {
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn next(&mut self, now: Instant, rng: &mut Rng) -> Option<Candidate> {
        if !self.shuffled {
            rng.shuffle(&mut self.order);
            self.shuffled = true;
        }
        let n = self.order.len();
        if n == 0 {
            return None;
        }
        let start = self.cursor.map_or(0, |c| c + 1);
        let mut best: Option<(usize, Instant)> = None;
        let mut chosen = None;
        for k in 0..n {
            let pos = (start + k) % n;
            let entry = &self.entries[self.order[pos]];
            match entry.penalty_until {
                Some(until) if until > now => {
                    if best.is_none_or(|(_, b)| until < b) {
                        best = Some((pos, until));
                    }
                }
                _ => {
                    chosen = Some(pos);
                    break;
                }
            }
        }
        let pos = chosen.or(best.map(|(p, _)| p)).unwrap_or(start % n);
        self.cursor = Some(pos);
        let id = self.order[pos];
        Some(Candidate {
            id,
            spec: self.entries[id].spec.clone(),
        })
    }

    fn on_failure(&mut self, now: Instant, host: HostId, failure: HostFailure) {
        if let Some(e) = self.entries.get_mut(host) {
            e.stats.failures += 1;
            e.stats.consecutive_failures = e.stats.consecutive_failures.saturating_add(1);
            e.stats.last_failure = Some(failure);
            let mut penalty = Self::penalty(failure, e.stats.consecutive_failures);
            if let Some(cap) = self.max_penalty {
                penalty = penalty.min(cap);
            }
            e.penalty_until = Some(now + penalty);
        }
    }

    fn on_success(&mut self, _now: Instant, host: HostId) {
        if let Some(e) = self.entries.get_mut(host) {
            e.stats.successes += 1;
            e.stats.consecutive_failures = 0;
            e.penalty_until = None;
        }
        // Continue the rotation from the host we are on.
        if let Some(pos) = self.order.iter().position(|&h| h == host) {
            self.cursor = Some(pos);
        }
    }

    fn stats(&self) -> Vec<HostStats> {
        self.entries.iter().map(|e| e.stats.clone()).collect()
    }

    fn set_max_penalty(&mut self, cap: Duration) {
        self.max_penalty = Some(cap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(n: u16) -> Vec<HostSpec> {
        (0..n)
            .map(|i| HostSpec {
                host: zk_connstr::Host::Ipv4(std::net::Ipv4Addr::LOCALHOST),
                port: 3000 + i,
            })
            .collect()
    }

    #[test]
    fn never_retries_the_failed_host_first() {
        let now = Instant::now();
        let mut rng = Rng::new(3);
        let mut p = StaticHostProvider::new(hosts(3));
        let first = p.next(now, &mut rng).unwrap();
        p.on_success(now, first.id);
        p.on_failure(now, first.id, HostFailure::ConnectionLost);
        let second = p.next(now, &mut rng).unwrap();
        assert_ne!(second.id, first.id);
        p.on_failure(now, second.id, HostFailure::Refused);
        let third = p.next(now, &mut rng).unwrap();
        assert_ne!(third.id, first.id);
        assert_ne!(third.id, second.id);
    }

    #[test]
    fn all_penalised_picks_the_earliest_release() {
        let now = Instant::now();
        let mut rng = Rng::new(9);
        let mut p = StaticHostProvider::in_order(hosts(3));
        p.on_failure(now, 0, HostFailure::Tls);
        p.on_failure(now, 1, HostFailure::Refused);
        p.on_failure(now, 2, HostFailure::TimedOut);
        assert_eq!(p.next(now, &mut rng).unwrap().id, 1);
        // Once the penalty is over the rotation resumes.
        let later = now + Duration::from_secs(10);
        let c = p.next(later, &mut rng).unwrap();
        assert_eq!(c.id, 2);
    }

    #[test]
    fn penalties_double_and_are_capped_per_kind() {
        let p = StaticHostProvider::penalty;
        assert_eq!(p(HostFailure::Refused, 1), Duration::from_millis(100));
        assert_eq!(p(HostFailure::Refused, 2), Duration::from_millis(200));
        assert_eq!(p(HostFailure::Refused, 9), Duration::from_secs(2));
        assert_eq!(
            p(HostFailure::ClosedInHandshake, 20),
            Duration::from_millis(250)
        );
        assert_eq!(p(HostFailure::Tls, 50), MAX_PENALTY);
        // A host that timed out stays behind hosts that merely refuse or close at once.
        assert!(p(HostFailure::Frozen, 1) > p(HostFailure::ClosedInHandshake, 30));
    }

    #[test]
    fn single_host_is_always_returned() {
        let now = Instant::now();
        let mut rng = Rng::new(1);
        let mut p = StaticHostProvider::new(hosts(1));
        p.on_failure(now, 0, HostFailure::Refused);
        assert_eq!(p.next(now, &mut rng).unwrap().id, 0);
        assert_eq!(p.next(now, &mut rng).unwrap().id, 0);
    }
}

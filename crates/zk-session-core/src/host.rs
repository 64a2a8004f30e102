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
    /// SASL could not be completed with this server for a reason that may fix itself (the
    /// KDC unreachable, no service ticket for it yet); not a rejection of the credentials.
    Auth,
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
            Self::Unresolvable | Self::ReadOnly | Self::Auth => Duration::from_secs(1),
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

/// What a new host list means for the session (ZOOKEEPER-1355's rebalancing, see
/// [`HostProvider::update`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rebalance {
    /// Stay where it is; `current` is the session's server under the new list's ids.
    Stay {
        /// The session's server in the new list, if it has one.
        current: Option<HostId>,
    },
    /// Move to `to`: the session's server left the list (`current` is `None`), or the list
    /// grew and this session drew one of the moves that even out the load.
    Move {
        /// The session's server in the new list, if it is still there.
        current: Option<HostId>,
        /// Where to go.
        to: HostId,
    },
    /// This provider cannot change its list.
    Unsupported,
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
    /// The hosts, indexed by [`HostId`] (empty if the provider does not say).
    fn hosts(&self) -> Vec<HostSpec> {
        Vec::new()
    }
    /// Replaces the list with `hosts` (non-empty, without duplicates); the session is on
    /// `on` (an id of the old list) or on no server. Ids change: the answer maps the
    /// session's server to the new list and says whether to move. A provider that cannot
    /// change returns [`Rebalance::Unsupported`] (the default).
    fn update(&mut self, hosts: Vec<HostSpec>, on: Option<HostId>, rng: &mut Rng) -> Rebalance {
        let _ = (hosts, on, rng);
        Rebalance::Unsupported
    }
}

#[derive(Debug, Clone)]
struct Entry {
    spec: HostSpec,
    stats: HostStats,
    penalty_until: Option<Instant>,
}

impl Entry {
    /// A host with no history.
    fn fresh(spec: HostSpec) -> Self {
        Self {
            spec,
            stats: HostStats::default(),
            penalty_until: None,
        }
    }
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
        let entries = hosts.into_iter().map(Entry::fresh).collect();
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

    fn hosts(&self) -> Vec<HostSpec> {
        self.entries.iter().map(|e| e.spec.clone()).collect()
    }

    /// Hosts in both lists keep their health; the visiting order is shuffled anew. Then, as
    /// ZOOKEEPER-1355 has it: a session whose server left moves (to a host new to the list
    /// if there is one); when the list grew, a session stays with probability old/new and
    /// otherwise moves to one of the new hosts, so the load ends up even without every
    /// session moving; otherwise it stays.
    fn update(&mut self, hosts: Vec<HostSpec>, on: Option<HostId>, rng: &mut Rng) -> Rebalance {
        let current = on;
        let old_len = self.entries.len();
        let current_spec = current
            .and_then(|id| self.entries.get(id))
            .map(|e| e.spec.clone());
        let mut old: Vec<Entry> = std::mem::take(&mut self.entries);
        let mut added = Vec::new();
        for spec in hosts {
            if self.entries.iter().any(|e| e.spec == spec) {
                continue;
            }
            let entry = match old.iter().position(|e| e.spec == spec) {
                Some(i) => old.swap_remove(i),
                None => {
                    added.push(self.entries.len());
                    Entry::fresh(spec)
                }
            };
            self.entries.push(entry);
        }
        let n = self.entries.len();
        self.order = (0..n).collect();
        rng.shuffle(&mut self.order);
        self.shuffled = true;
        self.cursor = None;
        let current = current_spec
            .as_ref()
            .and_then(|s| self.entries.iter().position(|e| e.spec == *s));
        let pick = |rng: &mut Rng, among: &[HostId]| {
            let k = usize::try_from(rng.below(among.len() as u64)).unwrap_or(0);
            among.get(k).copied()
        };
        match current {
            // Not on a server: nothing to move.
            None if current_spec.is_none() => Rebalance::Stay { current: None },
            // Its server left: go, to a new host when there is one.
            None => {
                let all: Vec<HostId> = (0..n).collect();
                let to = pick(rng, if added.is_empty() { &all } else { &added });
                to.map_or(Rebalance::Stay { current: None }, |to| Rebalance::Move {
                    current: None,
                    to,
                })
            }
            // The list grew: move with probability 1 − old/new, to a new host.
            Some(c)
                if n > old_len && !added.is_empty() && rng.below(n as u64) >= old_len as u64 =>
            {
                pick(rng, &added).map_or(Rebalance::Stay { current: Some(c) }, |to| {
                    Rebalance::Move {
                        current: Some(c),
                        to,
                    }
                })
            }
            Some(c) => Rebalance::Stay { current: Some(c) },
        }
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

    #[test]
    fn growing_moves_about_the_new_share_and_keeps_health() {
        let now = Instant::now();
        let mut moved = 0;
        for seed in 0..1000 {
            let mut rng = Rng::new(seed);
            let mut p = StaticHostProvider::new(hosts(3));
            let c = p.next(now, &mut rng).unwrap();
            p.on_success(now, c.id);
            p.on_failure(now, (c.id + 1) % 3, HostFailure::Refused);
            let on = p.entries[c.id].spec.clone();
            match p.update(hosts(5), Some(c.id), &mut rng) {
                Rebalance::Stay { current: Some(id) } => assert_eq!(p.entries[id].spec, on),
                Rebalance::Move {
                    current: Some(id),
                    to,
                } => {
                    assert_eq!(p.entries[id].spec, on);
                    assert!(p.entries[to].spec.port >= 3003, "moves go to the new hosts");
                    moved += 1;
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(p.len(), 5);
            let failed: u64 = p.stats().iter().map(|s| s.failures).sum();
            assert_eq!(failed, 1, "health kept for the hosts that stay");
        }
        // 1 − 3/5 = 40 % of sessions move.
        assert!((350..450).contains(&moved), "{moved} of 1000 moved");
    }

    #[test]
    fn a_removed_server_means_a_move_and_shrinking_otherwise_stays() {
        let now = Instant::now();
        let mut rng = Rng::new(5);
        let mut p = StaticHostProvider::in_order(hosts(3));
        // On host 0; the new list drops it.
        let r = p.update(hosts(3).split_off(1), Some(0), &mut rng);
        assert!(matches!(r, Rebalance::Move { current: None, .. }), "{r:?}");
        // On 3001 (now id 0 or 1); the list shrinks to it and 3002: stay.
        let at = p.hosts().iter().position(|h| h.port == 3001).unwrap();
        let r = p.update(hosts(3).split_off(1), Some(at), &mut rng);
        assert!(matches!(r, Rebalance::Stay { current: Some(_) }), "{r:?}");
        // Not connected: nothing to do.
        assert_eq!(
            p.update(hosts(2), None, &mut rng),
            Rebalance::Stay { current: None }
        );
        let _ = p.next(now, &mut rng).unwrap();
    }
}

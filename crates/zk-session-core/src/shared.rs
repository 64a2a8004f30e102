//! What the sessions of one process learn about servers, shared among them.
//!
//! One session alone cannot tell a server that is *slow* (a thousand sessions of the same
//! process just arrived there after a crash) from one that is *frozen* (SIGSTOP, a
//! partition): both accept TCP and then say nothing. The other sessions of the process can:
//! if any of them completed a handshake on that address after this attempt began, the
//! server is alive and working through a queue, and giving up on it after the short
//! per-attempt cap would only throw its work away and add a new attempt to some other
//! server's queue — the congestion collapse of a reconnect storm. A frozen server completes
//! no handshakes, so it is still left after one cap.
//!
//! The same registry holds what the process learned about leader elections (how long they
//! take from a loss to the first server serving again, see [`crate::pacing`]), so that every
//! session of the process probes around the expected end, and it paces election probes
//! process-wide: the whole process never starts more than one per
//! [`SharedHosts::election_spacing`].
//!
//! It is plain data behind a mutex, driven by the `now` the sessions pass in, so simulations
//! stay deterministic. The core never creates one: it is handed in through
//! [`crate::SessionConfig::shared`] (`zk-session` keeps the process-wide instance `zk-client`
//! uses).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::pacing::{ElectionEstimate, ElectionSeen};

/// Entries not touched for this long are forgotten (bounds the map).
const FORGET_AFTER: Duration = Duration::from_secs(600);
/// The map is swept for old entries when it grows beyond this.
const SWEEP_ABOVE: usize = 1024;

/// Server knowledge shared by the sessions of one process. See the module docs.
#[derive(Debug)]
pub struct SharedHosts {
    inner: Mutex<Inner>,
    spacing: Duration,
}

#[derive(Debug, Default)]
struct Inner {
    /// Last successful handshake per address.
    handshakes: HashMap<SocketAddr, Instant>,
    /// The earliest moment the next election retry of the process may start.
    next_election_retry: Option<Instant>,
    /// How long elections took, as the process's sessions saw them end.
    election: Option<ElectionEstimate>,
}

impl Default for SharedHosts {
    fn default() -> Self {
        Self::new(Duration::from_micros(100))
    }
}

impl SharedHosts {
    /// An empty registry whose election retries are spaced at least `election_spacing`
    /// apart process-wide (the default is 100 µs: at most 10,000 per second).
    #[must_use]
    pub fn new(election_spacing: Duration) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            spacing: election_spacing,
        }
    }

    /// The process-wide spacing of election retries.
    #[must_use]
    pub fn election_spacing(&self) -> Duration {
        self.spacing
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A session completed a handshake on `addr` at `now`.
    pub fn handshake_succeeded(&self, addr: SocketAddr, now: Instant) {
        let mut inner = self.lock();
        if inner.handshakes.len() >= SWEEP_ABOVE {
            inner
                .handshakes
                .retain(|_, at| now.saturating_duration_since(*at) < FORGET_AFTER);
        }
        let entry = inner.handshakes.entry(addr).or_insert(now);
        if now > *entry {
            *entry = now;
        }
    }

    /// Whether some session completed a handshake on `addr` after `since`.
    #[must_use]
    pub fn handshake_since(&self, addr: SocketAddr, since: Instant) -> bool {
        self.lock()
            .handshakes
            .get(&addr)
            .is_some_and(|at| *at > since)
    }

    /// What the process learned about elections so far.
    #[must_use]
    pub fn election_estimate(&self) -> Option<ElectionEstimate> {
        self.lock().election
    }

    /// A session saw an election end (see [`ElectionSeen`]).
    pub fn learn_election(&self, seen: ElectionSeen) {
        let mut inner = self.lock();
        inner.election = ElectionEstimate::learn(inner.election, seen);
    }

    /// Books the process's next election retry: the returned moment is at or after
    /// `earliest` and at least the spacing after the previously booked one.
    #[must_use]
    pub fn book_election_retry(&self, earliest: Instant) -> Instant {
        let mut inner = self.lock();
        let at = match inner.next_election_retry {
            Some(next) if next > earliest => next,
            _ => earliest,
        };
        inner.next_election_retry = Some(at + self.spacing);
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn handshakes_are_seen_only_after_their_moment() {
        let shared = SharedHosts::default();
        let t0 = Instant::now();
        assert!(!shared.handshake_since(addr(1), t0));
        shared.handshake_succeeded(addr(1), t0 + Duration::from_millis(5));
        assert!(shared.handshake_since(addr(1), t0));
        assert!(!shared.handshake_since(addr(1), t0 + Duration::from_millis(5)));
        assert!(!shared.handshake_since(addr(2), t0));
        // An older report does not move the record back.
        shared.handshake_succeeded(addr(1), t0);
        assert!(shared.handshake_since(addr(1), t0 + Duration::from_millis(4)));
    }

    #[test]
    fn election_retries_are_spaced_process_wide() {
        let shared = SharedHosts::new(Duration::from_millis(1));
        let t0 = Instant::now();
        let a = shared.book_election_retry(t0);
        let b = shared.book_election_retry(t0);
        let c = shared.book_election_retry(t0);
        assert_eq!(a, t0);
        assert_eq!(b, t0 + Duration::from_millis(1));
        assert_eq!(c, t0 + Duration::from_millis(2));
        // A later request is not delayed by an old booking.
        let late = t0 + Duration::from_secs(1);
        assert_eq!(shared.book_election_retry(late), late);
    }

    #[test]
    fn the_map_stays_bounded() {
        let shared = SharedHosts::default();
        let t0 = Instant::now();
        for port in 0..3000u16 {
            shared.handshake_succeeded(addr(port), t0);
        }
        let later = t0 + FORGET_AFTER + Duration::from_secs(1);
        shared.handshake_succeeded(addr(60000), later);
        assert!(shared.lock().handshakes.len() <= 2);
    }
}

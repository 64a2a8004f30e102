//! The core's deadlines, kept in one small table (the quinn-proto shape).

use std::time::Instant;

/// Every deadline the session core can be waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// The current connection attempt (TCP, TLS and handshake) must finish by now.
    Attempt = 0,
    /// Send a ping if nothing was sent since.
    Ping = 1,
    /// Silence until now means the server is gone (frozen, partitioned).
    Receive = 2,
    /// Wait before the next pass over the hosts.
    Backoff = 3,
    /// No server can still hold the session: report local expiry.
    LocalExpiry = 4,
    /// The earliest explicit request deadline.
    Request = 5,
    /// Probe for a read-write server while connected read-only.
    ReadOnlyProbe = 6,
    /// A graceful close must be finished by now.
    Close = 7,
    /// Replies have been held back by the receive hint for this long: take what is there.
    Batch = 8,
    /// A move to another server after the host list changed (spread out in time).
    Rebalance = 9,
}

impl Timer {
    /// All timers, in the order `handle_timeout` processes them.
    pub(crate) const VALUES: [Self; 10] = [
        Self::Attempt,
        Self::Receive,
        Self::Ping,
        Self::Backoff,
        Self::Request,
        Self::ReadOnlyProbe,
        Self::Close,
        Self::LocalExpiry,
        Self::Batch,
        Self::Rebalance,
    ];
}

/// One optional deadline per [`Timer`].
#[derive(Debug, Default, Clone)]
pub(crate) struct TimerTable {
    data: [Option<Instant>; 10],
}

impl TimerTable {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.data[timer as usize] = Some(at);
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.data[timer as usize]
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.data[timer as usize] = None;
    }

    /// The earliest armed deadline.
    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        self.data.iter().flatten().min().copied()
    }

    /// Whether `timer` is armed and due at `now`.
    pub(crate) fn is_expired(&self, timer: Timer, now: Instant) -> bool {
        self.data[timer as usize].is_some_and(|at| at <= now)
    }
}

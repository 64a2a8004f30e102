//! # zk-session
//!
//! The ZooKeeper session engine: host failover and session re-establishment, generic over
//! any transport.
//!
//! It is split in two crates, like quinn-proto and quinn:
//!
//! - [`zk_session_core`] (re-exported here whole): a pure state machine ([`Session`]) that
//!   takes bytes, connection events and `Instant`s and returns actions. It never reads the
//!   clock or touches a socket, so its whole failover logic runs deterministically in
//!   simulated time (see `zk-session-core`'s `tests/sim.rs` and its `testing` harness) and under a fuzzer.
//! - [`driver`] (this crate): a thin tokio layer that runs the core over any
//!   [`zk_transport::Connector`], resolving names on every attempt, plus what a driver supplies
//!   from outside: a fresh RNG seed per session ([`fresh_seed`]) and the process-wide
//!   [`SharedHosts`] ([`global_shared_hosts`]).
//!
//! ## Timing, all derived from the negotiated session timeout `T`
//!
//! | what | default | Java client |
//! |---|---|---|
//! | silence that means a server is gone | `T/3` | `2T/3` |
//! | ping when nothing was sent for | `T/9` | `T/3 − 1 s` |
//! | per-attempt cap (TCP + TLS + handshake) | `T/6`, 100 ms..2 s, doubling per failed pass, never beyond the session's remaining lifetime | `T/N` |
//! | delay before reconnecting after a crash | none | random 0–1 s |
//! | servers electing a leader (accept, then close) | a few planned probes: first after 200–250 ms, then 100 ms apart growing by half; once elections were seen, a short train around the learned end | 1 s per pass |
//! | between passes, servers down | jittered 10 ms → 1 s | 1 s |
//! | local expiry with no server reachable | `4T/3` after last contact | `4T/3` (3.9.3+) |
//!
//! An opt-in adaptive detector ([`config::AdaptiveDetector`]) learns the connection's
//! response times from pings and declares a frozen server within about a second whatever `T`
//! is.
//!
//! ## Requests across a failover
//!
//! Reads whose answer was lost are re-sent on the next connection (they are idempotent);
//! writes fail with [`RequestError::ConnectionLoss`] with the outcome unknown — never
//! silently replayed. Requests submitted while disconnected wait for the reconnect until
//! their deadline or the end of the session. After each handshake the application's
//! [`Preamble`] (auth, `SetWatches`) is sent before any request, pipelined with the
//! ConnectRequest.

#![forbid(unsafe_code)]

pub mod driver;

use std::sync::{Arc, OnceLock};

pub use zk_session_core::{
    Action, AdaptiveDetector, Backoff, Candidate, ConnId, Counters, ElectionEstimate,
    ElectionPacing, ExpiredBy, Fraction, HostFailure, HostId, HostProvider, HostStats, HostsError,
    Idempotence, Output, Preamble, PreamblePacket, Rebalance, Reply, Request, RequestError,
    RequestId, SavedSession, Session, SessionConfig, SessionEvent, SessionState, SharedHosts,
    StateChange, StaticHostProvider, Target, Timing, config, core, host, pacing, rng, sasl, shared,
    types,
};

/// A different seed for every call, in every process, so that many clients spread over the
/// hosts and jitter apart instead of moving as a herd: the clock, the process id and a
/// counter, mixed. Put it in [`SessionConfig::rng_seed`] before [`Session::new`] (`zk-client`
/// does); a simulation sets a fixed seed instead.
#[must_use]
pub fn fresh_seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| {
            u64::try_from(d.as_nanos() & u128::from(u64::MAX)).unwrap_or(0)
        });
    let mut rng = rng::Rng::new(nanos ^ u64::from(std::process::id()).rotate_left(32));
    rng.next_u64() ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The process-wide [`SharedHosts`] that `zk-client` gives every session: what the sessions of
/// this process learn about servers and elections, shared.
#[must_use]
pub fn global_shared_hosts() -> Arc<SharedHosts> {
    static GLOBAL: OnceLock<Arc<SharedHosts>> = OnceLock::new();
    Arc::clone(GLOBAL.get_or_init(|| Arc::new(SharedHosts::default())))
}

/// A configuration with the given requested session timeout and a fresh RNG seed (see
/// [`fresh_seed`]).
#[must_use]
pub fn config_with_timeout(session_timeout: std::time::Duration) -> SessionConfig {
    let mut cfg = SessionConfig::with_timeout(session_timeout);
    cfg.rng_seed = Some(fresh_seed());
    cfg
}

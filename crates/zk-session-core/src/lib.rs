//! # zk-session-core
//!
//! The ZooKeeper session engine as a pure state machine, in the manner of quinn-proto: host
//! failover, session re-establishment, liveness and reconnect pacing. It takes bytes,
//! connection events and `Instant`s and returns actions; it never reads the clock, opens a
//! socket, spawns a task or reaches process-wide state it was not given. Its normal
//! dependencies are `bytes`, `thiserror`, `tracing` and the pure protocol crates
//! (`zk-connstr`, `zk-proto`) — `cargo tree -p zk-session-core -e normal` shows no async
//! runtime, TLS or socket crate.
//!
//! - [`Session`] ([`core`]): the state machine and how to drive it.
//! - [`host`]: which server to try next ([`HostProvider`], [`StaticHostProvider`]).
//! - [`pacing`]: when the next attempt starts — passes, backoff, and waiting out leader
//!   elections with a few planned probes that fleets of clients can afford.
//! - [`shared`]: what the sessions of one process learn together ([`SharedHosts`]), passed in
//!   through [`SessionConfig::shared`].
//! - [`config`], [`types`], [`rng`]: configuration, inputs and outputs, the seedable RNG.
//!
//! `zk-session` runs it over any transport with tokio; `zk-client` builds the ZooKeeper API on
//! that. The randomness comes from [`SessionConfig::rng_seed`]; a driver sets a fresh seed per
//! session (see `zk_session::fresh_seed`), a simulation a fixed one.
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

pub mod config;
pub mod core;
mod detector;
pub mod host;
pub mod pacing;
pub mod rng;
pub mod sasl;
pub mod shared;
pub mod telemetry;
#[cfg(any(fuzzing, feature = "testing"))]
pub mod testing;
mod timer;
pub mod types;

pub use crate::config::{
    AdaptiveDetector, Backoff, ElectionPacing, Fraction, SavedSession, SessionConfig, Timing,
};
pub use crate::core::{Action, HostsError, Output, Preamble, PreamblePacket, Session, Target};
pub use crate::host::{
    Candidate, HostFailure, HostId, HostProvider, HostStats, Rebalance, StaticHostProvider,
};
pub use crate::pacing::{ElectionEstimate, ElectionSeen};
pub use crate::sasl::{DigestMd5, SaslClient, SaslError, SaslMechanism, SaslStep, Secret};
pub use crate::shared::SharedHosts;
pub use crate::types::{
    ConnId, Counters, ExpiredBy, Idempotence, Reply, Request, RequestError, RequestId,
    SessionEvent, SessionState, StateChange,
};

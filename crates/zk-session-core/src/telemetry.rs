//! What the engine tells operators: metrics through the [`metrics`](https://docs.rs/metrics)
//! facade (cargo feature `metrics`; without it every function here is empty and inlined
//! away) and `tracing` spans that explain a pause.
//!
//! The core records where it decides: an attempt's outcome where it ends, a pause where the
//! session is back. The facade is pure (no I/O, no clock): a recorder the application installs
//! (for example `metrics-exporter-prometheus`) does the rest. Names follow Prometheus
//! conventions; labels are low-cardinality — a server address, an outcome, a cause — never a
//! path or a session id. The full table is in `docs/metrics.md`.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `zk_client_connection_attempts_total` | counter | `server`, `outcome` |
//! | `zk_client_handshake_seconds` | histogram | `server` |
//! | `zk_client_connection_losses_total` | counter | `server`, `cause` |
//! | `zk_client_detector_trips_total` | counter | `server` |
//! | `zk_client_reconnects_total` | counter | `moved` (`true`: another server) |
//! | `zk_client_failover_pause_seconds` | histogram | — |
//! | `zk_client_requests_resent_total` | counter | — |
//! | `zk_client_writes_outcome_unknown_total` | counter | — |
//! | `zk_client_election_probes_total` | counter | — |
//! | `zk_client_elections_waited_total` | counter | — |
//! | `zk_client_sessions` | gauge | `state` (sessions of the process in each live state) |
//! | `zk_client_sessions_ended_total` | counter | `reason` (`expired_by_server`, `expired_locally`, `closed`, `auth_failed`, `taken_over`) |

use std::net::SocketAddr;
use std::time::Duration;

use crate::host::HostFailure;
use crate::types::{ExpiredBy, SessionState};

/// A connection attempt's outcome as a label value.
#[must_use]
pub fn outcome_label(failure: Option<HostFailure>) -> &'static str {
    match failure {
        None => "ok",
        Some(HostFailure::Refused) => "refused",
        Some(HostFailure::TimedOut) => "timed_out",
        Some(HostFailure::ClosedInHandshake) => "closed_in_handshake",
        Some(HostFailure::Unresolvable) => "unresolvable",
        Some(HostFailure::Tls) => "tls",
        Some(HostFailure::Io) => "io",
        Some(HostFailure::Protocol) => "protocol",
        Some(HostFailure::ConnectionLost) => "connection_lost",
        Some(HostFailure::Frozen) => "silent",
        Some(HostFailure::ReadOnly) => "read_only",
        Some(HostFailure::Auth) => "sasl",
    }
}

/// A session state as a label value.
#[must_use]
pub fn state_label(state: SessionState) -> &'static str {
    match state {
        SessionState::Connecting => "connecting",
        SessionState::Connected => "connected",
        SessionState::ConnectedReadOnly => "connected_read_only",
        SessionState::Disconnected => "disconnected",
        SessionState::Expired {
            by: ExpiredBy::Server,
        } => "expired_by_server",
        SessionState::Expired { .. } => "expired_locally",
        SessionState::AuthFailed => "auth_failed",
        SessionState::Closed => "closed",
        SessionState::TakenOver => "taken_over",
    }
}

#[cfg(feature = "metrics")]
mod imp {
    use super::{Duration, HostFailure, SessionState, SocketAddr, outcome_label, state_label};

    pub(crate) fn attempt(server: Option<SocketAddr>, failure: Option<HostFailure>) {
        let server = server.map_or_else(|| "unresolved".to_owned(), |a| a.to_string());
        metrics::counter!(
            "zk_client_connection_attempts_total",
            "server" => server,
            "outcome" => outcome_label(failure)
        )
        .increment(1);
    }

    pub(crate) fn handshake(server: SocketAddr, took: Duration) {
        metrics::histogram!("zk_client_handshake_seconds", "server" => server.to_string())
            .record(took.as_secs_f64());
    }

    pub(crate) fn connection_lost(server: Option<SocketAddr>, cause: HostFailure) {
        let server = server.map_or_else(String::new, |a| a.to_string());
        metrics::counter!(
            "zk_client_connection_losses_total",
            "server" => server,
            "cause" => outcome_label(Some(cause))
        )
        .increment(1);
    }

    pub(crate) fn detector_trip(server: Option<SocketAddr>) {
        let server = server.map_or_else(String::new, |a| a.to_string());
        metrics::counter!("zk_client_detector_trips_total", "server" => server).increment(1);
    }

    pub(crate) fn reestablished(pause: Duration, moved: bool) {
        metrics::counter!(
            "zk_client_reconnects_total",
            "moved" => if moved { "true" } else { "false" }
        )
        .increment(1);
        metrics::histogram!("zk_client_failover_pause_seconds").record(pause.as_secs_f64());
    }

    pub(crate) fn resent(n: u64) {
        if n > 0 {
            metrics::counter!("zk_client_requests_resent_total").increment(n);
        }
    }

    pub(crate) fn outcome_unknown() {
        metrics::counter!("zk_client_writes_outcome_unknown_total").increment(1);
    }

    pub(crate) fn election_probe() {
        metrics::counter!("zk_client_election_probes_total").increment(1);
    }

    pub(crate) fn election_waited() {
        metrics::counter!("zk_client_elections_waited_total").increment(1);
    }

    /// A session of the process moved from `from` (`None`: it was just created) to `to`.
    pub(crate) fn state(from: Option<SessionState>, to: Option<SessionState>) {
        if let Some(from) = from.filter(|s| !s.is_terminal()) {
            metrics::gauge!("zk_client_sessions", "state" => state_label(from)).decrement(1.0);
        }
        match to {
            Some(to) if to.is_terminal() => {
                metrics::counter!("zk_client_sessions_ended_total", "reason" => state_label(to))
                    .increment(1);
            }
            Some(to) => {
                metrics::gauge!("zk_client_sessions", "state" => state_label(to)).increment(1.0);
            }
            None => {}
        }
    }
}

#[cfg(not(feature = "metrics"))]
#[allow(
    clippy::missing_const_for_fn,
    clippy::needless_pass_by_value,
    reason = "the same signatures as with the `metrics` feature, compiled to nothing"
)]
mod imp {
    use super::{Duration, HostFailure, SessionState, SocketAddr};

    #[inline]
    pub(crate) fn attempt(_: Option<SocketAddr>, _: Option<HostFailure>) {}
    #[inline]
    pub(crate) fn handshake(_: SocketAddr, _: Duration) {}
    #[inline]
    pub(crate) fn connection_lost(_: Option<SocketAddr>, _: HostFailure) {}
    #[inline]
    pub(crate) fn detector_trip(_: Option<SocketAddr>) {}
    #[inline]
    pub(crate) fn reestablished(_: Duration, _: bool) {}
    #[inline]
    pub(crate) fn resent(_: u64) {}
    #[inline]
    pub(crate) fn outcome_unknown() {}
    #[inline]
    pub(crate) fn election_probe() {}
    #[inline]
    pub(crate) fn election_waited() {}
    #[inline]
    pub(crate) fn state(_: Option<SessionState>, _: Option<SessionState>) {}
}

pub(crate) use imp::*;

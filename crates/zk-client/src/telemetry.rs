//! The client layer's metrics (cargo feature `metrics`; empty without it): what the watch
//! registry does across reconnects. The session engine's own metrics are in
//! `zk_session_core::telemetry`; the whole table is in `docs/metrics.md`.
//!
//! | metric | kind |
//! |---|---|
//! | `zk_client_set_watches_packets_total` | counter: `SetWatches`/`SetWatches2` packets written in handshake preambles |
//! | `zk_client_watches_reregistered_total` | counter: watch paths re-registered, summed over handshakes |
//! | `zk_client_watch_resyncs_total` | counter: `Resync` events delivered to persistent watchers |

#[cfg(feature = "metrics")]
pub(crate) fn set_watches(packets: u64, watches: u64) {
    if packets > 0 {
        metrics::counter!("zk_client_set_watches_packets_total").increment(packets);
    }
    if watches > 0 {
        metrics::counter!("zk_client_watches_reregistered_total").increment(watches);
    }
}

#[cfg(feature = "metrics")]
pub(crate) fn resync() {
    metrics::counter!("zk_client_watch_resyncs_total").increment(1);
}

#[cfg(not(feature = "metrics"))]
#[inline]
pub(crate) const fn set_watches(_: u64, _: u64) {}

#[cfg(not(feature = "metrics"))]
#[inline]
pub(crate) const fn resync() {}

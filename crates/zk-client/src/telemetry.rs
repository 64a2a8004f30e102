//! The client layer's metrics (cargo feature `metrics`; empty without it): what the watch
//! registry does across reconnects. The session engine's own metrics are in
//! `zk_session_core::telemetry`; the whole table is in `docs/metrics.md`.
//!
//! | metric | kind |
//! |---|---|
//! | `zk_client_set_watches_packets_total` | counter: `SetWatches`/`SetWatches2` packets written in handshake preambles |
//! | `zk_client_watches_reregistered_total` | counter: watch paths re-registered, summed over handshakes |
//! | `zk_client_watch_resyncs_total` | counter: `Resync` events delivered to persistent watchers |
//! | `zk_client_host_list_changes_total` | counter, label `source`: host-list changes applied (`config`: the ensemble's dynamic configuration; `api`: `update_hosts`) |
//! | `zk_client_configs_rejected_total` | counter: ensemble configurations that could not be used (the host list was kept) |
//! | `zk_client_writes_resolved_total` | counter, label `applied`: known-outcome writes whose answer was lost, resolved by the servers' state (`true`: it had been applied; `false`: sent again) |

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

#[cfg(feature = "metrics")]
pub(crate) fn write_resolved(applied: bool) {
    metrics::counter!(
        "zk_client_writes_resolved_total",
        "applied" => if applied { "true" } else { "false" }
    )
    .increment(1);
}

#[cfg(not(feature = "metrics"))]
#[inline]
pub(crate) const fn write_resolved(_: bool) {}

#[cfg(feature = "metrics")]
pub(crate) fn host_list_changed(from_config: bool) {
    metrics::counter!(
        "zk_client_host_list_changes_total",
        "source" => if from_config { "config" } else { "api" }
    )
    .increment(1);
}

#[cfg(not(feature = "metrics"))]
#[inline]
pub(crate) const fn host_list_changed(_: bool) {}

#[cfg(feature = "metrics")]
pub(crate) fn config_rejected() {
    metrics::counter!("zk_client_configs_rejected_total").increment(1);
}

#[cfg(not(feature = "metrics"))]
#[inline]
pub(crate) const fn config_rejected() {}

#[cfg(not(feature = "metrics"))]
#[inline]
pub(crate) const fn set_watches(_: u64, _: u64) {}

#[cfg(not(feature = "metrics"))]
#[inline]
pub(crate) const fn resync() {}

//! `--metrics`: the client's failover metrics (docs/metrics.md) recorded by a Prometheus
//! recorder during the run and printed after the summary, as a scrape would show them.
//! Needs the `metrics` feature (`bash scripts/demo.sh --metrics` builds with it).

#[cfg(feature = "metrics")]
mod imp {
    use std::sync::OnceLock;

    use zk_failover::prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

    use super::super::UsageError;

    /// The process's recorder, installed once (the demo test may run it more than once).
    pub(crate) struct Metrics(&'static PrometheusHandle);

    pub(crate) fn start() -> Result<Metrics, UsageError> {
        static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
        HANDLE
            .get_or_init(|| {
                PrometheusBuilder::new()
                    .set_buckets_for_metric(
                        Matcher::Suffix("_seconds".to_owned()),
                        &[
                            0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                        ],
                    )
                    .ok()?
                    .install_recorder()
                    .ok()
            })
            .as_ref()
            .map(Metrics)
            .ok_or(UsageError::Conflict(
                "--metrics: another metrics recorder is already installed",
            ))
    }

    impl Metrics {
        /// The client's series in Prometheus' text format, histogram buckets left out.
        pub(crate) fn render(&self) -> String {
            self.0
                .render()
                .lines()
                .filter(|l| l.starts_with("zk_client_") && !l.contains("_bucket{"))
                .map(|l| format!("{l}\n"))
                .collect()
        }
    }
}

#[cfg(not(feature = "metrics"))]
mod imp {
    use super::super::UsageError;

    /// Without the feature there is nothing to record.
    pub(crate) struct Metrics;

    pub(crate) const fn start() -> Result<Metrics, UsageError> {
        Err(UsageError::Conflict(
            "--metrics needs the `metrics` feature: run `bash scripts/demo.sh --metrics` \
             (or cargo run --release --features metrics --example failover_demo -- --metrics)",
        ))
    }

    impl Metrics {
        pub(crate) fn render(&self) -> String {
            String::new()
        }
    }
}

pub(crate) use imp::{Metrics, start};

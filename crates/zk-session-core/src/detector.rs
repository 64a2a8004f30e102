//! Round-trip estimation for the adaptive frozen-server detector.
//!
//! The estimator is the one TCP uses for its retransmission timer (RFC 6298): a smoothed
//! round-trip time and a smoothed mean deviation, fed with ping round trips. The detector
//! declares a server frozen when an answer is overdue by
//! `max(min_threshold, srtt + deviations × rttvar)`.

use std::time::Duration;

use crate::config::AdaptiveDetector;

/// Smoothed RTT and deviation.
#[derive(Debug, Clone, Default)]
pub(crate) struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    samples: u64,
}

impl RttEstimator {
    /// Adds one round-trip sample.
    pub(crate) fn sample(&mut self, rtt: Duration) {
        self.samples += 1;
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let err = srtt.abs_diff(rtt);
                self.rttvar = (self.rttvar * 3 + err) / 4;
                self.srtt = Some((srtt * 7 + rtt) / 8);
            }
        }
    }

    /// The smoothed RTT, if any sample was taken.
    pub(crate) fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// The smoothed mean deviation (zero before the first sample).
    pub(crate) fn rttvar(&self) -> Duration {
        self.rttvar
    }

    /// How overdue an answer may be before the server is declared frozen.
    pub(crate) fn threshold(&self, cfg: &AdaptiveDetector) -> Duration {
        let learned = self.srtt.map_or(Duration::ZERO, |s| {
            s + self.rttvar.saturating_mul(cfg.deviations)
        });
        learned.max(cfg.min_threshold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_has_a_floor_and_learns_slow_links() {
        let cfg = AdaptiveDetector::default();
        let mut e = RttEstimator::default();
        assert_eq!(e.threshold(&cfg), cfg.min_threshold);
        for _ in 0..50 {
            e.sample(Duration::from_micros(300));
        }
        assert_eq!(e.threshold(&cfg), cfg.min_threshold);
        let mut slow = RttEstimator::default();
        for i in 0..50 {
            slow.sample(Duration::from_millis(if i % 2 == 0 { 100 } else { 300 }));
        }
        assert!(slow.threshold(&cfg) > cfg.min_threshold);
        assert!(slow.srtt().is_some());
    }
}

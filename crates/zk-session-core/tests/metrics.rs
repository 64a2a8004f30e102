//! The engine's metrics (feature `metrics`) in the simulated ensemble, through a small
//! in-test recorder: what a crash, a freeze, an election, a lost write and an expiry record,
//! and with which labels. Run with `cargo test -p zk-session-core --features metrics`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use zk_proto::OpCode;
use zk_session_core::testing::{Mode, Sim};
use zk_session_core::{Request, SessionConfig, SessionState};

#[derive(Default)]
struct Samples(Mutex<Vec<f64>>);

impl HistogramFn for Samples {
    fn record(&self, value: f64) {
        self.0.lock().unwrap().push(value);
    }
}

/// Every series by its name and sorted labels, `name{k=v,…}`.
#[derive(Default)]
struct Rec {
    counters: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
    gauges: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
    histograms: Mutex<BTreeMap<String, Arc<Samples>>>,
}

fn series(key: &Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

/// The series' cell in `map`, created on first use.
fn entry<T: Default>(map: &Mutex<BTreeMap<String, Arc<T>>>, key: &Key) -> Arc<T> {
    Arc::clone(map.lock().unwrap().entry(series(key)).or_default())
}

impl Recorder for Rec {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(entry(&self.counters, key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(entry(&self.gauges, key))
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(entry(&self.histograms, key))
    }
}

impl Rec {
    fn counter(&self, series: &str) -> u64 {
        self.counters
            .lock()
            .unwrap()
            .get(series)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// The sum of the counters whose series starts with `prefix`.
    fn counters_like(&self, prefix: &str) -> u64 {
        self.counters
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, c)| c.load(Ordering::Relaxed))
            .sum()
    }

    fn gauge(&self, series: &str) -> f64 {
        self.gauges
            .lock()
            .unwrap()
            .get(series)
            .map_or(0.0, |g| f64::from_bits(g.load(Ordering::Relaxed)))
    }

    fn samples(&self, series: &str) -> Vec<f64> {
        self.histograms
            .lock()
            .unwrap()
            .get(series)
            .map(|h| h.0.lock().unwrap().clone())
            .unwrap_or_default()
    }

    fn dump(&self) -> String {
        format!(
            "{:#?}\n{:#?}",
            self.counters.lock().unwrap().keys().collect::<Vec<_>>(),
            self.gauges.lock().unwrap().keys().collect::<Vec<_>>()
        )
    }
}

fn cfg() -> SessionConfig {
    let mut c = SessionConfig::with_timeout(Duration::from_secs(6));
    c.rng_seed = Some(0x5eed_2181);
    c
}

fn connected(sim: &mut Sim) -> usize {
    sim.connect_now()
}

fn back(sim: &mut Sim, reconnects: u64) {
    assert!(
        sim.run_until_cond(Duration::from_secs(10), |s| s.core.counters().reconnects
            >= reconnects
            && s.state() == SessionState::Connected),
        "not back: {:?}",
        sim.states
    );
}

#[test]
fn a_crash_a_freeze_an_election_and_an_expiry_are_recorded() {
    let rec = Rec::default();
    metrics::with_local_recorder(&rec, || {
        let mut sim = Sim::new(3, cfg());
        let first = connected(&mut sim);
        let addrs: Vec<String> = sim.hosts.iter().map(|h| h.addr.to_string()).collect();
        let a = |h: usize| addrs[h].clone();
        let first_addr = a(first);
        assert_eq!(rec.gauge("zk_client_sessions{state=connected}"), 1.0);
        assert_eq!(
            rec.counter(&format!(
                "zk_client_connection_attempts_total{{outcome=ok,server={first_addr}}}"
            )),
            1
        );

        // kill −9 with a read and a write in flight.
        sim.run_for(Duration::from_secs(1));
        sim.set_mode(first, Mode::Frozen);
        sim.submit(Request::read(
            OpCode::GetData,
            Bytes::from_static(b"\0\0\0\x02/a\0"),
        ));
        sim.submit(Request::write(OpCode::SetData, Bytes::from_static(b"x")));
        sim.crash(first);
        back(&mut sim, 1);
        assert_eq!(
            rec.counter(&format!(
                "zk_client_connection_losses_total{{cause=connection_lost,server={first_addr}}}"
            )),
            1,
            "{}",
            rec.dump()
        );
        assert_eq!(rec.counter("zk_client_requests_resent_total{}"), 1);
        assert_eq!(rec.counter("zk_client_writes_outcome_unknown_total{}"), 1);
        assert_eq!(rec.counter("zk_client_reconnects_total{moved=true}"), 1);

        // SIGSTOP: the detector's trip, on that server's label.
        let second = sim.connected_host().unwrap();
        let second_addr = a(second);
        sim.set_mode(second, Mode::Frozen);
        back(&mut sim, 2);
        assert_eq!(
            rec.counter(&format!(
                "zk_client_detector_trips_total{{server={second_addr}}}"
            )),
            1
        );
        assert_eq!(
            rec.counter(&format!(
                "zk_client_connection_losses_total{{cause=silent,server={second_addr}}}"
            )),
            1
        );
        sim.set_mode(second, Mode::Up);
        sim.set_mode(first, Mode::Up);

        // An election: probes planned and the election learned.
        sim.run_for(Duration::from_secs(1));
        for h in 0..3 {
            sim.elect(h);
        }
        sim.run_for(Duration::from_millis(400));
        for h in 0..3 {
            sim.set_mode(h, Mode::Up);
        }
        back(&mut sim, 3);
        assert!(rec.counter("zk_client_election_probes_total{}") >= 1);
        assert_eq!(rec.counter("zk_client_elections_waited_total{}"), 1);
        assert!(
            rec.counters_like("zk_client_connection_attempts_total{outcome=closed_in_handshake")
                >= 1
        );

        let pauses = rec.samples("zk_client_failover_pause_seconds{}");
        assert_eq!(pauses.len(), 3, "{pauses:?}");
        assert!(pauses.iter().all(|p| *p >= 0.0 && *p < 1.0), "{pauses:?}");
        assert_eq!(
            rec.counters_like("zk_client_connection_attempts_total{outcome=ok"),
            4
        );
        let handshakes: usize = rec
            .histograms
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.starts_with("zk_client_handshake_seconds{server="))
            .map(|(_, h)| h.0.lock().unwrap().len())
            .sum();
        assert_eq!(handshakes, 4);
        assert_eq!(rec.gauge("zk_client_sessions{state=connected}"), 1.0);
        assert_eq!(rec.gauge("zk_client_sessions{state=disconnected}"), 0.0);

        // Every server gone beyond the timeout: expired locally, the gauge empties.
        for h in 0..3 {
            sim.crash(h);
        }
        sim.run_for(Duration::from_secs(20));
        assert!(sim.state().is_terminal(), "{:?}", sim.state());
        assert_eq!(
            rec.counter("zk_client_sessions_ended_total{reason=expired_locally}"),
            1
        );
        for state in ["connecting", "connected", "disconnected"] {
            assert_eq!(
                rec.gauge(&format!("zk_client_sessions{{state={state}}}")),
                0.0,
                "{state}"
            );
        }
    });
}

#[test]
fn a_session_dropped_before_it_ended_leaves_the_gauge() {
    let rec = Rec::default();
    metrics::with_local_recorder(&rec, || {
        let mut sim = Sim::new(3, cfg());
        connected(&mut sim);
        assert_eq!(rec.gauge("zk_client_sessions{state=connected}"), 1.0);
        drop(sim);
        assert_eq!(rec.gauge("zk_client_sessions{state=connected}"), 0.0);
    });
}

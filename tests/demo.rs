//! Tried as a new user would: runs the failover demo (`examples/failover_demo.rs`, whose logic
//! lives in `examples/demo/`) against a real 3-node ZooKeeper ensemble for a short time,
//! non-interactively, and checks its summary: every fault injected, the session kept, no
//! failed read, every watch event delivered or flagged by a `Resync`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

#[path = "../examples/demo/mod.rs"]
#[allow(dead_code, reason = "the test drives only part of the demo's API")]
mod demo;

use std::path::PathBuf;
use std::time::Duration;

/// Long enough for all four fault cycles (6 s each) plus 2 s of steady state at both ends.
const RUN: Duration = Duration::from_secs(28);

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn demo_keeps_the_session_through_every_fault() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let svg = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("failover-demo-test.svg");
    let mut cfg = demo::Config::new();
    cfg.duration = RUN;
    cfg.output = demo::OutputMode::Quiet;
    cfg.stop_on_ctrl_c = false;
    cfg.svg = Some(svg.clone());
    // With the `metrics` feature (scripts/test-all.sh) the run records its metrics too.
    cfg.metrics = cfg!(feature = "metrics");

    let report = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(180), demo::run(cfg)).await })
        .expect("the demo did not finish in time")
        .expect("the demo could not run");
    // The summary a user would have seen (shown with --nocapture, and on failure).
    println!("{}", report.render(false));

    assert_eq!(report.faults(), 4, "every scheduled fault was injected");
    assert!(report.session_kept(), "same session, never expired");
    assert!(report.ephemeral_at_end && report.ephemeral_missing == 0);
    assert_eq!(report.reads_failed, 0, "reads are re-sent, never failed");
    assert_eq!(
        report.writes_failed, 0,
        "writes only fail by connection loss"
    );
    // Writes with a known outcome: none stays unknown, and every one reported applied
    // changed the counter exactly once.
    assert_eq!(report.writes_unknown, 0, "writes of unknown outcome");
    assert_eq!(
        report.changes,
        Some(report.writes_ok),
        "applied writes vs changes"
    );
    assert!(
        report.watch_covered(),
        "watch events {} vs changes {:?} with {} Resync",
        report.watch_events,
        report.changes,
        report.resyncs
    );
    // Every failover finished well within the session timeout.
    let pauses = report.pauses_ms();
    assert!(!pauses.is_empty());
    let limit = report.negotiated.as_secs_f64() * 1000.0;
    assert!(
        pauses.iter().all(|&p| p < limit),
        "pauses {pauses:?} vs session timeout {limit} ms"
    );
    assert!(report.problems().is_empty(), "{:?}", report.problems());

    if cfg!(feature = "metrics") {
        let m = report.metrics.as_deref().unwrap_or_default();
        for series in [
            "zk_client_reconnects_total{moved=\"true\"}",
            "zk_client_failover_pause_seconds_count",
            "zk_client_detector_trips_total{",
            "zk_client_connection_losses_total{",
            "zk_client_set_watches_packets_total",
        ] {
            assert!(
                m.contains(series),
                "{series} missing from the metrics:\n{m}"
            );
        }
    }

    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(chart.starts_with("<svg") && chart.trim_end().ends_with("</svg>"));
    assert!(chart.contains("SIGKILL") && chart.contains("SIGSTOP"));
}

#[test]
fn command_line() {
    let args = |a: &[&str]| demo::Config::from_args(a.iter().map(|s| (*s).to_owned()));
    let cfg = args(&["--duration", "12", "--quiet", "--no-faults", "--tls"]).unwrap();
    assert_eq!(cfg.duration, Duration::from_secs(12));
    assert_eq!(cfg.output, demo::OutputMode::Quiet);
    assert!(!cfg.faults && cfg.tls && cfg.connect.is_none());
    let cfg = args(&["--connect", "127.0.0.1:2181/app"]).unwrap();
    assert_eq!(cfg.connect.as_deref(), Some("127.0.0.1:2181/app"));
    assert!(matches!(
        args(&["--duration", "0"]),
        Err(demo::UsageError::Invalid { .. })
    ));
    assert!(matches!(
        args(&["--duration"]),
        Err(demo::UsageError::MissingValue("--duration"))
    ));
    assert!(matches!(
        args(&["--bogus"]),
        Err(demo::UsageError::Unknown(_))
    ));
    assert!(matches!(
        args(&["--ca", "ca.pem"]),
        Err(demo::UsageError::Conflict(_))
    ));
    assert!(matches!(args(&["-h"]), Err(demo::UsageError::Help)));
}

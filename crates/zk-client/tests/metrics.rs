//! Failover metrics with real parts: a real Prometheus exporter (`metrics-exporter-prometheus`,
//! serving HTTP), a real 3-node ZooKeeper 3.8 ensemble, a kill −9 and a SIGSTOP of the
//! session's server, and the exporter scraped over HTTP the way Prometheus does. Needs the
//! `metrics` feature (`cargo test -p zk-client --features metrics`; scripts/test-all.sh runs it).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod common;

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use common::{ensemble_with, fired, run};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zk_client::{Client, CreateMode, EventType, SessionState, StaticHostProvider, acl};
use zk_connstr::HostSpec;
use zk_testkit::Ensemble;

static ENS: OnceLock<Ensemble> = OnceLock::new();
const WAIT: Duration = Duration::from_secs(30);

/// Starts the exporter's HTTP listener on a free loopback port; returns its address.
fn install_exporter() -> SocketAddr {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".to_owned()),
            &[
                0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ],
        )
        .unwrap()
        .install()
        .unwrap();
    addr
}

/// One scrape, as Prometheus does it: `GET /metrics` over HTTP/1.1.
async fn scrape(addr: SocketAddr) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(mut s) = tokio::net::TcpStream::connect(addr).await {
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            assert!(out.starts_with("HTTP/1.1 200"), "{out}");
            return out;
        }
        assert!(tokio::time::Instant::now() < deadline, "exporter not up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The sum of the samples of `name` whose labels include every `k="v"` of `labels`.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            (metric == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
            .then(|| v.parse::<f64>().ok())
            .flatten()
        })
        .sum()
}

async fn back_connected(c: &Client, reconnects: u64) {
    tokio::time::timeout(WAIT, async {
        while c.counters().session.reconnects < reconnects || c.state() != SessionState::Connected {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("session back");
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn prometheus_scrape_shows_a_kill_and_a_freeze() {
    let ens = ensemble_with(&ENS, || Ensemble::builder().nodes(3));
    run(Duration::from_secs(300), async move {
        let exporter = install_exporter();
        let leader = ens.wait_for_leader(WAIT).await.unwrap();
        let followers = ens.followers().await;
        let (f1, f2) = (followers[0], followers[1]);
        let addr = |i: usize| ens.node(i).client_addr();
        // Followers first, so neither fault costs an election.
        let order = [addr(f1), addr(f2), addr(leader)];
        let hosts: Vec<HostSpec> = order
            .iter()
            .map(|a| HostSpec::parse(&a.to_string()).unwrap())
            .collect();
        let cs = order
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let c = Client::builder(&cs)
            .session_timeout(Duration::from_secs(4))
            .host_provider(Box::new(StaticHostProvider::in_order(hosts)))
            .connect_timeout(WAIT)
            .connect()
            .await
            .unwrap();
        let id = c.session_id();
        assert_eq!(c.server(), Some(addr(f1)));
        c.create("/metrics", "0", &acl::open_unsafe(), CreateMode::Persistent)
            .await
            .unwrap();
        let (_, _, watch) = c.get_data_watch("/metrics").await.unwrap();

        // kill −9 of the session's server: the transport sees it.
        ens.node(f1).kill().unwrap();
        back_connected(&c, 1).await;
        assert_eq!(c.server(), Some(addr(f2)));
        // Back to three servers before the next fault, or a freeze would cost the quorum.
        ens.node(f1).restart().await.unwrap();
        ens.wait_serving(WAIT).await.unwrap();
        // SIGSTOP of the session's server: only the detector can see it.
        ens.node(f2).freeze();
        back_connected(&c, 2).await;
        assert_ne!(c.server(), Some(addr(f2)));
        ens.node(f2).thaw();
        assert_eq!(c.session_id(), id, "one session throughout");
        c.set_data("/metrics", "1", -1).await.unwrap();
        let ev = fired(watch, WAIT).await;
        assert_eq!(ev.event_type, EventType::NodeDataChanged);

        let text = scrape(exporter).await;
        if std::env::var_os("ZK_METRICS_PRINT").is_some() {
            eprintln!("{text}");
        }
        let f1s = addr(f1).to_string();
        let f2s = addr(f2).to_string();
        let check = |name: &str, labels: &[(&str, &str)], at_least: f64| {
            let v = value(&text, name, labels);
            assert!(
                v >= at_least,
                "{name}{labels:?} = {v}, expected ≥ {at_least}; scrape:\n{text}"
            );
        };
        check("zk_client_reconnects_total", &[("moved", "true")], 2.0);
        check("zk_client_failover_pause_seconds_count", &[], 2.0);
        check(
            "zk_client_failover_pause_seconds_bucket",
            &[("le", "+Inf")],
            2.0,
        );
        check(
            "zk_client_connection_losses_total",
            &[("server", &f1s)],
            1.0,
        );
        check(
            "zk_client_connection_losses_total",
            &[("server", &f2s), ("cause", "silent")],
            1.0,
        );
        check("zk_client_detector_trips_total", &[("server", &f2s)], 1.0);
        check(
            "zk_client_connection_attempts_total",
            &[("server", &f2s), ("outcome", "ok")],
            1.0,
        );
        check(
            "zk_client_connection_attempts_total",
            &[("server", &f1s), ("outcome", "ok")],
            1.0,
        );
        check("zk_client_handshake_seconds_count", &[], 3.0);
        check("zk_client_set_watches_packets_total", &[], 2.0);
        check("zk_client_watches_reregistered_total", &[], 2.0);
        check("zk_client_sessions", &[("state", "connected")], 1.0);
        // The pauses were short: both within the detector's reach (T/3 ≈ 1.3 s) plus a
        // handshake, so every one of them lies in the 2.5 s bucket.
        check(
            "zk_client_failover_pause_seconds_bucket",
            &[("le", "2.5")],
            2.0,
        );
        // No label carries a path or a session id.
        assert!(!text.contains("/metrics\""), "a path in a label");
        assert!(
            !text.contains(&format!("{id:x}")),
            "a session id in a label"
        );

        c.close().await;
        let text = scrape(exporter).await;
        assert!(
            value(
                &text,
                "zk_client_sessions_ended_total",
                &[("reason", "closed")]
            ) >= 1.0,
            "{text}"
        );
        assert!(
            value(&text, "zk_client_sessions", &[("state", "connected")]) < 1.0,
            "{text}"
        );
        ens.heal().await.unwrap();
    });
}

//! Failover metrics for a real Prometheus: starts a local 3-node ensemble (or uses
//! `ZK_CONNECT`), serves the client's metrics on `http://127.0.0.1:9464/metrics` (or
//! `METRICS_ADDR`), and keeps a session busy while you kill and freeze servers (the ensemble's
//! PIDs are printed) and watch the counters move.
//!
//! ```text
//! cargo run --example metrics_prometheus --features metrics
//! curl -s localhost:9464/metrics | grep zk_client_
//! ```
//!
//! `--once` makes one failover itself (kill −9 of the session's server), prints the scrape and
//! exits. The metric table is in docs/metrics.md.

use std::net::SocketAddr;
use std::time::Duration;

use zk_failover::client::acl;
use zk_failover::prometheus::{Matcher, PrometheusBuilder};
use zk_failover::{Client, CreateMode};
use zk_testkit::Ensemble;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let once = std::env::args().any(|a| a == "--once");
    let addr: SocketAddr = std::env::var("METRICS_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:9464".to_owned())
        .parse()?;
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".to_owned()),
            &[
                0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ],
        )?
        .install()?;
    println!("metrics on http://{addr}/metrics");

    let (connect, ens) = Ensemble::from_env_or_start(3).await?;
    for n in ens.iter().flat_map(Ensemble::nodes) {
        println!(
            "server {} at {} (pid {:?})",
            n.index(),
            n.client_addr(),
            n.pid()
        );
    }
    let client = Client::builder(&connect)
        .session_timeout(Duration::from_secs(6))
        .connect()
        .await?;
    println!(
        "session {:#x} on {:?}",
        client.session_id(),
        client.server()
    );
    match client
        .create(
            "/metrics-example",
            "0",
            &acl::open_unsafe(),
            CreateMode::Persistent,
        )
        .await
    {
        Ok(_) | Err(zk_failover::Error::NodeExists) => {}
        Err(e) => return Err(e.into()),
    }

    if once
        && let Some(ens) = &ens
        && let Some(i) = client.server().and_then(|a| ens.node_for_addr(a))
    {
        ens.node(i).kill()?;
        println!("killed server {i}");
    }
    let mut n = 0_u64;
    loop {
        n += 1;
        // Writes keep going through failovers; a failed one is printed and the next tried.
        if let Err(e) = client.set_data("/metrics-example", n.to_string(), -1).await {
            println!("write {n}: {e}");
        }
        // Without a local ensemble nothing is killed: one scrape after a few writes.
        if once && (client.counters().session.reconnects > 0 || (ens.is_none() && n > 10)) {
            let body = scrape(addr).await?;
            for line in body
                .lines()
                .filter(|l| l.starts_with("zk_client_") && !l.contains("_bucket"))
            {
                println!("{line}");
            }
            client.close().await;
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One `GET /metrics` over a plain TCP connection (no HTTP client crate needed).
async fn scrape(addr: SocketAddr) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    Ok(out)
}

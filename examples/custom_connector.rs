//! A custom `Connector`: a wrapper around `TcpConnector` that logs every connection attempt
//! the session engine makes, with its outcome and duration. Kill the server the session is on
//! and watch the engine's failover attempts go through it.
//!
//! The same shape serves a SOCKS/HTTP-CONNECT tunnel, a Unix socket, a connection pool with
//! metrics: open **one** stream to `target.addr` within `timeout`, map failures to the most
//! precise `ConnectError`, never retry other hosts (choosing hosts is the engine's job).
//!
//! ```text
//! cargo run --example custom_connector       # starts a local 3-node ensemble
//! ```

use std::error::Error as StdError;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use zk_failover::Client;
use zk_failover::transport::{BoxStream, ConnectError, Connector, Target, TcpConnector};
use zk_testkit::Ensemble;

/// Logs and counts every attempt, then delegates to an inner connector.
#[derive(Debug)]
struct Logged<C> {
    inner: C,
    started: Instant,
    attempts: AtomicU64,
}

#[async_trait::async_trait]
impl<C: Connector> Connector for Logged<C> {
    async fn connect(&self, target: &Target, timeout: Duration) -> Result<BoxStream, ConnectError> {
        let n = self.attempts.fetch_add(1, Ordering::Relaxed) + 1;
        let t = Instant::now();
        let result = self.inner.connect(target, timeout).await;
        let outcome = match &result {
            Ok(_) => "connected".to_owned(),
            Err(e) => format!("{e} (transient: {})", e.is_transient()),
        };
        println!(
            "  [{:7.3} s] attempt {n}: {target} within {} ms: {outcome} after {} us",
            self.started.elapsed().as_secs_f64(),
            timeout.as_millis(),
            t.elapsed().as_micros()
        );
        result
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn StdError>> {
    let (cs, ensemble) = Ensemble::from_env_or_start(3).await?;

    let connector = Arc::new(Logged {
        inner: TcpConnector::new().keepalive(Some(Duration::from_secs(10))),
        started: Instant::now(),
        attempts: AtomicU64::new(0),
    });
    let zk = Client::builder(&cs)
        .session_timeout(Duration::from_secs(4))
        .connector(connector.clone())
        .connect()
        .await?;
    println!("session {:#x} on {:?}", zk.session_id(), zk.server());

    let Some(ens) = &ensemble else {
        println!("(with ZK_CONNECT: kill the server yourself to see the failover attempts)");
        tokio::time::sleep(Duration::from_secs(30)).await;
        return Ok(());
    };
    let on = zk
        .server()
        .and_then(|a| ens.node_for_addr(a))
        .ok_or("session on an unknown server")?;
    println!("SIGKILL server {} (the session's server)", on + 1);
    ens.node(on).kill()?;
    println!(
        "(\"connected\" is the transport's view: while the survivors elect a new leader they \
         accept TCP and close it before the handshake, and the engine retries every few ms)"
    );
    // Any call waits for the failover; the connector logs the attempts meanwhile.
    let t = Instant::now();
    zk.exists("/").await?;
    println!(
        "session {:#x} back on {:?}; a read waited {} ms; {} connection attempts in all",
        zk.session_id(),
        zk.server(),
        t.elapsed().as_millis(),
        connector.attempts.load(Ordering::Relaxed)
    );
    zk.close().await;
    Ok(())
}

//! Restoring the ensemble between samples (shared by the `failover` and `fleet` targets): thaw
//! frozen nodes, set the fault proxies back to pass, restart dead nodes, wait for a healed
//! ensemble with exactly one leader, and warm every restarted JVM.

use std::net::SocketAddr;
use std::time::Duration;

use zk_client::Client;
use zk_testkit::{Ensemble, EnsembleBuilder};

use super::raw;

/// Handshakes moved onto the node (and away) and reads on it, per restart.
const WARM_HANDSHAKES: usize = 150;
const WARM_READS: usize = 1000;
/// The session timeout of the warm-up client.
const WARM_T: Duration = Duration::from_secs(6);

/// Restores the ensemble: thaw, heal proxies, restart dead nodes, wait until all serve with a
/// single leader, then warm the restarted nodes (`full`: the measurement warm-up, else the
/// smoke one). Returns the nodes restarted.
pub(crate) async fn heal(ens: &Ensemble, full: bool) -> Result<Vec<usize>, String> {
    let restarted = ens.heal().await.map_err(|e| e.to_string())?;
    for i in &restarted {
        warm(ens, *i, full).await?;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(restarted)
}

/// Warms a server's JVM (every server at start, then each one restarted) before the next
/// sample: sessions moved onto it and away again (its revalidation path) and reads of
/// `/probe` on it. Servers in production have been running for a while; without this, a
/// session that fails over to a server restarted seconds earlier measures that JVM's
/// interpreter and class loading (shares of 38-43 ms in an otherwise 2-9 ms distribution, for
/// every client). Done the same way whichever client is next. `full`: the measurement
/// warm-up; otherwise a short one (smoke runs only check that the path works).
pub(crate) async fn warm(ens: &Ensemble, i: usize, full: bool) -> Result<(), String> {
    let addr = ens.node(i).client_addr();
    let others: Vec<SocketAddr> = (0..ens.nodes().len())
        .filter(|j| *j != i)
        .map(|j| ens.node(j).client_addr())
        .collect();
    let (handshakes, reads) = if full {
        (WARM_HANDSHAKES, WARM_READS)
    } else {
        (5, 20)
    };
    let session = raw::new_session(addr, 10_000).await?;
    for k in 0..handshakes {
        raw::reconnect_time(addr, &session, 10_000).await?;
        raw::reconnect_time(others[k % others.len()], &session, 10_000).await?;
    }
    let c = Client::builder(&addr.to_string())
        .session_timeout(WARM_T)
        .connect()
        .await
        .map_err(|e| format!("warm-up client: {e}"))?;
    for _ in 0..reads {
        c.get_data("/probe")
            .await
            .map_err(|e| format!("warm-up read: {e}"))?;
    }
    c.close().await;
    Ok(())
}

/// The benchmarks' 3-node ensemble: tick 200 ms, sessions up to 60 s, no per-client
/// connection limit, a listen backlog of 1,024 (`ZK_BENCH_BACKLOG` overrides it).
pub(crate) fn builder() -> EnsembleBuilder {
    Ensemble::builder()
        .nodes(3)
        .tick_time(Duration::from_millis(200))
        .max_session_timeout(Duration::from_secs(60))
        .config("maxClientCnxns", "0")
        .config(
            "clientPortListenBacklog",
            std::env::var("ZK_BENCH_BACKLOG").unwrap_or_else(|_| "1024".into()),
        )
}

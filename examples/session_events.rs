//! Following session state events: `Client::state_stream()` yields every state change with
//! the server and the time; the engine's counters measure each failover pause. A crash
//! (SIGKILL) and a freeze (SIGSTOP) of the session's server show the two ways a server fails:
//! a crash is noticed at once (the kernel resets the connection), a freeze only after the
//! failure detector's `T/3` of silence.
//!
//! ```text
//! cargo run --example session_events         # starts a local 3-node ensemble
//! ```

use std::error::Error as StdError;
use std::time::{Duration, Instant};

use zk_failover::Client;
use zk_failover::client::SessionState;
use zk_testkit::Ensemble;

#[tokio::main]
async fn main() -> Result<(), Box<dyn StdError>> {
    let (cs, ensemble) = Ensemble::from_env_or_start(3).await?;
    let zk = Client::builder(&cs)
        .session_timeout(Duration::from_secs(4))
        .connect()
        .await?;
    let t0 = Instant::now();
    println!(
        "session {:#x} on {:?}, negotiated timeout {:?}",
        zk.session_id(),
        zk.server(),
        zk.negotiated_timeout()
    );

    // Print every state change as it happens.
    let mut states = zk.state_stream();
    let initial = states.borrow_and_update().state;
    println!("  [ 0.000 s] {initial:?} (initial state)");
    let follower = tokio::spawn(async move {
        while states.changed().await.is_ok() {
            let change = states.borrow_and_update().clone();
            println!(
                "  [{:6.3} s] {:?} (session {:#x}, server {:?})",
                change.at.saturating_duration_since(t0).as_secs_f64(),
                change.state,
                change.session_id,
                change.server
            );
            if change.state.is_terminal() {
                break;
            }
        }
    });

    if let Some(ens) = &ensemble {
        for freeze in [false, true] {
            let on = zk
                .server()
                .and_then(|a| ens.node_for_addr(a))
                .ok_or("session on an unknown server")?;
            let t = Instant::now();
            if freeze {
                println!("SIGSTOP server {} (the session's server)", on + 1);
                ens.node(on).try_freeze()?;
            } else {
                println!("SIGKILL server {} (the session's server)", on + 1);
                ens.node(on).kill()?;
            }
            // Wait until the session has moved.
            while zk.server().and_then(|a| ens.node_for_addr(a)) == Some(on)
                || zk.state() != SessionState::Connected
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let c = zk.counters().session;
            println!(
                "back {} ms after the fault; engine: reconnect pause {} ms, {} reconnects, {} detector trips",
                t.elapsed().as_millis(),
                c.last_pause.unwrap_or_default().as_millis(),
                c.reconnects,
                c.detector_trips
            );
            if freeze {
                ens.node(on).try_thaw()?;
            } else {
                ens.node(on).restart().await?;
            }
            ens.wait_serving(Duration::from_secs(30)).await?;
        }
    } else {
        println!("(with ZK_CONNECT: kill or freeze servers yourself; watching for 60 s)");
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    zk.close().await; // Closed is the last state
    let _ = follower.await;
    Ok(())
}

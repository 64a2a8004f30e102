//! Leader election with `zk_recipes::LeaderLatch` that keeps its leader through a failover.
//!
//! Three candidates (three sessions) join the election at `/election-example` (Curator's
//! `LeaderLatch` layout: `_c_<uuid>-latch-<seq>` ephemeral sequential nodes; the lowest leads,
//! every other candidate watches only its predecessor). Then:
//!
//! 1. the server the **leader's** session is on is killed: the session fails over to another
//!    server within milliseconds, its node stays, the latch stays `Leader` (a failover is a
//!    pause, not a loss) and nobody else takes over;
//! 2. the leader leaves (`close`): its node goes at once and the next candidate leads — in
//!    milliseconds, not after a session timeout.
//!
//! A leader disconnected for longer than `in_doubt_after` is `InDoubt` (stop leading until it
//! is `Leader` again); `Lost` only when its session ends. Leader-only writes go through
//! `fenced`, which cannot apply once the leadership is gone.
//!
//! ```text
//! cargo run --example leader_election        # starts a local 3-node ensemble
//! ```

use std::error::Error as StdError;
use std::time::{Duration, Instant};

use zk_failover::Client;
use zk_failover::recipes::{LatchState, LeaderLatch, LeaderLatchHandle};
use zk_testkit::Ensemble;

const ELECTION: &str = "/election-example";

/// Waits until one of `latches` leads; returns its index.
async fn leader_of(latches: &[(&str, LeaderLatchHandle)]) -> Result<usize, Box<dyn StdError>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(i) = latches
            .iter()
            .position(|(_, l)| l.state() == LatchState::Leader)
        {
            return Ok(i);
        }
        if Instant::now() > deadline {
            return Err("no leader elected".into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn StdError>> {
    let (cs, ensemble) = Ensemble::from_env_or_start(3).await?;
    let connect = || {
        Client::builder(&cs)
            .session_timeout(Duration::from_secs(4))
            .connect()
    };

    let mut latches = Vec::new();
    let mut clients = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let zk = connect().await?;
        let latch = LeaderLatch::new(zk.clone(), ELECTION, name)
            .in_doubt_after(Duration::from_secs(2))
            .start()
            .await?;
        println!("{name}: joined as {}", latch.node());
        clients.push(zk);
        latches.push((name, latch));
    }
    let leader = leader_of(&latches).await?;
    let (name, _) = latches[leader];
    println!("{name} leads (session {:#x})", clients[leader].session_id());

    // 1. Kill the server the leader's session is on.
    if let Some(ens) = &ensemble {
        let zk = &clients[leader];
        let on = zk
            .server()
            .and_then(|a| ens.node_for_addr(a))
            .ok_or("leader on an unknown server")?;
        println!("SIGKILL server {}, the leader's server", on + 1);
        let killed = Instant::now();
        ens.node(on).kill()?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        zk.exists(ELECTION).await?; // waits for the failover
        println!(
            "{name}'s session {:#x} back {} ms after the kill, on {:?}; latch: {:?}",
            zk.session_id(),
            killed.elapsed().as_millis(),
            zk.server(),
            latches[leader].1.state()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now: Vec<_> = latches.iter().map(|(n, l)| (*n, l.state())).collect();
        println!("after 2 s: {now:?} — still one leader, nobody took over");
        ens.node(on).restart().await?;
    }

    // 2. The leader leaves: the next candidate takes over at once.
    let left = Instant::now();
    let (name, latch) = latches.remove(leader);
    latch.close().await?;
    let next = leader_of(&latches).await?;
    println!(
        "{name} left; {} leads {} ms later",
        latches[next].0,
        left.elapsed().as_millis()
    );

    for (_, latch) in latches {
        latch.close().await?;
    }
    for zk in &clients {
        zk.close().await;
    }
    Ok(())
}

//! A live failover demo of the test kit alone: start a 3-node ensemble, kill the leader, watch
//! a new one get elected, bring the old leader back, freeze and thaw a follower.
//!
//! `cargo run -p zk-testkit --example failover_demo`
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "example")]

use std::time::{Duration, Instant};

use zk_testkit::Ensemble;

const LIMIT: Duration = Duration::from_secs(60);

async fn show(ens: &Ensemble, t0: Instant, what: &str) {
    let modes: Vec<String> = ens
        .modes()
        .await
        .into_iter()
        .enumerate()
        .map(|(i, m)| format!("server {}: {}", i + 1, m.as_deref().unwrap_or("-")))
        .collect();
    println!(
        "[{:>6} ms] {what:<34} {}",
        t0.elapsed().as_millis(),
        modes.join(" | ")
    );
}

#[tokio::main]
async fn main() -> Result<(), zk_testkit::TestkitError> {
    let t0 = Instant::now();
    let ens = Ensemble::builder().nodes(3).start().await?;
    println!(
        "ensemble up: {}  (logs in {})",
        ens.connect_string(),
        ens.dir().display()
    );
    show(&ens, t0, "quorum formed").await;

    let leader = ens.wait_for_leader(LIMIT).await?;
    ens.node(leader).kill()?;
    let killed_at = Instant::now();
    show(&ens, t0, &format!("SIGKILL leader (server {})", leader + 1)).await;
    let new_leader = loop {
        match ens.leader().await {
            Some(l) if l != leader => break l,
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    show(
        &ens,
        t0,
        &format!("new leader after {} ms", killed_at.elapsed().as_millis()),
    )
    .await;
    assert_ne!(new_leader, leader);

    ens.node(leader).restart().await?;
    ens.wait_serving(LIMIT).await?;
    show(&ens, t0, &format!("server {} restarted", leader + 1)).await;

    let follower = ens.followers().await.first().copied().unwrap_or(leader);
    ens.node(follower).freeze();
    show(&ens, t0, &format!("SIGSTOP server {}", follower + 1)).await;
    ens.node(follower).thaw();
    ens.wait_serving(LIMIT).await?;
    show(&ens, t0, &format!("SIGCONT server {}", follower + 1)).await;
    println!("done; dropping the ensemble kills every JVM");
    Ok(())
}

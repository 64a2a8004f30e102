//! Leader election on ephemeral sequential nodes that survives a failover.
//!
//! Three candidates (three sessions) each create an ephemeral sequential node under
//! `/election-example`; the lowest sequence number leads, every other candidate watches only
//! its predecessor (no herd effect). Then:
//!
//! 1. the server the **leader's** session is on is killed: the session fails over to another
//!    server within milliseconds, its ephemeral node stays, nobody else takes over;
//! 2. the leader closes its session (a process exiting): its node goes at once and the next
//!    candidate's watch fires — a new leader in milliseconds, not after a session timeout.
//!
//! While its session is `Disconnected` a leader cannot know whether it still leads: it pauses
//! its leader work until `Connected` (same session) and gives up for good on `Expired`.
//!
//! ```text
//! cargo run --example leader_election        # starts a local 3-node ensemble
//! ```

use std::error::Error as StdError;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use zk_failover::client::{SessionState, acl};
use zk_failover::{Client, CreateMode, Error};
use zk_testkit::Ensemble;

const ELECTION: &str = "/election-example";

/// The sequence suffix ZooKeeper appends (10 digits); candidates sort by it alone.
fn sequence(node: &str) -> &str {
    node.get(node.len().saturating_sub(10)..).unwrap_or(node)
}

/// Creates this candidate's node. The name carries the session id, so a create whose outcome
/// is unknown (`ConnectionLoss` during a failover) can be found again instead of duplicated.
async fn join(zk: &Client, name: &str) -> Result<String, Error> {
    let prefix = format!("{name}-{:x}-", zk.session_id());
    let path = format!("{ELECTION}/{prefix}");
    loop {
        match zk
            .create(
                &path,
                name.to_owned(),
                &acl::open_unsafe(),
                CreateMode::EphemeralSequential,
            )
            .await
        {
            Ok(created) => return Ok(created.rsplit('/').next().unwrap_or_default().to_owned()),
            Err(e) if e.is_retryable() => {
                if let Some(mine) = zk
                    .get_children(ELECTION)
                    .await?
                    .into_iter()
                    .find(|c| c.starts_with(&prefix))
                {
                    return Ok(mine);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Runs one candidate until its session ends; reports `(name, became leader at)`.
async fn candidate(
    name: &'static str,
    zk: Client,
    leaders: mpsc::UnboundedSender<(&'static str, Instant)>,
) -> Result<(), Error> {
    let me = join(&zk, name).await?;
    loop {
        let mut nodes = zk.get_children(ELECTION).await?;
        nodes.sort_by(|a, b| sequence(a).cmp(sequence(b)));
        let pos = nodes.iter().position(|n| *n == me).ok_or(Error::NoNode)?;
        if pos == 0 {
            let _ = leaders.send((name, Instant::now()));
            return lead(name, &zk).await;
        }
        // Watch only the predecessor; when it goes, look again (it may have been a
        // candidate that left, not the leader).
        let predecessor = format!("{ELECTION}/{}", nodes[pos - 1]);
        let (stat, watcher) = zk.exists_watch(&predecessor).await?;
        if stat.is_some() {
            let event = watcher.await;
            if event.is_terminal() {
                return Ok(());
            }
        }
    }
}

/// Leader work, paused while the session is disconnected, until the session ends.
async fn lead(name: &str, zk: &Client) -> Result<(), Error> {
    println!("{name}: I am the leader (session {:#x})", zk.session_id());
    let mut states = zk.state_stream();
    states.borrow_and_update();
    while states.changed().await.is_ok() {
        let state = states.borrow_and_update().state;
        match state {
            SessionState::Disconnected => {
                println!("{name}: connection lost: leader work paused (session still alive)");
            }
            SessionState::Connected => println!(
                "{name}: session back on {:?}: still the leader, work resumed",
                zk.server()
            ),
            s if s.is_terminal() => {
                println!("{name}: session ended ({s:?}): no longer the leader");
                break;
            }
            _ => {}
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn StdError>> {
    let (cs, ensemble) = Ensemble::from_env_or_start(3).await?;
    let connect = || {
        Client::builder(&cs)
            .session_timeout(Duration::from_secs(4))
            .connect()
    };
    let admin = connect().await?;
    match admin
        .create(ELECTION, "", &acl::open_unsafe(), CreateMode::Persistent)
        .await
    {
        Ok(_) | Err(Error::NodeExists) => {}
        Err(e) => return Err(e.into()),
    }

    let (tx, mut leaders) = mpsc::unbounded_channel();
    let mut clients = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let zk = connect().await?;
        clients.push((name, zk.clone()));
        let tx = tx.clone();
        tokio::spawn(async move {
            match candidate(name, zk, tx).await {
                Ok(()) | Err(Error::Closed) => {}
                Err(e) => println!("{name}: {e}"),
            }
        });
    }
    let (leader, _) = leaders.recv().await.ok_or("no leader elected")?;
    let leader_zk = clients
        .iter()
        .find(|(n, _)| *n == leader)
        .map(|(_, c)| c.clone())
        .ok_or("unknown leader")?;

    // 1. Kill the server the leader's session is on.
    if let Some(ens) = &ensemble {
        let on = leader_zk
            .server()
            .and_then(|a| ens.node_for_addr(a))
            .ok_or("leader on an unknown server")?;
        println!("SIGKILL server {}, the leader's server", on + 1);
        let killed = Instant::now();
        ens.node(on).kill()?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        leader_zk.exists(ELECTION).await?; // waits for the failover
        println!(
            "leader's session {:#x} back {} ms after the kill, on {:?}",
            leader_zk.session_id(),
            killed.elapsed().as_millis(),
            leader_zk.server()
        );
        // Nobody else claims leadership: the leader's ephemeral node never went away.
        match tokio::time::timeout(Duration::from_secs(2), leaders.recv()).await {
            Err(_) => println!("after 2 s: still {leader}, nobody else took over"),
            Ok(other) => println!("unexpected new leader: {other:?}"),
        }
        ens.node(on).restart().await?;
    }

    // 2. The leader leaves: the next candidate takes over at once.
    let left = Instant::now();
    leader_zk.close().await;
    let (next, at) = tokio::time::timeout(Duration::from_secs(10), leaders.recv())
        .await?
        .ok_or("no new leader")?;
    println!(
        "{leader} left; {next} leads {} ms later",
        at.saturating_duration_since(left).as_millis()
    );

    for (_, zk) in &clients {
        zk.close().await;
    }
    let _ = admin.delete(ELECTION, -1).await;
    admin.close().await;
    Ok(())
}

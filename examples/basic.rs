//! Basic CRUD and watches: create, read, conditional update, a one-shot watch, a persistent
//! recursive watch, sequential nodes, a multi, delete.
//!
//! ```text
//! cargo run --example basic                       # starts a local 3-node ensemble
//! ZK_CONNECT=127.0.0.1:2181 cargo run --example basic
//! ```

use std::error::Error as StdError;
use std::time::Duration;

use zk_failover::client::{AddWatchMode, Op, WatchEvent, acl};
use zk_failover::{Client, CreateMode, Error};
use zk_testkit::Ensemble;

#[tokio::main]
async fn main() -> Result<(), Box<dyn StdError>> {
    let (cs, _ensemble) = Ensemble::from_env_or_start(3).await?;
    let zk = Client::connect(&cs).await?;
    println!("connected: session {:#x}", zk.session_id());

    // Create and read.
    let base = format!("/basic-example-{:x}", zk.session_id());
    zk.create(&base, "", &acl::open_unsafe(), CreateMode::Persistent)
        .await?;
    let config = format!("{base}/config");
    zk.create(&config, "v1", &acl::open_unsafe(), CreateMode::Persistent)
        .await?;
    let (data, stat) = zk.get_data(&config).await?;
    println!(
        "{config} = {:?} (version {})",
        String::from_utf8_lossy(&data),
        stat.version
    );

    // A one-shot watch, then a conditional update that fires it.
    let (_, stat, watcher) = zk.get_data_watch(&config).await?;
    zk.set_data(&config, "v2", stat.version).await?;
    let event = watcher.await;
    println!("one-shot watch: {:?} {}", event.event_type, event.path);

    // The same version again is refused: someone (we) changed the node meanwhile.
    match zk.set_data(&config, "v3", stat.version).await {
        Err(Error::BadVersion) => println!("stale version refused: BadVersion"),
        other => println!("unexpected: {other:?}"),
    }

    // A persistent recursive watch sees every change under `base`, until dropped.
    let mut all = zk
        .add_watch(&base, AddWatchMode::PersistentRecursive)
        .await?;
    let jobs = format!("{base}/jobs");
    zk.create(&jobs, "", &acl::open_unsafe(), CreateMode::Persistent)
        .await?;
    for _ in 0..3 {
        let job = zk
            .create(
                &format!("{jobs}/job-"),
                "work",
                &acl::open_unsafe(),
                CreateMode::PersistentSequential,
            )
            .await?;
        println!("created {job}");
    }
    let mut children = zk.get_children(&jobs).await?;
    children.sort();
    println!("children of {jobs}: {children:?}");
    for _ in 0..4 {
        match tokio::time::timeout(Duration::from_secs(5), all.next()).await {
            Ok(Some(WatchEvent::Event(e))) => {
                println!("recursive watch: {:?} {}", e.event_type, e.path);
            }
            Ok(Some(other)) => println!("recursive watch: {other:?}"),
            Ok(None) | Err(_) => break,
        }
    }
    drop(all);

    // A multi: all or nothing.
    let (_, stat) = zk.get_data(&config).await?;
    let mut ops = vec![
        Op::check(&config, stat.version),
        Op::set_data(&config, "v3", stat.version),
    ];
    ops.extend(
        children
            .iter()
            .map(|c| Op::delete(format!("{jobs}/{c}"), -1)),
    );
    ops.push(Op::delete(&jobs, -1));
    let results = zk.multi(ops).await?;
    println!("multi applied {} operations", results.len());

    // Delete and check.
    zk.delete(&config, -1).await?;
    zk.delete(&base, -1).await?;
    println!(
        "{base} exists after delete: {}",
        zk.exists(&base).await?.is_some()
    );
    zk.close().await;
    Ok(())
}

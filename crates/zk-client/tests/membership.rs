//! Ensembles that change, against real ZooKeeper 3.8 servers with dynamic membership
//! (`Ensemble::builder().dynamic(spares)`: `reconfigEnabled`, client addresses in the server
//! lines, spare servers started and added with `reconfig` at run time): the clients follow
//! `/zookeeper/config` and rebalance. Each test starts its own ensemble (membership changes
//! do not undo cheaply); one at a time.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{RT, fired};
use zk_client::{AddWatchMode, Client, CreateMode, Error, Reconfig, SessionState, WatchEvent, acl};
use zk_testkit::Ensemble;

const WAIT: Duration = Duration::from_secs(60);
static SERIAL: Mutex<()> = Mutex::new(());

fn run<F: Future>(f: F) -> F::Output {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    common::init_tracing();
    RT.block_on(async move {
        tokio::time::timeout(Duration::from_secs(600), f)
            .await
            .expect("test timed out")
    })
}

async fn ensemble(members: usize, spares: usize) -> Ensemble {
    Ensemble::builder()
        .nodes(members)
        .dynamic(spares)
        .start()
        .await
        .unwrap()
}

fn connect_string(ens: &Ensemble, nodes: std::ops::Range<usize>) -> String {
    nodes
        .map(|i| ens.node(i).client_addr().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

async fn client(cs: &str, follow: bool) -> Client {
    Client::builder(cs)
        .session_timeout(Duration::from_secs(4))
        .connect_timeout(WAIT)
        .follow_reconfig(follow)
        .connect()
        .await
        .unwrap()
}

/// A reconfig, retried through connection losses (the admin session moves too).
async fn reconfig(admin: &Client, joining: Option<String>, leaving: Option<String>) {
    let deadline = Instant::now() + WAIT;
    loop {
        let change = Reconfig::Incremental {
            joining: joining.clone(),
            leaving: leaving.clone(),
        };
        match admin.reconfig(change, None).await {
            Ok(_) => return,
            Err(e) if e.is_retryable() || e == Error::ReconfigInProgress => {
                assert!(Instant::now() < deadline, "reconfig keeps failing: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("reconfig: {e}"),
        }
    }
}

async fn hosts_become(c: &Client, n: usize) {
    let mut list = c.host_list();
    tokio::time::timeout(WAIT, list.wait_for(|l| l.hosts.len() == n))
        .await
        .expect("the host list did not follow")
        .unwrap();
}

/// An admin session (not following) and `n` following sessions on `cs`.
async fn fleet(cs: &str, n: usize) -> (Client, Vec<Client>) {
    let admin = client(cs, false).await;
    let mut sessions = Vec::with_capacity(n);
    for _ in 0..n {
        sessions.push(client(cs, true).await);
    }
    (admin, sessions)
}

async fn close_all(admin: Client, sessions: Vec<Client>) {
    for c in &sessions {
        c.close().await;
    }
    admin.close().await;
}

fn node_of(ens: &Ensemble, c: &Client) -> Option<usize> {
    c.server().and_then(|a| ens.node_for_addr(a))
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn rolling_replacement() {
    run(async {
        let ens = ensemble(3, 3).await;
        let cs = connect_string(&ens, 0..3);
        let admin = client(&cs, true).await;
        let c = client(&cs, true).await;
        let id = c.session_id();
        let open = acl::open_unsafe();
        c.create("/rr", "", &open, CreateMode::Persistent)
            .await
            .unwrap();
        c.create("/rr/data", "0", &open, CreateMode::Persistent)
            .await
            .unwrap();
        c.create("/rr-eph", "", &open, CreateMode::Ephemeral)
            .await
            .unwrap();
        let (_, _, oneshot) = c.get_data_watch("/rr/data").await.unwrap();
        let mut recursive = c
            .add_watch("/rr", AddWatchMode::PersistentRecursive)
            .await
            .unwrap();
        // Reads all along: none may fail.
        let failed = Arc::new(AtomicU64::new(0));
        let reads = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (c, failed, reads, stop) = (c.clone(), failed.clone(), reads.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    match c.get_data("/rr/data").await {
                        Ok(_) => reads.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            eprintln!("read failed: {e}");
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };

        // Add 4, 5, 6.
        for i in 3..6 {
            ens.start_spare(i).await.unwrap();
            reconfig(&admin, Some(ens.server_line(i)), None).await;
        }
        hosts_become(&c, 6).await;
        // Remove and stop 1, 2, 3 one by one.
        for i in 0..3 {
            reconfig(&admin, None, Some(ens.node(i).id().to_string())).await;
            hosts_become(&c, 5 - i).await;
            // Let the sessions leave the removed server before it stops.
            let deadline = Instant::now() + WAIT;
            while node_of(&ens, &c) == Some(i) || c.state() != SessionState::Connected {
                assert!(
                    Instant::now() < deadline,
                    "the session stays on the removed server"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            ens.retire(i).unwrap();
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.store(true, Ordering::SeqCst);
        reader.await.unwrap();

        assert_eq!(c.session_id(), id, "the same session throughout");
        assert!(
            node_of(&ens, &c).is_some_and(|n| n >= 3),
            "on {:?}",
            c.server()
        );
        assert_eq!(failed.load(Ordering::Relaxed), 0, "reads failed");
        assert!(reads.load(Ordering::Relaxed) > 50);
        // Its ephemeral and its watches survived, seen from a session on the new servers.
        let other = client(&connect_string(&ens, 3..6), false).await;
        let eph = other.exists("/rr-eph").await.unwrap().unwrap();
        assert_eq!(eph.ephemeral_owner, id);
        other.set_data("/rr/data", "1", -1).await.unwrap();
        let ev = fired(oneshot, WAIT).await;
        assert_eq!(ev.path, "/rr/data");
        let got = tokio::time::timeout(WAIT, async {
            loop {
                match recursive.next().await {
                    Some(WatchEvent::Event(e)) if e.path == "/rr/data" => return e,
                    Some(_) => {}
                    None => panic!("the recursive watch ended"),
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(got.path, "/rr/data");
        eprintln!(
            "rolling replacement: {} reads, counters {:?}",
            reads.load(Ordering::Relaxed),
            c.counters().session
        );
        other.close().await;
        c.close().await;
        admin.close().await;
    });
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn rebalance_on_growth() {
    run(async {
        let ens = ensemble(3, 2).await;
        let cs = connect_string(&ens, 0..3);
        let (admin, sessions) = fleet(&cs, 100).await;
        let before: Vec<Option<usize>> = sessions.iter().map(|c| node_of(&ens, c)).collect();
        let ids: Vec<i64> = sessions.iter().map(Client::session_id).collect();
        for i in 3..5 {
            ens.start_spare(i).await.unwrap();
        }
        let joining = format!("{},{}", ens.server_line(3), ens.server_line(4));
        let t0 = Instant::now();
        reconfig(&admin, Some(joining), None).await;
        // Watch the moves for the spread window and a little more.
        let mut moved_at: HashMap<usize, Duration> = HashMap::new();
        while t0.elapsed() < Duration::from_secs(8) {
            for (k, c) in sessions.iter().enumerate() {
                if !moved_at.contains_key(&k) && node_of(&ens, c) != before[k] {
                    moved_at.insert(k, t0.elapsed());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut per_node = [0_usize; 5];
        for (k, c) in sessions.iter().enumerate() {
            assert_eq!(c.session_id(), ids[k]);
            assert!(!c.state().is_terminal(), "session {k} ended");
            if let Some(n) = node_of(&ens, c) {
                per_node[n] += 1;
            }
        }
        let mut times: Vec<Duration> = moved_at.values().copied().collect();
        times.sort();
        eprintln!("rebalance on growth: per server {per_node:?}, moves at {times:?}");
        // Each new server gets at least half its fair share (100 / 5 = 20).
        assert!(per_node[3] >= 10 && per_node[4] >= 10, "{per_node:?}");
        // The moves are spread out, not one burst.
        let first_second = times
            .iter()
            .filter(|t| **t < times[0] + Duration::from_secs(1))
            .count();
        assert!(first_second * 2 < times.len(), "{times:?}");
        close_all(admin, sessions).await;
    });
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn rebalance_on_shrink() {
    run(async {
        let ens = ensemble(4, 0).await;
        let cs = connect_string(&ens, 0..4);
        let (admin, sessions) = fleet(&cs, 30).await;
        let leaving = (0..4)
            .find(|i| sessions.iter().any(|c| node_of(&ens, c) == Some(*i)))
            .unwrap();
        let before: Vec<Option<usize>> = sessions.iter().map(|c| node_of(&ens, c)).collect();
        reconfig(&admin, None, Some(ens.node(leaving).id().to_string())).await;
        let deadline = Instant::now() + WAIT;
        while sessions.iter().any(|c| node_of(&ens, c) == Some(leaving)) {
            assert!(
                Instant::now() < deadline,
                "sessions stay on the removed server"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        for (k, c) in sessions.iter().enumerate() {
            assert!(!c.state().is_terminal());
            if before[k] != Some(leaving) {
                assert_eq!(node_of(&ens, c), before[k], "session {k} moved needlessly");
                assert_eq!(c.counters().session.rebalances, 0);
            }
        }
        close_all(admin, sessions).await;
    });
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn follow_reconfig_disabled() {
    run(async {
        let ens = ensemble(3, 1).await;
        let cs = connect_string(&ens, 0..3);
        let admin = client(&cs, false).await;
        let c = client(&cs, false).await;
        let on = node_of(&ens, &c).unwrap();
        ens.start_spare(3).await.unwrap();
        reconfig(&admin, Some(ens.server_line(3)), None).await;
        let other = (0..3).find(|i| *i != on).unwrap();
        reconfig(&admin, None, Some(ens.node(other).id().to_string())).await;
        tokio::time::sleep(Duration::from_secs(7)).await;
        let list = c.host_list().borrow().clone();
        assert_eq!(list.hosts.len(), 3, "{list:?}");
        assert_eq!(list.config_version, None);
        assert_eq!(node_of(&ens, &c), Some(on), "moved although not following");
        let addrs: Vec<SocketAddr> = (0..3).map(|i| ens.node(i).client_addr()).collect();
        assert!(c.server().is_some_and(|a| addrs.contains(&a)));
        c.close().await;
        admin.close().await;
    });
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn unusable_config_is_ignored() {
    run(async {
        // Dynamic configuration without client addresses (only `clientPort` in the static
        // file): nothing a client could connect to. The list stays; the rejection is typed.
        let ens = Ensemble::builder()
            .nodes(3)
            .config("reconfigEnabled", "true")
            .start()
            .await
            .unwrap();
        let c = client(&ens.direct_connect_string(), true).await;
        let mut list = c.host_list();
        tokio::time::timeout(WAIT, list.wait_for(|l| l.rejected.is_some()))
            .await
            .expect("no rejection reported")
            .unwrap();
        let l = list.borrow().clone();
        assert_eq!(l.hosts.len(), 3);
        assert_eq!(l.config_version, None);
        assert_eq!(
            l.rejected.map(|r| r.1),
            Some(zk_connstr::ConfigError::NoClientAddress)
        );
        c.exists("/").await.unwrap();
        c.close().await;
    });
}

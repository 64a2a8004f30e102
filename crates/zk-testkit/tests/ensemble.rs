//! A real 3-node quorum: leader election after a kill, freeze/thaw, restart, stop, proxies,
//! read-only mode. One ensemble for the whole file (JVM start-up is the expensive part).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod common;

use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use zk_testkit::{Ensemble, ProxyMode};

const LONG: Duration = Duration::from_secs(60);

async fn eventually<F, Fut>(what: &str, limit: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
async fn three_node_quorum_survives_kill_freeze_restart() {
    let t0 = Instant::now();
    let ens = Ensemble::builder()
        .nodes(3)
        .tick_time(Duration::from_millis(200))
        .proxies(true)
        .read_only(true)
        .start()
        .await
        .unwrap();
    eprintln!(
        "3-node ensemble serving after {:?} in {}",
        t0.elapsed(),
        ens.dir().display()
    );
    let pids: Vec<u32> = ens.nodes().iter().map(|n| n.pid().unwrap()).collect();

    // --- Addresses, proxies, logs.
    assert_eq!(ens.nodes().len(), 3);
    let connect = ens.connect_string();
    let direct = ens.direct_connect_string();
    assert_ne!(connect, direct);
    assert_eq!(connect.split(',').count(), 3);
    assert!(ens.tls_connect_string().is_none() && ens.tls().is_none());
    for (i, n) in ens.nodes().iter().enumerate() {
        assert_eq!(n.index(), i);
        assert_eq!(n.id(), i + 1);
        assert_eq!(ens.node_for_addr(n.client_addr()), Some(i));
        let proxy = ens.proxy(i).unwrap();
        assert_eq!(proxy.target(), n.client_addr());
        assert_eq!(ens.node_for_addr(proxy.addr()), Some(i));
        assert!(connect.contains(&proxy.addr().to_string()));
        assert!(direct.contains(&n.client_addr().to_string()));
    }
    assert!(ens.log_paths().iter().all(|p| p.exists()));
    let conf = ens.four_letter(0, "conf").await.unwrap();
    assert!(conf.contains("maxSessionTimeout=4000"), "{conf}");
    assert!(ens.four_letter(0, "bogus!").await.is_err());
    assert!(ens.four_letter(7, "srvr").await.is_err());

    // --- A real handshake through each proxy; the session id's high byte is the server id.
    for i in 0..3 {
        let mut s = TcpStream::connect(ens.proxy(i).unwrap().addr())
            .await
            .unwrap();
        let (len, resp) = common::handshake(&mut s, 4000, false).await.unwrap();
        assert_eq!(len, 37);
        assert_eq!(resp.timeout_ms, 4000);
        assert_eq!((resp.session_id >> 56) as usize, i + 1);
    }

    // --- Leader and followers.
    let leader = ens.wait_for_leader(LONG).await.unwrap();
    let mut followers = ens.followers().await;
    followers.sort_unstable();
    assert_eq!(followers.len(), 2);
    assert!(!followers.contains(&leader));

    // --- Freeze a follower: silence on srvr; the rest still counts as serving; thaw answers.
    let f = followers[0];
    ens.node(f).freeze();
    assert!(ens.node(f).is_frozen() && !ens.node(f).is_live() && ens.node(f).is_running());
    let srvr = ens.four_letter(f, "srvr").await;
    assert!(srvr.is_err(), "frozen node answered: {srvr:?}");
    assert!(!ens.node(f).is_serving().await);
    ens.wait_serving(LONG).await.unwrap();
    // Through the proxy the frozen node accepts TCP but says nothing (like a blackhole).
    ens.node(f).thaw();
    assert!(!ens.node(f).is_frozen());
    eventually("thawed node to serve", LONG, || ens.node(f).is_serving()).await;

    // --- Kill the leader: a new one is elected among the other two.
    let old_pid = ens.node(leader).pid().unwrap();
    ens.node(leader).kill().unwrap();
    assert!(ens.node(leader).pid().is_none() && !ens.node(leader).is_running());
    assert!(!std::path::Path::new(&format!("/proc/{old_pid}")).exists());
    let t_kill = Instant::now();
    ens.wait_serving(LONG).await.unwrap();
    let new_leader = ens.wait_for_leader(LONG).await.unwrap();
    eprintln!(
        "new leader {new_leader} elected {:?} after killing {leader}",
        t_kill.elapsed()
    );
    assert_ne!(new_leader, leader);
    // The remaining follower may still be syncing with the new leader.
    eventually("one follower", LONG, || async {
        ens.followers().await.len() == 1
    })
    .await;
    // Through the dead node's proxy: reset (possibly already during connect) or closed.
    if let Ok(mut s) = TcpStream::connect(ens.proxy(leader).unwrap().addr()).await {
        assert!(common::handshake(&mut s, 4000, false).await.is_err());
    }

    // --- Restart the old leader: it rejoins as a follower.
    ens.node(leader).restart().await.unwrap();
    assert!(ens.node(leader).pid().is_some());
    ens.wait_serving(LONG).await.unwrap();
    assert_eq!(ens.node(leader).mode().await.as_deref(), Some("follower"));
    assert_eq!(ens.leader().await, Some(new_leader));

    // --- Graceful stop of a follower, then restart.
    let g = ens.followers().await[0];
    ens.node(g).stop().await;
    assert!(ens.node(g).pid().is_none());
    ens.wait_serving(LONG).await.unwrap();
    ens.node(g).restart().await.unwrap();
    ens.wait_serving(LONG).await.unwrap();
    eventually("two followers", LONG, || async {
        ens.followers().await.len() == 2
    })
    .await;

    // --- Proxy blackhole in front of a live node: an established session hears nothing.
    let p = ens.proxy(g).unwrap();
    let mut s = TcpStream::connect(p.addr()).await.unwrap();
    common::handshake(&mut s, 4000, false).await.unwrap();
    p.set_mode(ProxyMode::Blackhole);
    let mut s2 = TcpStream::connect(p.addr()).await.unwrap();
    let r = tokio::time::timeout(
        Duration::from_millis(500),
        common::handshake(&mut s2, 4000, false),
    )
    .await;
    assert!(r.is_err(), "blackholed handshake answered");
    p.set_mode(ProxyMode::Pass);
    let r = tokio::time::timeout(LONG, common::handshake(&mut s2, 4000, false)).await;
    assert!(r.unwrap().is_ok(), "healed handshake failed");

    // --- Read-only mode: kill two nodes, the survivor serves read-only sessions.
    let survivor = new_leader;
    for i in (0..3).filter(|&i| i != survivor) {
        ens.node(i).kill().unwrap();
    }
    eventually("isro = ro", LONG, || async {
        ens.four_letter(survivor, "isro")
            .await
            .is_ok_and(|s| s.trim() == "ro")
    })
    .await;
    assert_eq!(
        ens.node(survivor).mode().await.as_deref(),
        Some("read-only")
    );
    let mut s = TcpStream::connect(ens.node(survivor).client_addr())
        .await
        .unwrap();
    let (len, resp) = common::handshake(&mut s, 4000, true).await.unwrap();
    assert_eq!(len, 37);
    assert!(resp.read_only);

    // --- Drop kills every JVM and removes the directory.
    let dir = ens.dir().to_path_buf();
    drop(ens);
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}/cmdline")).exists() || {
                // The pid may have been recycled by an unrelated process.
                !std::fs::read(format!("/proc/{pid}/cmdline"))
                    .unwrap_or_default()
                    .windows(dir.as_os_str().len())
                    .any(|w| w == dir.as_os_str().as_encoded_bytes())
            }
        );
    }
    assert!(zk_testkit::pids_referencing(&dir).is_empty());
    assert!(!dir.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
async fn standalone_node_and_custom_session_limits() {
    let ens = Ensemble::builder()
        .nodes(1)
        .tick_time(Duration::from_millis(100))
        .max_session_timeout(Duration::from_secs(30))
        .force_sync(false)
        .start()
        .await
        .unwrap();
    assert_eq!(ens.leader().await, Some(0));
    assert!(ens.followers().await.is_empty());
    assert_eq!(ens.node(0).mode().await.as_deref(), Some("standalone"));
    let mut s = TcpStream::connect(ens.node(0).client_addr()).await.unwrap();
    let (_, resp) = common::handshake(&mut s, 60_000, false).await.unwrap();
    assert_eq!(resp.timeout_ms, 30_000);
    let mut s = TcpStream::connect(ens.node(0).client_addr()).await.unwrap();
    let (_, resp) = common::handshake(&mut s, 1, false).await.unwrap();
    assert_eq!(resp.timeout_ms, 200, "min is 2 ticks");

    // Extended types are enabled: TTL nodes (createTTL = 21, PERSISTENT_WITH_TTL = 5) and
    // containers (createContainer = 19, CONTAINER = 4) can be created.
    let ttl = common::create_request(1, 21, "/ttl", 5, Some(60_000));
    assert_eq!(common::request(&mut s, &ttl).await.unwrap(), (1, 0));
    let container = common::create_request(2, 19, "/container", 4, None);
    assert_eq!(common::request(&mut s, &container).await.unwrap(), (2, 0));
    let plain = common::create_request(3, 1, "/plain", 0, None);
    assert_eq!(common::request(&mut s, &plain).await.unwrap(), (3, 0));
    let again = common::create_request(4, 1, "/plain", 0, None);
    assert_eq!(
        common::request(&mut s, &again).await.unwrap(),
        (4, -110),
        "NodeExists"
    );
}

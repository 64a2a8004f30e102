//! The lock and the leader latch against a real 3-node ZooKeeper 3.8 ensemble: exclusive, kept
//! through a kill −9 of the holder's server, lost only when the session is, fenced after that;
//! Curator's node layout. One ensemble (with fault proxies) for the binary.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::sync::{LazyLock, OnceLock};
use std::time::Duration;

use zk_client::{Client, Op};
use zk_recipes::{Hold, LatchState, LeaderLatch, Mutex, RecipeError};
use zk_testkit::{Ensemble, ProxyMode};

static RT: LazyLock<&'static tokio::runtime::Runtime> = LazyLock::new(zk_testkit::test_runtime);
static ENS: OnceLock<Ensemble> = OnceLock::new();
/// Each test kills or cuts off servers: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
const WAIT: Duration = Duration::from_secs(30);
const T: Duration = Duration::from_secs(4);

fn ensemble() -> &'static Ensemble {
    ENS.get_or_init(|| {
        std::thread::spawn(|| {
            RT.block_on(Ensemble::builder().nodes(3).proxies(true).start())
                .unwrap()
        })
        .join()
        .unwrap()
    })
}

fn run<F: Future>(f: F) -> F::Output {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    RT.block_on(async move {
        tokio::time::timeout(Duration::from_secs(300), f)
            .await
            .expect("test timed out")
    })
}

/// Through the fault proxies (so a test can cut this client off alone).
async fn proxied(ens: &Ensemble) -> Client {
    Client::builder(&ens.connect_string())
        .session_timeout(T)
        .connect_timeout(WAIT)
        .connect()
        .await
        .unwrap()
}

/// Straight to the servers.
async fn direct(ens: &Ensemble) -> Client {
    Client::builder(&ens.direct_connect_string())
        .session_timeout(T)
        .connect_timeout(WAIT)
        .connect()
        .await
        .unwrap()
}

/// `_c_<uuid v4>-<marker><10 digits>`: Curator's protected sequential layout.
fn curator_layout(node: &str, marker: &str) -> bool {
    let name = node.rsplit('/').next().unwrap();
    let Some(rest) = name.strip_prefix("_c_") else {
        return false;
    };
    rest.len() == 36 + 1 + marker.len() + 10
        && rest[36..].starts_with(&format!("-{marker}"))
        && rest[rest.len() - 10..].chars().all(|c| c.is_ascii_digit())
        && rest[14..15] == *"4"
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn lock_is_exclusive_and_kept_through_a_kill_of_the_holders_server() {
    let ens = ensemble();
    run(async {
        let (a, b) = (direct(ens).await, direct(ens).await);
        let la = Mutex::new(a.clone(), "/recipes/lock1").in_doubt_after(Duration::from_secs(3));
        let lb = Mutex::new(b.clone(), "/recipes/lock1");
        let ga = la.acquire().await.unwrap();
        assert!(curator_layout(ga.node(), "lock-"), "{}", ga.node());
        assert_eq!(ga.hold(), Hold::Held);
        // B waits.
        assert!(
            lb.try_acquire(Duration::from_millis(500))
                .await
                .unwrap()
                .is_none()
        );
        let waiter = tokio::spawn(async move { lb.acquire().await });

        // kill −9 of A's server: a pause for A, never a loss; B keeps waiting.
        let server = ens.node_for_addr(a.server().unwrap()).unwrap();
        ens.node(server).kill().unwrap();
        let mut holds = ga.hold_stream();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::time::Instant::now() < deadline {
            assert_eq!(
                *holds.borrow_and_update(),
                Hold::Held,
                "a failover is a pause"
            );
            assert!(!waiter.is_finished(), "two holders");
            // Back once the client noticed the loss and re-established the session (right
            // after the kill it may not have read the EOF yet).
            if a.counters().session.reconnects >= 1
                && a.state() == zk_client::SessionState::Connected
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(a.counters().session.reconnects, 1);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!waiter.is_finished(), "two holders");
        assert_eq!(ga.hold(), Hold::Held);
        // A writes under the lock, then releases: B gets it.
        ga.fenced(vec![Op::Check {
            path: "/recipes/lock1".into(),
            version: -1,
        }])
        .await
        .unwrap();
        ga.release().await.unwrap();
        let gb = tokio::time::timeout(WAIT, waiter)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(gb.hold(), Hold::Held);
        gb.release().await.unwrap();
        ens.heal().await.unwrap();
    });
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn lock_is_lost_only_with_the_session_and_then_fenced() {
    let ens = ensemble();
    run(async {
        let (a, b) = (proxied(ens).await, direct(ens).await);
        let ga = Mutex::new(a.clone(), "/recipes/lock2")
            .in_doubt_after(Duration::from_millis(300))
            .acquire()
            .await
            .unwrap();
        let lb = Mutex::new(b.clone(), "/recipes/lock2");
        let waiter = tokio::spawn(async move { lb.acquire().await });

        // A is cut off from every server: in doubt after 300 ms, lost when its session ends
        // (4T/3 locally; the servers expire it after T and B takes the lock).
        for p in ens.proxies() {
            p.set_mode(ProxyMode::Blackhole);
        }
        let mut holds = ga.hold_stream();
        tokio::time::timeout(WAIT, holds.wait_for(|h| *h == Hold::InDoubt))
            .await
            .unwrap()
            .unwrap();
        let gb = tokio::time::timeout(WAIT, waiter)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        // Never two holders: by the time B holds, A is no longer `Held`.
        assert_ne!(ga.hold(), Hold::Held);
        tokio::time::timeout(WAIT, ga.lost()).await.unwrap();
        assert_eq!(ga.hold(), Hold::Lost);
        // Fenced: A's writes fail and apply nothing.
        let r = ga
            .fenced(vec![Op::Create {
                path: "/recipes/fenced".into(),
                data: "a".into(),
                acl: zk_client::acl::open_unsafe(),
                mode: zk_client::CreateMode::Persistent,
            }])
            .await;
        assert!(matches!(r, Err(RecipeError::Lost)), "{r:?}");
        assert!(b.exists("/recipes/fenced").await.unwrap().is_none());
        // B's fenced write applies.
        gb.fenced(vec![Op::Create {
            path: "/recipes/fenced".into(),
            data: "b".into(),
            acl: zk_client::acl::open_unsafe(),
            mode: zk_client::CreateMode::Persistent,
        }])
        .await
        .unwrap();
        b.delete("/recipes/fenced", -1).await.unwrap();
        gb.release().await.unwrap();
        drop(ga);
        ens.heal().await.unwrap();
    });
}

#[test]
#[ignore = "needs Java and ZooKeeper: run with -- --include-ignored (scripts/test-all.sh does)"]
fn leader_latch_keeps_its_leader_through_a_failover_and_hands_over_on_close() {
    let ens = ensemble();
    run(async {
        let (a, b) = (direct(ens).await, direct(ens).await);
        let la = LeaderLatch::new(a.clone(), "/recipes/latch", "a")
            .in_doubt_after(Duration::from_secs(3))
            .start()
            .await
            .unwrap();
        tokio::time::timeout(WAIT, la.wait_leader())
            .await
            .unwrap()
            .unwrap();
        assert!(curator_layout(la.node(), "latch-"), "{}", la.node());
        let lb = LeaderLatch::new(b.clone(), "/recipes/latch", "b")
            .start()
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(lb.state(), LatchState::Candidate);

        let server = ens.node_for_addr(a.server().unwrap()).unwrap();
        ens.node(server).kill().unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while a.counters().session.reconnects == 0 && tokio::time::Instant::now() < deadline {
            assert_eq!(la.state(), LatchState::Leader, "a failover is a pause");
            assert_eq!(lb.state(), LatchState::Candidate, "two leaders");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(la.state(), LatchState::Leader);
        assert_eq!(lb.state(), LatchState::Candidate);
        la.close().await.unwrap();
        tokio::time::timeout(WAIT, lb.wait_leader())
            .await
            .unwrap()
            .unwrap();
        lb.close().await.unwrap();
        ens.heal().await.unwrap();
    });
}

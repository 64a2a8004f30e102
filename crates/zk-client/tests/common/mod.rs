//! Shared helpers: one runtime and one real ensemble per test binary.
#![allow(dead_code, reason = "each test binary uses a subset")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::future::Future;
use std::sync::{LazyLock, OnceLock};
use std::time::Duration;

use zk_client::{Client, OneshotWatcher, PersistentWatcher, WatchEvent, WatchedEvent};
use zk_testkit::{Ensemble, EnsembleBuilder};

/// The runtime every test of the binary runs on (the ensemble's tasks live there too).
pub(crate) static RT: LazyLock<&'static tokio::runtime::Runtime> =
    LazyLock::new(zk_testkit::test_runtime);

/// Runs `f` on the shared runtime, with a generous overall limit.
pub(crate) fn run<F: Future>(limit: Duration, f: F) -> F::Output {
    init_tracing();
    RT.block_on(async move {
        tokio::time::timeout(limit, f)
            .await
            .expect("test timed out")
    })
}

pub(crate) fn init_tracing() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    });
}

/// Starts (once) the binary's ensemble with `builder`.
pub(crate) fn ensemble_with(
    cell: &'static OnceLock<Ensemble>,
    builder: impl FnOnce() -> EnsembleBuilder,
) -> &'static Ensemble {
    cell.get_or_init(|| {
        init_tracing();
        let builder = builder();
        // Possibly called from inside the runtime: start it from a plain thread.
        std::thread::scope(|s| {
            s.spawn(|| RT.block_on(async { builder.start().await.expect("ensemble start") }))
                .join()
                .expect("ensemble start thread")
        })
    })
}

/// A client with a 4 s session authenticated by `mechanism` (SASL), or the connect error.
pub(crate) async fn sasl_client(
    connect: &str,
    mechanism: std::sync::Arc<dyn zk_client::SaslMechanism>,
) -> zk_client::Result<Client> {
    Client::builder(connect)
        .sasl(mechanism)
        .session_timeout(Duration::from_secs(4))
        .connect_timeout(Duration::from_secs(30))
        .connect()
        .await
}

/// The session's identities as the servers report them (whoAmI): (scheme, user).
pub(crate) async fn identities(c: &Client) -> Vec<(String, String)> {
    c.who_am_i()
        .await
        .unwrap()
        .into_iter()
        .map(|i| (i.auth_scheme, i.user))
        .collect()
}

/// A client with a 4 s session (the largest at tick 200).
pub(crate) async fn client(connect: &str) -> Client {
    Client::builder(connect)
        .session_timeout(Duration::from_secs(4))
        .connect_timeout(Duration::from_secs(30))
        .connect()
        .await
        .expect("connect")
}

/// The next node event of a one-shot watcher, skipping session events, within `limit`.
pub(crate) async fn fired(w: OneshotWatcher, limit: Duration) -> WatchedEvent {
    tokio::time::timeout(limit, w)
        .await
        .expect("watch did not fire")
}

/// The next node event or resync of a persistent watcher (session events skipped).
pub(crate) async fn next_node(w: &mut PersistentWatcher, limit: Duration) -> Option<WatchEvent> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, w.next()).await {
            Err(_) | Ok(None) => return None,
            Ok(Some(WatchEvent::Event(e))) if e.is_session_event() && !e.is_terminal() => {}
            Ok(Some(ev)) => return Some(ev),
        }
    }
}

/// Every node event or resync a persistent watcher yields within `window`.
pub(crate) async fn drain(w: &mut PersistentWatcher, window: Duration) -> Vec<WatchEvent> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + window;
    while let Some(ev) = next_node(w, deadline - tokio::time::Instant::now()).await {
        out.push(ev);
    }
    out
}

/// Polls `check` until it is true or `limit` passes.
pub(crate) async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Makes `c`'s next reads see every write acknowledged to any session before this call.
///
/// `sync` alone does not: ZooKeeper 3.8 serves a sync on the *leader* as a plain read, which
/// can overtake commits the leader has sent out but not applied yet (a reader on the leader
/// syncing after each write a follower acknowledged missed 10 and 18 of 3,000 here). A write
/// is applied in zxid order on every server and the session's later reads wait for it, so a
/// no-op write — a check-only multi on the (chroot's) root — is the barrier that holds on
/// any server (0 misses of 3,000 in the same runs). Unlike a read it is not re-sent after a
/// connection loss, so it is retried here (it changes nothing, so twice is harmless).
pub(crate) async fn catch_up(c: &Client) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match c.multi(vec![zk_client::Op::check("/", -1)]).await {
            Ok(_) => return,
            Err(e) if e.is_retryable() && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("check-only multi on / as a read barrier: {e:?}"),
        }
    }
}

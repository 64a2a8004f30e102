//! Shared plumbing for tests against a real ZooKeeper ensemble: one ensemble per test
//! binary, scenarios run one at a time, and each scenario starts from a healed ensemble.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    dead_code,
    unreachable_pub,
    reason = "test harness"
)]

use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{Mutex, OnceCell};
use zk_connstr::ConnectString;
use zk_proto::{Acl, CreateRequest, ErrorCode, ExistsRequest, Id, OpCode, Record, perms};
use zk_session::driver::{DriverEvent, SessionHandle, spawn};
use zk_session::{Request, Session, SessionConfig, SessionState, StaticHostProvider};
use zk_testkit::{Ensemble, EnsembleBuilder};
use zk_transport::{Connector, TcpConnector};

pub static RT: LazyLock<&'static tokio::runtime::Runtime> = LazyLock::new(zk_testkit::test_runtime);
static ENSEMBLE: OnceCell<Ensemble> = OnceCell::const_new();
static SERIAL: Mutex<()> = Mutex::const_new(());

/// Runs one scenario on the binary's shared ensemble (built by `build` on first use), after
/// restoring every node and proxy. Scenarios never overlap.
pub fn scenario<F, Fut>(build: fn() -> EnsembleBuilder, f: F)
where
    F: FnOnce(&'static Ensemble) -> Fut,
    Fut: Future<Output = ()>,
{
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
    RT.block_on(async {
        let _serial = SERIAL.lock().await;
        let ens = ENSEMBLE
            .get_or_init(|| async { build().start().await.expect("ensemble starts") })
            .await;
        heal(ens).await;
        f(ens).await;
    });
}

/// Thaws, restarts and un-blackholes everything, then waits until all nodes serve.
pub async fn heal(ens: &Ensemble) {
    ens.heal().await.expect("ensemble serves again");
}

/// A session on `connect` with timeout `t`, spawned on the current runtime.
pub fn open(
    connect: &str,
    t: Duration,
) -> (
    SessionHandle,
    tokio::sync::mpsc::UnboundedReceiver<DriverEvent>,
) {
    open_with(
        connect,
        zk_session::config_with_timeout(t),
        Arc::new(TcpConnector::new()),
    )
}

/// Like [`open`], but the hosts are tried in the order given (no shuffle).
pub fn open_in_order(
    connect: &str,
    t: Duration,
) -> (
    SessionHandle,
    tokio::sync::mpsc::UnboundedReceiver<DriverEvent>,
) {
    let cs = ConnectString::parse(connect).unwrap();
    let hosts = StaticHostProvider::in_order(cs.hosts().to_vec());
    let session = Session::new(
        zk_session::config_with_timeout(t),
        Box::new(hosts),
        Instant::now(),
    );
    spawn(session, Arc::new(TcpConnector::new()))
}

/// The leader, and a connection string of the other nodes' proxies: sessions on it never sit
/// on the leader, so a fault injected into their server does not start an election.
pub async fn followers_only(ens: &Ensemble) -> (usize, String) {
    let leader = ens.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    let followers: Vec<usize> = (0..ens.nodes().len()).filter(|&i| i != leader).collect();
    (leader, hosts(ens, &followers))
}

/// A connection string of the given nodes' proxies, in that order.
pub fn hosts(ens: &Ensemble, nodes: &[usize]) -> String {
    nodes
        .iter()
        .map(|&i| ens.proxy(i).expect("proxies are on").addr().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

pub fn open_with(
    connect: &str,
    cfg: SessionConfig,
    connector: Arc<dyn Connector>,
) -> (
    SessionHandle,
    tokio::sync::mpsc::UnboundedReceiver<DriverEvent>,
) {
    let cs = ConnectString::parse(connect).unwrap();
    let hosts = StaticHostProvider::new(cs.hosts().to_vec());
    let session = Session::new(cfg, Box::new(hosts), Instant::now());
    spawn(session, connector)
}

pub async fn connected(h: &SessionHandle) {
    let state = h.wait_connected(Duration::from_secs(20)).await;
    assert_eq!(state, SessionState::Connected, "could not connect");
}

pub fn exists_req(path: &str) -> Request {
    Request::read(
        OpCode::Exists,
        ExistsRequest {
            path: path.into(),
            watch: false,
        }
        .to_bytes(),
    )
}

pub fn create_req(path: &str, ephemeral: bool) -> Request {
    let body = CreateRequest {
        path: path.into(),
        data: Bytes::from_static(b"v"),
        acl: vec![Acl {
            perms: perms::ALL,
            id: Id {
                scheme: "world".into(),
                id: "anyone".into(),
            },
        }],
        flags: i32::from(ephemeral),
    };
    Request::write(OpCode::Create, body.to_bytes())
}

pub fn set_data_req(path: &str) -> Request {
    let body = zk_proto::SetDataRequest {
        path: path.into(),
        data: Bytes::from_static(b"x"),
        version: -1,
    };
    Request::write(OpCode::SetData, body.to_bytes())
}

/// Whether `path` exists, asked through `h`.
pub async fn exists(h: &SessionHandle, path: &str) -> bool {
    let reply = h.submit(exists_req(path)).await.expect("exists answered");
    match reply.err {
        ErrorCode::Ok => true,
        ErrorCode::NoNode => false,
        other => panic!("exists {path}: {other:?}"),
    }
}

/// Creates the ephemeral node `/<prefix>-<session id>` on the session; returns its path.
pub async fn ephemeral(h: &SessionHandle, prefix: &str) -> String {
    let path = format!("/{prefix}-{:x}", h.session_id());
    let reply = h.submit(create_req(&path, true)).await.unwrap();
    assert_eq!(reply.err, ErrorCode::Ok, "create {path}");
    path
}

/// Which node the session is on.
pub fn node_of(ens: &Ensemble, h: &SessionHandle) -> usize {
    ens.node_for_addr(h.server().expect("a server"))
        .expect("a known node")
}

/// Reads continuously until stopped; records the longest gap between successful reads
/// and every failure.
pub struct Reader {
    stop: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<ReaderReport>,
}

#[derive(Debug, Default)]
pub struct ReaderReport {
    pub ok: u64,
    pub failed: u64,
    pub longest_gap: Duration,
    pub errors: Vec<String>,
}

impl Reader {
    pub fn start(h: SessionHandle) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            let mut report = ReaderReport::default();
            let mut last_ok = Instant::now();
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                match h.submit(exists_req("/")).await {
                    Ok(r) if r.err == ErrorCode::Ok => {
                        let now = Instant::now();
                        report.longest_gap = report.longest_gap.max(now - last_ok);
                        last_ok = now;
                        report.ok += 1;
                    }
                    other => {
                        report.failed += 1;
                        if report.errors.len() < 10 {
                            report.errors.push(format!("{other:?}"));
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
                tokio::task::yield_now().await;
            }
            report
        });
        Self { stop, task }
    }

    pub async fn stop(self) -> ReaderReport {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

/// Stops every reader; asserts that none saw a failed read; returns the reads answered.
pub async fn stop_all(readers: Vec<Reader>) -> u64 {
    let mut ok = 0;
    for r in readers {
        let report = r.stop().await;
        assert_eq!(report.failed, 0, "reads failed: {:?}", report.errors);
        ok += report.ok;
    }
    ok
}

/// Waits (at most 30 s) until the session has re-established itself `n` times in all and is
/// connected.
pub async fn reconnected(h: &SessionHandle, n: u64) {
    let mut state = h.watch_state();
    let wait =
        state.wait_for(|s| s.state == SessionState::Connected && h.counters().reconnects >= n);
    match tokio::time::timeout(Duration::from_secs(30), wait).await {
        Ok(Ok(_)) => {}
        _ => panic!(
            "not reconnected: state {:?}, counters {:?}",
            h.state(),
            h.counters()
        ),
    }
}

/// The session's state changes, collected from its driver events, for failure messages: when
/// a pause bound breaks, the message shows what the client did and when.
pub struct Timeline {
    log: Arc<std::sync::Mutex<Vec<zk_session::StateChange>>>,
}

impl Timeline {
    pub fn start(mut events: tokio::sync::mpsc::UnboundedReceiver<DriverEvent>) -> Self {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                if let DriverEvent::State(change) = ev {
                    sink.lock().unwrap().push(change);
                }
            }
        });
        Self { log }
    }

    /// One line per state change: milliseconds relative to `origin`, state, node.
    pub fn render(&self, ens: &Ensemble, origin: Instant) -> String {
        let log = self.log.lock().unwrap();
        let mut out = String::new();
        for c in log.iter() {
            let ms = if c.at >= origin {
                (c.at - origin).as_secs_f64() * 1e3
            } else {
                -((origin - c.at).as_secs_f64() * 1e3)
            };
            let node = c.server.and_then(|a| ens.node_for_addr(a));
            out.push_str(&format!("\n  {ms:+9.1} ms {:?} node {node:?}", c.state));
        }
        out
    }
}

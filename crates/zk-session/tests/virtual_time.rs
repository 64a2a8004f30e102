//! The tokio driver over the in-memory transport (`zk_transport::MemoryConnector`) in paused
//! tokio time: the real driver and core, a scripted three-server ensemble of pipes, and a
//! clock that only moves when every task waits. What the simulation tests show of the core
//! alone, these show of the driver that runs it: it sleeps exactly until the core's next
//! deadline, and the core's timing reaches the transport unchanged. No JVM, no sockets; a run
//! takes milliseconds of real time.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

#[path = "support/wire.rs"]
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use wire::{frame, read_frame, reply_frame};
use zk_connstr::{Host, HostSpec};
use zk_proto::{ConnectRequest, ConnectResponse, ErrorCode, Record, RequestHeader};
use zk_session::driver::{DriverEvent, SessionHandle, spawn};
use zk_session::{Session, SessionConfig, SessionState, StaticHostProvider};
use zk_transport::{MemoryConnector, MemoryListener};

const T: Duration = Duration::from_secs(6);

fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i], 2181))
}

/// The scripted ensemble's shared state.
#[derive(Default)]
struct Ensemble {
    /// Servers accept and close every connection without a handshake (a leader election).
    electing: AtomicBool,
    /// Servers read requests but answer nothing (SIGSTOP).
    frozen: AtomicBool,
    /// Connections accepted while electing.
    closed_unanswered: AtomicUsize,
}

/// Serves every connection the listener hands over, like a ZooKeeper server: a handshake
/// answered (the session kept), then every request answered at once — unless the ensemble is
/// electing or frozen. `drop_all` closes every established connection (the followers dropping
/// their clients when the leader dies).
async fn serve(mut listener: MemoryListener, ens: Arc<Ensemble>, drop_all: watch::Receiver<u64>) {
    while let Some((_target, stream)) = listener.accept().await {
        let ens = Arc::clone(&ens);
        let drop_all = drop_all.clone();
        tokio::spawn(async move { connection(stream, ens, drop_all).await });
    }
}

async fn connection(mut s: DuplexStream, ens: Arc<Ensemble>, mut drop_all: watch::Receiver<u64>) {
    drop_all.mark_unchanged();
    if ens.electing.load(Ordering::SeqCst) {
        ens.closed_unanswered.fetch_add(1, Ordering::SeqCst);
        return;
    }
    let Some(req) = read_frame(&mut s).await else {
        return;
    };
    let req = ConnectRequest::decode(&mut Bytes::from(req)).unwrap();
    let resp = ConnectResponse {
        protocol_version: 0,
        timeout: i32::try_from(T.as_millis()).unwrap(),
        session_id: if req.session_id == 0 {
            0x5eed
        } else {
            req.session_id
        },
        passwd: Bytes::from_static(&[7; 16]),
        read_only: false,
    };
    if s.write_all(&frame(&resp.to_bytes())).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            _ = drop_all.changed() => return,
            f = read_frame(&mut s) => {
                let Some(f) = f else { return };
                if ens.frozen.load(Ordering::SeqCst) {
                    continue;
                }
                let header = RequestHeader::decode(&mut Bytes::from(f)).unwrap();
                if s.write_all(&reply_frame(header.xid, 1, ErrorCode::Ok, &[])).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// A connected session over three in-memory servers, its events, and the handles to break
/// the servers.
async fn connected() -> (
    SessionHandle,
    mpsc::UnboundedReceiver<DriverEvent>,
    MemoryConnector,
    Arc<Ensemble>,
    watch::Sender<u64>,
) {
    let (connector, listener) = MemoryConnector::new();
    let ens = Arc::new(Ensemble::default());
    let (drop_tx, drop_rx) = watch::channel(0);
    tokio::spawn(serve(listener, Arc::clone(&ens), drop_rx));
    let hosts = (1..=3)
        .map(|i| HostSpec {
            host: Host::Ipv4(std::net::Ipv4Addr::new(10, 0, 0, i)),
            port: 2181,
        })
        .collect();
    let mut cfg = SessionConfig::with_timeout(T);
    cfg.rng_seed = Some(7);
    let core = Session::new(
        cfg,
        Box::new(StaticHostProvider::new(hosts)),
        Instant::now().into_std(),
    );
    let (h, events) = spawn(core, Arc::new(connector.clone()));
    assert_eq!(
        h.wait_connected(Duration::from_secs(5)).await,
        SessionState::Connected
    );
    (h, events, connector, ens, drop_tx)
}

/// The leader dies (its address refuses from now on), the followers drop their clients and
/// elect for 400 ms of virtual time. The driver sleeps through the core's planned probes: a
/// few connections, and the session back within 250 ms of the election's end.
#[tokio::test(start_paused = true)]
async fn an_election_is_waited_out_with_a_few_connections_in_virtual_time() {
    let (h, _events, connector, ens, drop_all) = connected().await;
    let id = h.session_id();
    let on = h.server().unwrap();
    let leader = (1..=3).map(addr).find(|a| *a != on).unwrap();
    let attempts_before: usize = (1..=3).map(|i| connector.attempts(addr(i))).sum();
    let crash = Instant::now();
    connector.refuse(leader);
    ens.electing.store(true, Ordering::SeqCst);
    drop_all.send_modify(|g| *g += 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    ens.electing.store(false, Ordering::SeqCst);
    let election_end = Instant::now();
    assert_eq!(
        h.wait_connected(Duration::from_secs(5)).await,
        SessionState::Connected
    );
    let back = Instant::now() - election_end;
    assert_eq!(h.session_id(), id);
    let attempts: usize =
        (1..=3).map(|i| connector.attempts(addr(i))).sum::<usize>() - attempts_before;
    let accepted_unanswered = ens.closed_unanswered.load(Ordering::SeqCst);
    assert!(
        back <= Duration::from_millis(250),
        "back {back:?} after the election ({:?} after the crash)",
        election_end - crash
    );
    // Accepted connections (the refused leader's address is not accepted): the unanswered ones
    // during the election, and then the handshake that succeeded: five at most.
    assert!(
        accepted_unanswered < 5,
        "{accepted_unanswered} connections closed unanswered, {attempts} attempts in all"
    );
    assert!(h.counters().election_probes >= 1);
}

/// A server that takes requests and answers nothing (frozen) is left after T/3 of silence —
/// 2 s of virtual time at T = 6 s — for another server, with the same session.
#[tokio::test(start_paused = true)]
async fn a_silent_server_is_left_after_a_third_of_the_timeout_in_virtual_time() {
    let (h, mut events, _connector, ens, drop_all) = connected().await;
    let id = h.session_id();
    ens.frozen.store(true, Ordering::SeqCst);
    let frozen_at = Instant::now();
    // Every state change arrives as an event (the watch channel keeps only the latest, and
    // the reconnect follows the loss within the same virtual instant).
    loop {
        match events.recv().await {
            Some(DriverEvent::State(c)) if c.state == SessionState::Disconnected => break,
            Some(_) => {}
            None => panic!("the session ended"),
        }
    }
    let detected = Instant::now() - frozen_at;
    assert!(
        detected >= T / 3 - Duration::from_millis(50) && detected <= T / 3 + T / 9,
        "silence detected after {detected:?}"
    );
    // The other servers answer again (the freeze was one server's; the script freezes all,
    // so thaw before the reconnect, and drop the frozen connections).
    ens.frozen.store(false, Ordering::SeqCst);
    drop_all.send_modify(|g| *g += 1);
    assert_eq!(
        h.wait_connected(Duration::from_secs(5)).await,
        SessionState::Connected
    );
    assert_eq!(h.session_id(), id);
    assert_eq!(h.counters().detector_trips, 1);
}

//! The whole client — API, watch registry, `SetWatches` after a reconnect, the driver and the
//! core — over the in-memory transport (`zk_transport::MemoryConnector`) in paused tokio time.
//! The servers are a small in-memory ZooKeeper written for this test (one data tree shared by
//! three addresses, sessions, data watches, `SetWatches` answered the way ZooKeeper 3.8 does:
//! a watch whose node changed after the relative zxid fires at once). It is not a ZooKeeper:
//! the real-ensemble tier (`failover.rs`, `ops.rs`, …) shows the same behaviour against real
//! servers; these run in milliseconds without a JVM and put exact virtual-time bounds on it.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use zk_client::{Client, CreateMode, Error, EventType, SessionState, acl};
use zk_proto::{
    ConnectRequest, ConnectResponse, CreateResponse, ErrorCode, ExistsResponse, GetDataResponse,
    Record, Request, RequestHeader, SetDataResponse, Stat, WatcherEvent, decode_request,
};
use zk_session_core::testing::{frame, reply_frame};
use zk_transport::{MemoryConnector, MemoryListener};

const T: Duration = Duration::from_secs(6);
const CONNECT: &str = "10.0.0.1:2181,10.0.0.2:2181,10.0.0.3:2181";

/// The in-memory ensemble: one tree, sessions, watches, and which addresses are down or frozen.
#[derive(Default)]
struct State {
    tree: BTreeMap<String, (Bytes, Stat)>,
    zxid: i64,
    /// Live sessions and the server and outbound queue of the connection serving each, if any.
    sessions: HashMap<i64, Option<(SocketAddr, mpsc::UnboundedSender<Bytes>)>>,
    next_session: i64,
    data_watches: HashMap<String, HashSet<i64>>,
    down: HashSet<SocketAddr>,
    frozen: HashSet<SocketAddr>,
    /// `SetWatches`/`SetWatches2` packets received.
    set_watches: usize,
    /// Connections accepted (by a server that was up).
    accepted: usize,
}

struct Ensemble {
    state: Mutex<State>,
    connector: MemoryConnector,
    /// Bumped when servers go down: their connections end.
    gone: watch::Sender<u64>,
}

impl Ensemble {
    fn start() -> Arc<Self> {
        let (connector, listener) = MemoryConnector::new();
        let mut state = State {
            zxid: 0x1_0000_0000,
            next_session: 0x0100_0000_0000_0001,
            ..State::default()
        };
        state
            .tree
            .insert("/".to_owned(), (Bytes::new(), Stat::default()));
        let ens = Arc::new(Self {
            state: Mutex::new(state),
            connector,
            gone: watch::channel(0).0,
        });
        tokio::spawn(serve(listener, Arc::clone(&ens)));
        ens
    }

    /// kill −9 of `addr`: its connections end, new ones are refused.
    fn crash(&self, addr: SocketAddr) {
        let mut st = self.state.lock().unwrap();
        st.down.insert(addr);
        // Its connections are gone at once: nothing more reaches their sessions.
        for conn in st.sessions.values_mut() {
            if conn.as_ref().is_some_and(|(a, _)| *a == addr) {
                *conn = None;
            }
        }
        drop(st);
        self.connector.refuse(addr);
        self.gone.send_modify(|g| *g += 1);
    }

    /// SIGSTOP of `addr`: connections stay, nothing is answered.
    fn freeze(&self, addr: SocketAddr) {
        self.state.lock().unwrap().frozen.insert(addr);
    }

    /// Another client's write: the data of `path` changes and its watches fire.
    fn write(&self, path: &str, data: impl Into<Bytes>) {
        let mut st = self.state.lock().unwrap();
        set_data(&mut st, path, data.into(), -1).unwrap();
    }

    /// Publishes `/zookeeper/config` (created on first use) as the servers would.
    fn publish_config(&self, text: &str) {
        let mut st = self.state.lock().unwrap();
        for p in ["/zookeeper", "/zookeeper/config"] {
            st.tree
                .entry(p.to_owned())
                .or_insert_with(|| (Bytes::new(), Stat::default()));
        }
        set_data(
            &mut st,
            "/zookeeper/config",
            Bytes::from(text.to_owned()),
            -1,
        )
        .unwrap();
    }

    fn set_watches(&self) -> usize {
        self.state.lock().unwrap().set_watches
    }
}

fn set_data(st: &mut State, path: &str, data: Bytes, version: i32) -> Result<Stat, ErrorCode> {
    st.zxid += 1;
    let zxid = st.zxid;
    let Some((old, stat)) = st.tree.get_mut(path) else {
        return Err(ErrorCode::NoNode);
    };
    if version != -1 && version != stat.version {
        return Err(ErrorCode::BadVersion);
    }
    *old = data.clone();
    stat.version += 1;
    stat.mzxid = zxid;
    stat.data_length = i32::try_from(data.len()).unwrap();
    let stat = stat.clone();
    fire(st, path, EventType::NodeDataChanged);
    Ok(stat)
}

/// Sends a data watch's event to the sessions watching `path` (lost if their connection is).
fn fire(st: &mut State, path: &str, event: EventType) {
    for session in st.data_watches.remove(path).unwrap_or_default() {
        if let Some(Some((_, tx))) = st.sessions.get(&session) {
            let _ = tx.send(notification(path, event));
        }
    }
}

fn notification(path: &str, event: EventType) -> Bytes {
    let body = WatcherEvent {
        event_type: i32::from(event),
        state: 3,
        path: path.to_owned(),
    }
    .to_bytes();
    reply_frame(zk_proto::xid::NOTIFICATION, -1, ErrorCode::Ok, &body)
}

async fn serve(mut listener: MemoryListener, ens: Arc<Ensemble>) {
    while let Some((target, stream)) = listener.accept().await {
        tokio::spawn(connection(target.addr, stream, Arc::clone(&ens)));
    }
}

async fn read_frame(s: &mut DuplexStream) -> Option<Bytes> {
    let len = s.read_u32().await.ok()?;
    let mut payload = vec![0; usize::try_from(len).ok()?.min(1 << 20)];
    s.read_exact(&mut payload).await.ok()?;
    Some(Bytes::from(payload))
}

/// One server connection: the handshake (a new session, or an existing one re-attached to
/// this connection), then requests answered in order and notifications interleaved.
async fn connection(addr: SocketAddr, mut s: DuplexStream, ens: Arc<Ensemble>) {
    let mut gone = ens.gone.subscribe();
    if ens.state.lock().unwrap().down.contains(&addr) {
        return;
    }
    ens.state.lock().unwrap().accepted += 1;
    let Some(req) = read_frame(&mut s).await else {
        return;
    };
    let req: ConnectRequest = zk_proto::decode_exact(req).unwrap();
    let (tx, mut notifications) = mpsc::unbounded_channel();
    let resp = {
        let mut st = ens.state.lock().unwrap();
        let known = req.session_id != 0 && st.sessions.contains_key(&req.session_id);
        let id = if req.session_id == 0 {
            st.next_session += 1;
            st.next_session
        } else {
            req.session_id
        };
        if req.session_id != 0 && !known {
            ConnectResponse {
                protocol_version: 0,
                timeout: 0,
                session_id: 0,
                passwd: Bytes::from_static(&[0; 16]),
                read_only: false,
            }
        } else {
            st.sessions.insert(id, Some((addr, tx)));
            ConnectResponse {
                protocol_version: 0,
                timeout: i32::try_from(T.as_millis()).unwrap(),
                session_id: id,
                passwd: Bytes::from_static(&[7; 16]),
                read_only: false,
            }
        }
    };
    let session = resp.session_id;
    if s.write_all(&frame(&resp.to_bytes())).await.is_err() || session == 0 {
        return;
    }
    loop {
        tokio::select! {
            biased;
            _ = gone.changed() => {
                if ens.state.lock().unwrap().down.contains(&addr) {
                    return;
                }
            }
            Some(n) = notifications.recv() => {
                if s.write_all(&n).await.is_err() {
                    return;
                }
            }
            f = read_frame(&mut s) => {
                let Some(mut f) = f else { return };
                if ens.state.lock().unwrap().frozen.contains(&addr) {
                    continue;
                }
                let header = RequestHeader::decode(&mut f).unwrap();
                let (reply, close) = answer(&ens, session, header, f);
                if s.write_all(&reply).await.is_err() || close {
                    return;
                }
            }
        }
    }
}

/// The answer to one request, and whether the connection closes after it.
fn answer(ens: &Ensemble, session: i64, header: RequestHeader, body: Bytes) -> (Bytes, bool) {
    let mut st = ens.state.lock().unwrap();
    let request = decode_request(header.op, body).unwrap();
    let mut out = BytesMut::new();
    let result: Result<(), ErrorCode> = match request {
        Request::Ping => Ok(()),
        Request::CloseSession => {
            st.sessions.remove(&session);
            let zxid = st.zxid;
            return (reply_frame(header.xid, zxid, ErrorCode::Ok, &[]), true);
        }
        Request::Create(r) => {
            let parent = match r.path.rfind('/') {
                Some(0) => "/",
                Some(i) => &r.path[..i],
                None => "",
            };
            if st.tree.contains_key(&r.path) {
                Err(ErrorCode::NodeExists)
            } else if !st.tree.contains_key(parent) {
                Err(ErrorCode::NoNode)
            } else {
                st.zxid += 1;
                let stat = Stat {
                    czxid: st.zxid,
                    mzxid: st.zxid,
                    data_length: i32::try_from(r.data.len()).unwrap(),
                    ..Stat::default()
                };
                st.tree.insert(r.path.clone(), (r.data, stat));
                fire(&mut st, &r.path, EventType::NodeCreated);
                CreateResponse { path: r.path }.encode(&mut out);
                Ok(())
            }
        }
        Request::GetData(r) => match st.tree.get(&r.path).cloned() {
            Some((data, stat)) => {
                if r.watch {
                    st.data_watches.entry(r.path).or_default().insert(session);
                }
                GetDataResponse {
                    data: Some(data),
                    stat,
                }
                .encode(&mut out);
                Ok(())
            }
            None => Err(ErrorCode::NoNode),
        },
        Request::Exists(r) => {
            if r.watch {
                st.data_watches
                    .entry(r.path.clone())
                    .or_default()
                    .insert(session);
            }
            match st.tree.get(&r.path) {
                Some((_, stat)) => {
                    ExistsResponse { stat: stat.clone() }.encode(&mut out);
                    Ok(())
                }
                None => Err(ErrorCode::NoNode),
            }
        }
        Request::SetData(r) => set_data(&mut st, &r.path, r.data, r.version).map(|stat| {
            SetDataResponse { stat }.encode(&mut out);
        }),
        Request::SetWatches(zk_proto::SetWatches {
            relative_zxid,
            data_watches,
            exist_watches,
            ..
        })
        | Request::SetWatches2(zk_proto::SetWatches2 {
            relative_zxid,
            data_watches,
            exist_watches,
            ..
        }) => {
            st.set_watches += 1;
            re_register(
                &mut st,
                session,
                relative_zxid,
                &data_watches,
                &exist_watches,
            );
            Ok(())
        }
        _ => Err(ErrorCode::Unimplemented),
    };
    let zxid = st.zxid;
    let reply = match result {
        Ok(()) => reply_frame(header.xid, zxid, ErrorCode::Ok, &out),
        Err(code) => reply_frame(header.xid, zxid, code, &[]),
    };
    (reply, false)
}

/// `SetWatches` as ZooKeeper answers it: a watch whose node changed (or vanished, or appeared)
/// after `relative_zxid` fires at once; the others are registered.
fn re_register(
    st: &mut State,
    session: i64,
    relative_zxid: i64,
    data: &[String],
    exist: &[String],
) {
    let tx = st
        .sessions
        .get(&session)
        .cloned()
        .flatten()
        .map(|(_, tx)| tx);
    for path in data.iter().chain(exist) {
        let event = match st.tree.get(path) {
            Some((_, stat)) if stat.mzxid > relative_zxid => Some(EventType::NodeDataChanged),
            Some(_) => None,
            None if data.contains(path) => Some(EventType::NodeDeleted),
            None => None,
        };
        match (event, &tx) {
            (Some(event), Some(tx)) => {
                let _ = tx.send(notification(path, event));
            }
            _ => {
                st.data_watches
                    .entry(path.clone())
                    .or_default()
                    .insert(session);
            }
        }
    }
}

async fn connect(ens: &Ensemble) -> Client {
    connect_following(ens, true).await
}

async fn connect_following(ens: &Ensemble, follow: bool) -> Client {
    Client::builder(CONNECT)
        .session_timeout(T)
        .follow_reconfig(follow)
        .connector(Arc::new(ens.connector.clone()))
        .configure_session(|cfg| {
            // Nothing learned by other tests' sessions in this process; one fixed seed.
            cfg.shared = None;
            cfg.rng_seed = Some(0x5eed);
        })
        .connect()
        .await
        .unwrap()
}

/// An ensemble, a connected client and a persistent node at `path`.
async fn with_node(path: &str, data: &'static [u8]) -> (Arc<Ensemble>, Client) {
    let ens = Ensemble::start();
    let client = connect(&ens).await;
    client
        .create(path, data, &acl::open_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
    (ens, client)
}

/// A crash of the session's server while a watch is armed and another client writes the
/// node: the session comes back on another address at once (no election here), keeps its
/// id, re-registers the watch with `SetWatches`, and the write it missed fires the watch.
#[tokio::test(start_paused = true)]
async fn a_watch_armed_before_a_crash_fires_for_the_write_it_missed() {
    let (ens, client) = with_node("/a", b"v1").await;
    let id = client.session_id();
    let (data, _, mut watcher) = client.get_data_watch("/a").await.unwrap();
    assert_eq!(&data[..], b"v1");

    let before = Instant::now();
    let server = client.server().unwrap();
    ens.crash(server);
    // Written while the session has no connection: the notification is lost on the wire.
    ens.write("/a", &b"v2"[..]);
    // Like the Java client's, the watcher also sees the disconnection and the reconnection.
    let event = tokio::time::timeout(T, async {
        loop {
            let event = watcher.next_event().await.unwrap();
            if !event.is_session_event() {
                return event;
            }
        }
    })
    .await
    .expect("the watch fires after the reconnect");
    assert_eq!(event.event_type, EventType::NodeDataChanged);
    assert_eq!(event.path, "/a");
    assert!(
        before.elapsed() < Duration::from_millis(100),
        "virtual pause {:?}",
        before.elapsed()
    );
    assert_eq!(client.session_id(), id, "the same session");
    assert_ne!(client.server(), Some(server));
    assert!(ens.set_watches() >= 1, "watches re-registered");
    let (data, _) = client.get_data("/a").await.unwrap();
    assert_eq!(&data[..], b"v2");
    client.close().await;
}

/// A frozen server (SIGSTOP: the connection stays, nothing is answered): a read issued to it
/// completes on another server once the silence reaches a third of the session timeout, in
/// virtual time — not after the whole timeout, and not as an error.
#[tokio::test(start_paused = true)]
async fn a_read_on_a_frozen_server_completes_elsewhere_after_a_third_of_the_timeout() {
    let (ens, client) = with_node("/f", b"x").await;
    let id = client.session_id();
    let server = client.server().unwrap();
    ens.freeze(server);
    let before = Instant::now();
    let (data, _) = client.get_data("/f").await.unwrap();
    let took = before.elapsed();
    assert_eq!(&data[..], b"x");
    assert!(
        took >= T / 4 && took <= T / 2,
        "the read took {took:?} of virtual time (T = {T:?})"
    );
    assert_eq!(client.session_id(), id);
    assert_ne!(client.server(), Some(server));
    client.close().await;
}

/// Every server gone for longer than the session timeout: the client expires the session
/// itself after 4T/3 without contact (no server is there to say so), reports `Expired`, and
/// operations fail with `SessionExpired` at once.
#[tokio::test(start_paused = true)]
async fn with_every_server_gone_the_session_expires_locally_at_four_thirds_of_the_timeout() {
    let ens = Ensemble::start();
    let client = connect(&ens).await;
    let mut states = client.state_stream();
    let before = Instant::now();
    for i in 1..=3 {
        ens.crash(SocketAddr::from((Ipv4Addr::new(10, 0, 0, i), 2181)));
    }
    let expired = tokio::time::timeout(3 * T, async {
        loop {
            if states.borrow_and_update().state.is_terminal() {
                return before.elapsed();
            }
            states.changed().await.unwrap();
        }
    })
    .await
    .expect("expired");
    assert!(
        matches!(client.state(), SessionState::Expired { .. }),
        "{:?}",
        client.state()
    );
    assert!(
        expired >= T && expired <= T * 4 / 3 + Duration::from_millis(100),
        "expired after {expired:?} of virtual time"
    );
    let err = client.exists("/").await.unwrap_err();
    assert!(matches!(err, Error::SessionExpired { .. }), "{err:?}");
    assert!(
        ens.state.lock().unwrap().accepted <= 3,
        "nothing accepted while down"
    );
}

/// `/zookeeper/config` text for the in-memory servers `ids` (10.0.0.<id>:2181), `version`.
fn config(ids: &[u8], version: u64) -> String {
    let mut text: String = ids
        .iter()
        .map(|i| format!("server.{i}=10.0.0.{i}:2888:3888:participant;0.0.0.0:2181\n"))
        .collect();
    text.push_str(&format!("version={version:x}\n"));
    text
}

fn addr_of(i: u8) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(10, 0, 0, i), 2181))
}

/// The ensemble's configuration drops the session's server: the client's host list follows
/// and the session moves to a remaining server within a second (a fifth of the 5 s spread),
/// same session.
#[tokio::test(start_paused = true)]
async fn following_the_configuration_moves_off_a_removed_server_in_virtual_time() {
    let ens = Ensemble::start();
    ens.publish_config(&config(&[1, 2, 3], 1));
    let client = connect(&ens).await;
    let id = client.session_id();
    let mut list = client.host_list();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(list.borrow_and_update().config_version, Some(1));
    let on = client.server().unwrap();
    let rest: Vec<u8> = (1..=3).filter(|i| addr_of(*i) != on).collect();
    let before = Instant::now();
    ens.publish_config(&config(&rest, 2));
    tokio::time::timeout(T, list.wait_for(|l| l.hosts.len() == 2))
        .await
        .unwrap()
        .unwrap();
    while client.server() == Some(on) || client.state() != SessionState::Connected {
        assert!(before.elapsed() < Duration::from_millis(1100), "not moved");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(client.session_id(), id);
    assert_eq!(client.counters().session.rebalances, 1);
    assert_eq!(client.host_list().borrow().config_version, Some(2));
    client.close().await;
}

/// A configuration the client cannot use (garbage, no client address) or an older version
/// leaves the host list as it is; the rejection is reported.
#[tokio::test(start_paused = true)]
async fn an_unusable_or_older_configuration_is_ignored_in_virtual_time() {
    let ens = Ensemble::start();
    ens.publish_config(&config(&[1, 2, 3], 5));
    let client = connect(&ens).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let hosts = client.host_list().borrow().hosts.clone();
    assert_eq!(hosts.len(), 3);
    for bad in [
        "server.1=garbage\nversion=6\n".to_owned(),
        "server.1=10.0.0.1:2888:3888\nversion=7\n".to_owned(),
        config(&[1], 4),
    ] {
        ens.publish_config(&bad);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let list = client.host_list().borrow().clone();
        assert_eq!(list.hosts, hosts, "after {bad:?}");
        assert_eq!(list.config_version, Some(5));
    }
    assert!(client.host_list().borrow().rejected.is_some());
    assert_eq!(client.counters().session.rebalances, 0);
    client.close().await;
}

/// With following switched off (a VIP, a load balancer) the list never changes.
#[tokio::test(start_paused = true)]
async fn with_following_off_the_host_list_never_changes_in_virtual_time() {
    let ens = Ensemble::start();
    ens.publish_config(&config(&[1, 2, 3], 1));
    let client = connect_following(&ens, false).await;
    let on = client.server().unwrap();
    let rest: Vec<u8> = (1..=3).filter(|i| addr_of(*i) != on).collect();
    ens.publish_config(&config(&rest, 2));
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(client.server(), Some(on));
    assert_eq!(client.host_list().borrow().hosts.len(), 3);
    assert_eq!(client.host_list().borrow().config_version, None);
    // By hand: another chroot is refused, the same hosts are no change.
    let r = client.update_hosts("10.0.0.1:2181/other").await;
    assert!(matches!(r, Err(Error::InvalidArgument { .. })), "{r:?}");
    assert!(!client.update_hosts(CONNECT).await.unwrap());
    client.close().await;
}

//! Watches: the registry of every armed watcher, routing of server notifications and
//! session states to watchers, and the preamble that re-registers everything (plus the
//! recorded auth) on every handshake.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::sync::mpsc;
use tracing::{debug, trace, warn};
use zk_connstr::Chroot;
use zk_proto::{
    AuthPacket, ErrorCode, EventType, KeeperState, OpCode, Record, SetWatches, SetWatches2,
    WatcherEvent, xid,
};
use zk_session::driver::DriverEvent;
use zk_session::{Preamble, PreamblePacket, SessionState};

/// A node or session event delivered to a watcher (Java's `WatchedEvent`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WatchedEvent {
    /// What happened to the node; [`EventType::None`] for a session state change.
    pub event_type: EventType,
    /// The session's state when the event was delivered.
    pub state: KeeperState,
    /// The node (chroot stripped). For a session state change: the watched path.
    pub path: String,
}

impl WatchedEvent {
    /// Whether this is a session state change rather than a node event.
    #[must_use]
    pub fn is_session_event(&self) -> bool {
        self.event_type == EventType::None
    }

    /// Whether this event ends the session (expired, closed, authentication failed).
    #[must_use]
    pub fn is_terminal(&self) -> bool {
        self.is_session_event()
            && matches!(
                self.state,
                KeeperState::Expired | KeeperState::Closed | KeeperState::AuthFailed
            )
    }
}

/// What a [`PersistentWatcher`] yields.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WatchEvent {
    /// A node event, or a session state change (`event_type == None`).
    Event(WatchedEvent),
    /// The watch was re-registered after a reconnect, and changes made between `from_zxid`
    /// (the last zxid the client had seen) and `to_zxid` (the server's zxid when it
    /// re-armed the watch) were not replayed (the server never replays them for
    /// persistent watches). Re-read whatever state the watch guards.
    ///
    /// Delivered whenever the two differ, so it may also follow a gap in which nothing
    /// relevant to this watch changed.
    Resync {
        /// The last zxid seen before the disconnect.
        from_zxid: i64,
        /// The server's last zxid when the watch was re-armed.
        to_zxid: i64,
    },
}

/// The watch classes the server keeps per path (and the client re-registers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// getData / exists on an existing node.
    Data,
    /// exists on a missing node.
    Exist,
    /// getChildren.
    Child,
    /// addWatch persistent.
    Persistent,
    /// addWatch persistent recursive.
    Recursive,
}

impl Kind {
    const fn is_persistent(self) -> bool {
        matches!(self, Self::Persistent | Self::Recursive)
    }

    /// The server-side class for removeWatches: 1 children, 2 data (and exists), 3 any.
    const fn server_type(self) -> i32 {
        match self {
            Self::Child => 1,
            Self::Data | Self::Exist => 2,
            Self::Persistent | Self::Recursive => 3,
        }
    }

    /// Two kinds the server removes with the same removeWatches type.
    const fn same_class(self, other: Self) -> bool {
        self.server_type() == other.server_type()
    }
}

#[derive(Debug)]
struct Entry {
    id: u64,
    kind: Kind,
    /// The call that set it was answered (and the answer processed). Only confirmed
    /// watches are re-registered by the preamble; see [`Registry::confirm`].
    confirmed: bool,
    /// Preamble epoch when the call was submitted.
    epoch: u64,
    client_path: String,
    tx: mpsc::UnboundedSender<WatchEvent>,
}

/// A re-registration whose first reply decides about `Resync`.
#[derive(Debug)]
struct PendingResync {
    relative_zxid: i64,
    replies_left: usize,
    decided: bool,
    persistent_ids: Vec<u64>,
}

/// Counters about watches and their re-registration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WatchCounters {
    /// Handshakes whose preamble was built (each re-registers every confirmed watch).
    pub preambles: u64,
    /// SetWatches / SetWatches2 packets written in preambles (every handshake attempt
    /// counts, also those the server closed before answering).
    pub set_watches_packets: u64,
    /// Their total encoded size (request header + body, without the length prefix).
    pub set_watches_bytes: u64,
    /// The largest one.
    pub set_watches_max_packet: u64,
    /// Watch paths re-registered, summed over preambles.
    pub reregistered: u64,
    /// Node notifications received from servers.
    pub notifications: u64,
    /// Events delivered to watchers (one notification can reach several).
    pub delivered: u64,
    /// `Resync` events delivered.
    pub resyncs: u64,
    /// Watches whose answer raced a reconnect and were re-armed with an explicit SetWatches.
    pub rearmed: u64,
    /// removeWatches sent for dropped watch handles.
    pub removals: u64,
    /// Handshakes that reused the previous preamble unchanged (nothing changed in between,
    /// e.g. retries during a leader election).
    pub preamble_cache_hits: u64,
}

/// Every armed watcher, keyed by server path.
#[derive(Debug)]
pub(crate) struct Registry {
    chroot: Option<Chroot>,
    entries: HashMap<String, Vec<Entry>>,
    next_id: u64,
    epoch: u64,
    auth: Vec<(String, Bytes)>,
    batch_limit: usize,
    set_watches2_unsupported: bool,
    resyncs: VecDeque<PendingResync>,
    last_state: Option<SessionState>,
    closed: bool,
    /// Bumped by every change that can alter the preamble.
    generation: u64,
    /// The last preamble built, reused while nothing changed (a leader election makes the
    /// engine hand-shake many times in a row; megabytes of watch paths are encoded once).
    cache: Option<CachedPreamble>,
    pub(crate) counters: WatchCounters,
}

#[derive(Debug)]
struct CachedPreamble {
    generation: u64,
    relative_zxid: i64,
    packets: Vec<PreamblePacket>,
    watches: usize,
    persistent_ids: Vec<u64>,
}

pub(crate) type Shared = Arc<Mutex<Registry>>;

pub(crate) fn lock(reg: &Shared) -> MutexGuard<'_, Registry> {
    reg.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Size of a request frame's length prefix plus header (xid, type).
const FRAME_OVERHEAD: usize = 4 + 8;

impl Registry {
    pub(crate) fn new(
        chroot: Option<Chroot>,
        auth: Vec<(String, Bytes)>,
        batch_limit: usize,
    ) -> Self {
        Self {
            chroot,
            entries: HashMap::new(),
            next_id: 1,
            epoch: 0,
            auth,
            batch_limit,
            set_watches2_unsupported: false,
            resyncs: VecDeque::new(),
            last_state: None,
            closed: false,
            generation: 0,
            cache: None,
            counters: WatchCounters::default(),
        }
    }

    fn client_path(&self, server_path: &str) -> String {
        match &self.chroot {
            Some(c) => c.strip(server_path).unwrap_or(server_path).to_owned(),
            None => server_path.to_owned(),
        }
    }

    /// Registers a watcher before the call that arms it is sent, so an event arriving
    /// right after the answer is never missed.
    pub(crate) fn register(
        &mut self,
        server_path: &str,
        kind: Kind,
    ) -> Option<(u64, u64, mpsc::UnboundedReceiver<WatchEvent>)> {
        self.generation += 1;
        if self.closed {
            return None;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let id = self.next_id;
        self.next_id += 1;
        let client_path = self.client_path(server_path);
        self.entries
            .entry(server_path.to_owned())
            .or_default()
            .push(Entry {
                id,
                kind,
                confirmed: false,
                epoch: self.epoch,
                client_path,
                tx,
            });
        Some((id, self.epoch, rx))
    }

    /// The call that set watcher `id` was answered: from now on the watcher is
    /// re-registered on every reconnect. Returns `true` when a preamble was built since the
    /// call was submitted: the answer may have come on a connection that is gone, and that
    /// preamble did not carry this (then unconfirmed) watch, so the caller re-arms it.
    pub(crate) fn confirm(&mut self, server_path: &str, id: u64, kind: Kind) -> bool {
        self.generation += 1;
        let epoch = self.epoch;
        let Some(e) = self
            .entries
            .get_mut(server_path)
            .and_then(|v| v.iter_mut().find(|e| e.id == id))
        else {
            return false; // Already fired (or cancelled).
        };
        e.kind = kind;
        e.confirmed = true;
        e.epoch != epoch
    }

    /// Removes watcher `id` (its call failed, or its handle was dropped). Returns the
    /// removeWatches type to send when no other watcher keeps the server's watch of that
    /// class needed.
    pub(crate) fn remove(&mut self, server_path: &str, id: u64) -> Option<i32> {
        self.generation += 1;
        let list = self.entries.get_mut(server_path)?;
        let pos = list.iter().position(|e| e.id == id)?;
        let e = list.remove(pos);
        let others = list
            .iter()
            .any(|o| o.kind.same_class(e.kind) || o.kind.is_persistent() || e.kind.is_persistent());
        if list.is_empty() {
            self.entries.remove(server_path);
        }
        (e.confirmed && !others && !self.closed).then_some(e.kind.server_type())
    }

    /// Removes every watcher of `kinds` at `server_path`, delivering `event_type` to each.
    pub(crate) fn remove_all(
        &mut self,
        server_path: &str,
        matches: impl Fn(Kind) -> bool,
    ) -> usize {
        self.generation += 1;
        let Some(list) = self.entries.get_mut(server_path) else {
            return 0;
        };
        let mut removed = 0;
        list.retain(|e| {
            if !matches(e.kind) {
                return true;
            }
            let event_type = match e.kind {
                Kind::Data | Kind::Exist => EventType::DataWatchRemoved,
                Kind::Child => EventType::ChildWatchRemoved,
                Kind::Persistent | Kind::Recursive => EventType::PersistentWatchRemoved,
            };
            let _ = e.tx.send(WatchEvent::Event(WatchedEvent {
                event_type,
                state: KeeperState::SyncConnected,
                path: e.client_path.clone(),
            }));
            removed += 1;
            false
        });
        if list.is_empty() {
            self.entries.remove(server_path);
        }
        removed
    }

    pub(crate) fn has_local(&self, server_path: &str, matches: impl Fn(Kind) -> bool) -> bool {
        self.entries
            .get(server_path)
            .is_some_and(|l| l.iter().any(|e| matches(e.kind)))
    }

    /// Records credentials to present on every reconnect.
    pub(crate) fn add_auth(&mut self, scheme: String, auth: Bytes) {
        self.generation += 1;
        if !self.auth.iter().any(|(s, a)| *s == scheme && *a == auth) {
            self.auth.push((scheme, auth));
        }
    }

    /// Routes a server notification to its watchers.
    fn on_notification(&mut self, ev: &WatcherEvent) {
        self.generation += 1;
        let event_type = ev.typed_event_type();
        self.counters.notifications += 1;
        let fires_oneshot = |k: Kind| match event_type {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                matches!(k, Kind::Data | Kind::Exist)
            }
            EventType::NodeChildrenChanged => k == Kind::Child,
            EventType::NodeDeleted => matches!(k, Kind::Data | Kind::Exist | Kind::Child),
            _ => false,
        };
        let node_event = matches!(
            event_type,
            EventType::NodeCreated
                | EventType::NodeDeleted
                | EventType::NodeDataChanged
                | EventType::NodeChildrenChanged
        );
        if !node_event {
            trace!(?event_type, "ignoring notification");
            return;
        }
        let client_path = self.client_path(&ev.path);
        let event = WatchedEvent {
            event_type,
            state: KeeperState::SyncConnected,
            path: client_path,
        };
        let mut delivered = 0;
        // Exact path: one-shot watchers fire once and are removed; persistent ones stay.
        if let Some(list) = self.entries.get_mut(&ev.path) {
            list.retain(|e| {
                let deliver = fires_oneshot(e.kind) || e.kind.is_persistent();
                if deliver {
                    if e.kind == Kind::Recursive && event_type == EventType::NodeChildrenChanged {
                        return true;
                    }
                    let _ = e.tx.send(WatchEvent::Event(event.clone()));
                    delivered += 1;
                }
                !deliver || e.kind.is_persistent()
            });
            if list.is_empty() {
                self.entries.remove(&ev.path);
            }
        }
        // Ancestors: recursive watchers.
        if event_type != EventType::NodeChildrenChanged {
            let mut p = ev.path.as_str();
            while let Some(idx) = p.rfind('/') {
                p = if idx == 0 { "/" } else { &p[..idx] };
                if let Some(list) = self.entries.get(p) {
                    for e in list.iter().filter(|e| e.kind == Kind::Recursive) {
                        let _ = e.tx.send(WatchEvent::Event(event.clone()));
                        delivered += 1;
                    }
                }
                if p == "/" {
                    break;
                }
            }
        }
        self.counters.delivered += delivered;
        trace!(path = %ev.path, ?event_type, delivered, "notification");
    }

    /// Delivers a session state change to every watcher (as the Java client does); a
    /// terminal state ends every watcher.
    fn on_state(&mut self, state: SessionState) {
        let previous = self.last_state.replace(state);
        let keeper = match state {
            SessionState::Connected => KeeperState::SyncConnected,
            SessionState::ConnectedReadOnly => KeeperState::ConnectedReadOnly,
            SessionState::Disconnected => KeeperState::Disconnected,
            SessionState::Expired { .. } => KeeperState::Expired,
            SessionState::AuthFailed => KeeperState::AuthFailed,
            SessionState::Closed | SessionState::TakenOver => KeeperState::Closed,
            _ => return, // Connecting: nothing to tell watchers.
        };
        if previous.is_none() && state.is_connected() {
            return; // The first connection: no watcher exists yet.
        }
        for list in self.entries.values() {
            for e in list {
                let _ = e.tx.send(WatchEvent::Event(WatchedEvent {
                    event_type: EventType::None,
                    state: keeper,
                    path: e.client_path.clone(),
                }));
            }
        }
        if state.is_terminal() {
            self.close();
        }
    }

    /// Ends every watcher (their streams finish).
    pub(crate) fn close(&mut self) {
        self.generation += 1;
        self.closed = true;
        self.entries.clear();
        self.resyncs.clear();
    }

    fn on_preamble_reply(&mut self, xid: i32, zxid: i64, err: ErrorCode, relative_zxid: i64) {
        self.generation += 1;
        if xid != xid::SET_WATCHES {
            if err != ErrorCode::Ok {
                warn!(xid, %err, "preamble packet refused");
            }
            return;
        }
        if err == ErrorCode::Unimplemented {
            warn!("server does not know SetWatches2; persistent watches cannot be restored");
            self.set_watches2_unsupported = true;
        } else if err != ErrorCode::Ok {
            warn!(%err, "SetWatches refused");
        }
        // Drop records of preambles whose connection died before answering.
        while self
            .resyncs
            .front()
            .is_some_and(|r| r.relative_zxid != relative_zxid)
        {
            self.resyncs.pop_front();
        }
        let Some(front) = self.resyncs.front_mut() else {
            return;
        };
        front.replies_left = front.replies_left.saturating_sub(1);
        if !front.decided {
            front.decided = true;
            if err == ErrorCode::Ok && zxid != relative_zxid {
                let ids = std::mem::take(&mut front.persistent_ids);
                self.deliver_resync(&ids, relative_zxid, zxid);
            }
        }
        if self.resyncs.front().is_some_and(|r| r.replies_left == 0) {
            self.resyncs.pop_front();
        }
    }

    pub(crate) fn deliver_resync(&mut self, ids: &[u64], from_zxid: i64, to_zxid: i64) {
        debug!(
            from = format_args!("{from_zxid:#x}"),
            to = format_args!("{to_zxid:#x}"),
            watchers = ids.len(),
            "persistent watches re-armed after a gap: Resync"
        );
        for list in self.entries.values() {
            for e in list.iter().filter(|e| ids.contains(&e.id)) {
                let _ = e.tx.send(WatchEvent::Resync { from_zxid, to_zxid });
                self.counters.resyncs += 1;
                crate::telemetry::resync();
            }
        }
    }

    /// Everything to send after a handshake: auth packets, then the watches in batches
    /// below the byte limit.
    fn build_preamble(&mut self, relative_zxid: i64, out: &mut Vec<PreamblePacket>) {
        self.epoch += 1;
        self.counters.preambles += 1;
        let fresh = self
            .cache
            .as_ref()
            .is_some_and(|c| c.generation == self.generation && c.relative_zxid == relative_zxid);
        if !fresh {
            let (packets, watches, persistent_ids) = self.encode_preamble(relative_zxid);
            self.cache = Some(CachedPreamble {
                generation: self.generation,
                relative_zxid,
                packets,
                watches,
                persistent_ids,
            });
        } else {
            self.counters.preamble_cache_hits += 1;
        }
        let Some(cache) = &self.cache else {
            return;
        };
        out.extend(cache.packets.iter().cloned());
        let mut set_watches = 0;
        for p in cache.packets.iter().filter(|p| p.xid == xid::SET_WATCHES) {
            let len = (8 + p.body.len()) as u64;
            set_watches += 1;
            self.counters.set_watches_packets += 1;
            self.counters.set_watches_bytes += len;
            self.counters.set_watches_max_packet = self.counters.set_watches_max_packet.max(len);
        }
        crate::telemetry::set_watches(set_watches as u64, cache.watches as u64);
        if cache.watches == 0 {
            return;
        }
        self.counters.reregistered += cache.watches as u64;
        debug!(
            watches = cache.watches,
            packets = set_watches,
            cached = fresh,
            relative_zxid = format_args!("{relative_zxid:#x}"),
            "re-registering watches"
        );
        if !cache.persistent_ids.is_empty() {
            let ids = cache.persistent_ids.clone();
            self.resyncs.push_back(PendingResync {
                relative_zxid,
                replies_left: set_watches,
                decided: false,
                persistent_ids: ids,
            });
            // Keep the queue short if connections keep dying before answering.
            while self.resyncs.len() > 8 {
                self.resyncs.pop_front();
            }
        }
    }

    /// Encodes the auth packets and the watch batches.
    fn encode_preamble(&self, relative_zxid: i64) -> (Vec<PreamblePacket>, usize, Vec<u64>) {
        let mut out = Vec::new();
        for (scheme, auth) in &self.auth {
            out.push(PreamblePacket {
                xid: xid::AUTH,
                op: OpCode::Auth,
                body: AuthPacket {
                    auth_type: 0,
                    scheme: scheme.clone(),
                    auth: auth.clone(),
                }
                .to_bytes(),
            });
        }
        let mut lists: [BTreeSet<&str>; 5] = Default::default();
        let mut persistent_ids = Vec::new();
        for (path, list) in &self.entries {
            for e in list.iter().filter(|e| e.confirmed) {
                let slot = match e.kind {
                    Kind::Data => 0,
                    Kind::Exist => 1,
                    Kind::Child => 2,
                    Kind::Persistent => 3,
                    Kind::Recursive => 4,
                };
                if e.kind.is_persistent() {
                    if self.set_watches2_unsupported {
                        continue;
                    }
                    persistent_ids.push(e.id);
                }
                lists[slot].insert(path.as_str());
            }
        }
        let v2 = !lists[3].is_empty() || !lists[4].is_empty();
        let total: usize = lists.iter().map(BTreeSet::len).sum();
        if total == 0 {
            return (out, 0, persistent_ids);
        }
        for b in split_batches(&lists, v2, self.batch_limit) {
            let body = if v2 {
                SetWatches2 {
                    relative_zxid,
                    data_watches: b[0].clone(),
                    exist_watches: b[1].clone(),
                    child_watches: b[2].clone(),
                    persistent_watches: b[3].clone(),
                    persistent_recursive_watches: b[4].clone(),
                }
                .to_bytes()
            } else {
                SetWatches {
                    relative_zxid,
                    data_watches: b[0].clone(),
                    exist_watches: b[1].clone(),
                    child_watches: b[2].clone(),
                }
                .to_bytes()
            };
            out.push(PreamblePacket {
                xid: xid::SET_WATCHES,
                op: if v2 {
                    OpCode::SetWatches2
                } else {
                    OpCode::SetWatches
                },
                body,
            });
        }
        (out, total, persistent_ids)
    }
}

/// Splits the five watch lists into batches whose encoded frame (length prefix, header,
/// relativeZxid, vectors) stays within `limit` bytes.
pub(crate) fn split_batches(
    lists: &[BTreeSet<&str>; 5],
    v2: bool,
    limit: usize,
) -> Vec<[Vec<String>; 5]> {
    let vectors = if v2 { 5 } else { 3 };
    let empty = FRAME_OVERHEAD + 8 + 4 * vectors;
    let mut out = Vec::new();
    let mut cur: [Vec<String>; 5] = Default::default();
    let mut size = empty;
    for (slot, list) in lists.iter().enumerate().take(vectors) {
        for path in list {
            let cost = 4 + path.len();
            if size + cost > limit && size > empty {
                out.push(std::mem::take(&mut cur));
                size = empty;
            }
            cur[slot].push((*path).to_owned());
            size += cost;
        }
    }
    if size > empty {
        out.push(cur);
    }
    out
}

/// The preamble installed in the session: it reads the shared registry.
pub(crate) struct WatchPreamble(pub(crate) Shared);

impl Preamble for WatchPreamble {
    fn build(&mut self, relative_zxid: i64, out: &mut Vec<PreamblePacket>) {
        lock(&self.0).build_preamble(relative_zxid, out);
    }
}

/// Delivers the driver's notifications, preamble replies and states to watchers. Holds no
/// session handle, so it never keeps the session alive; it ends with the driver.
pub(crate) async fn event_loop(mut events: mpsc::UnboundedReceiver<DriverEvent>, reg: Shared) {
    while let Some(ev) = events.recv().await {
        match ev {
            DriverEvent::Notification(body) => match zk_proto::decode_exact::<WatcherEvent>(body) {
                Ok(we) => lock(&reg).on_notification(&we),
                Err(err) => warn!(%err, "malformed notification ignored"),
            },
            DriverEvent::State(change) => lock(&reg).on_state(change.state),
            DriverEvent::PreambleReply {
                xid,
                zxid,
                err,
                relative_zxid,
                ..
            } => lock(&reg).on_preamble_reply(xid, zxid, err, relative_zxid),
            _ => {}
        }
    }
    debug!("session driver gone; ending watchers");
    lock(&reg).close();
}

/// What a dropped watch handle asks of its client: remove the watch on the server without
/// blocking (the client implements it; this module needs nothing else of it).
pub(crate) trait WatchRemover: Send + Sync + std::fmt::Debug {
    /// Sends removeWatches for `server_path` and `watcher_type` in the background.
    fn remove_in_background(&self, server_path: String, watcher_type: i32);
}

/// Shared plumbing of both watcher handles.
#[derive(Debug)]
struct Handle {
    rx: mpsc::UnboundedReceiver<WatchEvent>,
    id: u64,
    server_path: String,
    client_path: String,
    inner: Weak<dyn WatchRemover>,
    registry: Weak<Mutex<Registry>>,
}

impl Handle {
    fn deregister(&self) {
        let Some(reg) = self.registry.upgrade() else {
            return;
        };
        let server_type = lock(&reg).remove(&self.server_path, self.id);
        if let Some(watcher_type) = server_type
            && let Some(inner) = self.inner.upgrade()
        {
            lock(&reg).counters.removals += 1;
            inner.remove_in_background(self.server_path.clone(), watcher_type);
        }
    }
}

/// A one-shot watch set by a read (`get_data_watch`, `exists_watch`, `get_children_watch`):
/// fires at most once.
///
/// Await it to get the node event. If the session ends first it resolves with the
/// terminal session event (`event_type == None`, `state` `Expired`, `Closed` or
/// `AuthFailed`). [`OneshotWatcher::next_event`] also yields the intermediate session
/// events (`Disconnected`, `SyncConnected`), as the Java client delivers them to watchers.
///
/// Dropping it before it fired unregisters it and, when no other watcher of the same
/// kind remains on the path, removes the server's watch (best effort, in the background).
#[derive(Debug)]
#[must_use = "dropping a watcher unregisters it"]
pub struct OneshotWatcher {
    h: Handle,
    done: bool,
}

impl OneshotWatcher {
    /// The watched path (chroot stripped).
    #[must_use]
    pub fn path(&self) -> &str {
        &self.h.client_path
    }

    /// The next event, session events included; `None` after the node event or a terminal
    /// session event was returned.
    pub async fn next_event(&mut self) -> Option<WatchedEvent> {
        std::future::poll_fn(|cx| self.poll_next_event(cx)).await
    }

    /// Poll form of [`OneshotWatcher::next_event`].
    pub fn poll_next_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<WatchedEvent>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.h.rx.poll_recv(cx) {
            Poll::Ready(Some(WatchEvent::Event(ev))) => {
                if !ev.is_session_event() || ev.is_terminal() {
                    self.done = true;
                }
                Poll::Ready(Some(ev))
            }
            Poll::Ready(Some(WatchEvent::Resync { .. })) => {
                // Never sent to one-shot watchers; skip.
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(Some(WatchedEvent {
                    event_type: EventType::None,
                    state: KeeperState::Closed,
                    path: self.h.client_path.clone(),
                }))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    pub(crate) fn new(
        rx: mpsc::UnboundedReceiver<WatchEvent>,
        id: u64,
        server_path: String,
        client_path: String,
        inner: Weak<dyn WatchRemover>,
        registry: Weak<Mutex<Registry>>,
    ) -> Self {
        Self {
            h: Handle {
                rx,
                id,
                server_path,
                client_path,
                inner,
                registry,
            },
            done: false,
        }
    }
}

impl Future for OneshotWatcher {
    type Output = WatchedEvent;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<WatchedEvent> {
        let this = self.get_mut();
        loop {
            match this.poll_next_event(cx) {
                Poll::Ready(Some(ev)) if !ev.is_session_event() || ev.is_terminal() => {
                    return Poll::Ready(ev);
                }
                Poll::Ready(Some(_)) => {}
                Poll::Ready(None) => {
                    return Poll::Ready(WatchedEvent {
                        event_type: EventType::None,
                        state: KeeperState::Closed,
                        path: this.h.client_path.clone(),
                    });
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl Drop for OneshotWatcher {
    fn drop(&mut self) {
        if !self.done {
            self.h.deregister();
        }
    }
}

/// A persistent (or persistent-recursive) watch: a stream of [`WatchEvent`]s until it is
/// dropped, removed with [`Client::remove_watches`](crate::Client::remove_watches), or the
/// session ends.
///
/// It survives reconnects: it is re-registered with `SetWatches2` on every handshake, and
/// when events may have been missed during the gap it yields [`WatchEvent::Resync`].
/// Session state changes arrive as `WatchEvent::Event` with `event_type == None`.
///
/// Events are buffered without bound until read: keep reading.
#[derive(Debug)]
#[must_use = "dropping a watcher unregisters it"]
pub struct PersistentWatcher {
    h: Handle,
    ended: bool,
}

impl PersistentWatcher {
    pub(crate) fn new(
        rx: mpsc::UnboundedReceiver<WatchEvent>,
        id: u64,
        server_path: String,
        client_path: String,
        inner: Weak<dyn WatchRemover>,
        registry: Weak<Mutex<Registry>>,
    ) -> Self {
        Self {
            h: Handle {
                rx,
                id,
                server_path,
                client_path,
                inner,
                registry,
            },
            ended: false,
        }
    }

    /// The watched path (chroot stripped).
    #[must_use]
    pub fn path(&self) -> &str {
        &self.h.client_path
    }

    /// The next event; `None` once the watch was removed or the session ended (after the
    /// terminal session event).
    pub async fn next(&mut self) -> Option<WatchEvent> {
        std::future::poll_fn(|cx| self.poll_next_event(cx)).await
    }

    /// Poll form of [`PersistentWatcher::next`].
    pub fn poll_next_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<WatchEvent>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match self.h.rx.poll_recv(cx) {
            Poll::Ready(Some(ev)) => {
                if let WatchEvent::Event(e) = &ev
                    && (e.is_terminal() || e.event_type == EventType::PersistentWatchRemoved)
                {
                    self.ended = true;
                }
                Poll::Ready(Some(ev))
            }
            Poll::Ready(None) => {
                self.ended = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// The event if one is ready now.
    pub fn try_next(&mut self) -> Option<WatchEvent> {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        match self.poll_next_event(&mut cx) {
            Poll::Ready(ev) => ev,
            Poll::Pending => None,
        }
    }
}

impl Drop for PersistentWatcher {
    fn drop(&mut self) {
        if !self.ended {
            self.h.deregister();
        }
    }
}

#[cfg(feature = "stream")]
impl futures_core::Stream for PersistentWatcher {
    type Item = WatchEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<WatchEvent>> {
        self.get_mut().poll_next_event(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_the_limit_by_encoded_size() {
        let paths: Vec<String> = (0..3000).map(|i| format!("/w/{i:0>200}")).collect();
        let mut lists: [BTreeSet<&str>; 5] = Default::default();
        for (i, p) in paths.iter().enumerate() {
            lists[i % 5].insert(p.as_str());
        }
        for v2 in [false, true] {
            let limit = 16 * 1024;
            let batches = split_batches(&lists, v2, limit);
            let mut seen = 0;
            for (n, b) in batches.iter().enumerate() {
                let body = if v2 {
                    SetWatches2 {
                        relative_zxid: 1,
                        data_watches: b[0].clone(),
                        exist_watches: b[1].clone(),
                        child_watches: b[2].clone(),
                        persistent_watches: b[3].clone(),
                        persistent_recursive_watches: b[4].clone(),
                    }
                    .to_bytes()
                } else {
                    assert!(b[3].is_empty() && b[4].is_empty());
                    SetWatches {
                        relative_zxid: 1,
                        data_watches: b[0].clone(),
                        exist_watches: b[1].clone(),
                        child_watches: b[2].clone(),
                    }
                    .to_bytes()
                };
                assert!(FRAME_OVERHEAD + body.len() <= limit, "{}", body.len());
                // Batches are well filled (no tiny batches in the middle).
                if n + 1 < batches.len() {
                    assert!(FRAME_OVERHEAD + body.len() > limit - 300);
                }
                seen += b.iter().map(Vec::len).sum::<usize>();
            }
            let expected: usize = lists
                .iter()
                .take(if v2 { 5 } else { 3 })
                .map(BTreeSet::len)
                .sum();
            assert_eq!(seen, expected);
        }
    }

    #[test]
    fn notification_routing_fires_oneshot_once_and_keeps_persistent() {
        let mut reg = Registry::new(Some(Chroot::new("/app").unwrap()), Vec::new(), 1 << 17);
        let (d, _, mut drx) = reg.register("/app/a", Kind::Data).unwrap();
        assert!(!reg.confirm("/app/a", d, Kind::Data));
        let (c, _, mut crx) = reg.register("/app", Kind::Child).unwrap();
        reg.confirm("/app", c, Kind::Child);
        let (r, _, mut rrx) = reg.register("/app", Kind::Recursive).unwrap();
        reg.confirm("/app", r, Kind::Recursive);
        let changed = WatcherEvent {
            event_type: EventType::NodeDataChanged.as_i32(),
            state: 3,
            path: "/app/a".into(),
        };
        reg.on_notification(&changed);
        reg.on_notification(&changed);
        let WatchEvent::Event(ev) = drx.try_recv().unwrap() else {
            panic!()
        };
        assert_eq!(ev.path, "/a");
        assert_eq!(ev.event_type, EventType::NodeDataChanged);
        assert!(drx.try_recv().is_err(), "one-shot fired twice");
        assert!(
            crx.try_recv().is_err(),
            "child watch fired by a data change"
        );
        assert!(rrx.try_recv().is_ok() && rrx.try_recv().is_ok());
        // Re-registration after a reconnect carries what is left.
        let mut out = Vec::new();
        reg.build_preamble(7, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].op, OpCode::SetWatches2);
        let sw = zk_proto::decode_exact::<SetWatches2>(out[0].body.clone()).unwrap();
        assert_eq!(sw.relative_zxid, 7);
        assert!(sw.data_watches.is_empty());
        assert_eq!(sw.child_watches, vec!["/app".to_owned()]);
        assert_eq!(sw.persistent_recursive_watches, vec!["/app".to_owned()]);
        // The reply shows a gap: the recursive watcher gets a Resync.
        reg.on_preamble_reply(xid::SET_WATCHES, 9, ErrorCode::Ok, 7);
        assert_eq!(
            rrx.try_recv().unwrap(),
            WatchEvent::Resync {
                from_zxid: 7,
                to_zxid: 9
            }
        );
        // No gap: nothing.
        reg.build_preamble(9, &mut Vec::new());
        reg.on_preamble_reply(xid::SET_WATCHES, 9, ErrorCode::Ok, 9);
        assert!(rrx.try_recv().is_err());
    }

    #[test]
    fn unconfirmed_watches_are_not_reregistered_and_late_confirmation_asks_for_rearm() {
        let mut reg = Registry::new(None, vec![("digest".into(), Bytes::from("u:p"))], 1 << 17);
        let (id, _, _rx) = reg.register("/x", Kind::Exist).unwrap();
        let mut out = Vec::new();
        reg.build_preamble(1, &mut out);
        assert_eq!(out.len(), 1, "only the auth packet");
        assert_eq!(out[0].xid, xid::AUTH);
        assert!(
            reg.confirm("/x", id, Kind::Exist),
            "a preamble was built meanwhile"
        );
        let mut out = Vec::new();
        reg.build_preamble(1, &mut out);
        assert_eq!(out.len(), 2);
        let sw = zk_proto::decode_exact::<SetWatches>(out[1].body.clone()).unwrap();
        assert_eq!(sw.exist_watches, vec!["/x".to_owned()]);
        assert_eq!(reg.remove("/x", id), Some(2));
    }
}

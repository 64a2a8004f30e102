//! # zk-client
//!
//! An asynchronous ZooKeeper client: the complete API (every operation of ZooKeeper 3.5–3.9,
//! typed arguments, results and errors), chroot, and watches that are never lost across a
//! failover. It runs on the [`zk_session`] engine, which owns connections, failure detection
//! and session re-establishment.
//!
//! ```no_run
//! use zk_client::{Client, CreateMode, acl};
//!
//! # async fn demo() -> Result<(), zk_client::Error> {
//! let client = Client::connect("127.0.0.1:2181,127.0.0.1:2182/app").await?;
//! client.create("/config", "v1", &acl::open_unsafe(), CreateMode::Persistent).await?;
//! let (data, stat, watcher) = client.get_data_watch("/config").await?;
//! assert_eq!(&data[..], b"v1");
//! client.set_data("/config", "v2", stat.version).await?;
//! let event = watcher.await; // NodeDataChanged /config
//! # let _ = event; Ok(()) }
//! ```
//!
//! ## State model
//!
//! A [`Client`] is a handle to one session ([`Client::state`], [`Client::state_stream`]):
//!
//! ```text
//! Connecting ──> Connected <──────────────> Disconnected ──> Connected (same session,
//!      │             │    (connection lost;      │            maybe another server)
//!      │             │     session alive)        │
//!      └──> ConnectedReadOnly (only with can_be_read_only; moves to a read-write server
//!                               when one is back, with a new session)
//! terminal: Expired { by: Server | Local }, AuthFailed, Closed, TakenOver
//! ```
//!
//! `Disconnected` is not an error: the engine is already reconnecting, usually within a
//! few milliseconds on another server (plus a leader election if the leader died).
//! Terminal states never change again: every later call fails with the matching
//! [`Error`] ([`Error::is_terminal`]). The engine never silently creates a new session.
//!
//! ## Requests during a failover
//!
//! - **Reads** (`get_data`, `exists`, `get_children`, …) in flight when the connection
//!   dies are sent again on the next connection; the caller just sees a longer latency.
//! - **Writes** in flight fail with `ConnectionLoss { outcome_unknown: true }`: they may or
//!   may not have been applied, and are never replayed behind the caller's back.
//!   ([`Error::is_retryable`] is true; check before retrying a non-idempotent write.)
//! - Calls made while disconnected wait for the reconnect (or their deadline).
//! - At most [`ClientBuilder::max_in_flight`] calls are outstanding; more wait for a slot
//!   (back-pressure, no unbounded queue). Replies resolve in order.
//!
//! ## Watches during a failover
//!
//! - **One-shot** watches ([`Client::get_data_watch`], [`Client::exists_watch`],
//!   [`Client::get_children_watch`]) return a [`OneshotWatcher`], a future of exactly one
//!   [`WatchedEvent`]. **Persistent** and **recursive** watches ([`Client::add_watch`])
//!   return a [`PersistentWatcher`] stream.
//! - After every handshake, before any request, the client sends the recorded auth and
//!   re-registers every armed watch with `SetWatches2` (or `SetWatches` when no persistent
//!   watch exists), relative to the last zxid it saw, in packets split on their real
//!   encoded size ([`ClientBuilder::set_watches_batch_bytes`], default 128 KiB), so
//!   megabytes of watch paths re-register fine.
//! - The server fires a one-shot watch whose node changed while the client was away, on
//!   re-registration: **a change made during the disconnect is delivered exactly once**.
//!   A one-shot watcher is removed when it fires, so it can never fire twice.
//! - The server re-arms persistent watches but does **not** replay their missed events. The
//!   client compares the re-registration reply's zxid with its last zxid and, when they
//!   differ, yields [`WatchEvent::Resync`] so the application re-reads instead of silently
//!   missing a change. (The last zxid only advances with replies to this client, so a
//!   `Resync` may also follow a gap in which only unrelated nodes changed.)
//! - Every watcher also sees session changes as the Java client delivers them:
//!   `Disconnected`, `SyncConnected`, and a final `Expired`/`Closed`/`AuthFailed`.
//! - Dropping a watch handle unregisters it; when no other watcher needs the server's watch
//!   it is removed there too (`removeWatches`, in the background).
//!
//! On ZooKeeper 3.8 servers do not mix a one-shot and a persistent watch on the *same*
//! path in one session: the server keeps one mode per path and connection (fixed in 3.9,
//! ZOOKEEPER-4466).
//!
//! ## Timeouts
//!
//! | setting | default | effect |
//! |---|---|---|
//! | [`ClientBuilder::session_timeout`] | 10 s | requested `T`; the server clamps it to 2–20 ticks |
//! | failure detection ([`ClientBuilder::timing`]) | silence of `T/3` | then the next server is tried at once |
//! | [`ClientBuilder::connect_timeout`] | `2 × T` | [`ClientBuilder::connect`] fails with [`Error::ConnectTimeout`] |
//! | [`ClientBuilder::operation_timeout`] | none | a call fails with [`Error::Timeout`]; it covers window, reconnect and server |
//! | local expiry | `4T/3` after last contact with no server reachable | state `Expired { by: Local }` |
//!
//! ## Chroot and paths
//!
//! A connection string's chroot (`host:2181/app`) is prefixed to every path sent and
//! stripped from every path returned: created paths, watch events, multi results,
//! `get_ephemerals`. Paths are validated before anything is sent ([`Error::InvalidPath`]).
//! [`Client::get_config`] always reads `/zookeeper/config`, outside the chroot.
//!
//! ## Read-only mode
//!
//! With [`ClientBuilder::can_be_read_only`], a server cut off from its quorum (started
//! with `readonlymode.enabled`; 3.8 also needs `localSessionsEnabled=true`) serves reads;
//! writes and `sync` fail with [`Error::NotReadOnly`]. A session created on a read-only
//! server is replaced by a new one when a read-write server is back (its watches are
//! re-registered on the new session).

#![forbid(unsafe_code)]

pub mod acl;
mod client;
mod error;
mod follow;
#[cfg(feature = "gssapi")]
pub mod gssapi;
mod known;
mod ops;
mod telemetry;
mod watch;

pub use crate::client::{
    Client, ClientBuilder, ClientCounters, DEFAULT_SESSION_TIMEOUT, DEFAULT_SET_WATCHES_BATCH,
    DEFAULT_WINDOW, WriteCounters,
};
pub use crate::error::{Error, Result};
pub use crate::follow::HostList;
pub use crate::known::PROTECTED_PREFIX;
pub use crate::ops::{
    AddWatchMode, CreateMode, Op, OpResult, ReadOp, ReadResult, Reconfig, WatcherKind,
};
pub use crate::watch::{
    OneshotWatcher, PersistentWatcher, WatchCounters, WatchEvent, WatchedEvent,
};

pub use bytes::Bytes;
pub use zk_proto::{Acl, ClientInfo, ErrorCode, EventType, Id, KeeperState, Stat, perms};
pub use zk_session::sasl;
pub use zk_session::sasl::{DigestMd5, SaslError, SaslMechanism};
pub use zk_session::{
    Counters, ExpiredBy, HostProvider, SavedSession, SessionState, StateChange, StaticHostProvider,
    Timing,
};
pub use zk_transport::{
    Connector, TlsConfig, TlsConfigError, TlsConnector, TlsReloadHandle, TlsStats,
};

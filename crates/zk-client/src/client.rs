//! [`Client`] and [`ClientBuilder`].

use std::sync::{Arc, Mutex, Weak};
use std::task::Context;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tracing::{debug, warn};
use zk_connstr::{Chroot, ConnectString, validate_path};
use zk_proto::{
    Acl, AddWatchRequest, AuthPacket, CheckVersionRequest, CheckWatchesRequest, ClientInfo,
    Create2Response, CreateRequest, CreateResponse, CreateTtlRequest, DeleteRequest, Empty,
    ErrorCode, ExistsRequest, ExistsResponse, GetAclRequest, GetAclResponse,
    GetAllChildrenNumberRequest, GetAllChildrenNumberResponse, GetChildren2Request,
    GetChildren2Response, GetChildrenRequest, GetChildrenResponse, GetDataRequest, GetDataResponse,
    GetEphemeralsRequest, GetEphemeralsResponse, MultiOp, MultiRequest, MultiResponse, MultiResult,
    OpCode, ReconfigRequest, Record, RemoveWatchesRequest, SetAclRequest, SetAclResponse,
    SetDataRequest, SetDataResponse, SetWatches, SetWatches2, Stat, SyncRequest, SyncResponse,
    WhoAmIResponse,
};
use zk_session::driver::SessionHandle;
use zk_session::sasl::{DigestMd5, SaslMechanism};
use zk_session::{
    Counters, HostProvider, Idempotence, Reply, Request, SavedSession, Session, SessionConfig,
    SessionState, StateChange, StaticHostProvider, Timing,
};
use zk_transport::{Connector, TcpConnector, TlsConfig, TlsConnector, TlsReloadHandle};

use crate::error::{Error, Result};
use crate::ops::{
    AddWatchMode, CreateMode, Op, OpResult, ReadOp, ReadResult, Reconfig, WatcherKind,
};
use crate::watch::{
    self as wreg, Kind, OneshotWatcher, PersistentWatcher, Registry, Shared, WatchCounters,
    WatchPreamble, WatchRemover,
};

/// Default requested session timeout.
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// Default number of requests in flight per client before callers wait.
pub const DEFAULT_WINDOW: usize = 1024;
/// Default size limit of one `SetWatches` packet (well below the server's 1 MiB
/// `jute.maxbuffer`).
pub const DEFAULT_SET_WATCHES_BATCH: usize = 128 * 1024;

/// A hook editing the engine's configuration.
type ConfigureFn = Box<dyn FnOnce(&mut SessionConfig) + Send>;

/// Configures and connects a [`Client`]. Obtain one with [`Client::builder`].
///
/// ```no_run
/// # async fn demo() -> Result<(), zk_client::Error> {
/// use std::time::Duration;
/// use zk_client::Client;
///
/// let client = Client::builder("10.0.0.1:2181,10.0.0.2:2181/app")
///     .session_timeout(Duration::from_secs(6))
///     .digest_auth("app", "secret")
///     .operation_timeout(Duration::from_secs(5))
///     .connect_timeout(Duration::from_secs(15))
///     .connect()
///     .await?;
/// # let _ = client; Ok(()) }
/// ```
#[must_use]
pub struct ClientBuilder {
    connect_string: String,
    session_timeout: Duration,
    connector: Option<Arc<dyn Connector>>,
    tls: Option<TlsReloadHandle>,
    auth: Vec<(String, Bytes)>,
    can_be_read_only: bool,
    operation_timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    host_provider: Option<Box<dyn HostProvider>>,
    resume: Option<SavedSession>,
    timing: Option<Timing>,
    window: usize,
    set_watches_batch: usize,
    configure: Option<ConfigureFn>,
    follow_reconfig: bool,
    sasl: Option<Arc<dyn SaslMechanism>>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("connect_string", &self.connect_string)
            .field("session_timeout", &self.session_timeout)
            .field(
                "auth_schemes",
                &self.auth.iter().map(|a| &a.0).collect::<Vec<_>>(),
            )
            .field("sasl", &self.sasl.as_ref().map(|m| m.name()))
            .field("can_be_read_only", &self.can_be_read_only)
            .field("operation_timeout", &self.operation_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("resume", &self.resume)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    fn new(connect_string: &str) -> Self {
        Self {
            connect_string: connect_string.to_owned(),
            session_timeout: DEFAULT_SESSION_TIMEOUT,
            connector: None,
            tls: None,
            auth: Vec::new(),
            can_be_read_only: false,
            operation_timeout: None,
            connect_timeout: None,
            host_provider: None,
            resume: None,
            timing: None,
            window: DEFAULT_WINDOW,
            set_watches_batch: DEFAULT_SET_WATCHES_BATCH,
            configure: None,
            follow_reconfig: true,
            sasl: None,
        }
    }

    /// Authenticate with SASL after every (re)connect, before the watches are re-registered
    /// and before any request goes out: DIGEST-MD5 ([`ClientBuilder::sasl_digest`]),
    /// Kerberos (`zk_client::gssapi::Gssapi`, feature `gssapi`) or any [`SaslMechanism`].
    /// Credentials the server rejects end the session with [`Error::AuthFailed`]; a SASL
    /// failure that is not about them (the server went away, the KDC unreachable) is a
    /// failover like any other: next server, same session.
    pub fn sasl(mut self, mechanism: Arc<dyn SaslMechanism>) -> Self {
        self.sasl = Some(mechanism);
        self
    }

    /// SASL DIGEST-MD5 with a user of the servers' JAAS `DigestLoginModule` (the session
    /// gets the identity `sasl:<user>`). The password never appears in `Debug` output or
    /// logs.
    pub fn sasl_digest(self, user: &str, password: &str) -> Self {
        self.sasl(Arc::new(DigestMd5::new(user, password)))
    }

    /// Follow the ensemble's dynamic configuration (`/zookeeper/config`, ZooKeeper 3.5+):
    /// when servers are added, removed or replaced the client's host list follows, and
    /// sessions rebalance (see [`Client::update_hosts`]). On by default; switch it off when
    /// the connection string names a VIP or a load balancer, whose addresses the servers'
    /// configuration does not know.
    pub const fn follow_reconfig(mut self, on: bool) -> Self {
        self.follow_reconfig = on;
        self
    }

    /// The session timeout to request (default 10 s). The server clamps it (by default to
    /// 2–20 ticks) and every failure-detection timer derives from the negotiated value.
    pub fn session_timeout(mut self, t: Duration) -> Self {
        self.session_timeout = t;
        self
    }

    /// How connections are made (default: [`TcpConnector`]).
    pub fn connector(mut self, connector: Arc<dyn Connector>) -> Self {
        self.connector = Some(connector);
        self.tls = None;
        self
    }

    /// Connect with TLS ([`TlsConnector`] over TCP). The configuration can be changed while
    /// the client runs (certificate rotation, roots, CRLs) through [`Client::tls`].
    pub fn tls(self, config: TlsConfig) -> Self {
        self.tls_connector(TlsConnector::new(config))
    }

    /// Connect with this [`TlsConnector`] (for one over a tuned [`TcpConnector`], or one whose
    /// [`reload_handle`](TlsConnector::reload_handle) the application already holds). Its
    /// handle is also available as [`Client::tls`].
    pub fn tls_connector(mut self, connector: TlsConnector) -> Self {
        let handle = connector.reload_handle();
        self.connector = Some(Arc::new(connector));
        self.tls = Some(handle);
        self
    }

    /// Credentials sent on every handshake, before any request (scheme and raw bytes,
    /// e.g. `digest` and `user:password`).
    pub fn auth(mut self, scheme: impl Into<String>, auth: impl Into<Bytes>) -> Self {
        self.auth.push((scheme.into(), auth.into()));
        self
    }

    /// `digest` credentials (`user:password`), sent on every handshake.
    pub fn digest_auth(self, user: &str, password: &str) -> Self {
        self.auth("digest", format!("{user}:{password}"))
    }

    /// Accept read-only servers when no quorum is reachable (default off). On a read-only
    /// server reads work and writes fail with [`Error::NotReadOnly`]; the client moves to a
    /// read-write server when one is back. Needs `localSessionsEnabled=true` on 3.8 servers.
    pub fn can_be_read_only(mut self, on: bool) -> Self {
        self.can_be_read_only = on;
        self
    }

    /// A deadline for every operation (default: none, an operation waits while the session
    /// is alive). Covers waiting for the in-flight window, reconnects and the server.
    pub fn operation_timeout(mut self, t: Duration) -> Self {
        self.operation_timeout = Some(t);
        self
    }

    /// How long [`ClientBuilder::connect`] waits for the first session (default: twice the
    /// session timeout) before failing with [`Error::ConnectTimeout`].
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = Some(t);
        self
    }

    /// Choose servers with this provider instead of the connection string's hosts (the
    /// chroot still comes from the connection string).
    pub fn host_provider(mut self, provider: Box<dyn HostProvider>) -> Self {
        self.host_provider = Some(provider);
        self
    }

    /// Attach to a session saved by another client ([`Client::saved_session`]) instead of
    /// creating one. If both keep running, the server hands the session back and forth;
    /// the engine detects this and ends with [`Error::TakenOver`].
    pub fn resume(mut self, saved: SavedSession) -> Self {
        self.resume = Some(saved);
        self
    }

    /// Failure-detection and reconnect timing of the session engine.
    pub fn timing(mut self, timing: Timing) -> Self {
        self.timing = Some(timing);
        self
    }

    /// At most this many operations in flight; further calls wait (default 1024).
    pub fn max_in_flight(mut self, window: usize) -> Self {
        self.window = window.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
        self
    }

    /// Size limit of one watch re-registration packet (default 128 KiB; keep it below the
    /// server's `jute.maxbuffer`).
    pub fn set_watches_batch_bytes(mut self, limit: usize) -> Self {
        self.set_watches_batch = limit.max(1024);
        self
    }

    /// Direct access to the engine's [`SessionConfig`] (limits, takeover detection, …),
    /// applied after the builder's own settings.
    pub fn configure_session(
        mut self,
        f: impl FnOnce(&mut SessionConfig) + Send + 'static,
    ) -> Self {
        self.configure = Some(Box::new(f));
        self
    }

    /// Starts the session and waits until it is connected.
    ///
    /// # Errors
    /// [`Error::InvalidConnectString`]; [`Error::ConnectTimeout`] when no server gave a
    /// session in time; [`Error::SessionExpired`] when resuming a dead session;
    /// [`Error::AuthFailed`] when the credentials were rejected.
    pub async fn connect(self) -> Result<Client> {
        let cs = ConnectString::parse(&self.connect_string)?;
        let (hosts, chroot) = cs.into_parts();
        let mut cfg = zk_session::config_with_timeout(self.session_timeout);
        cfg.can_be_read_only = self.can_be_read_only;
        cfg.resume = self.resume;
        // Sessions of one process share what they learn about servers (a reconnect storm
        // is paced as a whole); `configure_session` can opt out.
        cfg.shared = Some(zk_session::global_shared_hosts());
        if let Some(t) = self.timing {
            cfg.timing = t;
        }
        cfg.sasl = self.sasl;
        if let Some(f) = self.configure {
            f(&mut cfg);
        }
        let host_list = hosts.clone();
        let provider = self
            .host_provider
            .unwrap_or_else(|| Box::new(StaticHostProvider::new(hosts)));
        let connector = self
            .connector
            .unwrap_or_else(|| Arc::new(TcpConnector::new()));
        let registry: Shared = Arc::new(Mutex::new(Registry::new(
            chroot.clone(),
            self.auth,
            self.set_watches_batch,
        )));
        let mut session = Session::new(cfg, provider, tokio::time::Instant::now().into_std());
        session.set_preamble(Box::new(WatchPreamble(Arc::clone(&registry))));
        let (handle, events) = zk_session::driver::spawn(session, connector);
        tokio::spawn(wreg::event_loop(events, Arc::clone(&registry)));
        let window = self.window;
        let inner = Arc::new(Inner {
            handle,
            registry,
            chroot,
            window: Arc::new(Semaphore::new(window)),
            resolved: crate::known::Resolved::default(),
            hosts: watch::channel(crate::follow::HostList::new(host_list)).0,
            tls: self.tls,
        });
        let wait = self
            .connect_timeout
            .unwrap_or(self.session_timeout.saturating_mul(2));
        let state = inner.handle.wait_connected(wait).await;
        if self.follow_reconfig && state.is_connected() {
            tokio::spawn(crate::follow::follow(Arc::downgrade(&inner)));
        }
        let client = Client {
            inner,
            operation_timeout: self.operation_timeout,
        };
        match state {
            s if s.is_connected() => Ok(client),
            SessionState::Expired { by } => Err(Error::SessionExpired { by }),
            SessionState::AuthFailed => Err(Error::AuthFailed),
            SessionState::TakenOver => Err(Error::TakenOver),
            SessionState::Closed => Err(Error::Closed),
            _ => Err(Error::ConnectTimeout {
                after: wait,
                last_error: client.inner.handle.last_connect_error(),
            }),
        }
    }
}

/// State shared by every clone of a [`Client`]. Dropping it drops the session handle,
/// which closes the session.
pub(crate) struct Inner {
    handle: SessionHandle,
    registry: Shared,
    chroot: Option<Chroot>,
    window: Arc<Semaphore>,
    /// Writes of the known-outcome forms whose answer was lost, by how the servers' state
    /// resolved them.
    pub(crate) resolved: crate::known::Resolved,
    /// The host list and the ensemble configuration applied.
    hosts: watch::Sender<crate::follow::HostList>,
    /// The TLS connector's handle, when the builder made the connector.
    tls: Option<TlsReloadHandle>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("session", &self.handle)
            .finish_non_exhaustive()
    }
}

impl WatchRemover for Inner {
    /// Sends removeWatches for a dropped watch handle without blocking: the request is
    /// queued at once when a window slot is free (so it is ordered before any later call),
    /// else from a task.
    fn remove_in_background(&self, server_path: String, watcher_type: i32) {
        let this = self;
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let body = RemoveWatchesRequest {
            path: server_path,
            watcher_type,
        }
        .to_bytes();
        let req = Request::read(OpCode::RemoveWatches, body);
        let handle = this.handle.clone();
        match Arc::clone(&this.window).try_acquire_owned() {
            Ok(permit) => {
                let mut fut = Box::pin(async move {
                    let r = handle.submit(req).await;
                    drop(permit);
                    r
                });
                // Poll once so the request is queued now, before anything submitted later.
                let mut cx = Context::from_waker(std::task::Waker::noop());
                if fut.as_mut().poll(&mut cx).is_pending() {
                    rt.spawn(async move {
                        let _ = fut.await;
                    });
                }
            }
            Err(_) => {
                let window = Arc::clone(&this.window);
                rt.spawn(async move {
                    if let Ok(_permit) = window.acquire_owned().await {
                        let _ = handle.submit(req).await;
                    }
                });
            }
        }
    }
}

/// An asynchronous ZooKeeper client: a cheap, clonable handle to one session.
///
/// Dropping the last clone closes the session (ephemeral nodes go at once). See the
/// [crate documentation](crate) for the state model and what happens during a failover.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    operation_timeout: Option<Duration>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("session_id", &format_args!("{:#x}", self.session_id()))
            .field("password", &"<redacted>")
            .field("state", &self.state())
            .field("chroot", &self.inner.chroot)
            .finish_non_exhaustive()
    }
}

/// Counters of the session engine and of the watch layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientCounters {
    /// Reconnects, failovers, attempts, pauses (from the session engine).
    pub session: Counters,
    /// Watch re-registration and delivery.
    pub watches: WatchCounters,
    /// Known-outcome writes whose answer was lost, as the servers' state resolved them.
    pub writes: WriteCounters,
}

/// Known-outcome writes ([`Client::set_data_idempotent`], [`Client::create_protected`], …)
/// whose answer was lost with a connection, by what the servers' state showed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteCounters {
    /// The lost attempt had been applied: reported as success, not repeated.
    pub applied: u64,
    /// The lost attempt had not been applied: sent again.
    pub sent_again: u64,
}

impl Client {
    /// Connects with default settings. The connection string is `host:port,...[/chroot]`.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), zk_client::Error> {
    /// let client = zk_client::Client::connect("127.0.0.1:2181/app").await?;
    /// let (data, stat) = client.get_data("/config").await?;
    /// # let _ = (data, stat); Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`ClientBuilder::connect`].
    pub async fn connect(connect_string: &str) -> Result<Self> {
        Self::builder(connect_string).connect().await
    }

    /// A builder for everything configurable.
    pub fn builder(connect_string: &str) -> ClientBuilder {
        ClientBuilder::new(connect_string)
    }

    /// A handle to the same session whose operations use `timeout` as their deadline
    /// (`None`: no deadline).
    #[must_use]
    pub fn with_operation_timeout(&self, timeout: Option<Duration>) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            operation_timeout: timeout,
        }
    }

    // ----- Session -----

    /// The session id (0 before the first handshake).
    #[must_use]
    pub fn session_id(&self) -> i64 {
        self.inner.handle.session_id()
    }

    /// The session password. With [`Client::session_id`], what another process needs to
    /// resume the session: treat it as a secret.
    #[must_use]
    pub fn session_password(&self) -> Bytes {
        self.inner.handle.password()
    }

    /// The session id and password, for [`ClientBuilder::resume`] (redacted in `Debug`).
    #[must_use]
    pub fn saved_session(&self) -> SavedSession {
        SavedSession {
            session_id: self.session_id(),
            password: self.session_password(),
        }
    }

    /// The current state.
    #[must_use]
    pub fn state(&self) -> SessionState {
        self.inner.handle.state()
    }

    /// A receiver of every state change (state, session id, server, time).
    #[must_use]
    pub fn state_stream(&self) -> watch::Receiver<StateChange> {
        self.inner.handle.watch_state()
    }

    /// Waits until connected (or terminal), at most `timeout`; returns the state reached.
    pub async fn wait_connected(&self, timeout: Duration) -> SessionState {
        self.inner.handle.wait_connected(timeout).await
    }

    /// The TLS configuration's handle, when the client was built with
    /// [`ClientBuilder::tls`] or [`ClientBuilder::tls_connector`]: replace the client
    /// certificate, the trusted roots or the CRLs at run time (the next connection uses them;
    /// a configuration that does not build is refused and the old one stays), and read the
    /// handshake counters ([`TlsReloadHandle::stats`]: full and resumed handshakes).
    #[must_use]
    pub fn tls(&self) -> Option<&TlsReloadHandle> {
        self.inner.tls.as_ref()
    }

    /// The server the session is on (or was last on).
    #[must_use]
    pub fn server(&self) -> Option<std::net::SocketAddr> {
        self.inner.handle.server()
    }

    /// The negotiated session timeout.
    #[must_use]
    pub fn negotiated_timeout(&self) -> Option<Duration> {
        self.inner.handle.negotiated_timeout()
    }

    /// The last zxid the session has seen.
    #[must_use]
    pub fn last_zxid(&self) -> i64 {
        self.inner.handle.last_zxid()
    }

    /// The chroot of the connection string.
    #[must_use]
    pub fn chroot(&self) -> Option<&Chroot> {
        self.inner.chroot.as_ref()
    }

    /// Session and watch counters.
    #[must_use]
    pub fn counters(&self) -> ClientCounters {
        self.counters_now()
    }

    /// What the known-outcome forms count (see [`WriteCounters`]).
    pub(crate) fn resolved(&self) -> &crate::known::Resolved {
        &self.inner.resolved
    }

    fn counters_now(&self) -> ClientCounters {
        ClientCounters {
            session: self.inner.handle.counters(),
            watches: wreg::lock(&self.inner.registry).counters.clone(),
            writes: self.inner.resolved.snapshot(),
        }
    }

    /// Per-host health of the session engine (failures, successes, the last failure's
    /// kind), indexed like the connection string's hosts.
    #[must_use]
    pub fn host_stats(&self) -> Vec<zk_session::HostStats> {
        self.inner.handle.host_stats()
    }

    /// The most recent transport failure (address and typed error), for diagnosing a
    /// session that cannot connect.
    #[must_use]
    pub fn last_connect_error(&self) -> Option<(std::net::SocketAddr, zk_transport::ConnectError)> {
        self.inner.handle.last_connect_error()
    }

    /// Closes the session (ephemeral nodes are deleted at once) and waits until it is
    /// closed. Every watcher gets a `Closed` event; later calls fail with [`Error::Closed`].
    pub async fn close(&self) {
        self.inner.handle.close().await;
    }

    // ----- Plumbing -----

    fn server_path(&self, path: &str) -> Result<String> {
        validate_path(path).map_err(|reason| Error::InvalidPath {
            path: path.to_owned(),
            reason,
        })?;
        Ok(self.prefix(path))
    }

    fn prefix(&self, path: &str) -> String {
        match &self.inner.chroot {
            Some(c) => c.prefix(path),
            None => path.to_owned(),
        }
    }

    fn client_path(&self, server_path: &str) -> String {
        match &self.inner.chroot {
            Some(c) => c.strip(server_path).unwrap_or(server_path).to_owned(),
            None => server_path.to_owned(),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.operation_timeout.map(|t| Instant::now() + t)
    }

    async fn permit(
        &self,
        permits: u32,
        deadline: Option<Instant>,
    ) -> Result<OwnedSemaphorePermit> {
        let acquire = Arc::clone(&self.inner.window).acquire_many_owned(permits);
        let permit = match deadline {
            Some(at) => tokio::time::timeout_at(at.into(), acquire)
                .await
                .map_err(|_| Error::Timeout)?,
            None => acquire.await,
        };
        permit.map_err(|_| Error::Closed)
    }

    /// Sends one request within the window; returns the server's reply whatever its error
    /// code.
    async fn call_raw(&self, op: OpCode, body: Bytes, kind: Idempotence) -> Result<Reply> {
        let deadline = self.deadline();
        let _permit = self.permit(1, deadline).await?;
        self.submit(op, body, kind, deadline).await
    }

    async fn submit(
        &self,
        op: OpCode,
        body: Bytes,
        kind: Idempotence,
        deadline: Option<Instant>,
    ) -> Result<Reply> {
        let mut req = Request::write(op, body);
        req.idempotence = kind;
        if let Some(at) = deadline {
            req = req.with_deadline(at);
        }
        match self.inner.handle.submit(req).await {
            Ok(reply) => Ok(reply),
            // Once the driver has stopped, the handle only knows "closed": report the
            // terminal state's own reason instead.
            Err(zk_session::RequestError::Closed) => Err(self.terminal_error()),
            Err(e) => Err(e.into()),
        }
    }

    /// The error matching the session's terminal state ([`Error::Closed`] if not terminal).
    /// A client on `inner` (no operation timeout).
    pub(crate) const fn from_inner(inner: Arc<Inner>) -> Self {
        Self {
            inner,
            operation_timeout: None,
        }
    }

    pub(crate) fn handle(&self) -> &SessionHandle {
        &self.inner.handle
    }

    pub(crate) fn host_list_sender(&self) -> &watch::Sender<crate::follow::HostList> {
        &self.inner.hosts
    }

    /// The error for a call on an ended session.
    pub(crate) fn ended_error(&self) -> Error {
        self.terminal_error()
    }

    fn terminal_error(&self) -> Error {
        match self.state() {
            SessionState::Expired { by } => Error::SessionExpired { by },
            SessionState::TakenOver => Error::TakenOver,
            SessionState::AuthFailed => Error::AuthFailed,
            _ => Error::Closed,
        }
    }

    /// Sends one request; a server error code becomes an `Err`.
    async fn call(&self, op: OpCode, body: Bytes, kind: Idempotence) -> Result<Reply> {
        let reply = self.call_raw(op, body, kind).await?;
        match Error::from_code(reply.err) {
            Some(err) => Err(err),
            None => Ok(reply),
        }
    }

    fn decode<R: Record>(op: OpCode, body: Bytes) -> Result<R> {
        zk_proto::decode_exact(body).map_err(|source| Error::Protocol { op, source })
    }

    // ----- Nodes -----

    /// Creates a node and returns its path (with the sequence suffix for sequential modes;
    /// chroot stripped).
    ///
    /// ```no_run
    /// # async fn demo(client: zk_client::Client) -> Result<(), zk_client::Error> {
    /// use zk_client::{CreateMode, acl};
    /// let path = client
    ///     .create("/jobs/job-", "payload", &acl::open_unsafe(), CreateMode::PersistentSequential)
    ///     .await?;
    /// assert!(path.starts_with("/jobs/job-"));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::NodeExists`], [`Error::NoNode`] (no parent), [`Error::NoChildrenForEphemerals`],
    /// [`Error::InvalidAcl`], [`Error::NoAuth`], [`Error::ConnectionLoss`] (outcome unknown), …
    pub async fn create(
        &self,
        path: &str,
        data: impl Into<Bytes>,
        acl: &[Acl],
        mode: CreateMode,
    ) -> Result<String> {
        if mode == CreateMode::Container {
            return self.create2(path, data, acl, mode).await.map(|(p, _)| p);
        }
        let req = self.create_request(path, data.into(), acl, mode)?;
        let reply = self
            .call(OpCode::Create, req.to_bytes(), Idempotence::FailOnLoss)
            .await?;
        let resp: CreateResponse = Self::decode(OpCode::Create, reply.body)?;
        Ok(self.client_path(&resp.path))
    }

    /// Creates a node and returns its path and Stat (`create2`).
    ///
    /// # Errors
    /// As [`Client::create`].
    pub async fn create2(
        &self,
        path: &str,
        data: impl Into<Bytes>,
        acl: &[Acl],
        mode: CreateMode,
    ) -> Result<(String, Stat)> {
        let req = self.create_request(path, data.into(), acl, mode)?;
        let op = if mode == CreateMode::Container {
            OpCode::CreateContainer
        } else {
            OpCode::Create2
        };
        let reply = self
            .call(op, req.to_bytes(), Idempotence::FailOnLoss)
            .await?;
        let resp: Create2Response = Self::decode(op, reply.body)?;
        Ok((self.client_path(&resp.path), resp.stat))
    }

    /// Creates a persistent node that the server deletes once it has had no children and
    /// no change for `ttl` (needs `zookeeper.extendedTypesEnabled=true` on the server, else
    /// [`Error::Unimplemented`]).
    ///
    /// # Errors
    /// As [`Client::create`]; [`Error::InvalidArgument`] for a zero TTL,
    /// [`Error::BadArguments`] for one the server refuses.
    pub async fn create_ttl(
        &self,
        path: &str,
        data: impl Into<Bytes>,
        acl: &[Acl],
        ttl: Duration,
        sequential: bool,
    ) -> Result<(String, Stat)> {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        if ttl_ms <= 0 {
            return Err(Error::InvalidArgument {
                reason: "a TTL must be at least 1 ms",
            });
        }
        let server_path = self.create_path(path, sequential)?;
        let flags = if sequential {
            zk_proto::CreateMode::PersistentSequentialWithTtl
        } else {
            zk_proto::CreateMode::PersistentWithTtl
        };
        let req = CreateTtlRequest {
            path: server_path,
            data: data.into(),
            acl: acl.to_vec(),
            flags: flags.as_i32(),
            ttl: ttl_ms,
        };
        let reply = self
            .call(OpCode::CreateTtl, req.to_bytes(), Idempotence::FailOnLoss)
            .await?;
        let resp: Create2Response = Self::decode(OpCode::CreateTtl, reply.body)?;
        Ok((self.client_path(&resp.path), resp.stat))
    }

    fn create_path(&self, path: &str, sequential: bool) -> Result<String> {
        // A sequential create may end with '/' (the server appends the number).
        let checked = if sequential {
            format!("{path}1")
        } else {
            path.to_owned()
        };
        validate_path(&checked).map_err(|reason| Error::InvalidPath {
            path: path.to_owned(),
            reason,
        })?;
        Ok(self.prefix(path))
    }

    fn create_request(
        &self,
        path: &str,
        data: Bytes,
        acl: &[Acl],
        mode: CreateMode,
    ) -> Result<CreateRequest> {
        Ok(CreateRequest {
            path: self.create_path(path, mode.is_sequential())?,
            data,
            acl: acl.to_vec(),
            flags: mode.flags().as_i32(),
        })
    }

    /// Deletes a node if its version matches (`-1`: any version).
    ///
    /// # Errors
    /// [`Error::NoNode`], [`Error::BadVersion`], [`Error::NotEmpty`], [`Error::NoAuth`], …
    pub async fn delete(&self, path: &str, version: i32) -> Result<()> {
        let req = DeleteRequest {
            path: self.server_path(path)?,
            version,
        };
        self.call(OpCode::Delete, req.to_bytes(), Idempotence::FailOnLoss)
            .await
            .map(drop)
    }

    /// The node's Stat, or `None` if it does not exist.
    ///
    /// # Errors
    /// Connection and session errors; [`Error::NoAuth`] is not possible (exists needs none).
    pub async fn exists(&self, path: &str) -> Result<Option<Stat>> {
        let req = ExistsRequest {
            path: self.server_path(path)?,
            watch: false,
        };
        let reply = self
            .call_raw(OpCode::Exists, req.to_bytes(), Idempotence::Resend)
            .await?;
        Self::exists_result(reply)
    }

    fn exists_result(reply: Reply) -> Result<Option<Stat>> {
        match reply.err {
            ErrorCode::Ok => {
                let resp: ExistsResponse = Self::decode(OpCode::Exists, reply.body)?;
                Ok(Some(resp.stat))
            }
            ErrorCode::NoNode => Ok(None),
            other => Err(Error::from_code(other).unwrap_or(Error::SystemError)),
        }
    }

    /// Like [`Client::exists`], and sets a watch that fires when the node is created,
    /// deleted or changed (whether it exists now or not).
    ///
    /// ```no_run
    /// # async fn demo(client: zk_client::Client) -> Result<(), zk_client::Error> {
    /// let (stat, watcher) = client.exists_watch("/leader").await?;
    /// if stat.is_none() {
    ///     let event = watcher.await; // NodeCreated (or a terminal session event)
    ///     println!("{:?} {}", event.event_type, event.path);
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Client::exists`].
    pub async fn exists_watch(&self, path: &str) -> Result<(Option<Stat>, OneshotWatcher)> {
        let server_path = self.server_path(path)?;
        let req = ExistsRequest {
            path: server_path.clone(),
            watch: true,
        };
        let (id, watcher) = self.register_oneshot(&server_path, path, Kind::Exist)?;
        let reply = self
            .call_raw(OpCode::Exists, req.to_bytes(), Idempotence::Resend)
            .await;
        let reply = match reply {
            Ok(r) if matches!(r.err, ErrorCode::Ok | ErrorCode::NoNode) => r,
            Ok(r) => {
                self.cancel(&server_path, id);
                return Err(Error::from_code(r.err).unwrap_or(Error::SystemError));
            }
            Err(e) => {
                self.cancel(&server_path, id);
                return Err(e);
            }
        };
        let zxid = reply.zxid;
        let kind = if reply.err == ErrorCode::Ok {
            Kind::Data
        } else {
            Kind::Exist
        };
        let stat = Self::exists_result(reply)?;
        self.confirm(&server_path, id, kind, zxid).await;
        Ok((stat, watcher))
    }

    /// The node's data and Stat.
    ///
    /// # Errors
    /// [`Error::NoNode`], [`Error::NoAuth`], connection and session errors.
    pub async fn get_data(&self, path: &str) -> Result<(Bytes, Stat)> {
        let req = GetDataRequest {
            path: self.server_path(path)?,
            watch: false,
        };
        let reply = self
            .call(OpCode::GetData, req.to_bytes(), Idempotence::Resend)
            .await?;
        let resp: GetDataResponse = Self::decode(OpCode::GetData, reply.body)?;
        Ok((resp.data.unwrap_or_default(), resp.stat))
    }

    /// Like [`Client::get_data`], and sets a watch that fires when the data changes or the
    /// node is deleted.
    ///
    /// ```no_run
    /// # async fn demo(client: zk_client::Client) -> Result<(), zk_client::Error> {
    /// loop {
    ///     let (data, _stat, watcher) = client.get_data_watch("/config").await?;
    ///     println!("config is now {data:?}");
    ///     let event = watcher.await;
    ///     if event.is_terminal() {
    ///         break;
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Client::get_data`] (no watch is left behind on error).
    pub async fn get_data_watch(&self, path: &str) -> Result<(Bytes, Stat, OneshotWatcher)> {
        let server_path = self.server_path(path)?;
        self.get_data_watch_raw(server_path, path).await
    }

    async fn get_data_watch_raw(
        &self,
        server_path: String,
        client_path: &str,
    ) -> Result<(Bytes, Stat, OneshotWatcher)> {
        let req = GetDataRequest {
            path: server_path.clone(),
            watch: true,
        };
        let (id, watcher) = self.register_oneshot(&server_path, client_path, Kind::Data)?;
        let result = self
            .call(OpCode::GetData, req.to_bytes(), Idempotence::Resend)
            .await;
        let reply = match result {
            Ok(r) => r,
            Err(e) => {
                self.cancel(&server_path, id);
                return Err(e);
            }
        };
        let zxid = reply.zxid;
        let resp: GetDataResponse = Self::decode(OpCode::GetData, reply.body)?;
        self.confirm(&server_path, id, Kind::Data, zxid).await;
        Ok((resp.data.unwrap_or_default(), resp.stat, watcher))
    }

    /// Sets the node's data if its version matches (`-1`: any version); returns the new
    /// Stat.
    ///
    /// # Errors
    /// [`Error::NoNode`], [`Error::BadVersion`], [`Error::NoAuth`], …
    pub async fn set_data(&self, path: &str, data: impl Into<Bytes>, version: i32) -> Result<Stat> {
        let req = SetDataRequest {
            path: self.server_path(path)?,
            data: data.into(),
            version,
        };
        let reply = self
            .call(OpCode::SetData, req.to_bytes(), Idempotence::FailOnLoss)
            .await?;
        let resp: SetDataResponse = Self::decode(OpCode::SetData, reply.body)?;
        Ok(resp.stat)
    }

    /// The node's ACL and Stat.
    ///
    /// # Errors
    /// [`Error::NoNode`], connection and session errors.
    pub async fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat)> {
        let req = GetAclRequest {
            path: self.server_path(path)?,
        };
        let reply = self
            .call(OpCode::GetAcl, req.to_bytes(), Idempotence::Resend)
            .await?;
        let resp: GetAclResponse = Self::decode(OpCode::GetAcl, reply.body)?;
        Ok((resp.acl, resp.stat))
    }

    /// Sets the node's ACL if its ACL version (`aversion`) matches (`-1`: any).
    ///
    /// # Errors
    /// [`Error::NoNode`], [`Error::BadVersion`], [`Error::InvalidAcl`], [`Error::NoAuth`], …
    pub async fn set_acl(&self, path: &str, acl: &[Acl], version: i32) -> Result<Stat> {
        let req = SetAclRequest {
            path: self.server_path(path)?,
            acl: acl.to_vec(),
            version,
        };
        let reply = self
            .call(OpCode::SetAcl, req.to_bytes(), Idempotence::FailOnLoss)
            .await?;
        let resp: SetAclResponse = Self::decode(OpCode::SetAcl, reply.body)?;
        Ok(resp.stat)
    }

    /// The names of the node's children (unordered).
    ///
    /// # Errors
    /// [`Error::NoNode`], [`Error::NoAuth`], connection and session errors.
    pub async fn get_children(&self, path: &str) -> Result<Vec<String>> {
        let req = GetChildrenRequest {
            path: self.server_path(path)?,
            watch: false,
        };
        let reply = self
            .call(OpCode::GetChildren, req.to_bytes(), Idempotence::Resend)
            .await?;
        let resp: GetChildrenResponse = Self::decode(OpCode::GetChildren, reply.body)?;
        Ok(resp.children)
    }

    /// Like [`Client::get_children`], and sets a watch that fires when a child is created
    /// or deleted, or the node is deleted.
    ///
    /// # Errors
    /// As [`Client::get_children`].
    pub async fn get_children_watch(&self, path: &str) -> Result<(Vec<String>, OneshotWatcher)> {
        let (children, _, w) = self.children_watch(path).await?;
        Ok((children, w))
    }

    /// The children's names and the node's Stat (`getChildren2`).
    ///
    /// # Errors
    /// As [`Client::get_children`].
    pub async fn get_children2(&self, path: &str) -> Result<(Vec<String>, Stat)> {
        let req = GetChildren2Request {
            path: self.server_path(path)?,
            watch: false,
        };
        let reply = self
            .call(OpCode::GetChildren2, req.to_bytes(), Idempotence::Resend)
            .await?;
        let resp: GetChildren2Response = Self::decode(OpCode::GetChildren2, reply.body)?;
        Ok((resp.children, resp.stat))
    }

    /// Like [`Client::get_children2`], and sets a child watch.
    ///
    /// # Errors
    /// As [`Client::get_children`].
    pub async fn get_children2_watch(
        &self,
        path: &str,
    ) -> Result<(Vec<String>, Stat, OneshotWatcher)> {
        self.children_watch(path).await
    }

    async fn children_watch(&self, path: &str) -> Result<(Vec<String>, Stat, OneshotWatcher)> {
        let server_path = self.server_path(path)?;
        let req = GetChildren2Request {
            path: server_path.clone(),
            watch: true,
        };
        let (id, watcher) = self.register_oneshot(&server_path, path, Kind::Child)?;
        let reply = match self
            .call(OpCode::GetChildren2, req.to_bytes(), Idempotence::Resend)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                self.cancel(&server_path, id);
                return Err(e);
            }
        };
        let zxid = reply.zxid;
        let resp: GetChildren2Response = Self::decode(OpCode::GetChildren2, reply.body)?;
        self.confirm(&server_path, id, Kind::Child, zxid).await;
        Ok((resp.children, resp.stat, watcher))
    }

    /// The number of descendants of the node (not counting itself).
    ///
    /// # Errors
    /// [`Error::NoNode`], connection and session errors.
    pub async fn get_all_children_number(&self, path: &str) -> Result<i32> {
        let req = GetAllChildrenNumberRequest {
            path: self.server_path(path)?,
        };
        let reply = self
            .call(
                OpCode::GetAllChildrenNumber,
                req.to_bytes(),
                Idempotence::Resend,
            )
            .await?;
        let resp: GetAllChildrenNumberResponse =
            Self::decode(OpCode::GetAllChildrenNumber, reply.body)?;
        Ok(resp.total_number)
    }

    /// The paths of this session's ephemeral nodes under `prefix_path` (`/` for all;
    /// chroot applied and stripped).
    ///
    /// # Errors
    /// Connection and session errors.
    pub async fn get_ephemerals(&self, prefix_path: &str) -> Result<Vec<String>> {
        let req = GetEphemeralsRequest {
            prefix_path: self.server_path(prefix_path)?,
        };
        let reply = self
            .call(OpCode::GetEphemerals, req.to_bytes(), Idempotence::Resend)
            .await?;
        let resp: GetEphemeralsResponse = Self::decode(OpCode::GetEphemerals, reply.body)?;
        // The server matches the prefix as a string: with chroot `/app` it also returns
        // nodes of `/application`. Keep only those inside the chroot.
        Ok(match &self.inner.chroot {
            Some(c) => resp
                .ephemerals
                .iter()
                .filter_map(|p| c.strip(p).map(str::to_owned))
                .collect(),
            None => resp.ephemerals,
        })
    }

    /// Waits until the server the session is on has caught up with the leader (for `path`;
    /// the server syncs everything).
    ///
    /// On a follower this makes later reads of the session see every write acknowledged
    /// before the call. On the **leader**, ZooKeeper 3.8 serves a sync as a plain read, which
    /// can overtake commits the leader has not applied yet: a reader on the leader that
    /// synced after each write a follower acknowledged missed 10–18 of 3,000 of them in our
    /// measurements. When a read must see another session's acknowledged write whatever
    /// server answers it, precede it with a write instead — a no-op one such as
    /// `multi(vec![Op::check("/", -1)])` — since writes are applied in order everywhere and
    /// the session's reads wait for its own writes.
    ///
    /// # Errors
    /// [`Error::NotReadOnly`] on a read-only server; connection and session errors.
    pub async fn sync(&self, path: &str) -> Result<()> {
        let req = SyncRequest {
            path: self.server_path(path)?,
        };
        let reply = self
            .call(OpCode::Sync, req.to_bytes(), Idempotence::Resend)
            .await?;
        let _: SyncResponse = Self::decode(OpCode::Sync, reply.body)?;
        Ok(())
    }

    // ----- Transactions -----

    /// Applies `ops` atomically: all or nothing.
    ///
    /// ```no_run
    /// # async fn demo(client: zk_client::Client) -> Result<(), zk_client::Error> {
    /// use zk_client::{CreateMode, Error, Op, acl};
    /// let result = client
    ///     .multi(vec![
    ///         Op::check("/lock", 0),
    ///         Op::create("/lock/owner", "me", acl::open_unsafe(), CreateMode::Ephemeral),
    ///     ])
    ///     .await;
    /// match result {
    ///     Ok(results) => println!("{results:?}"),
    ///     Err(Error::MultiFailed { index, error, .. }) => println!("op {index}: {error}"),
    ///     Err(other) => return Err(other),
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::MultiFailed`] with per-operation results when an operation failed (nothing
    /// was applied); [`Error::NotReadOnly`], connection and session errors otherwise.
    pub async fn multi(&self, ops: Vec<Op>) -> Result<Vec<OpResult>> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let mut req = MultiRequest {
            ops: Vec::with_capacity(ops.len()),
        };
        for op in ops {
            let sequential = matches!(&op, Op::Create { mode, .. } if mode.is_sequential());
            let path = self.create_path(op.path(), sequential)?;
            req.ops.push(match op {
                Op::Create {
                    data, acl, mode, ..
                } => {
                    let r = CreateRequest {
                        path,
                        data,
                        acl,
                        flags: mode.flags().as_i32(),
                    };
                    if mode == CreateMode::Container {
                        MultiOp::CreateContainer(r)
                    } else {
                        MultiOp::Create2(r)
                    }
                }
                Op::Delete { version, .. } => MultiOp::Delete(DeleteRequest { path, version }),
                Op::SetData { data, version, .. } => MultiOp::SetData(SetDataRequest {
                    path,
                    data,
                    version,
                }),
                Op::Check { version, .. } => MultiOp::Check(CheckVersionRequest { path, version }),
            });
        }
        let reply = self
            .call(OpCode::Multi, req.to_bytes(), Idempotence::FailOnLoss)
            .await?;
        let resp: MultiResponse = Self::decode(OpCode::Multi, reply.body)?;
        let mut first_error = None;
        let results: Vec<OpResult> = resp
            .results
            .into_iter()
            .enumerate()
            .map(|(i, r)| match r {
                MultiResult::Create(c) => OpResult::Create {
                    path: self.client_path(&c.path),
                    stat: Stat::default(),
                },
                MultiResult::Create2(c) => OpResult::Create {
                    path: self.client_path(&c.path),
                    stat: c.stat,
                },
                MultiResult::Delete => OpResult::Delete,
                MultiResult::SetData(s) => OpResult::SetData { stat: s.stat },
                MultiResult::Check => OpResult::Check,
                MultiResult::Error(code) => match Error::from_code(code) {
                    None => OpResult::RolledBack,
                    Some(err) => {
                        if first_error.is_none() && err != Error::RuntimeInconsistency {
                            first_error = Some((i, err.clone()));
                        }
                        OpResult::Error(err)
                    }
                },
                _ => OpResult::Error(Error::Protocol {
                    op: OpCode::Multi,
                    source: zk_proto::DecodeError::InvalidMultiOpType(r_type_placeholder()),
                }),
            })
            .collect();
        if first_error.is_none()
            && let Some(i) = results.iter().position(|r| matches!(r, OpResult::Error(_)))
            && let OpResult::Error(err) = &results[i]
        {
            first_error = Some((i, err.clone()));
        }
        match first_error {
            None => Ok(results),
            Some((index, error)) => Err(Error::MultiFailed {
                index,
                error: Box::new(error),
                results,
            }),
        }
    }

    /// Runs reads as one request (`multiRead`): each succeeds or fails on its own.
    ///
    /// # Errors
    /// Invalid paths, connection and session errors (per-read errors are in the results).
    pub async fn multi_read(&self, ops: Vec<ReadOp>) -> Result<Vec<Result<ReadResult>>> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let mut req = MultiRequest {
            ops: Vec::with_capacity(ops.len()),
        };
        for op in &ops {
            let path = self.server_path(op.path())?;
            req.ops.push(match op {
                ReadOp::GetData { .. } => MultiOp::GetData(GetDataRequest { path, watch: false }),
                ReadOp::GetChildren { .. } => {
                    MultiOp::GetChildren(GetChildrenRequest { path, watch: false })
                }
            });
        }
        let reply = self
            .call(OpCode::MultiRead, req.to_bytes(), Idempotence::Resend)
            .await?;
        let resp: MultiResponse = Self::decode(OpCode::MultiRead, reply.body)?;
        Ok(resp
            .results
            .into_iter()
            .map(|r| match r {
                MultiResult::GetData(d) => Ok(ReadResult::Data {
                    data: d.data.unwrap_or_default(),
                    stat: d.stat,
                }),
                MultiResult::GetChildren(c) => Ok(ReadResult::Children(c.children)),
                MultiResult::Error(code) => {
                    Err(Error::from_code(code).unwrap_or(Error::SystemError))
                }
                _ => Err(Error::Protocol {
                    op: OpCode::MultiRead,
                    source: zk_proto::DecodeError::InvalidMultiOpType(r_type_placeholder()),
                }),
            })
            .collect())
    }

    // ----- Auth and configuration -----

    /// Adds credentials to the session (e.g. `digest`, `user:password`). They are recorded
    /// and presented again on every reconnect, before any request.
    ///
    /// It does not wait for other calls in flight: the server answers authentication as soon
    /// as it reads it, ahead of earlier requests, and the engine matches that reply out of
    /// order. Requests sent after this call returns carry the new identity.
    ///
    /// # Errors
    /// [`Error::AuthFailed`] (the server then drops the connection; the session reconnects
    /// without these credentials), connection and session errors.
    pub async fn add_auth(&self, scheme: &str, auth: impl Into<Bytes>) -> Result<()> {
        let auth = auth.into();
        let deadline = self.deadline();
        // The server answers `auth` as soon as it reads it, ahead of earlier requests; the
        // engine matches that reply out of order, so other requests need not drain first.
        let _permit = self.permit(1, deadline).await?;
        let body = AuthPacket {
            auth_type: 0,
            scheme: scheme.to_owned(),
            auth: auth.clone(),
        }
        .to_bytes();
        let reply = self
            .submit(OpCode::Auth, body, Idempotence::Resend, deadline)
            .await?;
        if let Some(err) = Error::from_code(reply.err) {
            return Err(err);
        }
        wreg::lock(&self.inner.registry).add_auth(scheme.to_owned(), auth);
        Ok(())
    }

    /// [`Client::add_auth`] with the `digest` scheme.
    ///
    /// # Errors
    /// As [`Client::add_auth`].
    pub async fn add_auth_digest(&self, user: &str, password: &str) -> Result<()> {
        self.add_auth("digest", format!("{user}:{password}")).await
    }

    /// The identities the server associates with this session.
    ///
    /// # Errors
    /// Connection and session errors.
    pub async fn who_am_i(&self) -> Result<Vec<ClientInfo>> {
        let reply = self
            .call(OpCode::WhoAmI, Empty.to_bytes(), Idempotence::Resend)
            .await?;
        let resp: WhoAmIResponse = Self::decode(OpCode::WhoAmI, reply.body)?;
        Ok(resp.client_info)
    }

    /// The ensemble configuration (`/zookeeper/config`, never chrooted) and its Stat.
    ///
    /// # Errors
    /// Connection and session errors.
    pub async fn get_config(&self) -> Result<(Bytes, Stat)> {
        let req = GetDataRequest {
            path: zk_proto::CONFIG_NODE.to_owned(),
            watch: false,
        };
        let reply = self
            .call(OpCode::GetData, req.to_bytes(), Idempotence::Resend)
            .await?;
        let resp: GetDataResponse = Self::decode(OpCode::GetData, reply.body)?;
        Ok((resp.data.unwrap_or_default(), resp.stat))
    }

    /// Like [`Client::get_config`], with a watch on the configuration.
    ///
    /// # Errors
    /// As [`Client::get_config`].
    pub async fn get_config_watch(&self) -> Result<(Bytes, Stat, OneshotWatcher)> {
        let path = zk_proto::CONFIG_NODE;
        self.get_data_watch_raw(path.to_owned(), path).await
    }

    /// Changes the ensemble membership (needs `reconfigEnabled=true` and an authorised
    /// session). `from_config`: only apply if the current config version matches.
    ///
    /// # Errors
    /// [`Error::ReconfigDisabled`], [`Error::NoAuth`], [`Error::NewConfigNoQuorum`],
    /// [`Error::ReconfigInProgress`], [`Error::BadVersion`], …
    pub async fn reconfig(
        &self,
        change: Reconfig,
        from_config: Option<i64>,
    ) -> Result<(Bytes, Stat)> {
        let (joining, leaving, members) = match change {
            Reconfig::Incremental { joining, leaving } => (joining, leaving, None),
            Reconfig::NewMembers(m) => (None, None, Some(m)),
        };
        let req = ReconfigRequest {
            joining_servers: joining,
            leaving_servers: leaving,
            new_members: members,
            cur_config_id: from_config.unwrap_or(-1),
        };
        let reply = self
            .call(OpCode::Reconfig, req.to_bytes(), Idempotence::FailOnLoss)
            .await?;
        let resp: GetDataResponse = Self::decode(OpCode::Reconfig, reply.body)?;
        Ok((resp.data.unwrap_or_default(), resp.stat))
    }

    // ----- Watches -----

    /// Sets a persistent watch on `path` (mode [`AddWatchMode::Persistent`]: its data and
    /// child events) or on `path` and every descendant
    /// ([`AddWatchMode::PersistentRecursive`]: created, deleted and data-changed events).
    ///
    /// The watch stays until its handle is dropped or [`Client::remove_watches`] removes it,
    /// and survives reconnects; see [`WatchEvent::Resync`](crate::WatchEvent::Resync).
    ///
    /// ```no_run
    /// # async fn demo(client: zk_client::Client) -> Result<(), zk_client::Error> {
    /// use zk_client::{AddWatchMode, WatchEvent};
    /// let mut watcher = client.add_watch("/services", AddWatchMode::PersistentRecursive).await?;
    /// while let Some(event) = watcher.next().await {
    ///     match event {
    ///         WatchEvent::Event(e) => println!("{:?} {}", e.event_type, e.path),
    ///         WatchEvent::Resync { .. } => println!("possible gap: re-read /services"),
    ///         _ => {}
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Unimplemented`] on servers before 3.6, connection and session errors.
    pub async fn add_watch(&self, path: &str, mode: AddWatchMode) -> Result<PersistentWatcher> {
        let server_path = self.server_path(path)?;
        let kind = match mode {
            AddWatchMode::Persistent => Kind::Persistent,
            AddWatchMode::PersistentRecursive => Kind::Recursive,
        };
        let wire_mode = match mode {
            AddWatchMode::Persistent => zk_proto::AddWatchMode::Persistent,
            AddWatchMode::PersistentRecursive => zk_proto::AddWatchMode::PersistentRecursive,
        };
        let (id, _epoch, rx) = wreg::lock(&self.inner.registry)
            .register(&server_path, kind)
            .ok_or_else(|| self.terminal_error())?;
        let watcher = PersistentWatcher::new(
            rx,
            id,
            server_path.clone(),
            path.to_owned(),
            Arc::downgrade(&self.inner) as Weak<dyn WatchRemover>,
            Arc::downgrade(&self.inner.registry),
        );
        let req = AddWatchRequest {
            path: server_path.clone(),
            mode: wire_mode.as_i32(),
        };
        let reply = match self
            .call(OpCode::AddWatch, req.to_bytes(), Idempotence::Resend)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                self.cancel(&server_path, id);
                return Err(e);
            }
        };
        self.confirm(&server_path, id, kind, reply.zxid).await;
        Ok(watcher)
    }

    /// Removes this client's watches of `kind` on `path`, on the server and locally; each
    /// removed watcher receives a `DataWatchRemoved`, `ChildWatchRemoved` or
    /// `PersistentWatchRemoved` event and ends.
    ///
    /// # Errors
    /// [`Error::NoWatcher`] when there is no such watch; connection and session errors.
    pub async fn remove_watches(&self, path: &str, kind: WatcherKind) -> Result<()> {
        let server_path = self.server_path(path)?;
        let matches = move |k: Kind| match kind {
            WatcherKind::Children => k == Kind::Child,
            WatcherKind::Data => matches!(k, Kind::Data | Kind::Exist),
            WatcherKind::Persistent => matches!(k, Kind::Persistent | Kind::Recursive),
            WatcherKind::Any => true,
        };
        if !wreg::lock(&self.inner.registry).has_local(&server_path, matches) {
            return Err(Error::NoWatcher);
        }
        let req = RemoveWatchesRequest {
            path: server_path.clone(),
            watcher_type: Self::watcher_type(kind),
        };
        let result = self
            .call(OpCode::RemoveWatches, req.to_bytes(), Idempotence::Resend)
            .await;
        match result {
            Ok(_) | Err(Error::NoWatcher) => {
                wreg::lock(&self.inner.registry).remove_all(&server_path, matches);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the server holds a watch of `kind` on `path` for this session.
    ///
    /// # Errors
    /// [`Error::NoWatcher`] when it does not; connection and session errors.
    pub async fn check_watches(&self, path: &str, kind: WatcherKind) -> Result<()> {
        let req = CheckWatchesRequest {
            path: self.server_path(path)?,
            watcher_type: Self::watcher_type(kind),
        };
        self.call(OpCode::CheckWatches, req.to_bytes(), Idempotence::Resend)
            .await
            .map(drop)
    }

    const fn watcher_type(kind: WatcherKind) -> i32 {
        match kind {
            WatcherKind::Children => 1,
            WatcherKind::Data => 2,
            WatcherKind::Persistent | WatcherKind::Any => 3,
        }
    }

    fn register_oneshot(
        &self,
        server_path: &str,
        client_path: &str,
        kind: Kind,
    ) -> Result<(u64, OneshotWatcher)> {
        let (id, _epoch, rx) = wreg::lock(&self.inner.registry)
            .register(server_path, kind)
            .ok_or_else(|| self.terminal_error())?;
        Ok((
            id,
            OneshotWatcher::new(
                rx,
                id,
                server_path.to_owned(),
                client_path.to_owned(),
                Arc::downgrade(&self.inner) as Weak<dyn WatchRemover>,
                Arc::downgrade(&self.inner.registry),
            ),
        ))
    }

    fn cancel(&self, server_path: &str, id: u64) {
        // The call failed: the server holds no watch for it.
        let _ = wreg::lock(&self.inner.registry).remove(server_path, id);
    }

    /// Marks a watch as armed. If a reconnect happened while its call was outstanding, the
    /// answer may have come on the old connection and the new connection's preamble did not
    /// carry the watch: re-arm it with an explicit SetWatches relative to the answer's zxid,
    /// so a change after the read still fires exactly once.
    async fn confirm(&self, server_path: &str, id: u64, kind: Kind, zxid: i64) {
        let rearm = wreg::lock(&self.inner.registry).confirm(server_path, id, kind);
        if !rearm {
            return;
        }
        debug!(
            path = server_path,
            ?kind,
            "re-arming a watch that raced a reconnect"
        );
        let p = vec![server_path.to_owned()];
        let (op, body) = match kind {
            Kind::Data => (OpCode::SetWatches, set_watches(zxid, p, vec![], vec![])),
            Kind::Exist => (OpCode::SetWatches, set_watches(zxid, vec![], p, vec![])),
            Kind::Child => (OpCode::SetWatches, set_watches(zxid, vec![], vec![], p)),
            Kind::Persistent | Kind::Recursive => {
                let (persistent, recursive) = if kind == Kind::Persistent {
                    (p, vec![])
                } else {
                    (vec![], p)
                };
                let body = SetWatches2 {
                    relative_zxid: zxid,
                    data_watches: vec![],
                    exist_watches: vec![],
                    child_watches: vec![],
                    persistent_watches: persistent,
                    persistent_recursive_watches: recursive,
                }
                .to_bytes();
                (OpCode::SetWatches2, body)
            }
        };
        wreg::lock(&self.inner.registry).counters.rearmed += 1;
        match self.call(op, body, Idempotence::Resend).await {
            Ok(reply)
                if matches!(kind, Kind::Persistent | Kind::Recursive) && reply.zxid != zxid =>
            {
                wreg::lock(&self.inner.registry).deliver_resync(&[id], zxid, reply.zxid);
            }
            Ok(_) => {}
            Err(err) => warn!(%err, path = server_path, "re-arming a watch failed"),
        }
    }
}

fn set_watches(zxid: i64, data: Vec<String>, exist: Vec<String>, child: Vec<String>) -> Bytes {
    SetWatches {
        relative_zxid: zxid,
        data_watches: data,
        exist_watches: exist,
        child_watches: child,
    }
    .to_bytes()
}

/// `MultiResult` is non-exhaustive; a result kind this crate does not know is reported
/// with this op type.
const fn r_type_placeholder() -> i32 {
    -1
}

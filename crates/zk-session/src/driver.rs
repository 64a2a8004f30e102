//! The thin tokio driver: runs a [`Session`] core over any [`Connector`].
//!
//! One task owns the core and the current connection. It polls the socket for reading
//! and, while bytes are pending, for writing — both as readiness, so a frozen peer whose
//! receive window is full only leaves bytes queued and never blocks the loop — receives
//! commands from [`SessionHandle`]s, carries out the core's actions (name lookups and
//! connects run as small tasks that report back) and sleeps until the core's next
//! deadline. A request therefore crosses one task boundary on the way out (caller →
//! engine, which writes it) and one on the way back. Everything the core decides is
//! decided in [`crate::core`]; this file only moves bytes and time.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{Instrument, debug, info_span, trace};
use zk_connstr::HostSpec;
use zk_transport::{BoxStream, ConnectError, Connector, Target};

use crate::core::{Action, HostsError, Output, Session};
use crate::host::{HostFailure, HostStats};
use crate::sasl::{SaslClient, SaslError, SaslMechanism, SaslStep};
use crate::types::{
    ConnId, Counters, Reply, Request, RequestError, RequestId, SessionEvent, SessionState,
    StateChange,
};

/// Size of each socket read.
const READ_CHUNK: usize = 64 * 1024;

/// At most this many queued commands are taken in one go before the loop writes (so a
/// burst of submissions leaves in one write, and one busy caller cannot starve the rest).
const COMMAND_BATCH: usize = 256;

/// What the driver reports to the application layer besides request completions.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum DriverEvent {
    /// The session changed state.
    State(StateChange),
    /// A watch notification; `body` is the encoded `WatcherEvent`.
    Notification(Bytes),
    /// The answer to a preamble packet.
    PreambleReply {
        /// The packet's xid.
        xid: i32,
        /// The server's last zxid.
        zxid: i64,
        /// The server's error code.
        err: zk_proto::ErrorCode,
        /// The reply body.
        body: Bytes,
        /// The session's last zxid when the preamble was built.
        relative_zxid: i64,
    },
}

/// What a handle can read about the session without asking the driver.
#[derive(Debug, Clone, Default)]
struct Snapshot {
    session_id: i64,
    password: Bytes,
    negotiated: Option<Duration>,
    last_zxid: i64,
    counters: Counters,
    hosts: Vec<HostStats>,
    last_connect_error: Option<(SocketAddr, ConnectError)>,
}

enum Command {
    Submit(Request, oneshot::Sender<Result<Reply, RequestError>>),
    UpdateHosts(Vec<HostSpec>, oneshot::Sender<Result<bool, HostsError>>),
    Close,
}

/// A cheap, clonable handle to a running session.
///
/// When the last handle (and the event receiver) is dropped the driver closes the session
/// gracefully.
#[derive(Clone)]
pub struct SessionHandle {
    commands: mpsc::UnboundedSender<Command>,
    state: watch::Receiver<StateChange>,
    snapshot: Arc<Mutex<Snapshot>>,
}

impl std::fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHandle")
            .field("session_id", &format_args!("{:#x}", self.session_id()))
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl SessionHandle {
    /// Sends a request and waits for its outcome.
    ///
    /// # Errors
    /// Whatever the session reports for it, or [`RequestError::Closed`] if the driver is gone.
    pub async fn submit(&self, req: Request) -> Result<Reply, RequestError> {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Submit(req, tx)).is_err() {
            return Err(self.ended());
        }
        rx.await.unwrap_or_else(|_| Err(self.ended()))
    }

    /// Replaces the session's host list (see [`Session::update_hosts`]): whether it changed.
    ///
    /// # Errors
    /// [`HostsError`]; [`HostsError::Ended`] once the driver is gone.
    pub async fn update_hosts(&self, hosts: Vec<HostSpec>) -> Result<bool, HostsError> {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::UpdateHosts(hosts, tx)).is_err() {
            return Err(HostsError::Ended);
        }
        rx.await.unwrap_or(Err(HostsError::Ended))
    }

    /// Why the driver is gone: the terminal state's error.
    fn ended(&self) -> RequestError {
        self.state()
            .terminal_error()
            .unwrap_or(RequestError::Closed)
    }

    /// Closes the session (closeSession is sent if connected) and waits until it is closed.
    pub async fn close(&self) {
        let _ = self.commands.send(Command::Close);
        let mut state = self.state.clone();
        let _ = state.wait_for(|s| s.state.is_terminal()).await;
    }

    /// The current state.
    #[must_use]
    pub fn state(&self) -> SessionState {
        self.state.borrow().state
    }

    /// The last state change (state, session id, server, time).
    #[must_use]
    pub fn state_change(&self) -> StateChange {
        self.state.borrow().clone()
    }

    /// A receiver that sees every state change.
    #[must_use]
    pub fn watch_state(&self) -> watch::Receiver<StateChange> {
        self.state.clone()
    }

    /// Waits until the session is connected (or reached a terminal state), at most `timeout`.
    /// Returns the state it ended in.
    pub async fn wait_connected(&self, timeout: Duration) -> SessionState {
        let mut rx = self.state.clone();
        let wait = rx.wait_for(|s| s.state.is_connected() || s.state.is_terminal());
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(s)) => s.state,
            _ => self.state(),
        }
    }

    fn snapshot(&self) -> Snapshot {
        lock(&self.snapshot).clone()
    }

    /// The session id (0 until the first handshake).
    #[must_use]
    pub fn session_id(&self) -> i64 {
        self.snapshot().session_id
    }

    /// The session password: with the id, what another process needs to resume the
    /// session. Treat it as a secret.
    #[must_use]
    pub fn password(&self) -> Bytes {
        self.snapshot().password
    }

    /// The negotiated session timeout.
    #[must_use]
    pub fn negotiated_timeout(&self) -> Option<Duration> {
        self.snapshot().negotiated
    }

    /// The last zxid the session has seen (as of the last state change).
    #[must_use]
    pub fn last_zxid(&self) -> i64 {
        self.snapshot().last_zxid
    }

    /// Reconnect counters (as of the last state change).
    #[must_use]
    pub fn counters(&self) -> Counters {
        self.snapshot().counters
    }

    /// Per-host health (failures, successes, last failure kind), indexed like the
    /// connection string's hosts (as of the last state change).
    #[must_use]
    pub fn host_stats(&self) -> Vec<HostStats> {
        self.snapshot().hosts
    }

    /// The most recent transport failure (address and typed error: refused, timed out, a
    /// TLS alert or certificate problem naming its cause), for diagnosing a session that
    /// cannot connect.
    #[must_use]
    pub fn last_connect_error(&self) -> Option<(SocketAddr, ConnectError)> {
        self.snapshot().last_connect_error
    }

    /// The server the session is on (or was last on).
    #[must_use]
    pub fn server(&self) -> Option<SocketAddr> {
        self.state.borrow().server
    }
}

/// Starts `session` on the current tokio runtime.
///
/// Returns the handle and the stream of notifications, preamble replies and state changes.
/// The receiver is unbounded: the application layer must keep draining it.
#[must_use]
pub fn spawn(
    session: Session,
    connector: Arc<dyn Connector>,
) -> (SessionHandle, mpsc::UnboundedReceiver<DriverEvent>) {
    let now = now();
    let initial = StateChange {
        state: session.state(),
        session_id: session.session_id(),
        server: None,
        at: now,
    };
    let (state_tx, state_rx) = watch::channel(initial);
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let (io_tx, io_rx) = mpsc::unbounded_channel();
    let snapshot = Arc::new(Mutex::new(Snapshot {
        session_id: session.session_id(),
        password: session.password().clone(),
        ..Snapshot::default()
    }));
    let driver = Driver {
        core: session,
        connector,
        commands: cmd_rx,
        events: ev_tx,
        state: state_tx,
        snapshot: Arc::clone(&snapshot),
        waiters: HashMap::new(),
        conn: None,
        read_buf: BytesMut::with_capacity(READ_CHUNK),
        handles_gone: false,
        io_tx,
        io_rx,
        sasl: None,
    };
    let span = info_span!("zk_session");
    tokio::spawn(driver.run().instrument(span));
    (
        SessionHandle {
            commands: cmd_tx,
            state: state_rx,
            snapshot,
        },
        ev_rx,
    )
}

/// The snapshot, even if a thread panicked while holding it (it is plain data, always
/// consistent field by field).
fn lock(snapshot: &Mutex<Snapshot>) -> std::sync::MutexGuard<'_, Snapshot> {
    snapshot.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The time the core sees: tokio's clock, so paused-time tests work.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

enum Io {
    Resolved(ConnId, Result<Vec<SocketAddr>, ()>),
    Connected(ConnId, BoxStream),
    ConnectFailed(ConnId, HostFailure),
    Probe(u64, bool),
    /// A SASL step that ran on a blocking thread, with its conversation handed back.
    Sasl(
        ConnId,
        Option<Box<dyn SaslClient>>,
        Result<SaslStep, SaslError>,
    ),
}

/// The current connection: the stream and the bytes not yet accepted by it.
struct Conn {
    id: ConnId,
    stream: BoxStream,
    /// Bytes the core asked to send that the stream has not taken yet.
    out: BytesMut,
    /// Whether the stream must be flushed once `out` is empty (TLS buffers records).
    flush: bool,
    /// The receive low-water mark wanted while every pending byte is written: the core's
    /// [`Session::receive_hint`] (1 = wake up for any byte).
    low_water_target: usize,
    /// The mark the socket has now.
    low_water: usize,
    /// Whether the stream supports a low-water mark (plain TCP on Linux).
    low_water_ok: bool,
}

/// What happened on the current connection.
enum ConnEvent {
    /// Bytes were appended to the read buffer.
    Data,
    /// The peer closed its side in order.
    Eof,
    /// Reading failed (reset, abort).
    ReadFailed,
    /// Writing or flushing failed.
    WriteFailed,
}

impl Conn {
    /// Writes (and flushes) as much of `out` as the stream takes without waiting.
    /// `Ready(Err)` means the connection is broken; `Pending` that bytes remain (the
    /// context's waker is registered for writability).
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        while !self.out.is_empty() {
            match Pin::new(&mut self.stream).poll_write(cx, &self.out) {
                Poll::Ready(Ok(0) | Err(_)) => return Poll::Ready(Err(())),
                Poll::Ready(Ok(n)) => {
                    self.out.advance(n);
                    self.flush = true;
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        if self.flush {
            match Pin::new(&mut self.stream).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.flush = false,
                Poll::Ready(Err(_)) => return Poll::Ready(Err(())),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Sends what is pending and reads once: ready when bytes arrived, the peer closed,
    /// or either direction failed.
    fn poll_io(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<ConnEvent> {
        match self.poll_send(cx) {
            Poll::Ready(Err(())) => return Poll::Ready(ConnEvent::WriteFailed),
            // Every request is on the wire: its answer is certain to come.
            Poll::Ready(Ok(())) => self.set_low_water(self.low_water_target),
            // Requests still queued here are not answered until written: no batching.
            Poll::Pending => self.set_low_water(1),
        }
        self.poll_read(cx, buf)
    }

    fn set_low_water(&mut self, bytes: usize) {
        if self.low_water_ok && bytes != self.low_water {
            if zk_transport::set_receive_low_water(&*self.stream, bytes) {
                self.low_water = bytes;
            } else {
                self.low_water_ok = false;
            }
        }
    }

    /// Reads once into `buf`.
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut) -> Poll<ConnEvent> {
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(READ_CHUNK);
        }
        let read = std::pin::pin!(self.stream.read_buf(buf));
        match read.poll(cx) {
            Poll::Ready(Ok(0)) => Poll::Ready(ConnEvent::Eof),
            Poll::Ready(Ok(_)) => Poll::Ready(ConnEvent::Data),
            Poll::Ready(Err(_)) => Poll::Ready(ConnEvent::ReadFailed),
            Poll::Pending => Poll::Pending,
        }
    }

    /// One last attempt to hand pending bytes to the stream before it is dropped (a
    /// `closeSession` answer, say), without waiting.
    fn send_without_waiting(&mut self) {
        let mut cx = Context::from_waker(Waker::noop());
        let _ = self.poll_send(&mut cx);
    }
}

struct Driver {
    core: Session,
    connector: Arc<dyn Connector>,
    commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<DriverEvent>,
    state: watch::Sender<StateChange>,
    snapshot: Arc<Mutex<Snapshot>>,
    waiters: HashMap<RequestId, oneshot::Sender<Result<Reply, RequestError>>>,
    conn: Option<Conn>,
    read_buf: BytesMut,
    handles_gone: bool,
    io_tx: mpsc::UnboundedSender<Io>,
    io_rx: mpsc::UnboundedReceiver<Io>,
    /// The SASL conversation of the connection being authenticated (absent while a step
    /// runs on a blocking thread).
    sasl: Option<(ConnId, Box<dyn SaslClient>)>,
}

impl Driver {
    async fn run(mut self) {
        self.prepare_sasl();
        self.core.start(now());
        // One timer for the whole life of the session. It is only moved *earlier* when the
        // core's next deadline is earlier than the armed one; a later deadline (the receive
        // timeout moves with every reply) lets it fire early, which the core ignores, and it
        // is re-armed then. This keeps the timer wheel out of the per-request path.
        let sleep = tokio::time::sleep_until(tokio::time::Instant::now());
        tokio::pin!(sleep);
        let mut armed: Option<Instant> = None;
        loop {
            self.drain();
            if self.core.state().is_terminal() {
                break;
            }
            if let Some(c) = self.conn.as_mut() {
                // Applied by `poll_io` before the next read; lowering the mark makes the kernel
                // signal readability at once if anything is buffered (`tcp_set_rcvlowat`).
                c.low_water_target = self.core.receive_hint();
            }
            if let Some(deadline) = self.core.poll_timeout()
                && armed.is_none_or(|at| deadline < at)
            {
                sleep
                    .as_mut()
                    .reset(tokio::time::Instant::from_std(deadline));
                armed = Some(deadline);
            }
            tokio::select! {
                biased;
                Some(io) = self.io_rx.recv() => self.on_io(io),
                (conn, event) = conn_io(self.conn.as_mut(), &mut self.read_buf) => {
                    self.on_conn_event(conn, event);
                }
                cmd = self.commands.recv(), if !self.handles_gone => {
                    // Requests already outstanding: the connection is busy, so a request
                    // written now would queue behind them anyway.
                    let busy = !self.waiters.is_empty();
                    self.on_command(cmd);
                    // Take what else is queued, so a burst leaves in one write.
                    self.take_queued_commands(COMMAND_BATCH - 1);
                    // (A closed channel has set `handles_gone`.)
                    if busy && !self.handles_gone {
                        // Cork: let the callers that our last completions woke submit their
                        // next requests before writing, so they share one write (and the
                        // server one read) instead of trickling out a request or two per
                        // segment. An idle connection writes at once (latency).
                        yield_to_queued_tasks().await;
                        self.take_queued_commands(COMMAND_BATCH);
                    }
                }
                () = &mut sleep, if armed.is_some() => {
                    armed = None;
                    self.core.handle_timeout(now());
                }
            }
        }
        // Terminal: fail anything still waiting and drop the connection.
        self.drain();
        for (_, tx) in self.waiters.drain() {
            let _ = tx.send(Err(RequestError::Closed));
        }
        if let Some(mut c) = self.conn.take() {
            c.send_without_waiting();
        }
        debug!("session driver finished");
    }

    fn on_conn_event(&mut self, conn: ConnId, event: ConnEvent) {
        let now = now();
        match event {
            ConnEvent::Data => {
                let data = self.read_buf.split();
                self.core.handle_data(now, conn, &data);
            }
            ConnEvent::Eof => {
                self.conn = None;
                self.core.handle_closed(now, conn);
            }
            ConnEvent::ReadFailed | ConnEvent::WriteFailed => {
                self.conn = None;
                self.core.handle_reset(now, conn);
            }
        }
    }

    /// Takes up to `max` commands that are already queued, without waiting.
    fn take_queued_commands(&mut self, max: usize) {
        for _ in 0..max {
            match self.commands.try_recv() {
                Ok(cmd) => self.on_command(Some(cmd)),
                Err(_) => break,
            }
        }
    }

    fn on_command(&mut self, cmd: Option<Command>) {
        match cmd {
            Some(Command::Submit(req, tx)) => {
                let id = self.core.submit(now(), req);
                self.waiters.insert(id, tx);
            }
            Some(Command::UpdateHosts(hosts, tx)) => {
                let result = self.core.update_hosts(now(), hosts);
                if matches!(result, Ok(true)) {
                    self.prepare_sasl();
                }
                let _ = tx.send(result);
                self.update_snapshot();
            }
            Some(Command::Close) => self.core.close(now()),
            None => {
                self.handles_gone = true;
                self.core.close(now());
            }
        }
    }

    fn on_io(&mut self, io: Io) {
        let now = now();
        match io {
            Io::Resolved(conn, result) => self.core.handle_resolved(now, conn, result),
            Io::Connected(conn, stream) => {
                if self.core.current_conn() != Some(conn) {
                    return; // A stale attempt: dropping the stream closes it.
                }
                self.conn = Some(Conn {
                    id: conn,
                    stream,
                    out: BytesMut::new(),
                    flush: false,
                    low_water_target: 1,
                    low_water: 1,
                    low_water_ok: true,
                });
                self.core.handle_connected(now, conn);
            }
            Io::ConnectFailed(conn, failure) => self.core.handle_connect_failed(now, conn, failure),
            Io::Probe(probe, rw) => self.core.handle_probe(now, probe, rw),
            Io::Sasl(conn, client, result) => {
                if self.core.current_conn() == Some(conn) {
                    self.sasl = client.map(|c| (conn, c));
                }
                self.core.handle_sasl(now, conn, result);
            }
        }
    }

    /// Lets the SASL mechanism obtain what it needs for every server ahead of need (Kerberos
    /// service tickets), on a blocking thread.
    fn prepare_sasl(&self) {
        if let Some(mech) = self.core.config().sasl.clone() {
            let servers: Vec<String> = self
                .core
                .hosts()
                .iter()
                .map(HostSpec::server_name)
                .collect();
            drop(tokio::task::spawn_blocking(move || mech.prepare(&servers)));
        }
    }

    /// Runs one SASL step for `conn`: inline for a pure mechanism; for one that may wait on
    /// a KDC, a conversation's start and first step on a blocking thread (later steps are
    /// local computation and run inline).
    fn sasl_step(&mut self, conn: ConnId, server: String, token: Option<Bytes>) {
        let Some(mech) = self.core.config().sasl.clone() else {
            return;
        };
        let conversation = self
            .sasl
            .take()
            .filter(|(c, _)| *c == conn && token.is_some())
            .map(|(_, client)| client);
        if mech.may_block() && token.is_none() {
            let tx = self.io_tx.clone();
            drop(tokio::task::spawn_blocking(move || {
                let (client, result) = sasl_run(mech.as_ref(), &server, conversation, token);
                let _ = tx.send(Io::Sasl(conn, client, result));
            }));
        } else {
            let (client, result) = sasl_run(mech.as_ref(), &server, conversation, token);
            self.sasl = client.map(|c| (conn, c));
            self.core.handle_sasl(now(), conn, result);
        }
    }

    /// Carries out everything the core asked for and delivers its events.
    fn drain(&mut self) {
        let mut state_changed = false;
        while let Some(output) = self.core.poll_output() {
            match output {
                Output::Action(action) => self.perform(action),
                Output::Transmit { conn, data } => match &mut self.conn {
                    Some(c) if c.id == conn => {
                        trace!(conn = conn.get(), len = data.len(), "send");
                        c.out.extend_from_slice(&data);
                    }
                    _ => {}
                },
                Output::Event(event) => state_changed |= self.deliver(event),
                // A newer core's output this driver does not know.
                other => trace!(?other, "output not handled"),
            }
        }
        if state_changed {
            self.update_snapshot();
        }
    }

    /// Hands one event to the application layer; `true` for a state change.
    fn deliver(&mut self, event: SessionEvent) -> bool {
        match event {
            SessionEvent::Completed { id, result } => {
                if let Some(tx) = self.waiters.remove(&id) {
                    let _ = tx.send(result);
                }
            }
            SessionEvent::Notification { body } => {
                let _ = self.events.send(DriverEvent::Notification(body));
            }
            SessionEvent::PreambleReply {
                xid,
                zxid,
                err,
                body,
                relative_zxid,
            } => {
                let _ = self.events.send(DriverEvent::PreambleReply {
                    xid,
                    zxid,
                    err,
                    body,
                    relative_zxid,
                });
            }
            SessionEvent::State(change) => {
                self.update_snapshot();
                let _ = self.events.send(DriverEvent::State(change.clone()));
                self.state.send_replace(change);
                return true;
            }
            // A newer core's event this driver does not know: nothing to forward.
            other => trace!(?other, "event not handled"),
        }
        false
    }

    fn update_snapshot(&self) {
        let mut snap = lock(&self.snapshot);
        snap.session_id = self.core.session_id();
        snap.password = self.core.password().clone();
        snap.negotiated = self.core.negotiated_timeout();
        snap.last_zxid = self.core.last_zxid();
        snap.counters = self.core.counters().clone();
        snap.hosts = self.core.host_stats();
    }

    fn perform(&mut self, action: Action) {
        match action {
            Action::Resolve { conn, host } => {
                let tx = self.io_tx.clone();
                let name = host.server_name();
                let port = host.port;
                tokio::spawn(async move {
                    let result = match tokio::net::lookup_host((name.as_str(), port)).await {
                        Ok(addrs) => Ok(addrs.collect()),
                        Err(_) => Err(()),
                    };
                    let _ = tx.send(Io::Resolved(conn, result));
                });
            }
            Action::Connect {
                conn,
                target,
                timeout,
            } => {
                let tx = self.io_tx.clone();
                let connector = Arc::clone(&self.connector);
                let snapshot = Arc::clone(&self.snapshot);
                let span = info_span!("attempt", conn = conn.get(), addr = %target.addr);
                let target = Target::new(target.addr, target.server_name);
                tokio::spawn(
                    async move {
                        let io = match connector.connect(&target, timeout).await {
                            Ok(stream) => Io::Connected(conn, stream),
                            Err(err) => {
                                debug!(addr = %target.addr, %err, "connect failed");
                                let failure = failure_of(&err);
                                lock(&snapshot).last_connect_error = Some((target.addr, err));
                                Io::ConnectFailed(conn, failure)
                            }
                        };
                        let _ = tx.send(io);
                    }
                    .instrument(span),
                );
            }
            Action::Close { conn } => {
                if let Some(mut c) = self.conn.take_if(|c| c.id == conn) {
                    c.send_without_waiting();
                }
            }
            Action::Probe {
                probe,
                host,
                timeout,
            } => {
                let tx = self.io_tx.clone();
                let connector = Arc::clone(&self.connector);
                tokio::spawn(async move {
                    let rw = probe_read_write(connector.as_ref(), &host, timeout).await;
                    let _ = tx.send(Io::Probe(probe, rw));
                });
            }
            Action::Sasl {
                conn,
                server,
                token,
            } => self.sasl_step(conn, server, token),
            // A newer core's action this driver does not know.
            other => debug!(?other, "action not handled"),
        }
    }
}

/// One SASL step: a new conversation with `server` when `token` is `None`, else the next
/// step of `conversation`. Returns the conversation (if there is one) with the result.
fn sasl_run(
    mech: &dyn SaslMechanism,
    server: &str,
    conversation: Option<Box<dyn SaslClient>>,
    token: Option<Bytes>,
) -> (Option<Box<dyn SaslClient>>, Result<SaslStep, SaslError>) {
    let client = match (token.is_none(), conversation) {
        (true, _) => mech.start(server),
        (false, Some(client)) => Ok(client),
        (false, None) => Err(SaslError::Protocol(
            "no SASL conversation for this connection".to_owned(),
        )),
    };
    match client {
        Ok(mut client) => {
            let result = client.step(token.as_deref());
            (Some(client), result)
        }
        Err(err) => (None, Err(err)),
    }
}

/// Maps a transport error to what the host provider needs to know.
fn failure_of(err: &ConnectError) -> HostFailure {
    match err {
        ConnectError::Refused | ConnectError::Unreachable => HostFailure::Refused,
        ConnectError::TimedOut => HostFailure::TimedOut,
        e if !e.is_transient() => HostFailure::Tls,
        _ => HostFailure::Io,
    }
}

/// Asks a server with the `isro` four-letter word whether it serves read-write.
async fn probe_read_write(connector: &dyn Connector, host: &HostSpec, timeout: Duration) -> bool {
    let attempt = async {
        let addr = match host.socket_addr() {
            Some(addr) => addr,
            None => tokio::net::lookup_host((host.server_name().as_str(), host.port))
                .await
                .ok()?
                .next()?,
        };
        let target = Target {
            addr,
            server_name: host.server_name(),
        };
        let mut stream = connector.connect(&target, timeout).await.ok()?;
        stream.write_all(b"isro").await.ok()?;
        let mut answer = Vec::with_capacity(8);
        let mut limited = (&mut stream).take(64);
        limited.read_to_end(&mut answer).await.ok()?;
        Some(answer.starts_with(b"rw"))
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// Lets the tasks already queued on this worker run before the engine continues: the task
/// wakes itself and returns `Pending` once, which puts it at the back of the run queue
/// (unlike `tokio::task::yield_now`, which also waits for a poll of the I/O driver).
async fn yield_to_queued_tasks() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await;
}

/// Drives the current connection (pending writes, one read); pends forever when there is
/// none.
async fn conn_io(conn: Option<&mut Conn>, buf: &mut BytesMut) -> (ConnId, ConnEvent) {
    match conn {
        Some(c) => {
            let id = c.id;
            let event = std::future::poll_fn(|cx| c.poll_io(cx, buf)).await;
            (id, event)
        }
        None => std::future::pending().await,
    }
}

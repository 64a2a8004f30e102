//! The sans-I/O session core.
//!
//! [`Session`] is a pure state machine: it never reads the clock, never touches a socket and
//! never spawns a task. A driver (see [`crate::driver`]) feeds it what happened and carries
//! out what it asks for. Its methods come in four kinds, in the quinn-proto manner:
//!
//! 1. getters taking `&self` ([`Session::state`], [`Session::session_id`], …);
//! 2. `handle_*` methods for what happened on the network or with time
//!    ([`Session::handle_connected`], [`Session::handle_data`], [`Session::handle_closed`],
//!    [`Session::handle_timeout`], …);
//! 3. mutators called by the application layer ([`Session::start`], [`Session::submit`],
//!    [`Session::close`]);
//! 4. `poll_*` methods returning what to do next: after every call of kind 2 or 3, the
//!    driver drains [`Session::poll_action`] (resolve, connect, close), then
//!    [`Session::poll_transmit`] (bytes for the current connection), then
//!    [`Session::poll_event`] (states, replies, notifications), and finally re-arms its
//!    timer with [`Session::poll_timeout`].
//!
//! Every input carries `now`, so the same code runs against real sockets or in a
//! simulation in virtual time.
//!
//! ## Failover in one paragraph
//! A lost connection (EOF, reset, silence beyond the detector's threshold, a protocol
//! violation, `SessionMoved`) immediately starts an attempt on the next host — no sleep.
//! Each attempt's deadline is the smaller of a per-attempt cap and what is left of the
//! session's server-side lifetime, so frozen hosts that accept TCP and never answer cannot
//! eat the budget. Only when a whole pass over the hosts failed does the core back off
//! (briefly while servers are electing a leader, exponentially and capped otherwise). The
//! handshake carries the session id, password and last zxid seen; the application's
//! re-registration preamble (auth, `SetWatches`) and the queued reads are pipelined in the
//! same write.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use tracing::{debug, info, trace, warn};
use zk_connstr::HostSpec;
use zk_proto::{
    ConnectRequest, ConnectResponse, ErrorCode, Frame, FrameDecoder, OpCode, Record, ReplyHeader,
    RequestHeader,
};

use crate::config::SessionConfig;
use crate::detector::RttEstimator;
use crate::host::{Candidate, HostFailure, HostId, HostProvider};
use crate::pacing::{ElectionEstimate, Pace, Pacer, Seen};
use crate::rng::Rng;
use crate::timer::{Timer, TimerTable};
use crate::types::{
    ConnId, Counters, ExpiredBy, Idempotence, Reply, Request, RequestError, RequestId,
    SessionEvent, SessionState, StateChange,
};

/// Length of a reply header on the wire: xid (4) + zxid (8) + err (4).
const REPLY_HEADER_LEN: usize = 16;
/// Length of a request header on the wire: xid (4) + type (4).
const REQUEST_HEADER_LEN: usize = 8;
/// Preambles up to this size are pipelined with the ConnectRequest.
const PIPELINED_PREAMBLE_LIMIT: usize = 64 * 1024;
/// Length of the session password.
const PASSWORD_LEN: usize = 16;
/// Handshakes closed before their answer for this long since the connection was lost point to
/// an election (ZooKeeper's takes at least its 200 ms finalize wait), not to a twin client.
const ELECTION_EVIDENCE: Duration = Duration::from_millis(100);
/// The first delay between read-only probes for a read-write server.
const RO_PROBE_MIN: Duration = Duration::from_millis(100);
/// The longest delay between read-only probes.
const RO_PROBE_MAX: Duration = Duration::from_secs(60);

/// Where to connect: one resolved address, plus the host as written in the connection string
/// (for TLS: SNI and certificate verification).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The resolved socket address.
    pub addr: SocketAddr,
    /// The host as written in the connection string, e.g. `zk1.example.com` or `127.0.0.1`.
    pub server_name: String,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Resolve `host` and report the addresses with [`Session::handle_resolved`].
    Resolve {
        /// The attempt this lookup belongs to.
        conn: ConnId,
        /// Name and port from the connection string.
        host: HostSpec,
    },
    /// Open a transport to `target` within `timeout` and report with
    /// [`Session::handle_connected`] or [`Session::handle_connect_failed`].
    Connect {
        /// Identifies this connection in later calls.
        conn: ConnId,
        /// Address and name for TLS verification.
        target: Target,
        /// Covers TCP and TLS; the handshake must also finish before the same deadline.
        timeout: Duration,
    },
    /// Close this connection (drop the socket); no report is needed.
    Close {
        /// The connection to close.
        conn: ConnId,
    },
    /// Ask `host` whether it serves read-write (the `isro` four-letter word) and report with
    /// [`Session::handle_probe`].
    Probe {
        /// Identifies this probe.
        probe: u64,
        /// The host to ask.
        host: HostSpec,
        /// Give up after this long.
        timeout: Duration,
    },
}

/// Packets the application layer wants sent after every handshake, before any request:
/// authentication and watch re-registration.
pub trait Preamble: Send {
    /// Appends the packets for a new connection. `relative_zxid` is the last zxid the
    /// session has seen (what `SetWatches` must carry).
    fn build(&mut self, relative_zxid: i64, out: &mut Vec<PreamblePacket>);
}

/// One packet of the preamble.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreamblePacket {
    /// Its xid: negative and reserved (e.g. `xid::AUTH`, `xid::SET_WATCHES`).
    pub xid: i32,
    /// Its opcode.
    pub op: OpCode,
    /// The encoded record.
    pub body: Bytes,
}

#[derive(Debug)]
struct Pending {
    id: RequestId,
    req: Request,
}

#[derive(Debug)]
struct InFlight {
    id: RequestId,
    xid: i32,
    req: Request,
    sent_at: Instant,
    /// The caller already got `Timeout`; swallow the reply.
    abandoned: bool,
}

/// The attempt in progress: one host, possibly several addresses.
#[derive(Debug)]
struct Attempt {
    host: HostId,
    spec: HostSpec,
    addrs: VecDeque<SocketAddr>,
    /// The session id sent in the ConnectRequest (0 = new session).
    sent_session: i64,
    /// When the current address's connection attempt began.
    started: Instant,
    /// How often the deadline was extended because the server was seen working.
    extensions: u32,
    /// When the ConnectRequest was written.
    handshake_sent: Option<Instant>,
}

/// At most this many extensions of one attempt (each one attempt cap long).
const MAX_EXTENSIONS: u32 = 3;
/// The shortest handshake budget (see `Session::handshake_budget`).
const MIN_HANDSHAKE_BUDGET: Duration = Duration::from_millis(200);

#[derive(Debug)]
enum Phase {
    /// Not started.
    Idle,
    /// Waiting for the driver to resolve the attempt's host.
    Resolving { conn: ConnId, attempt: Attempt },
    /// Transport being opened.
    Connecting {
        conn: ConnId,
        attempt: Attempt,
        target: Target,
    },
    /// ConnectRequest sent, waiting for the ConnectResponse.
    Handshaking {
        conn: ConnId,
        attempt: Attempt,
        target: Target,
    },
    /// Session established on `conn`.
    Connected {
        conn: ConnId,
        host: HostId,
        since: Instant,
        read_only: bool,
    },
    /// Backing off between passes.
    Waiting,
    /// closeSession (with `xid`) sent; waiting for its reply or EOF.
    Closing { conn: ConnId, xid: i32 },
    /// A terminal state was reached.
    Terminal,
}

/// The session state machine. See the module docs for how to drive it.
pub struct Session {
    cfg: SessionConfig,
    hosts: Box<dyn HostProvider>,
    rng: Rng,
    timers: TimerTable,
    phase: Phase,
    preamble: Option<Box<dyn Preamble>>,

    // Identity of the session.
    session_id: i64,
    passwd: Bytes,
    negotiated: Option<Duration>,
    last_zxid: i64,
    /// The session was held by a read-write server at least once (so it is global and can
    /// move); a session born read-only must be replaced when a read-write server appears.
    session_is_rw: bool,
    /// Last frame received from a server that held the session: the anchor of its
    /// server-side lifetime.
    last_contact: Option<Instant>,

    state: SessionState,
    server: Option<SocketAddr>,

    next_conn: u64,
    next_xid: i32,
    next_request: u64,
    next_probe: u64,
    queued: VecDeque<Pending>,
    in_flight: VecDeque<InFlight>,
    deadlines: BinaryHeap<Reverse<(Instant, u64)>>,
    preamble_pending: VecDeque<i32>,
    preamble_relative_zxid: i64,
    /// Preamble packets built for the current handshake and not yet written.
    deferred_preamble: Vec<PreamblePacket>,

    actions: VecDeque<Action>,
    events: VecDeque<SessionEvent>,
    tx: BytesMut,
    tx_conn: Option<ConnId>,
    rx: BytesMut,
    decoder: FrameDecoder,

    // Liveness of the current connection.
    last_recv: Instant,
    last_send: Instant,
    ping_sent: Option<Instant>,
    rtt: RttEstimator,
    /// ConnectRequest → ConnectResponse times of this session's successful handshakes.
    handshake_rtt: RttEstimator,

    // Reconnect bookkeeping.
    pacer: Pacer,
    /// What this session learned about elections (used when no `SharedHosts` is set).
    election_estimate: Option<ElectionEstimate>,
    disconnected_at: Option<Instant>,
    lost_host: Option<HostId>,
    takeover_strikes: u32,
    local_expiry_due: bool,
    ro_probe_delay: Duration,
    probe_in_flight: Option<(u64, HostId)>,
    counters: Counters,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("session_id", &format_args!("{:#x}", self.session_id))
            .field("state", &self.state)
            .field("server", &self.server)
            .field("last_zxid", &format_args!("{:#x}", self.last_zxid))
            .field("queued", &self.queued.len())
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session that will use `hosts`; call [`Session::start`] to begin.
    #[must_use]
    pub fn new(cfg: SessionConfig, hosts: Box<dyn HostProvider>, now: Instant) -> Self {
        let (session_id, passwd) = match &cfg.resume {
            Some(saved) => (saved.session_id, saved.password.clone()),
            None => (0, Bytes::from_static(&[0; PASSWORD_LEN])),
        };
        let decoder = FrameDecoder::new(cfg.max_inbound_frame, cfg.max_discard_frame);
        let rng = Rng::new(cfg.rng_seed.unwrap_or(0));
        let mut hosts = hosts;
        hosts.set_max_penalty(cfg.timing.receive_timeout.of(cfg.session_timeout));
        Self {
            hosts,
            rng,
            timers: TimerTable::default(),
            phase: Phase::Idle,
            preamble: None,
            session_id,
            passwd,
            negotiated: None,
            last_zxid: 0,
            // A resumed session was created by someone else; assume it is global.
            session_is_rw: cfg.resume.is_some(),
            last_contact: None,
            state: SessionState::Connecting,
            server: None,
            next_conn: 1,
            next_xid: 1,
            next_request: 1,
            next_probe: 1,
            queued: VecDeque::new(),
            in_flight: VecDeque::new(),
            deadlines: BinaryHeap::new(),
            preamble_pending: VecDeque::new(),
            preamble_relative_zxid: 0,
            deferred_preamble: Vec::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            tx: BytesMut::new(),
            tx_conn: None,
            rx: BytesMut::new(),
            decoder,
            last_recv: now,
            last_send: now,
            ping_sent: None,
            rtt: RttEstimator::default(),
            handshake_rtt: RttEstimator::default(),
            pacer: Pacer::default(),
            election_estimate: None,
            disconnected_at: None,
            lost_host: None,
            takeover_strikes: 0,
            local_expiry_due: false,
            ro_probe_delay: RO_PROBE_MIN,
            probe_in_flight: None,
            counters: Counters::default(),
            cfg,
        }
    }

    // ----- 1. Getters -----

    /// The current state.
    #[must_use]
    pub const fn state(&self) -> SessionState {
        self.state
    }

    /// The session id (0 before the first handshake of a new session).
    #[must_use]
    pub const fn session_id(&self) -> i64 {
        self.session_id
    }

    /// The session password (16 bytes once a session exists). Treat as a secret.
    #[must_use]
    pub fn password(&self) -> &Bytes {
        &self.passwd
    }

    /// The negotiated session timeout, once a server answered.
    #[must_use]
    pub const fn negotiated_timeout(&self) -> Option<Duration> {
        self.negotiated
    }

    /// The largest zxid seen in a reply (0 before any).
    #[must_use]
    pub const fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// The server the session is on, or was last on.
    #[must_use]
    pub const fn server(&self) -> Option<SocketAddr> {
        self.server
    }

    /// Reconnect counters.
    #[must_use]
    pub const fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The configuration the session was created with.
    #[must_use]
    pub const fn config(&self) -> &SessionConfig {
        &self.cfg
    }

    /// Per-host health from the host provider.
    #[must_use]
    pub fn host_stats(&self) -> Vec<crate::host::HostStats> {
        self.hosts.stats()
    }

    /// The smoothed ping round-trip time on the current connection, once measured.
    #[must_use]
    pub fn smoothed_rtt(&self) -> Option<Duration> {
        self.rtt.srtt()
    }

    /// Requests written and not yet answered.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Requests waiting to be written.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.queued.len()
    }

    /// The connection the core currently uses or is opening, if any.
    #[must_use]
    pub const fn current_conn(&self) -> Option<ConnId> {
        match &self.phase {
            Phase::Resolving { conn, .. }
            | Phase::Connecting { conn, .. }
            | Phase::Handshaking { conn, .. }
            | Phase::Connected { conn, .. }
            | Phase::Closing { conn, .. } => Some(*conn),
            Phase::Idle | Phase::Waiting | Phase::Terminal => None,
        }
    }

    /// Whether a handshake is in progress (at most one ever is).
    #[must_use]
    pub const fn is_handshaking(&self) -> bool {
        matches!(self.phase, Phase::Handshaking { .. })
    }

    /// The timeout all timers derive from: negotiated if known, else requested.
    fn timeout(&self) -> Duration {
        self.negotiated.unwrap_or(self.cfg.session_timeout)
    }

    // ----- 3. Mutators from the application layer -----

    /// Installs the re-registration preamble source (auth, watches).
    pub fn set_preamble(&mut self, preamble: Box<dyn Preamble>) {
        self.preamble = Some(preamble);
    }

    /// Begins connecting.
    pub fn start(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Idle) {
            info!(
                session_id = format_args!("{:#x}", self.session_id),
                "session starting"
            );
            self.begin_attempt(now);
        }
    }

    /// Queues a request; its outcome arrives as [`SessionEvent::Completed`] exactly once.
    pub fn submit(&mut self, now: Instant, req: Request) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request += 1;
        if let Some(err) = self.terminal_error() {
            self.complete(id, Err(err));
            return id;
        }
        if matches!(self.phase, Phase::Closing { .. }) {
            self.complete(id, Err(RequestError::Closed));
            return id;
        }
        let len = REQUEST_HEADER_LEN + req.body.len();
        if len > self.cfg.max_outbound_frame {
            self.complete(
                id,
                Err(RequestError::RequestTooLarge {
                    len,
                    max: self.cfg.max_outbound_frame,
                }),
            );
            return id;
        }
        if let Some(deadline) = req.deadline {
            self.deadlines.push(Reverse((deadline, id.0)));
            self.arm_request_timer();
        }
        self.queued.push_back(Pending { id, req });
        self.flush(now);
        id
    }

    /// Closes the session gracefully: sends closeSession so ephemeral nodes vanish at once.
    pub fn close(&mut self, now: Instant) {
        while let Some(p) = self.queued.pop_front() {
            self.complete(p.id, Err(RequestError::Closed));
        }
        match std::mem::replace(&mut self.phase, Phase::Waiting) {
            Phase::Connected { conn, .. } => {
                let xid = self.alloc_xid();
                let header = RequestHeader {
                    xid,
                    op: OpCode::CloseSession,
                };
                self.write_frame(|buf| header.encode(buf));
                self.last_send = now;
                self.phase = Phase::Closing { conn, xid };
                for t in [
                    Timer::Ping,
                    Timer::Receive,
                    Timer::Backoff,
                    Timer::ReadOnlyProbe,
                ] {
                    self.timers.stop(t);
                }
                let grace = (self.timeout() / 3).min(Duration::from_secs(2));
                self.timers.set(Timer::Close, now + grace);
            }
            Phase::Terminal => self.phase = Phase::Terminal,
            other => {
                self.phase = other;
                self.finish(now, SessionState::Closed);
            }
        }
    }

    // ----- 2. Inputs from the driver -----

    /// The driver resolved the host of attempt `conn`.
    pub fn handle_resolved(
        &mut self,
        now: Instant,
        conn: ConnId,
        result: Result<Vec<SocketAddr>, ()>,
    ) {
        let Phase::Resolving { conn: current, .. } = &self.phase else {
            return;
        };
        if *current != conn {
            return;
        }
        let Phase::Resolving { mut attempt, .. } =
            std::mem::replace(&mut self.phase, Phase::Waiting)
        else {
            return;
        };
        match result {
            Ok(addrs) if !addrs.is_empty() => {
                attempt.addrs = addrs.into();
                self.connect_next_addr(now, attempt);
            }
            _ => {
                debug!(host = %attempt.spec, "name did not resolve");
                self.attempt_failed(now, attempt, HostFailure::Unresolvable);
            }
        }
    }

    /// The transport for `conn` is open: the handshake starts.
    pub fn handle_connected(&mut self, now: Instant, conn: ConnId) {
        let Some((attempt, target)) = self.take_connecting(conn) else {
            return;
        };
        self.rx.clear();
        self.decoder = FrameDecoder::new(self.cfg.max_inbound_frame, self.cfg.max_discard_frame);
        self.tx.clear();
        self.tx_conn = Some(conn);

        let timeout_ms = i32::try_from(self.cfg.session_timeout.as_millis()).unwrap_or(i32::MAX);
        let (session_id, passwd) = if attempt.sent_session == 0 {
            (0, Bytes::from_static(&[0; PASSWORD_LEN]))
        } else {
            (self.session_id, self.passwd.clone())
        };
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: self.last_zxid,
            timeout: timeout_ms,
            session_id,
            passwd,
            read_only: self.cfg.can_be_read_only,
        };
        self.write_frame(|buf| req.encode(buf));

        // Preamble: auth and watch re-registration. A small one is pipelined behind the
        // ConnectRequest (one round trip saved); a large one waits for the ConnectResponse
        // so that servers refusing handshakes (an election) do not get megabytes each time.
        self.preamble_pending.clear();
        self.preamble_relative_zxid = self.last_zxid;
        self.deferred_preamble.clear();
        if let Some(mut source) = self.preamble.take() {
            source.build(self.last_zxid, &mut self.deferred_preamble);
            self.preamble = Some(source);
        }
        let preamble_len: usize = self
            .deferred_preamble
            .iter()
            .map(|p| p.body.len() + REQUEST_HEADER_LEN + 4)
            .sum();
        let pipeline = preamble_len <= PIPELINED_PREAMBLE_LIMIT;
        if pipeline {
            self.write_preamble();
        }
        let mut attempt = attempt;
        attempt.handshake_sent = Some(now);
        self.phase = Phase::Handshaking {
            conn,
            attempt,
            target,
        };
        // A server that answered this session's handshakes in a few milliseconds and now
        // says nothing for many times that is frozen or gone: do not wait the whole cap.
        if let Some(budget) = self.handshake_budget() {
            let deadline = now + budget;
            if self
                .timers
                .get(Timer::Attempt)
                .is_none_or(|at| deadline < at)
            {
                self.timers.set(Timer::Attempt, deadline);
            }
        }
        self.last_send = now;
        // Reads queued while disconnected ride along in the same write; writes wait for
        // the ConnectResponse so a refused handshake can never leave their outcome unknown.
        if pipeline {
            self.flush_idempotent_prefix(now);
        }
        trace!(conn = conn.0, "handshake sent");
    }

    /// Opening `conn` failed.
    pub fn handle_connect_failed(&mut self, now: Instant, conn: ConnId, failure: HostFailure) {
        let Some((attempt, target)) = self.take_connecting(conn) else {
            return;
        };
        debug!(addr = %target.addr, ?failure, "connect failed");
        self.attempt_failed(now, attempt, failure);
    }

    /// Bytes arrived on `conn`.
    pub fn handle_data(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        if self.tx_conn != Some(conn) || !self.conn_is_live(conn) {
            return;
        }
        self.rx.extend_from_slice(data);
        loop {
            if self.tx_conn != Some(conn) {
                return;
            }
            match self.decoder.decode(&mut self.rx) {
                Ok(None) => break,
                Ok(Some(frame)) => self.handle_frame(now, frame),
                Err(err) => {
                    warn!(%err, "framing error");
                    self.conn_failed(now, HostFailure::Protocol);
                    return;
                }
            }
        }
        self.flush(now);
    }

    /// `conn` was closed by the peer (EOF).
    pub fn handle_closed(&mut self, now: Instant, conn: ConnId) {
        self.conn_ended(now, conn, HostFailure::ConnectionLost);
    }

    /// `conn` failed with an I/O error (reset, broken pipe) rather than an orderly close.
    /// Unlike [`Session::handle_closed`] this never counts towards `TakenOver`: a server
    /// hands a session to a twin by closing the old connection, not by resetting it.
    pub fn handle_reset(&mut self, now: Instant, conn: ConnId) {
        self.conn_ended(now, conn, HostFailure::Io);
    }

    fn conn_ended(&mut self, now: Instant, conn: ConnId, established_failure: HostFailure) {
        if self.tx_conn != Some(conn) || !self.conn_is_live(conn) {
            return;
        }
        match &self.phase {
            Phase::Closing { .. } => self.finish(now, SessionState::Closed),
            Phase::Handshaking { .. } => self.conn_failed(now, HostFailure::ClosedInHandshake),
            _ => self.conn_failed(now, established_failure),
        }
    }

    /// The answer to an [`Action::Probe`]: `true` if the host serves read-write.
    pub fn handle_probe(&mut self, now: Instant, probe: u64, read_write: bool) {
        let Some((id, host)) = self.probe_in_flight else {
            return;
        };
        if id != probe {
            return;
        }
        self.probe_in_flight = None;
        let Phase::Connected {
            read_only: true, ..
        } = self.phase
        else {
            return;
        };
        if read_write {
            info!(
                host,
                "read-write server found; leaving the read-only server"
            );
            self.conn_failed_towards(now, HostFailure::ReadOnly, Some(host));
        } else {
            self.ro_probe_delay = (self.ro_probe_delay * 2).min(RO_PROBE_MAX);
            self.timers
                .set(Timer::ReadOnlyProbe, now + self.ro_probe_delay);
        }
    }

    /// The timer from [`Session::poll_timeout`] fired (calling it early is harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        for timer in Timer::VALUES {
            if !self.timers.is_expired(timer, now) {
                continue;
            }
            self.timers.stop(timer);
            match timer {
                Timer::Attempt => self.on_attempt_timeout(now),
                Timer::Receive => self.on_receive_timeout(now),
                Timer::Ping => self.on_ping_timer(now),
                Timer::Backoff => {
                    if matches!(self.phase, Phase::Waiting) {
                        self.begin_attempt(now);
                    }
                }
                Timer::Request => self.on_request_deadlines(now),
                Timer::ReadOnlyProbe => self.on_ro_probe(now),
                Timer::Close => {
                    if matches!(self.phase, Phase::Closing { .. }) {
                        self.finish(now, SessionState::Closed);
                    }
                }
                Timer::LocalExpiry => self.on_local_expiry(now),
            }
        }
    }

    // ----- 4. Outputs -----

    /// The next I/O action, if any.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Bytes to write on the current connection, if any.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<(ConnId, Bytes)> {
        if self.tx.is_empty() {
            return None;
        }
        let conn = self.tx_conn?;
        Some((conn, self.tx.split().freeze()))
    }

    /// The next event for the application layer, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// When [`Session::handle_timeout`] must be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }

    // ----- Internals: attempts -----

    /// Leaves the `Connecting` phase if `conn` is the connection being opened.
    fn take_connecting(&mut self, conn: ConnId) -> Option<(Attempt, Target)> {
        match std::mem::replace(&mut self.phase, Phase::Waiting) {
            Phase::Connecting {
                conn: current,
                attempt,
                target,
            } if current == conn => Some((attempt, target)),
            other => {
                self.phase = other;
                None
            }
        }
    }

    fn alloc_conn(&mut self) -> ConnId {
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        id
    }

    fn alloc_xid(&mut self) -> i32 {
        let xid = self.next_xid;
        self.next_xid = if self.next_xid == i32::MAX {
            1
        } else {
            self.next_xid + 1
        };
        xid
    }

    fn conn_is_live(&self, conn: ConnId) -> bool {
        self.current_conn() == Some(conn)
    }

    fn begin_attempt(&mut self, now: Instant) {
        self.begin_attempt_on(now, None);
    }

    fn begin_attempt_on(&mut self, now: Instant, preferred: Option<HostId>) {
        if self.local_expiry_due {
            self.expire_locally(now);
            return;
        }
        let candidate = match preferred {
            Some(id) => self.hosts.next(now, &mut self.rng).map(|c| {
                // Walk the rotation until the preferred host comes up (bounded by its length).
                let mut c = c;
                for _ in 0..self.hosts.len() {
                    if c.id == id {
                        break;
                    }
                    match self.hosts.next(now, &mut self.rng) {
                        Some(next) => c = next,
                        None => break,
                    }
                }
                c
            }),
            None => self.hosts.next(now, &mut self.rng),
        };
        let Some(Candidate { id, spec }) = candidate else {
            warn!("no hosts to connect to");
            self.finish(now, SessionState::Closed);
            return;
        };
        // A session born on a read-only server is local to it: start a new one elsewhere.
        let sent_session =
            if self.session_id != 0 && (self.session_is_rw || self.cfg.resume.is_some()) {
                self.session_id
            } else {
                0
            };
        let attempt = Attempt {
            host: id,
            spec,
            addrs: VecDeque::new(),
            sent_session,
            started: now,
            extensions: 0,
            handshake_sent: None,
        };
        self.counters.attempts += 1;
        if let Some(addr) = attempt.spec.socket_addr() {
            let mut attempt = attempt;
            attempt.addrs.push_back(addr);
            self.connect_next_addr(now, attempt);
        } else {
            let conn = self.alloc_conn();
            self.actions.push_back(Action::Resolve {
                conn,
                host: attempt.spec.clone(),
            });
            self.phase = Phase::Resolving { conn, attempt };
            let timeout = self.attempt_timeout(now);
            self.timers.set(Timer::Attempt, now + timeout);
        }
    }

    fn connect_next_addr(&mut self, now: Instant, mut attempt: Attempt) {
        let Some(addr) = attempt.addrs.pop_front() else {
            self.attempt_failed(now, attempt, HostFailure::Unresolvable);
            return;
        };
        let conn = self.alloc_conn();
        let target = Target {
            addr,
            server_name: attempt.spec.server_name(),
        };
        let timeout = self.attempt_timeout(now);
        attempt.started = now;
        attempt.extensions = 0;
        debug!(conn = conn.0, addr = %addr, ?timeout, "connecting");
        self.actions.push_back(Action::Connect {
            conn,
            target: target.clone(),
            timeout,
        });
        self.timers.set(Timer::Attempt, now + timeout);
        self.phase = Phase::Connecting {
            conn,
            attempt,
            target,
        };
    }

    /// Deadline for one attempt: the per-attempt cap, escalated after failed passes, and
    /// never beyond what is left of the session's server-side lifetime.
    fn attempt_timeout(&self, now: Instant) -> Duration {
        let t = self.timeout();
        let base =
            self.cfg.timing.attempt_cap.unwrap_or_else(|| {
                (t / 6).clamp(Duration::from_millis(100), Duration::from_secs(2))
            });
        let cap = base * (1 << self.pacer.slow_passes().min(3));
        match self.last_contact {
            Some(contact) if self.session_id != 0 => {
                let remaining = (contact + t).saturating_duration_since(now);
                remaining.min(cap).max(self.cfg.timing.min_attempt)
            }
            _ => cap,
        }
    }

    /// How long a handshake may take before the server counts as unresponsive, once this
    /// session has seen handshakes succeed: many times the usual handshake time
    /// (`srtt + 4 × rttvar`, ×16), at least [`MIN_HANDSHAKE_BUDGET`], doubled like the cap
    /// after passes that timed out, and never beyond the per-attempt cap. `None` before the
    /// first success (the cap alone applies).
    fn handshake_budget(&self) -> Option<Duration> {
        let srtt = self.handshake_rtt.srtt()?;
        let usual = srtt + self.handshake_rtt.rttvar() * 4;
        let budget =
            (usual * 16).max(MIN_HANDSHAKE_BUDGET) * (1 << self.pacer.slow_passes().min(3));
        Some(budget)
    }

    fn on_attempt_timeout(&mut self, now: Instant) {
        match std::mem::replace(&mut self.phase, Phase::Waiting) {
            Phase::Resolving { attempt, .. } => {
                self.attempt_failed(now, attempt, HostFailure::Unresolvable);
            }
            Phase::Handshaking {
                conn,
                mut attempt,
                target,
            } if self.server_seen_working(now, &attempt, target.addr) => {
                attempt.extensions += 1;
                let more = self.attempt_timeout(now);
                debug!(
                    conn = conn.0,
                    addr = %target.addr,
                    ?more,
                    "handshake slow but the server is answering other sessions: waiting longer"
                );
                self.counters.extended_attempts += 1;
                self.timers.set(Timer::Attempt, now + more);
                self.phase = Phase::Handshaking {
                    conn,
                    attempt,
                    target,
                };
            }
            Phase::Connecting { conn, attempt, .. } | Phase::Handshaking { conn, attempt, .. } => {
                debug!(conn = conn.0, host = %attempt.spec, "attempt timed out");
                self.drop_conn(conn);
                // Try the next address of the same name first; then the next host.
                self.attempt_failed(now, attempt, HostFailure::TimedOut);
            }
            other => self.phase = other,
        }
    }

    /// Whether a handshake that timed out deserves more time: another session of the
    /// process completed one on the same address since this attempt began (the server is
    /// alive and working through a queue, not frozen), the attempt was not extended too
    /// often, and the session's server-side lifetime leaves room for another attempt after
    /// the extension.
    fn server_seen_working(&self, now: Instant, attempt: &Attempt, addr: SocketAddr) -> bool {
        let Some(shared) = &self.cfg.shared else {
            return false;
        };
        if attempt.extensions >= MAX_EXTENSIONS || !shared.handshake_since(addr, attempt.started) {
            return false;
        }
        match self.last_contact {
            Some(contact) if self.session_id != 0 => {
                let remaining = (contact + self.timeout()).saturating_duration_since(now);
                remaining > self.attempt_timeout(now) * 2
            }
            _ => true,
        }
    }

    /// An attempt on one address failed: next address, next host, or back off.
    fn attempt_failed(&mut self, now: Instant, attempt: Attempt, failure: HostFailure) {
        self.timers.stop(Timer::Attempt);
        // A twin taking the session over leaves every server healthy: our handshakes succeed
        // within milliseconds and are cut short. Servers in trouble (a crash, an election, a
        // partition) explain the young connections that were closed instead: a refusal or a
        // timeout shows it at once. A handshake closed before its answer can also be a
        // twin's doing (its handshake on that server overlapping ours, seen several times in
        // a row), so that counts only once the session has gone without a connection for
        // a while — an election closes every attempt for hundreds of milliseconds.
        let trouble = failure != HostFailure::ClosedInHandshake
            || self
                .disconnected_at
                .is_some_and(|at| now.saturating_duration_since(at) >= ELECTION_EVIDENCE);
        if self.takeover_strikes > 0 && trouble {
            debug!(
                target: "zk_session::takeover",
                ?failure,
                strikes = self.takeover_strikes,
                "attempt failed: the servers are in trouble, not taken over"
            );
            self.takeover_strikes = 0;
        }
        // Reads pipelined behind a handshake that failed go back to the queue.
        self.requeue_in_flight(false);
        self.counters.failed_attempts += 1;
        if !attempt.addrs.is_empty() && failure != HostFailure::Unresolvable {
            self.connect_next_addr(now, attempt);
            return;
        }
        self.hosts.on_failure(now, attempt.host, failure);
        if self.local_expiry_due {
            self.expire_locally(now);
            return;
        }
        let estimate = self.election_estimate();
        let seen = Seen {
            hosts: self.hosts.len(),
            lost_at: self.disconnected_at,
            estimate,
        };
        let pace = self
            .pacer
            .on_failure(now, failure, seen, &self.cfg.timing, &mut self.rng);
        let at = match pace {
            Pace::Now => {
                self.begin_attempt(now);
                return;
            }
            Pace::Backoff(delay) => {
                debug!(?delay, "pass failed, backing off");
                now + delay
            }
            Pace::Probe(delay) => {
                self.counters.election_probes += 1;
                debug!(
                    ?delay,
                    probes = self.pacer.election_probes(),
                    learned = estimate.is_some(),
                    "servers electing: next probe planned"
                );
                match &self.cfg.shared {
                    // The whole process keeps its election probes apart.
                    Some(shared) => shared.book_election_retry(now + delay),
                    None => now + delay,
                }
            }
        };
        self.phase = Phase::Waiting;
        self.timers.set(Timer::Backoff, at);
    }

    /// What is known of this ensemble's elections: the process's knowledge when sessions
    /// share it, else this session's own.
    fn election_estimate(&self) -> Option<ElectionEstimate> {
        match &self.cfg.shared {
            Some(shared) => shared.election_estimate(),
            None => self.election_estimate,
        }
    }

    fn drop_conn(&mut self, conn: ConnId) {
        self.actions.push_back(Action::Close { conn });
        if self.tx_conn == Some(conn) {
            self.tx_conn = None;
            self.tx.clear();
            self.rx.clear();
        }
    }

    // ----- Internals: frames -----

    fn handle_frame(&mut self, now: Instant, frame: Frame) {
        match frame {
            Frame::Complete(payload) => {
                if matches!(self.phase, Phase::Handshaking { .. }) {
                    self.on_connect_response(now, payload);
                } else {
                    self.on_reply(now, payload);
                }
            }
            Frame::Oversized { prefix, len } => self.on_oversized(now, &prefix, len),
        }
    }

    fn on_connect_response(&mut self, now: Instant, payload: Bytes) {
        let Phase::Handshaking {
            conn,
            attempt,
            target,
        } = std::mem::replace(&mut self.phase, Phase::Waiting)
        else {
            return;
        };
        let resp = match ConnectResponse::decode_payload(payload) {
            Ok(resp) => resp,
            Err(err) => {
                warn!(%err, addr = %target.addr, "malformed ConnectResponse");
                self.drop_conn(conn);
                self.attempt_failed(now, attempt, HostFailure::Protocol);
                return;
            }
        };
        if resp.timeout <= 0 {
            self.drop_conn(conn);
            if attempt.sent_session == 0 {
                warn!(addr = %target.addr, "server refused to create a session");
                self.attempt_failed(now, attempt, HostFailure::Protocol);
            } else {
                info!(
                    session_id = format_args!("{:#x}", self.session_id),
                    "server says the session expired"
                );
                self.server = Some(target.addr);
                self.finish(
                    now,
                    SessionState::Expired {
                        by: ExpiredBy::Server,
                    },
                );
            }
            return;
        }
        if attempt.sent_session != 0 && resp.session_id != attempt.sent_session {
            warn!(
                sent = format_args!("{:#x}", attempt.sent_session),
                got = format_args!("{:#x}", resp.session_id),
                "server answered with a different session id"
            );
            self.drop_conn(conn);
            self.attempt_failed(now, attempt, HostFailure::Protocol);
            return;
        }
        if attempt.sent_session == 0 {
            if self.session_id != 0 {
                info!(
                    old = format_args!("{:#x}", self.session_id),
                    new = format_args!("{:#x}", resp.session_id),
                    "read-only session replaced by a new session"
                );
            }
            self.session_id = resp.session_id;
            self.passwd = resp.passwd.clone();
        }
        let negotiated = Duration::from_millis(u64::try_from(resp.timeout).unwrap_or(0));
        self.negotiated = Some(negotiated);
        let cap = self.receive_timeout();
        self.hosts.set_max_penalty(cap);
        if !resp.read_only {
            self.session_is_rw = true;
        }
        self.hosts.on_success(now, attempt.host);
        if let Some(sent) = attempt.handshake_sent {
            self.handshake_rtt
                .sample(now.saturating_duration_since(sent));
        }
        if let Some(shared) = &self.cfg.shared {
            shared.handshake_succeeded(target.addr, now);
        }
        self.timers.stop(Timer::Attempt);
        self.timers.stop(Timer::LocalExpiry);
        self.local_expiry_due = false;
        if let Some((lo, hi)) = self.pacer.on_success(attempt.handshake_sent.unwrap_or(now)) {
            debug!(
                lo_ms = lo.as_millis(),
                hi_ms = hi.as_millis(),
                "election over: learning its length"
            );
            self.counters.elections_waited += 1;
            match &self.cfg.shared {
                Some(shared) => shared.learn_election(lo, hi),
                None => {
                    self.election_estimate =
                        ElectionEstimate::learn(self.election_estimate, lo, hi);
                }
            }
        }
        self.last_contact = Some(now);
        self.last_recv = now;
        self.ping_sent = None;
        self.server = Some(target.addr);
        if let Some(lost_at) = self.disconnected_at.take() {
            let pause = now.saturating_duration_since(lost_at);
            self.counters.reconnects += 1;
            if self.lost_host != Some(attempt.host) {
                self.counters.failovers += 1;
            }
            self.counters.last_pause = Some(pause);
            self.counters.max_pause = Some(self.counters.max_pause.map_or(pause, |m| m.max(pause)));
            info!(
                session_id = format_args!("{:#x}", self.session_id),
                server = %target.addr,
                pause_us = u64::try_from(pause.as_micros()).unwrap_or(u64::MAX),
                "session re-established"
            );
        } else {
            info!(
                session_id = format_args!("{:#x}", self.session_id),
                server = %target.addr,
                timeout_ms = resp.timeout,
                "session established"
            );
        }
        // A preamble too large to pipeline goes out now, still before any request.
        self.write_preamble();
        let read_only = resp.read_only;
        self.phase = Phase::Connected {
            conn,
            host: attempt.host,
            since: now,
            read_only,
        };
        self.set_state(
            now,
            if read_only {
                SessionState::ConnectedReadOnly
            } else {
                SessionState::Connected
            },
        );
        if read_only {
            self.ro_probe_delay = RO_PROBE_MIN;
            self.timers
                .set(Timer::ReadOnlyProbe, now + self.ro_probe_delay);
        } else {
            self.timers.stop(Timer::ReadOnlyProbe);
        }
        self.arm_liveness(now);
    }

    fn on_reply(&mut self, now: Instant, mut payload: Bytes) {
        if payload.len() < REPLY_HEADER_LEN {
            warn!(len = payload.len(), "reply shorter than its header");
            self.conn_failed(now, HostFailure::Protocol);
            return;
        }
        let header = match ReplyHeader::decode(&mut payload) {
            Ok(h) => h,
            Err(err) => {
                warn!(%err, "bad reply header");
                self.conn_failed(now, HostFailure::Protocol);
                return;
            }
        };
        self.last_recv = now;
        if matches!(self.phase, Phase::Connected { .. } | Phase::Closing { .. }) {
            self.last_contact = Some(now);
        }
        match header.xid {
            zk_proto::xid::NOTIFICATION => {
                self.events
                    .push_back(SessionEvent::Notification { body: payload });
            }
            zk_proto::xid::PING => {
                let Some(sent) = self.ping_sent.take() else {
                    // We never have more than one ping out: a server that answers pings we
                    // did not send is broken (or hostile) and could keep a dead session
                    // looking alive.
                    warn!("unsolicited ping reply");
                    self.conn_failed(now, HostFailure::Protocol);
                    return;
                };
                self.rtt.sample(now.saturating_duration_since(sent));
                // The server's last processed zxid: every notification up to it was sent
                // before this reply, so it is safe to count as seen (and it keeps the
                // SetWatches zxid, hence Resync detection, tight).
                self.bump_zxid(header.zxid);
            }
            xid if xid < 0 => {
                let Some(pos) = self.preamble_pending.iter().position(|&x| x == xid) else {
                    warn!(xid, "reply with an unknown reserved xid");
                    self.conn_failed(now, HostFailure::Protocol);
                    return;
                };
                self.preamble_pending.remove(pos);
                self.bump_zxid(header.zxid);
                if xid == zk_proto::xid::AUTH && header.err == ErrorCode::AuthFailed {
                    warn!("authentication failed");
                    self.finish(now, SessionState::AuthFailed);
                    return;
                }
                self.events.push_back(SessionEvent::PreambleReply {
                    xid,
                    zxid: header.zxid,
                    err: header.err,
                    body: payload,
                    relative_zxid: self.preamble_relative_zxid,
                });
            }
            xid => self.on_request_reply(now, xid, header, payload),
        }
        self.arm_liveness(now);
    }

    fn on_request_reply(&mut self, now: Instant, xid: i32, header: ReplyHeader, body: Bytes) {
        if let Phase::Closing { xid: close_xid, .. } = self.phase
            && xid == close_xid
        {
            self.bump_zxid(header.zxid);
            self.finish(now, SessionState::Closed);
            return;
        }
        let Some(front) = self.in_flight.front() else {
            warn!(xid, "reply for no request");
            self.conn_failed(now, HostFailure::Protocol);
            return;
        };
        if front.xid != xid {
            // The server authenticates an `auth` packet as soon as it reads it and answers
            // at once, ahead of earlier requests still in its pipeline: the one reply that
            // may overtake others.
            if let Some(pos) = self
                .in_flight
                .iter()
                .position(|f| f.xid == xid && f.req.op == OpCode::Auth)
            {
                if let Some(f) = self.in_flight.remove(pos) {
                    debug!(
                        xid,
                        ahead_of = pos,
                        "auth answered ahead of earlier requests"
                    );
                    self.answered(f, &header, body);
                }
                return;
            }
            warn!(expected = front.xid, got = xid, "reply out of order");
            self.conn_failed(now, HostFailure::Protocol);
            return;
        }
        if header.err == ErrorCode::SessionMoved {
            // The session lives on another server now: this connection is stale. Not a
            // failure of the session; the request is handled like any lost in flight, except
            // that the server told us it was not applied.
            info!("SessionMoved: dropping the stale connection");
            let failed_write = self.in_flight.front_mut().and_then(|f| {
                let fail = !f.abandoned && f.req.idempotence == Idempotence::FailOnLoss;
                f.abandoned |= fail;
                fail.then_some(f.id)
            });
            if let Some(id) = failed_write {
                self.complete(
                    id,
                    Err(RequestError::ConnectionLoss {
                        outcome_unknown: false,
                    }),
                );
            }
            self.conn_failed(now, HostFailure::ConnectionLost);
            return;
        }
        if let Some(f) = self.in_flight.pop_front() {
            self.answered(f, &header, body);
        }
    }

    /// The server answered `f`: its zxid counts as seen, and the caller gets the reply
    /// unless it already gave up on it.
    fn answered(&mut self, f: InFlight, header: &ReplyHeader, body: Bytes) {
        self.bump_zxid(header.zxid);
        if !f.abandoned {
            self.complete(
                f.id,
                Ok(Reply {
                    zxid: header.zxid,
                    err: header.err,
                    body,
                }),
            );
        }
    }

    fn on_oversized(&mut self, now: Instant, prefix: &Bytes, len: usize) {
        let mut head = prefix.clone();
        let header = if head.len() >= REPLY_HEADER_LEN {
            ReplyHeader::decode(&mut head).ok()
        } else {
            None
        };
        let Some(header) = header else {
            self.conn_failed(now, HostFailure::Protocol);
            return;
        };
        self.last_recv = now;
        match header.xid {
            zk_proto::xid::NOTIFICATION => {
                warn!(len, "oversized notification discarded");
            }
            xid if self.in_flight.front().is_some_and(|f| f.xid == xid) => {
                if let Some(f) = self.in_flight.pop_front() {
                    self.bump_zxid(header.zxid);
                    warn!(
                        xid,
                        len, "oversized reply discarded; the connection is kept"
                    );
                    if !f.abandoned {
                        let max = self.cfg.max_inbound_frame;
                        self.complete(f.id, Err(RequestError::ResponseTooLarge { len, max }));
                    }
                }
            }
            xid => {
                warn!(xid, len, "oversized frame for no request");
                self.conn_failed(now, HostFailure::Protocol);
                return;
            }
        }
        self.arm_liveness(now);
    }

    fn bump_zxid(&mut self, zxid: i64) {
        if zxid > self.last_zxid {
            self.last_zxid = zxid;
        }
    }

    // ----- Internals: liveness -----

    fn receive_timeout(&self) -> Duration {
        self.cfg.timing.receive_timeout.of(self.timeout())
    }

    fn ping_interval(&self) -> Duration {
        let standard = self.cfg.timing.ping_interval.of(self.receive_timeout());
        match &self.cfg.timing.adaptive {
            Some(a) => standard.min(a.ping_interval),
            None => standard,
        }
        .max(Duration::from_millis(1))
    }

    /// The instant at which silence means the server is gone.
    fn receive_deadline(&self) -> Instant {
        let standard = self.last_recv + self.receive_timeout();
        let Some(adaptive) = &self.cfg.timing.adaptive else {
            return standard;
        };
        let oldest = self
            .in_flight
            .front()
            .map(|f| f.sent_at)
            .into_iter()
            .chain(self.ping_sent)
            .min();
        match oldest {
            Some(sent) => standard.min(sent.max(self.last_recv) + self.rtt.threshold(adaptive)),
            None => standard,
        }
    }

    fn arm_liveness(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Connected { .. }) {
            return;
        }
        let _ = now;
        self.timers.set(Timer::Receive, self.receive_deadline());
        self.timers
            .set(Timer::Ping, self.last_send + self.ping_interval());
    }

    fn on_ping_timer(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Connected { .. }) {
            return;
        }
        if self.ping_sent.is_none() && now >= self.last_send + self.ping_interval() {
            let header = RequestHeader {
                xid: zk_proto::xid::PING,
                op: OpCode::Ping,
            };
            self.write_frame(|buf| header.encode(buf));
            self.ping_sent = Some(now);
            self.last_send = now;
        }
        self.arm_liveness(now);
        if self.ping_sent.is_some() && self.timers.get(Timer::Ping).is_some_and(|t| t <= now) {
            // A ping is outstanding; the next one is due after it is answered and the
            // connection idles again.
            self.timers.set(Timer::Ping, now + self.ping_interval());
        }
    }

    fn on_receive_timeout(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Connected { .. }) {
            return;
        }
        if self.receive_deadline() > now {
            self.arm_liveness(now);
            return;
        }
        warn!(
            silent_ms = u64::try_from(now.saturating_duration_since(self.last_recv).as_millis())
                .unwrap_or(u64::MAX),
            "server stopped answering"
        );
        self.counters.detector_trips += 1;
        self.conn_failed(now, HostFailure::Frozen);
    }

    fn on_ro_probe(&mut self, now: Instant) {
        let Phase::Connected {
            read_only: true,
            host: current,
            ..
        } = self.phase
        else {
            return;
        };
        if self.hosts.len() < 2 {
            return;
        }
        let Some(c) = self.hosts.next(now, &mut self.rng) else {
            return;
        };
        let c = if c.id == current {
            match self.hosts.next(now, &mut self.rng) {
                Some(c) => c,
                None => return,
            }
        } else {
            c
        };
        let probe = self.next_probe;
        self.next_probe += 1;
        self.probe_in_flight = Some((probe, c.id));
        let timeout = self.attempt_timeout(now);
        self.actions.push_back(Action::Probe {
            probe,
            host: c.spec,
            timeout,
        });
        self.ro_probe_delay = (self.ro_probe_delay * 2).min(RO_PROBE_MAX);
        // If the driver never answers, the next timer replaces this probe.
        self.timers
            .set(Timer::ReadOnlyProbe, now + timeout + self.ro_probe_delay);
    }

    // ----- Internals: losing a connection -----

    /// The current connection (or handshake) failed: clean up and reconnect elsewhere.
    fn conn_failed(&mut self, now: Instant, failure: HostFailure) {
        self.conn_failed_towards(now, failure, None);
    }

    fn conn_failed_towards(
        &mut self,
        now: Instant,
        failure: HostFailure,
        preferred: Option<HostId>,
    ) {
        match std::mem::replace(&mut self.phase, Phase::Waiting) {
            Phase::Handshaking { conn, attempt, .. } => {
                self.drop_conn(conn);
                self.attempt_failed(now, attempt, failure);
            }
            Phase::Connected {
                conn, host, since, ..
            } => {
                self.drop_conn(conn);
                for t in [Timer::Ping, Timer::Receive, Timer::ReadOnlyProbe] {
                    self.timers.stop(t);
                }
                self.probe_in_flight = None;
                self.ping_sent = None;
                self.preamble_pending.clear();
                self.hosts.on_failure(now, host, failure);
                self.requeue_in_flight(true);
                // Two clients resuming one session take it from each other; each round
                // shows up here as a young connection closed by the server.
                let window =
                    (self.timeout() / 3).clamp(Duration::from_millis(500), Duration::from_secs(2));
                let age = now.saturating_duration_since(since);
                if failure == HostFailure::ConnectionLost && age < window {
                    self.takeover_strikes += 1;
                } else {
                    self.takeover_strikes = 0;
                }
                debug!(
                    target: "zk_session::takeover",
                    session = format_args!("{:#x}", self.session_id),
                    ?failure,
                    age_ms = age.as_millis(),
                    strikes = self.takeover_strikes,
                    "connection ended"
                );
                if self.takeover_strikes >= self.cfg.takeover_limit {
                    warn!(
                        strikes = self.takeover_strikes,
                        "session keeps being taken over"
                    );
                    self.finish(now, SessionState::TakenOver);
                    return;
                }
                self.disconnected_at = Some(now);
                self.lost_host = Some(host);
                self.set_state(now, SessionState::Disconnected);
                if let Some(contact) = self.last_contact {
                    let limit = self.cfg.timing.local_expiry.of(self.timeout());
                    self.timers.set(Timer::LocalExpiry, contact + limit);
                }
                self.begin_attempt_on(now, preferred);
            }
            Phase::Closing { conn, .. } => {
                self.drop_conn(conn);
                self.finish(now, SessionState::Closed);
            }
            other => self.phase = other,
        }
    }

    /// Moves answers lost with the connection: reads go back to the front of the queue in
    /// order; writes fail with `ConnectionLoss` (outcome unknown).
    fn requeue_in_flight(&mut self, established: bool) {
        let mut resend = Vec::new();
        while let Some(f) = self.in_flight.pop_back() {
            if f.abandoned {
                continue;
            }
            match f.req.idempotence {
                Idempotence::Resend => resend.push(Pending {
                    id: f.id,
                    req: f.req,
                }),
                Idempotence::FailOnLoss => {
                    // A write can only have been sent after an established handshake.
                    let outcome_unknown = established;
                    self.complete(f.id, Err(RequestError::ConnectionLoss { outcome_unknown }));
                }
            }
        }
        self.counters.resent += resend.len() as u64;
        for p in resend {
            self.queued.push_front(p);
        }
    }

    fn on_local_expiry(&mut self, now: Instant) {
        match self.phase {
            Phase::Connected { .. } | Phase::Closing { .. } | Phase::Terminal | Phase::Idle => {}
            Phase::Handshaking { .. } => {
                // A server may be answering right now: its word is the authority.
                self.local_expiry_due = true;
            }
            Phase::Resolving { .. } | Phase::Connecting { .. } | Phase::Waiting => {
                if let Some(conn) = self.current_conn() {
                    self.drop_conn(conn);
                }
                self.expire_locally(now);
            }
        }
    }

    fn on_request_deadlines(&mut self, now: Instant) {
        while let Some(Reverse((at, raw))) = self.deadlines.peek().copied() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            let id = RequestId(raw);
            if let Some(pos) = self.queued.iter().position(|p| p.id == id) {
                self.queued.remove(pos);
                self.complete(id, Err(RequestError::Timeout));
            } else if let Some(f) = self
                .in_flight
                .iter_mut()
                .find(|f| f.id == id && !f.abandoned)
            {
                f.abandoned = true;
                self.complete(id, Err(RequestError::Timeout));
            }
        }
        self.arm_request_timer();
    }

    fn arm_request_timer(&mut self) {
        match self.deadlines.peek() {
            Some(Reverse((at, _))) => self.timers.set(Timer::Request, *at),
            None => self.timers.stop(Timer::Request),
        }
    }

    // ----- Internals: output -----

    /// Appends one frame to the transmit buffer; `false` if it exceeded the outbound limit.
    fn write_frame(&mut self, body: impl FnOnce(&mut BytesMut)) -> bool {
        zk_proto::write_frame(&mut self.tx, self.cfg.max_outbound_frame, body).is_ok()
    }

    fn send_request(&mut self, now: Instant, p: Pending) {
        let xid = self.alloc_xid();
        let header = RequestHeader { xid, op: p.req.op };
        let body = p.req.body.clone();
        if self.write_frame(|buf| {
            header.encode(buf);
            buf.put_slice(&body);
        }) {
            self.in_flight.push_back(InFlight {
                id: p.id,
                xid,
                req: p.req,
                sent_at: now,
                abandoned: false,
            });
            self.last_send = now;
        } else {
            let len = REQUEST_HEADER_LEN + p.req.body.len();
            self.complete(
                p.id,
                Err(RequestError::RequestTooLarge {
                    len,
                    max: self.cfg.max_outbound_frame,
                }),
            );
        }
    }

    /// Writes the preamble packets built for this connection.
    fn write_preamble(&mut self) {
        for p in std::mem::take(&mut self.deferred_preamble) {
            let header = RequestHeader {
                xid: p.xid,
                op: p.op,
            };
            let ok = self.write_frame(|buf| {
                header.encode(buf);
                buf.put_slice(&p.body);
            });
            if ok {
                self.preamble_pending.push_back(p.xid);
            } else {
                warn!(
                    xid = p.xid,
                    len = p.body.len(),
                    "preamble packet too large, not sent"
                );
            }
        }
    }

    /// Writes queued requests while connected and the window allows.
    fn flush(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Connected { .. }) {
            return;
        }
        let before = self.in_flight.len();
        while self.in_flight.len() < self.cfg.max_in_flight {
            let Some(p) = self.queued.pop_front() else {
                break;
            };
            self.send_request(now, p);
        }
        if self.in_flight.len() != before {
            self.arm_liveness(now);
        }
    }

    /// During a handshake: pipelines the leading reads of the queue.
    fn flush_idempotent_prefix(&mut self, now: Instant) {
        while self.in_flight.len() < self.cfg.max_in_flight {
            match self.queued.front() {
                Some(p) if p.req.idempotence == Idempotence::Resend => {
                    if let Some(p) = self.queued.pop_front() {
                        self.send_request(now, p);
                    }
                }
                _ => break,
            }
        }
    }

    fn complete(&mut self, id: RequestId, result: Result<Reply, RequestError>) {
        self.events
            .push_back(SessionEvent::Completed { id, result });
    }

    fn set_state(&mut self, now: Instant, state: SessionState) {
        if self.state == state {
            return;
        }
        self.state = state;
        self.events.push_back(SessionEvent::State(StateChange {
            state,
            session_id: self.session_id,
            server: self.server,
            at: now,
        }));
    }

    fn terminal_error(&self) -> Option<RequestError> {
        self.state.terminal_error()
    }

    /// No server can still hold the session: terminal `Expired { by: Local }`.
    fn expire_locally(&mut self, now: Instant) {
        self.finish(
            now,
            SessionState::Expired {
                by: ExpiredBy::Local,
            },
        );
    }

    /// Enters a terminal state: fails everything outstanding and stops all timers.
    fn finish(&mut self, now: Instant, state: SessionState) {
        if let Some(conn) = self.current_conn() {
            self.drop_conn(conn);
        }
        self.phase = Phase::Terminal;
        for t in Timer::VALUES {
            self.timers.stop(t);
        }
        self.set_state(now, state);
        let err = self.terminal_error().unwrap_or(RequestError::Closed);
        let outstanding: Vec<RequestId> = self
            .in_flight
            .drain(..)
            .filter(|f| !f.abandoned)
            .map(|f| f.id)
            .chain(self.queued.drain(..).map(|p| p.id))
            .collect();
        for id in outstanding {
            self.complete(id, Err(err.clone()));
        }
        self.deadlines.clear();
        self.preamble_pending.clear();
        self.tx.clear();
        self.tx_conn = None;
    }
}

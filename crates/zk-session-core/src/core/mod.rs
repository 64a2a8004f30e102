//! The sans-I/O session core: the state machine, its inputs and outputs. Its internals live in
//! `attempts` (choosing and opening), `frames` (what the server sent), `connection` (liveness
//! and losing it), `hosts` (host lists that change) and `output` (requests, preamble,
//! completions, and the `poll_*` methods); pacing is `crate::pacing`.
//!
//! [`Session`] is a pure state machine: it never reads the clock, never touches a socket and
//! never spawns a task. A driver (`zk_session::driver`) feeds it what happened and carries
//! out what it asks for. Its methods come in four kinds, in the quinn-proto manner:
//!
//! 1. getters taking `&self` ([`Session::state`], [`Session::session_id`], …);
//! 2. `handle_*` methods for what happened on the network or with time
//!    ([`Session::handle_connected`], [`Session::handle_data`], [`Session::handle_closed`],
//!    [`Session::handle_timeout`], …);
//! 3. mutators called by the application layer ([`Session::start`], [`Session::submit`],
//!    [`Session::close`]);
//! 4. `poll_*` methods returning what to do next: after every call of kind 2 or 3, the
//!    driver calls [`Session::poll_output`] until it returns `None` — actions (resolve,
//!    connect, close) first, then bytes for the current connection, then events (states,
//!    replies, notifications) — and finally re-arms its timer with
//!    [`Session::poll_timeout`].
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
use crate::host::{Candidate, HostFailure, HostId, HostProvider, Rebalance};
use crate::pacing::{ElectionEstimate, Pace, Pacer, Seen};
use crate::rng::Rng;
use crate::telemetry;
use crate::timer::{Timer, TimerTable};
use crate::types::{
    ConnId, Counters, ExpiredBy, Idempotence, Reply, Request, RequestError, RequestId,
    SessionEvent, SessionState, StateChange,
};

mod attempts;
mod connection;
mod frames;
mod hosts;
mod output;
mod sasl;

pub use hosts::HostsError;

/// Preambles up to this size are pipelined with the ConnectRequest.
const PIPELINED_PREAMBLE_LIMIT: usize = 64 * 1024;
/// Handshakes closed before their answer for this long since the connection was lost point to
/// an election (ZooKeeper's takes at least its 200 ms finalize wait), not to a twin client.
const ELECTION_EVIDENCE: Duration = Duration::from_millis(100);
/// The smallest frame a server sends for a request: the length prefix and a reply header.
const MIN_REPLY_FRAME: usize = 4 + ReplyHeader::LEN;
/// Below this many requests in flight every reply is taken as it arrives.
const BATCH_MIN_IN_FLIGHT: usize = 8;
/// The largest receive hint (bytes).
const BATCH_MAX_BYTES: usize = 16 * 1024;
/// Replies wait at most about this long below the receive hint.
const BATCH_MAX_WAIT: Duration = Duration::from_millis(1);
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
    /// Run the SASL mechanism for connection `conn` and report with
    /// [`Session::handle_sasl`]: with `token: None` start a new conversation with `server`
    /// (the mechanism's [`SaslMechanism::start`](crate::SaslMechanism::start), then its first
    /// step), otherwise pass the server's token to that conversation's next step. See
    /// [`crate::sasl`].
    Sasl {
        /// The connection the conversation belongs to.
        conn: ConnId,
        /// The server, as written in the connection string.
        server: String,
        /// The server's token, or `None` to start.
        token: Option<Bytes>,
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

/// One output of the core, as [`Session::poll_output`] hands them out: the one drain loop
/// a driver, the simulation and the fuzz harness all share.
#[derive(Debug)]
#[non_exhaustive]
pub enum Output {
    /// An I/O action to carry out.
    Action(Action),
    /// Bytes to write on connection `conn`.
    Transmit {
        /// The connection they belong to (the current one when they were produced).
        conn: ConnId,
        /// The bytes.
        data: Bytes,
    },
    /// A state change, a completion, a notification or a preamble reply.
    Event(SessionEvent),
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
    /// The address being tried (once resolved).
    addr: Option<SocketAddr>,
    /// A `zk_attempt` span per address tried, a child of the failover's span.
    span: tracing::Span,
    /// Where SASL stands on this connection.
    sasl: sasl::Conversation,
    /// The ConnectResponse was accepted at this time (read-only or not) and SASL is running:
    /// the session is established once SASL is done.
    answered: Option<(Instant, bool)>,
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
    /// The `zk_failover` span from a loss to the session's return (or its end).
    failover_span: tracing::Span,
    /// `counters.attempts` when the connection was lost.
    attempts_at_loss: u64,
    takeover_strikes: u32,
    local_expiry_due: bool,
    ro_probe_delay: Duration,
    probe_in_flight: Option<(u64, HostId)>,
    /// Where a planned move after a host-list change goes (see `Timer::Rebalance`).
    rebalance_to: Option<HostId>,
    /// The batch timer fired: replies are taken one by one until bytes arrive again.
    batch_paused: bool,
    /// The xid of a mechanism's last SASL token ([`crate::SaslStep::SendLast`]) whose answer
    /// is still to come on the established connection: it must be the server's OK.
    sasl_confirm: Option<i32>,
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
            None => (0, Bytes::from_static(&[0; ConnectRequest::PASSWD_LEN])),
        };
        let decoder = FrameDecoder::new(cfg.max_inbound_frame, cfg.max_discard_frame);
        let rng = Rng::new(cfg.rng_seed.unwrap_or(0));
        let mut hosts = hosts;
        hosts.set_max_penalty(cfg.timing.receive_timeout.of(cfg.session_timeout));
        telemetry::state(None, Some(SessionState::Connecting));
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
            failover_span: tracing::Span::none(),
            attempts_at_loss: 0,
            takeover_strikes: 0,
            local_expiry_due: false,
            ro_probe_delay: RO_PROBE_MIN,
            probe_in_flight: None,
            rebalance_to: None,
            batch_paused: false,
            sasl_confirm: None,
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

    /// The hosts of the current list, as written.
    #[must_use]
    pub fn hosts(&self) -> Vec<HostSpec> {
        self.hosts.hosts()
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
        let len = RequestHeader::LEN + req.body.len();
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
        self.rearm_batching(now);
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
        self.sasl_confirm = None;

        let timeout_ms = i32::try_from(self.cfg.session_timeout.as_millis()).unwrap_or(i32::MAX);
        let (session_id, passwd) = if attempt.sent_session == 0 {
            (0, Bytes::from_static(&[0; ConnectRequest::PASSWD_LEN]))
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
        let preamble_len = self.deferred_preamble_len();
        let mut attempt = attempt;
        // With SASL nothing but its packets may go out before it is done (a server that
        // enforces SASL closes a connection whose first request is anything else). The
        // mechanism started with the connection attempt: its first tokens, if ready, are
        // pipelined behind the ConnectRequest.
        if !self.write_ready_sasl_tokens(now, &mut attempt) {
            self.drop_conn(conn);
            self.attempt_failed(now, attempt, HostFailure::Protocol);
            return;
        }
        let pipeline = preamble_len <= PIPELINED_PREAMBLE_LIMIT && attempt.sasl.is_done();
        if pipeline {
            self.write_preamble();
        }
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
        // Bytes arrived: batching may resume, with a fresh timer.
        self.batch_paused = false;
        self.timers.stop(Timer::Batch);
        self.process_rx(now, conn);
    }

    /// Handles the complete frames received on `conn`, then writes what may go. While the
    /// driver runs a SASL step the rest waits (replies pipelined behind a mechanism's last
    /// token belong to the session it is about to establish).
    fn process_rx(&mut self, now: Instant, conn: ConnId) {
        loop {
            if self.tx_conn != Some(conn) {
                return;
            }
            if self.sasl_step_pending() {
                break;
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
        self.rearm_batching(now);
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
        self.batch_paused = false;
        self.rearm_batching(now);
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
                Timer::Rebalance => self.on_rebalance(now),
                // Nothing read for a while below the hint: take whatever is there.
                Timer::Batch => self.batch_paused = true,
            }
        }
        self.rearm_batching(now);
    }
}

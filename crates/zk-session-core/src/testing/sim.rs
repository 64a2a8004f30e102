//! A simulated ZooKeeper ensemble that drives the sans-I/O session core in virtual time.
//!
//! No sockets, no sleeps: [`Sim`] keeps a clock, an event queue and a small model of the
//! servers (up, crashed, frozen, electing, read-only, lagging, answering `SessionMoved`,
//! slow to hand out handshakes), speaking the real wire format through `zk-proto`. Every
//! run is reproducible from its seed. Every scenario is held to [`super::Checks`] — at most
//! one connection or handshake per session at any time, the last zxid never decreasing,
//! every request completing exactly once — and the simulation tests add their own
//! expectations. [`ensemble_ops`] lets the fuzzer choose the faults.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use zk_connstr::{Host, HostSpec};
use zk_proto::{ConnectResponse, ErrorCode, OpCode, Record, ReplyHeader, RequestHeader};

use super::{Checks, ClientFrame, ClientStream};
use crate::config::{AdaptiveDetector, SessionConfig};
use crate::core::{Action, Output, Session};
use crate::host::{HostFailure, HostProvider, StaticHostProvider};
use crate::types::{ConnId, Reply, Request, RequestError, RequestId, SessionEvent, SessionState};

/// What a simulated server does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Serving.
    Up,
    /// Crashed: connections refused.
    Down,
    /// SIGSTOP: TCP still accepted by the kernel, nothing answered.
    Frozen,
    /// Leader election: accepts TCP, closes without a ConnectResponse.
    Electing,
    /// Read-only server (with local sessions).
    ReadOnly,
}

/// One simulated server.
#[derive(Debug)]
pub struct SimHost {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it does now.
    pub mode: Mode,
    /// The server's last processed zxid lags the ensemble by this much.
    pub lag: i64,
    /// Answer every request with SessionMoved (−118) and close, like a stale server would.
    pub session_moved: bool,
    /// Extra time before a ConnectResponse leaves (an overloaded server working through a
    /// queue of handshakes).
    pub handshake_delay: Duration,
}

#[derive(Debug)]
struct ServerConn {
    host: usize,
    stream: ClientStream,
    session: Option<i64>,
}

#[derive(Debug)]
struct SimSession {
    passwd: Bytes,
    timeout: Duration,
    last_touch: Instant,
    owner: Option<ConnId>,
    read_only: bool,
}

#[derive(Debug)]
enum Ev {
    Resolved(ConnId, Vec<SocketAddr>),
    Connected(ConnId),
    ConnectFailed(ConnId, HostFailure),
    Data(ConnId, Bytes),
    Closed(ConnId),
    Probe(u64, bool),
}

/// A simulated ensemble with one session core in it.
pub struct Sim {
    /// The virtual clock.
    pub now: Instant,
    /// When the simulation began.
    pub start: Instant,
    /// The session under test.
    pub core: Session,
    /// The servers, in the order of the connection string.
    pub hosts: Vec<SimHost>,
    /// One-way latency of every message.
    pub latency: Duration,
    /// What name lookups return (a name missing here does not resolve).
    pub dns: HashMap<String, Vec<SocketAddr>>,
    /// Close a connection this long after its handshake (a twin client taking the session).
    pub kick_after: Option<Duration>,
    /// The ensemble's last zxid.
    pub zxid: i64,
    queue: BTreeMap<(Instant, u64), Ev>,
    seq: u64,
    server_conns: HashMap<ConnId, ServerConn>,
    sessions: HashMap<i64, SimSession>,
    next_session: i64,
    /// What the core did, checked.
    checks: Checks,
    /// Every state the session entered: when, which, with which session id.
    pub states: Vec<(Duration, SessionState, i64)>,
    /// Every completed request's result.
    pub completions: HashMap<RequestId, Result<Reply, RequestError>>,
    /// Every notification body delivered.
    pub notifications: Vec<Bytes>,
    /// How many preamble replies were delivered.
    pub preamble_replies: usize,
    /// Every handshake a server answered: when, which host.
    pub handshakes: Vec<(Duration, usize)>,
    /// TCP connections the servers accepted (what a server's kernel counts; refusals by a
    /// crashed server are not accepted).
    pub accepted: usize,
    /// When each of them was accepted.
    pub accepted_at: Vec<Duration>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("elapsed", &self.elapsed())
            .field("hosts", &self.hosts)
            .field("state", &self.core.state())
            .finish_non_exhaustive()
    }
}

/// `127.0.0.1:port`.
#[must_use]
pub fn host_spec(port: u16) -> HostSpec {
    HostSpec {
        host: Host::Ipv4(Ipv4Addr::LOCALHOST),
        port,
    }
}

impl Sim {
    /// `n` hosts on 127.0.0.1:9001.. with the given config (hosts in connection-string order,
    /// shuffled by the core's seeded RNG).
    #[must_use]
    pub fn new(n: u16, cfg: SessionConfig) -> Self {
        let specs: Vec<HostSpec> = (0..n).map(|i| host_spec(9001 + i)).collect();
        Self::with_provider(n, cfg, Box::new(StaticHostProvider::new(specs)))
    }

    /// `n` hosts on 127.0.0.1:9001.. with a host provider of the caller's.
    #[must_use]
    pub fn with_provider(n: u16, cfg: SessionConfig, provider: Box<dyn HostProvider>) -> Self {
        let start = Instant::now();
        let hosts = (0..n)
            .map(|i| SimHost {
                addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 9001 + i)),
                mode: Mode::Up,
                lag: 0,
                session_moved: false,
                handshake_delay: Duration::ZERO,
            })
            .collect();
        Self {
            now: start,
            start,
            core: Session::new(cfg, provider, start),
            hosts,
            latency: Duration::from_micros(100),
            dns: HashMap::new(),
            kick_after: None,
            zxid: 0x1_0000_0000,
            queue: BTreeMap::new(),
            seq: 0,
            server_conns: HashMap::new(),
            sessions: HashMap::new(),
            next_session: 0x0100_0000_0000_0001,
            checks: Checks::default(),
            states: Vec::new(),
            completions: HashMap::new(),
            notifications: Vec::new(),
            preamble_replies: 0,
            handshakes: Vec::new(),
            accepted: 0,
            accepted_at: Vec::new(),
        }
    }

    /// Virtual time since the start.
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    fn schedule(&mut self, after: Duration, ev: Ev) {
        self.seq += 1;
        self.queue.insert((self.now + after, self.seq), ev);
    }

    /// Starts the session.
    pub fn start(&mut self) {
        self.core.start(self.now);
        self.pump();
    }

    /// Submits a request now.
    pub fn submit(&mut self, req: Request) -> RequestId {
        let deadline = req.deadline;
        let id = self.core.submit(self.now, req);
        self.checks.submitted(id, deadline);
        self.pump();
        id
    }

    /// Closes the session now.
    pub fn close(&mut self) {
        self.core.close(self.now);
        self.pump();
    }

    /// Starts the session and runs until it is connected (within a second of virtual time);
    /// returns the host it is on.
    pub fn connect_now(&mut self) -> usize {
        self.start();
        assert!(
            self.run_until_cond(Duration::from_secs(1), |s| s.state()
                == SessionState::Connected),
            "not connected: {:?}",
            self.states
        );
        self.connected_host().unwrap()
    }

    /// Runs until the session is connected again after a loss (within `limit`); returns the
    /// pause the core measured.
    pub fn reconnect_pause(&mut self, limit: Duration) -> Duration {
        assert!(
            self.run_until_cond(limit, |s| s.core.counters().reconnects > 0
                && s.state() == SessionState::Connected),
            "not reconnected; states: {:?}",
            self.states
        );
        self.core.counters().last_pause.unwrap()
    }

    /// Index of the host the session is connected to.
    #[must_use]
    pub fn connected_host(&self) -> Option<usize> {
        if !self.core.state().is_connected() {
            return None;
        }
        let addr = self.core.server()?;
        self.hosts.iter().position(|h| h.addr == addr)
    }

    /// Runs until `d` of virtual time has passed.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until, |_| false);
    }

    /// Runs until `pred` holds or `limit` passed; returns whether `pred` held.
    pub fn run_until_cond(&mut self, limit: Duration, pred: impl Fn(&Self) -> bool) -> bool {
        let until = self.now + limit;
        self.run_until(until, pred)
    }

    fn run_until(&mut self, until: Instant, pred: impl Fn(&Self) -> bool) -> bool {
        loop {
            self.pump();
            if pred(self) {
                return true;
            }
            let next_ev = self.queue.keys().next().map(|(t, _)| *t);
            let next_timer = self.core.poll_timeout();
            let next = [next_ev, next_timer, Some(until)]
                .into_iter()
                .flatten()
                .min()
                .unwrap();
            if next > until
                || (next == until
                    && next_ev.is_none_or(|t| t > until)
                    && next_timer.is_none_or(|t| t > until))
            {
                self.now = until;
                self.expire_sessions();
                self.pump();
                return pred(self);
            }
            self.now = self.now.max(next);
            self.expire_sessions();
            while let Some((&key, _)) = self.queue.iter().next() {
                if key.0 > self.now {
                    break;
                }
                let ev = self.queue.remove(&key).unwrap();
                self.deliver(ev);
                self.pump();
            }
            if self.core.poll_timeout().is_some_and(|t| t <= self.now) {
                self.core.handle_timeout(self.now);
            }
        }
    }

    fn deliver(&mut self, ev: Ev) {
        let now = self.now;
        match ev {
            Ev::Resolved(conn, addrs) => {
                let r = if addrs.is_empty() { Err(()) } else { Ok(addrs) };
                self.core.handle_resolved(now, conn, r);
            }
            Ev::Connected(conn) => {
                if self.server_conns.contains_key(&conn) {
                    self.core.handle_connected(now, conn);
                } else {
                    self.checks.closed(conn);
                    self.core
                        .handle_connect_failed(now, conn, HostFailure::Refused);
                }
            }
            Ev::ConnectFailed(conn, f) => {
                self.checks.closed(conn);
                self.core.handle_connect_failed(now, conn, f);
            }
            Ev::Data(conn, bytes) => {
                if self.checks.is_open(conn) {
                    self.core.handle_data(now, conn, &bytes);
                }
            }
            Ev::Closed(conn) => {
                if self.checks.closed(conn) {
                    self.core.handle_closed(now, conn);
                }
            }
            Ev::Probe(p, rw) => self.core.handle_probe(now, p, rw),
        }
    }

    /// Drains the core's outputs, checking invariants.
    fn pump(&mut self) {
        while let Some(output) = self.core.poll_output() {
            match output {
                Output::Action(action) => self.perform(action),
                Output::Transmit { conn, data } => {
                    self.checks.transmit(conn);
                    self.server_receive(conn, &data);
                }
                Output::Event(ev) => match ev {
                    SessionEvent::State(s) => {
                        self.checks.state(s.state);
                        self.states
                            .push((self.now - self.start, s.state, s.session_id));
                    }
                    SessionEvent::Completed { id, result } => {
                        self.checks.completed(id, &result, self.now);
                        self.completions.insert(id, result);
                    }
                    SessionEvent::Notification { body } => self.notifications.push(body),
                    SessionEvent::PreambleReply { .. } => self.preamble_replies += 1,
                },
            }
            self.checks.zxid(self.core.last_zxid());
        }
    }

    fn host_of(&self, addr: SocketAddr) -> Option<usize> {
        self.hosts.iter().position(|h| h.addr == addr)
    }

    fn perform(&mut self, action: Action) {
        let lat = self.latency;
        match action {
            Action::Resolve { conn, host } => {
                let addrs = self
                    .dns
                    .get(&host.server_name())
                    .cloned()
                    .unwrap_or_default();
                self.schedule(lat, Ev::Resolved(conn, addrs));
            }
            Action::Connect { conn, target, .. } => {
                self.checks.connect(conn);
                match self.host_of(target.addr) {
                    Some(h) if self.hosts[h].mode != Mode::Down => {
                        self.accepted += 1;
                        self.accepted_at.push(self.elapsed());
                        self.server_conns.insert(
                            conn,
                            ServerConn {
                                host: h,
                                stream: ClientStream::new(),
                                session: None,
                            },
                        );
                        self.schedule(lat, Ev::Connected(conn));
                    }
                    _ => self.schedule(lat, Ev::ConnectFailed(conn, HostFailure::Refused)),
                }
            }
            Action::Close { conn } => {
                self.checks.closed(conn);
                self.server_conns.remove(&conn);
            }
            Action::Probe { probe, host, .. } => {
                let rw = host
                    .socket_addr()
                    .and_then(|a| self.host_of(a))
                    .is_some_and(|h| self.hosts[h].mode == Mode::Up);
                self.schedule(lat, Ev::Probe(probe, rw));
            }
            Action::Sasl { .. } => panic!("SASL asked for although none is configured"),
        }
    }

    /// Server side: close one connection as the server would (the client sees EOF later).
    fn server_close(&mut self, conn: ConnId) {
        if self.server_conns.remove(&conn).is_some() {
            self.schedule(self.latency, Ev::Closed(conn));
        }
    }

    /// A reply with no body.
    fn reply_header(&mut self, conn: ConnId, xid: i32, zxid: i64, err: ErrorCode) {
        self.reply(conn, |b| ReplyHeader { xid, zxid, err }.encode(b));
    }

    fn reply(&mut self, conn: ConnId, f: impl FnOnce(&mut BytesMut)) {
        let mut out = BytesMut::new();
        zk_proto::write_frame(&mut out, usize::MAX, f).unwrap();
        self.schedule(self.latency, Ev::Data(conn, out.freeze()));
    }

    fn host_zxid(&self, h: usize) -> i64 {
        self.zxid - self.hosts[h].lag
    }

    fn server_receive(&mut self, conn: ConnId, data: &[u8]) {
        let Some(sc) = self.server_conns.get_mut(&conn) else {
            return;
        };
        let host = sc.host;
        sc.stream.push(data);
        if self.hosts[host].mode == Mode::Frozen {
            // A stopped process reads nothing; the kernel keeps the bytes for later.
            return;
        }
        let mut frames = Vec::new();
        while let Some(f) = sc.stream.next_frame() {
            frames.push(f);
        }
        for frame in frames {
            if !self.server_conns.contains_key(&conn) {
                return;
            }
            match frame {
                ClientFrame::Request { header, .. }
                    if self.server_conns[&conn].session.is_some() =>
                {
                    self.server_request(conn, host, header);
                }
                ClientFrame::Connect(req) => self.server_handshake(conn, host, &req),
                ClientFrame::Request { .. } => panic!("a request before the handshake's answer"),
            }
        }
    }

    fn server_handshake(&mut self, conn: ConnId, host: usize, req: &zk_proto::ConnectRequest) {
        let mode = self.hosts[host].mode;
        if mode == Mode::Electing || req.last_zxid_seen > self.host_zxid(host) {
            self.server_close(conn);
            return;
        }
        if mode == Mode::ReadOnly && (!req.read_only || req.session_id != 0) {
            self.server_close(conn);
            return;
        }
        let timeout = Duration::from_millis(u64::try_from(req.timeout).unwrap())
            .clamp(Duration::from_millis(400), Duration::from_secs(60));
        let (id, passwd) = if req.session_id == 0 {
            let id = self.next_session;
            self.next_session += 1;
            let passwd = Bytes::from(id.to_be_bytes().repeat(2));
            self.sessions.insert(
                id,
                SimSession {
                    passwd: passwd.clone(),
                    timeout,
                    last_touch: self.now,
                    owner: None,
                    read_only: mode == Mode::ReadOnly,
                },
            );
            (id, passwd)
        } else {
            match self.sessions.get(&req.session_id) {
                Some(s) if s.passwd == req.passwd && !s.read_only => {
                    (req.session_id, s.passwd.clone())
                }
                _ => {
                    // Expired, or a wrong password: the all-zero answer.
                    let zero = super::connect_response(0, 0, 0);
                    self.reply(conn, |b| zero.encode(b));
                    self.server_close(conn);
                    return;
                }
            }
        };
        let s = self.sessions.get_mut(&id).unwrap();
        s.timeout = timeout;
        s.last_touch = self.now;
        let previous = s.owner.replace(conn);
        if let Some(prev) = previous
            && prev != conn
            && self.server_conns.get(&prev).is_some_and(|p| p.host == host)
        {
            self.server_close(prev);
        }
        self.server_conns.get_mut(&conn).unwrap().session = Some(id);
        let resp = ConnectResponse {
            protocol_version: 0,
            timeout: i32::try_from(timeout.as_millis()).unwrap(),
            session_id: id,
            passwd,
            read_only: mode == Mode::ReadOnly,
        };
        self.handshakes.push((self.elapsed(), host));
        let mut out = BytesMut::new();
        zk_proto::write_frame(&mut out, usize::MAX, |b| resp.encode(b)).unwrap();
        let delay = self.latency + self.hosts[host].handshake_delay;
        self.schedule(delay, Ev::Data(conn, out.freeze()));
        if let Some(after) = self.kick_after {
            self.seq += 1;
            let at = self.now + after;
            self.queue.insert((at, self.seq), Ev::Closed(conn));
            self.server_conns.remove(&conn);
        }
    }

    fn server_request(&mut self, conn: ConnId, host: usize, header: RequestHeader) {
        let session = self.server_conns[&conn].session.unwrap();
        let Some(s) = self.sessions.get_mut(&session) else {
            self.server_close(conn);
            return;
        };
        s.last_touch = self.now;
        let owner = s.owner;
        let read_only = self.hosts[host].mode == Mode::ReadOnly;
        let zxid = self.host_zxid(host);
        let is_write = matches!(
            header.op,
            OpCode::Create | OpCode::SetData | OpCode::Delete | OpCode::Create2
        );
        if self.hosts[host].session_moved && header.op != OpCode::Ping {
            self.reply_header(conn, header.xid, zxid, ErrorCode::SessionMoved);
            self.server_close(conn);
            return;
        }
        if is_write && owner != Some(conn) {
            // 3.8: SessionMoved never reaches the wire; the server just closes.
            self.server_close(conn);
            return;
        }
        match header.op {
            OpCode::CloseSession => {
                self.sessions.remove(&session);
                self.reply_header(conn, header.xid, zxid, ErrorCode::Ok);
                self.server_close(conn);
            }
            _ if is_write && read_only => {
                self.reply_header(conn, header.xid, zxid, ErrorCode::NotReadOnly);
            }
            _ if is_write => {
                self.zxid += 1;
                let h = ReplyHeader {
                    xid: header.xid,
                    zxid: self.zxid,
                    err: ErrorCode::Ok,
                };
                self.reply(conn, |b| {
                    h.encode(b);
                    b.put_slice(b"ok");
                });
            }
            _ => {
                self.reply_header(conn, header.xid, zxid, ErrorCode::Ok);
            }
        }
    }

    /// The ensemble expires sessions nobody touched for their timeout (plus a tick).
    fn expire_sessions(&mut self) {
        let now = self.now;
        let quorum = self
            .hosts
            .iter()
            .filter(|h| matches!(h.mode, Mode::Up | Mode::Frozen))
            .count()
            * 2
            > self.hosts.len();
        if !quorum {
            // Without a leader nobody expires sessions; the new leader restarts the clocks.
            for s in self.sessions.values_mut() {
                s.last_touch = s.last_touch.max(now - s.timeout / 2);
            }
            return;
        }
        let expired: Vec<i64> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.last_touch + s.timeout + Duration::from_millis(200) < now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(s) = self.sessions.remove(&id)
                && let Some(owner) = s.owner
            {
                self.server_close(owner);
            }
        }
    }

    // ----- Faults -----

    /// The server side's connections on host `h`.
    fn conns_of(&self, h: usize) -> Vec<ConnId> {
        self.server_conns
            .iter()
            .filter(|(_, c)| c.host == h)
            .map(|(id, _)| *id)
            .collect()
    }

    /// kill −9: connections reset after the kernel tears the JVM down.
    pub fn crash(&mut self, h: usize) {
        self.hosts[h].mode = Mode::Down;
        let conns = self.conns_of(h);
        for c in conns {
            self.server_conns.remove(&c);
            self.seq += 1;
            let at = self.now + Duration::from_millis(15);
            self.queue.insert((at, self.seq), Ev::Closed(c));
        }
    }

    /// The server lost its leader: it drops every client connection (orderly close) and
    /// elects, accepting and closing new connections until `set_mode(h, Mode::Up)`.
    pub fn elect(&mut self, h: usize) {
        self.hosts[h].mode = Mode::Electing;
        let conns = self.conns_of(h);
        for c in conns {
            self.server_close(c);
        }
    }

    /// Puts host `h` in `mode` (a crash for [`Mode::Down`]; a frozen host that thaws reads
    /// what its kernel kept).
    pub fn set_mode(&mut self, h: usize, mode: Mode) {
        if mode == Mode::Down {
            self.crash(h);
            return;
        }
        let thawed = self.hosts[h].mode == Mode::Frozen && mode != Mode::Frozen;
        self.hosts[h].mode = mode;
        if thawed {
            let conns = self.conns_of(h);
            for c in conns {
                self.server_receive(c, &[]);
            }
        }
    }

    /// Whether the ensemble still knows session `id`.
    #[must_use]
    pub fn session_exists_on_servers(&self, id: i64) -> bool {
        self.sessions.contains_key(&id)
    }

    /// The session's state.
    #[must_use]
    pub fn state(&self) -> SessionState {
        self.core.state()
    }

    /// How request `id` completed, if it did.
    #[must_use]
    pub fn result(&self, id: RequestId) -> Option<&Result<Reply, RequestError>> {
        self.completions.get(&id)
    }
}

/// Reads the fuzzer's bytes; zeros once they run out.
struct Bytes8<'a>(&'a [u8]);

impl Bytes8<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
}

/// The `ensemble_sim` fuzz target: the fuzzer scripts the faults of a simulated ensemble —
/// crashes, freezes, elections, read-only servers, lagging servers, `SessionMoved`, a twin
/// client taking the session, slow handshakes, latency, time passing — and the requests and
/// closes of the application, while the simulation holds the core to its invariants
/// ([`super::Checks`]). At the end the ensemble heals, the session is closed, and every
/// request must have completed.
pub fn ensemble_ops(data: &[u8]) {
    let mut input = Bytes8(data);
    let flags = input.byte();
    let seed = input.byte();
    let n = if flags & 1 == 0 { 3 } else { 5 };
    let timeout = [2_000_u64, 4_000, 6_000, 30_000][usize::from(flags >> 1 & 3)];
    let mut cfg = SessionConfig::with_timeout(Duration::from_millis(timeout));
    cfg.rng_seed = Some(u64::from(seed));
    cfg.can_be_read_only = flags & 8 != 0;
    if flags & 16 != 0 {
        cfg.timing.adaptive = Some(AdaptiveDetector::default());
    }
    cfg.max_in_flight = if flags & 32 != 0 { 2 } else { 4096 };
    let mut sim = Sim::new(n, cfg);
    sim.start();
    let hosts = usize::from(n);
    let mut steps = 0;
    while !input.0.is_empty() && steps < 512 {
        steps += 1;
        let tag = input.byte();
        let h = usize::from(input.byte()) % hosts;
        let arg = input.byte();
        match tag % 16 {
            0 => sim.crash(h),
            1 => sim.set_mode(h, Mode::Up),
            2 => sim.set_mode(h, Mode::Frozen),
            3 => {
                // An election: every server that is up drops its clients and elects.
                for i in 0..hosts {
                    if sim.hosts[i].mode != Mode::Down {
                        sim.elect(i);
                    }
                }
            }
            4 => {
                for i in 0..hosts {
                    if sim.hosts[i].mode == Mode::Electing {
                        sim.set_mode(i, Mode::Up);
                    }
                }
            }
            5 => sim.set_mode(h, Mode::ReadOnly),
            6 => sim.hosts[h].lag = i64::from(arg % 8),
            7 => sim.hosts[h].session_moved = arg & 1 != 0,
            8 => {
                sim.kick_after = (arg & 1 != 0).then(|| Duration::from_millis(u64::from(arg)));
            }
            9 => sim.hosts[h].handshake_delay = Duration::from_millis(u64::from(arg) * 4),
            10 => sim.latency = Duration::from_micros(u64::from(arg) * 50 + 20),
            11 => sim.zxid += i64::from(arg),
            12 | 13 => {
                let ms = match arg >> 6 {
                    0 => u64::from(arg & 63),
                    1 => u64::from(arg & 63) * 20,
                    2 => u64::from(arg & 63) * 200,
                    _ => u64::from(arg & 63) * 2_000,
                };
                sim.run_for(Duration::from_millis(ms));
            }
            14 => {
                let body = Bytes::from_static(b"\0\0\0\x02/a\0");
                let mut req = if arg & 1 == 0 {
                    Request::read(OpCode::GetData, body)
                } else {
                    Request::write(OpCode::SetData, body)
                };
                if arg & 2 != 0 {
                    req = req.with_deadline(sim.now + Duration::from_millis(u64::from(arg) * 10));
                }
                sim.submit(req);
            }
            _ => {
                if arg == 0xff {
                    sim.close();
                }
            }
        }
    }
    // Heal, close, and let every request finish.
    sim.kick_after = None;
    for i in 0..hosts {
        sim.hosts[i].session_moved = false;
        sim.hosts[i].lag = 0;
        sim.hosts[i].handshake_delay = Duration::ZERO;
        sim.set_mode(i, Mode::Up);
    }
    sim.run_for(Duration::from_secs(1));
    sim.close();
    sim.run_for(Duration::from_secs(120));
    assert!(
        sim.state().is_terminal(),
        "close did not end the session: {:?}",
        sim.state()
    );
    assert_eq!(sim.checks.outstanding(), 0, "requests never completed");
    assert!(
        sim.checks.open().is_empty(),
        "a connection outlived the session"
    );
}

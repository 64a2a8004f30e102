//! One hostile peer scripted byte by byte: the `session_core` fuzz target
//! (`fuzz/fuzz_targets/session_core.rs`) and its corpus replay (`tests/fuzz_corpus.rs`).
//!
//! [`session_ops`] decodes an arbitrary byte string into a configuration and a sequence of
//! inputs — transports opening or failing, a scripted server's handshake answers, replies
//! (in order, out of order, for unknown xids), pings, notifications, raw bytes, oversized
//! frames, EOFs, timer firings, name lookups, read-only probes, user requests and closes —
//! and drives a [`Session`] with them the way a driver would, checking after every step:
//!
//! - nothing panics;
//! - never two live connections (or handshakes): every `Connect` is preceded by the `Close`
//!   of the previous connection;
//! - bytes are only transmitted on the current, open connection, and every ConnectRequest
//!   carries the session's current last zxid and id;
//! - `last_zxid` never decreases;
//! - every submitted request completes exactly once (never an unknown or repeated id), a
//!   `Timeout` only after its deadline, and nothing is outstanding once the session is
//!   terminal; a terminal state never changes;
//! - after the driver has handled a due timer, [`Session::poll_timeout`] is never in the past
//!   (a driver would spin).
//!
//! At the end the session is closed, time runs out, and every request must have completed.
//! Any broken invariant panics, which is what the fuzzer reports. The checks shared with the
//! simulation are [`super::Checks`]; the client's bytes are read with [`super::ClientStream`].

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use zk_connstr::{Host, HostSpec};
use zk_proto::{ConnectResponse, ErrorCode, OpCode, Record, ReplyHeader, WatcherEvent};

use crate::config::{AdaptiveDetector, SavedSession, SessionConfig};
use crate::core::{Action, Output, Session};
use crate::host::{HostFailure, StaticHostProvider};
use crate::types::{ConnId, Request, SessionEvent};

use super::{Checks, ClientFrame, ClientStream, frame, reply_frame};

/// Reads the fuzzer's bytes; yields zeros once they run out.
struct Input<'a> {
    data: &'a [u8],
}

impl Input<'_> {
    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }
}

/// The scripted server's view of the current connection.
struct Peer {
    conn: ConnId,
    /// The transport was reported open to the core.
    open: bool,
    stream: ClientStream,
    /// Requests written by the client and not answered by the script, in order.
    pending: VecDeque<(i32, OpCode)>,
}

/// The failures a connect can report.
const FAILURES: [HostFailure; 10] = [
    HostFailure::Refused,
    HostFailure::TimedOut,
    HostFailure::ClosedInHandshake,
    HostFailure::Unresolvable,
    HostFailure::Tls,
    HostFailure::Io,
    HostFailure::Protocol,
    HostFailure::ConnectionLost,
    HostFailure::Frozen,
    HostFailure::ReadOnly,
];

/// Error codes a scripted reply can carry.
const ERRORS: [i32; 10] = [0, 0, 0, -101, -103, -110, -118, -115, -5, -4];

/// Read and write opcodes for submitted requests.
const READS: [OpCode; 4] = [
    OpCode::Exists,
    OpCode::GetData,
    OpCode::GetChildren2,
    OpCode::Sync,
];
const WRITES: [OpCode; 4] = [
    OpCode::Create,
    OpCode::SetData,
    OpCode::Delete,
    OpCode::Multi,
];

struct Harness {
    core: Session,
    now: Instant,
    max_inbound: usize,
    /// Connections, requests, zxids and states, checked.
    checks: Checks,
    peer: Option<Peer>,
    /// Connections the core closed (stale data may still arrive for them).
    stale: Vec<ConnId>,
    resolve: Option<ConnId>,
    probe: Option<u64>,
    /// The script's server zxid (grows with its replies).
    server_zxid: i64,
    next_session: i64,
    /// The DIGEST-MD5 conversation when SASL is on (the script's replies are its challenges).
    sasl: Option<Box<dyn crate::SaslClient>>,
}

/// Runs one operation sequence decoded from `data` against a fresh [`Session`] and checks its
/// invariants (see the module docs). Panics on a broken invariant.
pub fn session_ops(data: &[u8]) {
    let mut input = Input { data };
    let mut h = Harness::new(&mut input);
    let mut steps = 0_u32;
    while !input.is_empty() && steps < 4096 {
        steps += 1;
        h.step(&mut input);
        h.check_after_step();
    }
    h.finish();
}

fn host(a: u8, port: u16) -> HostSpec {
    HostSpec {
        host: Host::Ipv4(Ipv4Addr::new(127, 0, 0, a)),
        port,
    }
}

impl Harness {
    fn new(input: &mut Input<'_>) -> Self {
        let flags = input.byte();
        let tuning = input.byte();
        let seed = input.byte();
        let now = Instant::now();

        let mut cfg = SessionConfig::with_timeout(
            [
                Duration::from_millis(500),
                Duration::from_secs(2),
                Duration::from_secs(4),
                Duration::from_secs(10),
            ][usize::from(tuning & 3)],
        );
        cfg.can_be_read_only = flags & 1 != 0;
        if flags & 2 != 0 {
            cfg.resume = Some(SavedSession {
                session_id: 0x0200_0000_0000_0007,
                password: Bytes::from_static(&[7; 16]),
            });
        }
        if flags & 4 != 0 {
            cfg.timing.adaptive = Some(AdaptiveDetector::default());
        }
        cfg.max_in_flight = [1, 2, 8, 4096][usize::from((flags >> 4) & 3)];
        cfg.max_inbound_frame =
            [64, 512, 4096, zk_proto::DEFAULT_MAX_INBOUND_FRAME][usize::from(flags >> 6)];
        cfg.max_discard_frame = cfg.max_inbound_frame.saturating_mul(64).max(1 << 20);
        if tuning & 4 != 0 {
            cfg.max_outbound_frame = 256;
        }
        cfg.takeover_limit = u32::from((tuning >> 3) & 7).max(1);
        cfg.rng_seed = Some(u64::from(seed));
        if tuning & 0x40 != 0 {
            cfg.sasl = Some(std::sync::Arc::new(crate::DigestMd5::new("fuzz", "secret")));
        }
        let max_inbound = cfg.max_inbound_frame;

        let mut hosts = vec![host(1, 2181), host(2, 2181)];
        if flags & 8 != 0 {
            hosts.push(HostSpec {
                host: Host::Name("zk.invalid".to_owned()),
                port: 2181,
            });
        } else {
            hosts.push(host(3, 2181));
        }
        let provider = StaticHostProvider::in_order(hosts);
        let mut core = Session::new(cfg, Box::new(provider), now);
        core.start(now);
        let mut h = Self {
            core,
            now,
            max_inbound,
            checks: Checks::default(),
            peer: None,
            stale: Vec::new(),
            resolve: None,
            probe: None,
            server_zxid: 0x1_0000_0000,
            next_session: 0x0100_0000_0000_0001,
            sasl: None,
        };
        h.pump();
        h
    }

    /// Drains the core's outputs like a driver, checking each.
    fn pump(&mut self) {
        while let Some(output) = self.core.poll_output() {
            match output {
                Output::Action(action) => self.on_action(action),
                Output::Transmit { conn, data } => self.on_transmit(conn, &data),
                Output::Event(event) => self.on_event(event),
            }
        }
    }

    fn on_action(&mut self, action: Action) {
        tracing::trace!(?action, "fuzz action");
        match action {
            Action::Resolve { conn, .. } => {
                assert!(
                    self.checks.terminal().is_none(),
                    "resolve after a terminal state"
                );
                self.resolve = Some(conn);
            }
            Action::Connect { conn, timeout, .. } => {
                assert!(!timeout.is_zero(), "zero connect timeout");
                self.checks.connect(conn);
                if let Some(old) = self.peer.take() {
                    self.stale.push(old.conn);
                }
                self.peer = Some(Peer {
                    conn,
                    open: false,
                    stream: ClientStream::new(),
                    pending: VecDeque::new(),
                });
            }
            Action::Close { conn } => {
                self.checks.closed(conn);
                if self.peer.as_ref().is_some_and(|p| p.conn == conn)
                    && let Some(old) = self.peer.take()
                {
                    self.stale.push(old.conn);
                }
            }
            Action::Probe { probe, .. } => self.probe = Some(probe),
            Action::Sasl {
                conn,
                server,
                token,
            } => {
                let Some(mech) = self.core.config().sasl.clone() else {
                    panic!("SASL asked for although none is configured");
                };
                assert_eq!(
                    Some(conn),
                    self.core.current_conn(),
                    "SASL for another connection"
                );
                if token.is_none() {
                    self.sasl = None;
                }
                let client = match self.sasl.take() {
                    Some(c) => Ok(c),
                    None => mech.start(&server),
                };
                let result = client.and_then(|mut c| {
                    let r = c.step(token.as_deref());
                    self.sasl = Some(c);
                    r
                });
                self.core.handle_sasl(self.now, conn, result);
            }
        }
    }

    fn on_transmit(&mut self, conn: ConnId, data: &[u8]) {
        self.checks.transmit(conn);
        let last_zxid = self.core.last_zxid();
        let session_id = self.core.session_id();
        let Some(peer) = self.peer.as_mut().filter(|p| p.conn == conn) else {
            panic!("bytes for a connection that is not the current one");
        };
        assert!(peer.open, "bytes before the transport was open");
        peer.stream.push(data);
        while let Some(frame) = peer.stream.next_frame() {
            match frame {
                ClientFrame::Connect(req) => {
                    assert_eq!(req.last_zxid_seen, last_zxid, "ConnectRequest zxid");
                    assert!(
                        req.session_id == 0 || req.session_id == session_id,
                        "ConnectRequest for another session"
                    );
                }
                ClientFrame::Request { header, .. } => {
                    peer.pending.push_back((header.xid, header.op));
                }
            }
        }
    }

    fn on_event(&mut self, event: SessionEvent) {
        match event {
            SessionEvent::Completed { id, result } => self.checks.completed(id, &result, self.now),
            SessionEvent::State(change) => self.checks.state(change.state),
            _ => {}
        }
    }

    fn check_after_step(&mut self) {
        self.checks.zxid(self.core.last_zxid());
        assert!(self.checks.open().len() <= 1, "two live connections");
        if self.core.is_handshaking() {
            let conn = self.core.current_conn();
            assert!(
                self.peer
                    .as_ref()
                    .is_some_and(|p| Some(p.conn) == conn && p.open),
                "handshaking without an open transport"
            );
        }
        if let Some(conn) = self.core.current_conn()
            && !matches!(self.resolve, Some(r) if r == conn)
        {
            assert!(
                self.checks.is_open(conn),
                "the core uses a connection it never opened"
            );
        }
        if self.core.state().is_terminal() {
            assert!(
                self.checks.open().is_empty(),
                "a terminal session keeps a connection"
            );
            assert!(self.core.current_conn().is_none());
            assert!(
                self.checks.outstanding() == 0,
                "requests outstanding after a terminal state"
            );
            assert!(self.core.poll_timeout().is_none(), "timers after the end");
        }
        assert!(
            self.checks.outstanding() <= self.core.queued() + self.core.in_flight(),
            "a request vanished without completing"
        );
        // A driver handles a due timer at once; afterwards nothing may be due.
        if self.core.poll_timeout().is_some_and(|t| t <= self.now) {
            self.core.handle_timeout(self.now);
            self.pump();
            self.checks.zxid(self.core.last_zxid());
        }
        if let Some(t) = self.core.poll_timeout() {
            assert!(
                t > self.now,
                "poll_timeout in the past after handle_timeout"
            );
        }
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.core.handle_timeout(self.now);
        self.pump();
    }

    fn current(&self) -> Option<ConnId> {
        self.peer.as_ref().map(|p| p.conn)
    }

    /// Delivers `data` to the current connection (or a stale one), split in two at `split`.
    fn deliver(&mut self, data: &[u8], split: u8, stale: bool) {
        let target = if stale {
            self.stale.last().copied()
        } else {
            self.peer.as_ref().filter(|p| p.open).map(|p| p.conn)
        };
        let Some(conn) = target else {
            return;
        };
        let at = usize::from(split).min(data.len());
        let (a, b) = data.split_at(at);
        self.core.handle_data(self.now, conn, a);
        self.pump();
        if !b.is_empty() {
            self.core.handle_data(self.now, conn, b);
            self.pump();
        }
    }

    fn submit(&mut self, input: &mut Input<'_>, write: bool) {
        let sel = input.byte();
        let op = if write {
            WRITES[usize::from(sel & 3)]
        } else {
            READS[usize::from(sel & 3)]
        };
        let len = if sel & 0x40 != 0 {
            300
        } else {
            usize::from(sel >> 3 & 7)
        };
        let body = Bytes::from(vec![sel; len]);
        let mut req = if write {
            Request::write(op, body)
        } else {
            Request::read(op, body)
        };
        if sel & 0x80 != 0 {
            let ms = u64::from(input.byte()) * 20;
            req = req.with_deadline(self.now + Duration::from_millis(ms));
        }
        let deadline = req.deadline;
        // Completions wait in the core's queue until the next pump.
        let id = self.core.submit(self.now, req);
        self.checks.submitted(id, deadline);
        self.pump();
    }

    fn connect_response(&mut self, input: &mut Input<'_>) {
        let variant = input.byte();
        let split = input.byte();
        let sent = self
            .peer
            .as_ref()
            .and_then(|p| p.stream.connect_request())
            .map_or(0, |r| r.session_id);
        let timeout_ms = [400_i32, 2000, 4000, 20_000][usize::from(variant >> 6)];
        let mut passwd = [0_u8; 16];
        passwd[0] = variant;
        let new_id = self.next_session;
        let mut resp = ConnectResponse {
            protocol_version: 0,
            timeout: timeout_ms,
            session_id: if sent == 0 { new_id } else { sent },
            passwd: Bytes::copy_from_slice(&passwd),
            read_only: false,
        };
        let mut payload = BytesMut::new();
        match variant % 7 {
            0 | 1 => resp.encode(&mut payload),
            2 => {
                resp.read_only = true;
                resp.encode(&mut payload);
            }
            3 => {
                // Expired (or a wrong password).
                resp.timeout = 0;
                resp.session_id = 0;
                resp.passwd = Bytes::from_static(&[0; 16]);
                resp.encode(&mut payload);
            }
            4 => {
                resp.session_id = sent.wrapping_add(0x10);
                resp.encode(&mut payload);
            }
            5 => {
                // The 36-byte form of old servers.
                resp.encode(&mut payload);
                payload.truncate(ConnectResponse::LEN_WITHOUT_READ_ONLY);
            }
            _ => {
                let n = usize::from(input.byte() % 48);
                payload.put_slice(input.bytes(n));
            }
        }
        if sent == 0 {
            self.next_session += 1;
        }
        self.deliver(&frame(&payload), split, false);
    }

    fn next_zxid(&mut self, sel: u8) -> i64 {
        if sel & 0xe0 == 0xe0 {
            // Anything, including zxids below the last one seen.
            i64::from(sel) - 128
        } else {
            self.server_zxid += i64::from(sel & 3);
            self.server_zxid
        }
    }

    fn reply(&mut self, input: &mut Input<'_>, in_order: bool) {
        let sel = input.byte();
        let split = input.byte();
        let pick = input.byte();
        let xid = if in_order {
            self.peer
                .as_mut()
                .and_then(|p| p.pending.pop_front())
                .map_or(1, |(xid, _)| xid)
        } else {
            let pending: Vec<i32> = self
                .peer
                .as_ref()
                .map(|p| p.pending.iter().map(|(x, _)| *x).collect())
                .unwrap_or_default();
            if pending.is_empty() || pick & 0x80 != 0 {
                i32::from(pick) - 64
            } else {
                let i = usize::from(pick) % pending.len();
                if let Some(p) = self.peer.as_mut() {
                    p.pending.remove(i);
                }
                pending[i]
            }
        };
        let err = ERRORS[usize::from(sel >> 4) % ERRORS.len()];
        let zxid = self.next_zxid(sel);
        let body_len = usize::from(pick & 7);
        let body = input.bytes(body_len).to_vec();
        let frame = reply_frame(xid, zxid, ErrorCode::from(err), &body);
        self.deliver(&frame, split, sel & 8 != 0 && sel & 4 != 0);
    }

    fn oversized(&mut self, input: &mut Input<'_>) {
        let sel = input.byte();
        let xid = match sel & 3 {
            0 => zk_proto::xid::NOTIFICATION,
            1 => i32::from(input.byte()),
            _ => self
                .peer
                .as_mut()
                .and_then(|p| p.pending.pop_front())
                .map_or(7, |(xid, _)| xid),
        };
        let extra = usize::from(input.u16());
        let len = self.max_inbound.saturating_add(1).saturating_add(extra);
        let zxid = self.next_zxid(sel);
        let header = ReplyHeader {
            xid,
            zxid,
            err: ErrorCode::Ok,
        };
        let mut frame = BytesMut::new();
        frame.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
        header.encode(&mut frame);
        // Deliver the rest of the frame when it is small; otherwise part of it.
        let rest = len - 16;
        let sent = if sel & 4 != 0 && rest <= 1 << 17 {
            rest
        } else {
            rest.min(usize::from(sel))
        };
        frame.put_bytes(0, sent);
        self.deliver(&frame, input.byte(), false);
    }

    fn step(&mut self, input: &mut Input<'_>) {
        let tag = input.byte();
        tracing::trace!(
            op = tag % 18,
            tag,
            state = ?self.core.state(),
            open = ?self.checks.open(),
            "fuzz step"
        );
        match tag % 18 {
            0 => {
                if let Some(p) = self.peer.as_mut().filter(|p| !p.open) {
                    p.open = true;
                    let conn = p.conn;
                    self.core.handle_connected(self.now, conn);
                    self.pump();
                }
            }
            1 => {
                if let Some(conn) = self.peer.as_ref().filter(|p| !p.open).map(|p| p.conn) {
                    let failure = FAILURES[usize::from(input.byte()) % FAILURES.len()];
                    self.checks.closed(conn);
                    self.peer = None;
                    self.stale.push(conn);
                    self.core.handle_connect_failed(self.now, conn, failure);
                    self.pump();
                }
            }
            2 | 3 => self.connect_response(input),
            4..=6 => self.reply(input, true),
            7 => self.reply(input, false),
            8 => {
                // A ping reply, expected or not.
                let sel = input.byte();
                if let Some(p) = self.peer.as_mut()
                    && let Some(i) = p
                        .pending
                        .iter()
                        .position(|(x, _)| *x == zk_proto::xid::PING)
                {
                    p.pending.remove(i);
                }
                let zxid = self.next_zxid(sel);
                let frame = reply_frame(zk_proto::xid::PING, zxid, ErrorCode::Ok, &[]);
                self.deliver(&frame, input.byte(), false);
            }
            9 => {
                let sel = input.byte();
                let mut body = BytesMut::new();
                if sel & 1 == 0 {
                    WatcherEvent {
                        event_type: i32::from(sel >> 1 & 7),
                        state: 3,
                        path: "/a".to_owned(),
                    }
                    .encode(&mut body);
                } else {
                    let n = usize::from(sel >> 3);
                    body.put_slice(input.bytes(n));
                }
                let frame = reply_frame(zk_proto::xid::NOTIFICATION, -1, ErrorCode::Ok, &body);
                self.deliver(&frame, input.byte(), false);
            }
            10 => {
                let sel = input.byte();
                let n = usize::from(sel & 63);
                let data = input.bytes(n).to_vec();
                self.deliver(&data, input.byte(), sel & 64 != 0);
            }
            11 => {
                let sel = input.byte();
                let target = if sel & 1 != 0 {
                    self.stale.last().copied()
                } else {
                    self.peer.as_ref().filter(|p| p.open).map(|p| p.conn)
                };
                if let Some(conn) = target {
                    if sel & 1 == 0 {
                        self.checks.closed(conn);
                        self.peer = None;
                        self.stale.push(conn);
                    }
                    self.core.handle_closed(self.now, conn);
                    self.pump();
                }
            }
            12 => {
                let sel = input.byte();
                let ms = match sel >> 6 {
                    0 => u64::from(sel & 63),
                    1 => u64::from(sel & 63) * 25,
                    2 => u64::from(sel & 63) * 250,
                    _ => u64::from(input.u32() % 120_000),
                };
                self.advance(Duration::from_millis(ms));
            }
            13 => {
                // Straight to the next deadline, like a driver's sleep.
                let next = self.core.poll_timeout().unwrap_or(self.now);
                let d = next.saturating_duration_since(self.now);
                self.advance(d);
            }
            14 => self.submit(input, tag & 0x80 != 0),
            15 => {
                if tag & 0x80 != 0 {
                    self.core.close(self.now);
                    self.pump();
                } else {
                    self.oversized(input);
                }
            }
            16 => {
                let sel = input.byte();
                if let Some(conn) = self.resolve.take() {
                    let result = match sel % 4 {
                        0 => Err(()),
                        1 => Ok(Vec::new()),
                        2 => Ok(vec![SocketAddr::from((Ipv4Addr::new(127, 0, 0, 9), 2181))]),
                        _ => Ok(vec![
                            SocketAddr::from((Ipv4Addr::new(127, 0, 0, 9), 2181)),
                            SocketAddr::from((Ipv4Addr::new(127, 0, 0, 10), 2181)),
                        ]),
                    };
                    self.core.handle_resolved(self.now, conn, result);
                    self.pump();
                }
            }
            _ => {
                let sel = input.byte();
                let probe = if sel & 2 != 0 {
                    u64::from(sel)
                } else {
                    self.probe.take().unwrap_or(0)
                };
                self.core.handle_probe(self.now, probe, sel & 1 != 0);
                self.pump();
            }
        }
    }

    /// Closes the session, lets time run out, and checks that everything completed.
    fn finish(&mut self) {
        self.core.close(self.now);
        self.pump();
        self.check_after_step();
        for _ in 0..16 {
            if self.core.state().is_terminal() {
                break;
            }
            // The server answers closeSession by closing (or never answers).
            if let Some(conn) = self.current() {
                self.checks.closed(conn);
                self.peer = None;
                self.core.handle_closed(self.now, conn);
                self.pump();
            }
            self.advance(Duration::from_secs(60));
            self.check_after_step();
        }
        assert!(
            self.core.state().is_terminal(),
            "close did not end the session: {:?}",
            self.core.state()
        );
        assert!(self.checks.outstanding() == 0, "requests never completed");
        // A request after the end completes at once with the terminal error.
        let id = self
            .core
            .submit(self.now, Request::read(OpCode::Exists, Bytes::new()));
        self.checks.submitted(id, None);
        self.pump();
        assert!(
            self.checks.outstanding() == 0,
            "a request after the end was not failed at once"
        );
        assert!(
            self.checks.open().is_empty(),
            "a connection outlived the session"
        );
    }
}

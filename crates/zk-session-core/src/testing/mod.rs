//! The one deterministic harness for the session core: compiled only with the `testing`
//! feature (tests) or under `cfg(fuzzing)` (cargo-fuzz), never in a normal build.
//!
//! Two ways to drive a [`Session`](crate::Session) without sockets or a clock, built from the
//! same parts:
//!
//! - [`sim`]: a simulated ensemble in virtual time — servers that crash, freeze, elect, lag,
//!   serve read-only or answer `SessionMoved` — speaking the real wire format. The simulation
//!   tests script it by hand; [`sim::ensemble_ops`] lets the fuzzer script it from bytes.
//! - [`script`]: one hostile peer scripted byte by byte by the fuzzer: handshake answers,
//!   replies in and out of order, garbage, oversized frames, stale connections.
//!
//! Both drain the core with [`Session::poll_output`](crate::Session::poll_output), read the
//! client's bytes with one [`ClientStream`], and hold the core to the same [`Checks`]: never
//! two live connections, `last_zxid` never decreasing, every request completing exactly once
//! (a `Timeout` only after its deadline), nothing after a terminal state. A broken invariant
//! panics: that is what the fuzzer and the tests report.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::missing_panics_doc,
    reason = "a test harness: a broken invariant or an impossible input panics by design"
)]

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use zk_proto::{
    ConnectRequest, ConnectResponse, ErrorCode, Frame, FrameDecoder, Record, ReplyHeader,
    RequestHeader,
};

use crate::types::{ConnId, Reply, RequestError, RequestId, SessionState};

pub mod script;
pub mod sim;

pub use script::session_ops;
pub use sim::{Mode, Sim, SimHost, ensemble_ops, host_spec};

/// One frame the client wrote, as a server reads it.
#[derive(Debug)]
pub enum ClientFrame {
    /// The first frame of a connection.
    Connect(ConnectRequest),
    /// Any later frame: a request header and its body.
    Request {
        /// The request's xid and opcode.
        header: RequestHeader,
        /// What follows the header.
        body: Bytes,
    },
}

/// The server's side of one client connection: the bytes the client wrote, framed, the first
/// frame read as a `ConnectRequest`. Panics if the client writes something no server could
/// frame — the core must never do that.
#[derive(Debug)]
pub struct ClientStream {
    decoder: FrameDecoder,
    buf: BytesMut,
    connect: Option<ConnectRequest>,
}

impl Default for ClientStream {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientStream {
    /// A connection nothing was written on yet.
    #[must_use]
    pub fn new() -> Self {
        Self {
            decoder: FrameDecoder::new(usize::MAX >> 1, usize::MAX >> 1),
            buf: BytesMut::new(),
            connect: None,
        }
    }

    /// Bytes the client wrote (kept until read, as a stopped server's kernel keeps them).
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, if one is buffered.
    pub fn next_frame(&mut self) -> Option<ClientFrame> {
        let mut frame = match self.decoder.decode(&mut self.buf) {
            Ok(Some(Frame::Complete(frame))) => frame,
            Ok(None) => return None,
            Ok(Some(_)) | Err(_) => {
                panic!("the client wrote an unframeable stream")
            }
        };
        if self.connect.is_none() {
            let req: ConnectRequest = zk_proto::decode_exact(frame)
                .unwrap_or_else(|e| panic!("the first frame is not a ConnectRequest: {e}"));
            self.connect = Some(req.clone());
            return Some(ClientFrame::Connect(req));
        }
        let header = RequestHeader::decode(&mut frame)
            .unwrap_or_else(|e| panic!("a request without a header: {e}"));
        Some(ClientFrame::Request {
            header,
            body: frame,
        })
    }

    /// The ConnectRequest of this connection, once read.
    #[must_use]
    pub fn connect_request(&self) -> Option<&ConnectRequest> {
        self.connect.as_ref()
    }
}

/// A ConnectResponse with a 16-byte password of `passwd_byte`s (`connect_response(0, 0, 0)`
/// is a server's "expired" answer).
#[must_use]
pub fn connect_response(session_id: i64, timeout_ms: i32, passwd_byte: u8) -> ConnectResponse {
    ConnectResponse {
        protocol_version: 0,
        timeout: timeout_ms,
        session_id,
        passwd: Bytes::from(vec![passwd_byte; 16]),
        read_only: false,
    }
}

/// A length-prefixed frame around `payload` (any length: a hostile server's too).
#[must_use]
pub fn frame(payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(4 + payload.len());
    out.put_u32(u32::try_from(payload.len()).unwrap_or(u32::MAX));
    out.put_slice(payload);
    out.freeze()
}

/// A framed reply: header and body.
#[must_use]
pub fn reply_frame(xid: i32, zxid: i64, err: ErrorCode, body: &[u8]) -> Bytes {
    let mut payload = BytesMut::new();
    ReplyHeader { xid, zxid, err }.encode(&mut payload);
    payload.put_slice(body);
    frame(&payload)
}

/// The invariants every harness holds the core to, fed with what it does.
#[derive(Debug, Default)]
pub struct Checks {
    open: BTreeSet<ConnId>,
    last_zxid: i64,
    outstanding: HashMap<RequestId, Option<Instant>>,
    submitted: u64,
    terminal: Option<SessionState>,
}

impl Checks {
    /// The core asked for connection `conn`: no other may be live.
    pub fn connect(&mut self, conn: ConnId) {
        assert!(
            self.terminal.is_none(),
            "connect after a terminal state {:?}",
            self.terminal
        );
        assert!(
            self.open.is_empty(),
            "second connection {conn:?} opened while {:?} is open",
            self.open
        );
        self.open.insert(conn);
    }

    /// `conn` was closed by the core or reported failed or closed to it; whether it was live.
    pub fn closed(&mut self, conn: ConnId) -> bool {
        self.open.remove(&conn)
    }

    /// Whether `conn` is live.
    #[must_use]
    pub fn is_open(&self, conn: ConnId) -> bool {
        self.open.contains(&conn)
    }

    /// The live connections (at most one).
    #[must_use]
    pub fn open(&self) -> &BTreeSet<ConnId> {
        &self.open
    }

    /// Bytes the core wants written on `conn`: it must be live.
    pub fn transmit(&self, conn: ConnId) {
        assert!(
            self.open.contains(&conn),
            "bytes for a connection that is not open"
        );
    }

    /// The core accepted request `id`; ids are sequential from 1.
    pub fn submitted(&mut self, id: RequestId, deadline: Option<Instant>) {
        self.submitted += 1;
        assert_eq!(id.get(), self.submitted, "request ids are not sequential");
        self.outstanding.insert(id, deadline);
    }

    /// Request `id` completed at `now`: once, and a `Timeout` only after its deadline.
    pub fn completed(&mut self, id: RequestId, result: &Result<Reply, RequestError>, now: Instant) {
        let Some(deadline) = self.outstanding.remove(&id) else {
            panic!("request {id:?} completed twice or never submitted");
        };
        if matches!(result, Err(RequestError::Timeout)) {
            assert!(
                deadline.is_some_and(|d| d <= now),
                "Timeout before the deadline"
            );
        }
    }

    /// The session entered `state`: nothing follows a terminal state.
    pub fn state(&mut self, state: SessionState) {
        assert!(
            self.terminal.is_none(),
            "state change {state:?} after terminal {:?}",
            self.terminal
        );
        if state.is_terminal() {
            self.terminal = Some(state);
        }
    }

    /// The core's last zxid now: it never decreases.
    pub fn zxid(&mut self, zxid: i64) {
        assert!(zxid >= self.last_zxid, "last zxid went backwards");
        self.last_zxid = zxid;
    }

    /// Requests submitted and not completed.
    #[must_use]
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// The terminal state reached, if any.
    #[must_use]
    pub fn terminal(&self) -> Option<SessionState> {
        self.terminal
    }
}
